"""The baselines of the side-by-side comparisons; mtrec never uses them.

A "typical open-source implementation" of MMoE and PLE, written the way many public repositories
write them: one embedding call per feature, experts and gates in Python loops, sigmoid + BCELoss,
and a per-sample Dataset batched by torch's DataLoader (default collate of B dicts per batch); the
epoch loops of both sides of that comparison; and the every-row-through-every-tower reference of
scenario routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.data import Batch
from mtrec.data.schema import SparseFeature


def _loop_mlp(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


class _LoopInput(nn.Module):
    """Per-feature embedding calls in a loop, concatenated with the dense columns."""

    def __init__(self, features: Sequence[Any]) -> None:
        super().__init__()
        self.sparse = [f.name for f in features if isinstance(f, SparseFeature)]
        self.dense = [f for f in features if not isinstance(f, SparseFeature)]
        self.embeddings = nn.ModuleDict(
            {
                f.name: nn.Embedding(f.vocab_size, f.embed_dim)
                for f in features
                if f.name in self.sparse
            }
        )
        self.out_dim = sum(f.embed_dim for f in features if f.name in self.sparse) + sum(
            f.dim for f in self.dense
        )

    def forward(self, x: Batch) -> Tensor:
        parts = [self.embeddings[name](x[name].long()) for name in self.sparse]
        parts += [x[f.name].float().reshape(len(parts[0]), -1) for f in self.dense]
        return torch.cat(parts, dim=1)


class LoopMMoE(nn.Module):
    """MMoE as commonly written: experts, gates and towers each called in a Python loop."""

    def __init__(
        self,
        features: Sequence[Any],
        *,
        num_experts: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        num_tasks: int,
    ) -> None:
        super().__init__()
        self.input = _LoopInput(features)
        d = self.input.out_dim
        self.experts = nn.ModuleList(_loop_mlp(d, expert_hidden) for _ in range(num_experts))
        self.gates = nn.ModuleList(
            nn.Sequential(nn.Linear(d, num_experts), nn.Softmax(dim=1)) for _ in range(num_tasks)
        )
        self.towers = nn.ModuleList(
            nn.Sequential(
                _loop_mlp(expert_hidden[-1], tower_hidden),
                nn.Linear(([expert_hidden[-1], *tower_hidden])[-1], 1),
            )
            for _ in range(num_tasks)
        )

    def forward(self, x: Batch) -> Tensor:
        emb = self.input(x)
        expert_outs = torch.cat([expert(emb).unsqueeze(1) for expert in self.experts], dim=1)
        outs = []
        for gate, tower in zip(self.gates, self.towers):
            weights = gate(emb).unsqueeze(-1)  # (B, E, 1)
            outs.append(torch.sigmoid(tower(torch.sum(weights * expert_outs, dim=1))))
        return torch.cat(outs, dim=1)  # (B, T) probabilities


class LoopPLE(nn.Module):
    """PLE (CGC levels) as commonly written: task/shared experts and gates in Python loops."""

    def __init__(
        self,
        features: Sequence[Any],
        *,
        num_levels: int,
        num_specific: int,
        num_shared: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        num_tasks: int,
    ) -> None:
        super().__init__()
        self.input = _LoopInput(features)
        self.num_tasks, self.num_levels = num_tasks, num_levels
        d_in, d_out = self.input.out_dim, expert_hidden[-1]
        self.levels = nn.ModuleList()
        for level in range(num_levels):
            width = d_in if level == 0 else d_out
            last = level == num_levels - 1
            n_gates_in = num_specific + num_shared
            block = nn.ModuleDict(
                {
                    "specific": nn.ModuleList(
                        nn.ModuleList(_loop_mlp(width, expert_hidden) for _ in range(num_specific))
                        for _ in range(num_tasks)
                    ),
                    "shared": nn.ModuleList(
                        _loop_mlp(width, expert_hidden) for _ in range(num_shared)
                    ),
                    "gates": nn.ModuleList(
                        nn.Sequential(nn.Linear(width, n_gates_in), nn.Softmax(dim=1))
                        for _ in range(num_tasks)
                    ),
                }
            )
            if not last:
                total = num_tasks * num_specific + num_shared
                block["shared_gate"] = nn.Sequential(nn.Linear(width, total), nn.Softmax(dim=1))
            self.levels.append(block)
        self.towers = nn.ModuleList(
            nn.Sequential(
                _loop_mlp(d_out, tower_hidden), nn.Linear(([d_out, *tower_hidden])[-1], 1)
            )
            for _ in range(num_tasks)
        )

    def forward(self, x: Batch) -> Tensor:
        emb = self.input(x)
        inputs = [emb] * self.num_tasks + [emb]
        for level, block in enumerate(self.levels):
            specific = [[e(inputs[t]) for e in block["specific"][t]] for t in range(self.num_tasks)]
            shared = [e(inputs[-1]) for e in block["shared"]]
            outs = []
            for t in range(self.num_tasks):
                stacked = torch.stack(specific[t] + shared, dim=1)  # (B, E_t + E_s, D)
                weights = block["gates"][t](inputs[t]).unsqueeze(-1)
                outs.append(torch.sum(weights * stacked, dim=1))
            if level < self.num_levels - 1:
                every = torch.stack([o for group in specific for o in group] + shared, dim=1)
                weights = block["shared_gate"](inputs[-1]).unsqueeze(-1)
                outs.append(torch.sum(weights * every, dim=1))
            inputs = outs
        return torch.cat(
            [torch.sigmoid(tower(inputs[t])) for t, tower in enumerate(self.towers)], dim=1
        )


class PerSampleDataset(torch.utils.data.Dataset):
    """One dict of numpy scalars per ``__getitem__``; torch's DataLoader collates B of them."""

    def __init__(self, columns: Batch) -> None:
        self.columns = {k: v.numpy() for k, v in columns.items()}
        self.length = len(next(iter(self.columns.values())))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in self.columns.items()}


