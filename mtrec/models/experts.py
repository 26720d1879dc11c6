"""Blocks shared by the multi-task and multi-scenario models: batched experts and masked losses.

``BatchedMLP`` holds E independent MLPs as stacked (E, D_in, D_out) weights and runs all of them
with one ``einsum`` per layer — the experts of MMoE/PLE/scenario-MoE and the per-task towers.
``masked_bce`` is the multi-task loss every model here uses: rows whose label is NaN are left out
of that task's loss (and only that task's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchedMLP(nn.Module):
    """E parallel MLPs (Linear → ReLU per hidden layer, optional final linear) in one einsum each.

    Args:
        num: E, the number of independent MLPs (experts or towers).
        in_dim: D_in.
        hidden: hidden widths (ReLU after each).
        out_dim: width of a final plain linear layer (None: end after the last hidden layer).
        dropout: dropout after each hidden activation.

    ``forward`` takes (B, D_in) — the same input for every MLP — or (B, E, D_in) — one input per
    MLP — and returns (B, E, out_dim).
    """

    def __init__(
        self,
        num: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = None,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num < 1 or in_dim < 1:
            raise ValueError(f"BatchedMLP needs num >= 1 and in_dim >= 1, got {num}, {in_dim}")
        widths = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        if len(widths) < 2:
            raise ValueError("BatchedMLP needs at least one hidden layer or an out_dim")
        self.num, self.in_dim, self.out_dim = num, in_dim, widths[-1]
        self.num_hidden = len(hidden)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in pairwise(widths):
            bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init, per MLP
            self.weights.append(nn.Parameter(torch.empty(num, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num, d_out).uniform_(-bound, bound)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, D_in) or (B, E, D_in) → (B, E, out_dim)."""
        if x.shape[-1] != self.in_dim or x.ndim not in (2, 3):
            raise ValueError(
                f"BatchedMLP expects (B, {self.in_dim}) or (B, {self.num}, {self.in_dim}), "
                f"got {tuple(x.shape)}"
            )
        batch, num = x.shape[0], self.num
        # Work in the (E, B, D) layout, where each layer is one baddbmm (bias fused in) and the
        # next layer reads the previous output without a copy; return a (B, E, D) view.
        if x.ndim == 2:  # one shared input: a single (B, D_in) @ (D_in, E·D_out) matmul
            w, b = self.weights[0], self.biases[0]
            h = torch.addmm(b.reshape(1, -1), x, w.transpose(0, 1).reshape(x.shape[1], -1))
            h = h.view(batch, num, -1).transpose(0, 1)  # (E, B, D_out)
            start = 1
        else:
            h, start = x.transpose(0, 1), 0  # (E, B, D_in)
        for i in range(start, len(self.weights)):
            if i > 0 and i - 1 < self.num_hidden:
                h = self.dropout(F.relu(h))
            h = torch.baddbmm(self.biases[i].unsqueeze(1), h, self.weights[i])  # (E, B, D_out)
        if len(self.weights) - 1 < self.num_hidden:
            h = self.dropout(F.relu(h))
        return h.transpose(0, 1)  # (B, E, D_out)

    def member(self, index: int) -> nn.Sequential:
        """MLP number ``index`` as a plain ``nn.Sequential`` of ``nn.Linear`` (shares no memory)."""
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            linear = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                linear.weight.copy_(w[index].T)
                linear.bias.copy_(b[index])
            layers.append(linear)
            if i < self.num_hidden:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)


def check_labels(batch: dict[str, Tensor], num_tasks: int) -> Tensor:
    """batch["labels"] as float (B, T); raise a teaching error when absent or mis-shaped."""
    if "labels" not in batch:
        raise KeyError(f"batch needs 'labels' of shape (B, {num_tasks}); it has {sorted(batch)}")
    labels = batch["labels"].float()
    if labels.ndim == 1 and num_tasks == 1:
        labels = labels.unsqueeze(1)
    if labels.ndim != 2 or labels.shape[1] != num_tasks:
        raise ValueError(
            f"labels must be (B, {num_tasks}) (one column per task, NaN = unlabelled), got "
            f"{tuple(labels.shape)}; select the task columns in the batch"
        )
    return labels


def masked_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-task binary cross-entropy over the labelled rows: (B, T) logits, (B, T) labels → (T,).

    A NaN label removes that row from that task's loss only; a task with no labelled row in the
    batch contributes 0 (still attached to the graph, so backward works).
    """
    mask = ~torch.isnan(labels)  # (B, T)
    safe = torch.where(mask, labels, torch.zeros_like(labels))
    per_row = F.binary_cross_entropy_with_logits(logits.float(), safe, reduction="none")
    per_row = per_row * mask
    return per_row.sum(dim=0) / mask.sum(dim=0).clamp_min(1)  # (T,)


def tiny_features() -> tuple:
    """A small declared schema for tests and docs: two sparse ids and two dense values."""
    from mtrec.data.schema import DenseFeature, SparseFeature

    return (SparseFeature("user", 20, 4), SparseFeature("item", 30, 4), DenseFeature("dense", 2))


def random_batch(
    features: Sequence,
    batch_size: int,
    *,
    num_tasks: int = 2,
    num_scenarios: int = 1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """A random batch for ``features`` (ids within vocab), 0/1 "labels" and "scenario_ids"."""
    from mtrec.data.schema import DenseFeature, SparseFeature

    g = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {}
    for f in features:
        if isinstance(f, SparseFeature):
            batch[f.name] = torch.randint(1, f.vocab_size, (batch_size,), generator=g)
        elif isinstance(f, DenseFeature):
            batch[f.name] = torch.randn(batch_size, f.dim, generator=g)
    batch["labels"] = (torch.rand(batch_size, num_tasks, generator=g) < 0.4).float()
    batch["scenario_ids"] = torch.randint(0, num_scenarios, (batch_size,), generator=g)
    return batch