def naive_train_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer) -> int:
    """One epoch of the typical loop: BCELoss on sigmoid outputs, summed over tasks."""
    criterion = nn.BCELoss()
    rows = 0
    model.train()
    for batch in loader:
        probs = model(batch)
        labels = batch["labels"].float()
        loss = sum(criterion(probs[:, t], labels[:, t]) for t in range(probs.shape[1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rows += len(labels)
    return rows


def mtrec_train_epoch(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer) -> int:
    """One epoch the mtrec way: tensor-sliced batches, ``model.loss`` (a per-task vector, summed,
    or a scalar as SASRec's); returns the rows seen (every tensor of a batch has B rows)."""
    rows = 0
    model.train()
    for batch in batches:
        loss = model.loss(batch)
        loss = loss.sum() if loss.ndim else loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows += len(next(iter(batch.values())))
    return rows


def every_tower_forward(
    weights: Sequence[Tensor], biases: Sequence[Tensor], x: Tensor, scenario_ids: Tensor
) -> Tensor:
    """The anti-pattern of scenario routing: every row through every scenario's MLP, then pick.

    The per-scenario layers ``weights[i]`` (S, D_in, D_out) and ``biases[i]`` (S, D_out) (a
    ScenarioRouter's) are applied to all rows for all S scenarios (one einsum per layer,
    (B, S, D)), then each row keeps its own scenario's output: S× the work of routing.
    """
    num_scenarios = weights[0].shape[0]
    h = x.unsqueeze(1).expand(-1, num_scenarios, -1)  # (B, S, D_in)
    last = len(weights) - 1
    for i, (w, bias) in enumerate(zip(weights, biases)):
        h = torch.einsum("bsi,sio->bso", h, w) + bias  # (B, S, D_out): all towers
        h = torch.relu(h) if i < last else h
    rows = torch.arange(len(h), device=h.device)
    return h[rows, scenario_ids]  # (B, D_out): keep the row's own scenario
