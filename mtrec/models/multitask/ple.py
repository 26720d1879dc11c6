"""PLE: progressive layered extraction with task-specific and shared experts (CGC levels).

Tang, Liu, Zhao & Gong, "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL)
Model for Personalized Recommendations", RecSys 2020. At each level every task has its own
experts plus a pool of shared experts; task t's gate mixes its own and the shared experts, and
(below the top level) a shared gate mixes all experts into the next level's shared input.

Vectorised: all T·K_s + K_sh experts of a level run in one einsum (each on its own group's input,
gathered by index), all gates in another, with a (G, E) mask instead of ragged lists.

Batch keys: the declared feature names, "labels" (B, T) float with NaN = unlabelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_int, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce


@dataclass(frozen=True)
class PLEConfig:
    """PLE hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_tasks: int = 2  # T
    num_levels: int = 2  # stacked CGC levels
    num_specific: int = 2  # K_s: experts owned by each task, per level
    num_shared: int = 2  # K_sh: shared experts per level
    expert_hidden: tuple[int, ...] = (64, 32)  # widths of each expert MLP (last = expert output)
    tower_hidden: tuple[int, ...] = (32,)  # hidden widths of each task tower

    def __post_init__(self) -> None:
        for name in ("num_tasks", "num_levels"):
            check_int(getattr(self, name), f"PLEConfig.{name}", min=1)
        for name in ("num_specific", "num_shared"):
            check_int(getattr(self, name), f"PLEConfig.{name}", min=0)
        check_widths(self.expert_hidden, "PLEConfig.expert_hidden", allow_empty=False)
        check_widths(self.tower_hidden, "PLEConfig.tower_hidden")
        if not self.features or self.num_tasks < 1 or self.num_levels < 1:
            raise ValueError("PLEConfig needs features, num_tasks >= 1 and num_levels >= 1")
        if self.num_specific < 0 or self.num_shared < 0 or self.num_specific + self.num_shared < 1:
            raise ValueError(
                f"each task needs at least one expert: num_specific={self.num_specific}, "
                f"num_shared={self.num_shared}"
            )
        if not self.expert_hidden:
            raise ValueError("expert_hidden needs at least one width")

    @property
    def experts_per_level(self) -> int:
        """E = T·K_s + K_sh."""
        return self.num_tasks * self.num_specific + self.num_shared

    @classmethod
    def tiny(cls, **overrides: object) -> PLEConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), num_specific=1, num_shared=1, expert_hidden=(8,),
                    tower_hidden=(4,))  # fmt: skip
        return cls(**{**base, **overrides})


class PLE(nn.Module):
    """Features → L CGC levels → T towers → (B, T) logits."""

    def __init__(self, config: PLEConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        t, ks, e = config.num_tasks, config.num_specific, config.experts_per_level
        groups = torch.arange(t).repeat_interleave(ks)  # expert → owning task ...
        groups = torch.cat([groups, torch.full((config.num_shared,), t)])  # ... or shared (= T)
        allowed = torch.zeros(t + 1, e, dtype=torch.bool)  # (G, E): which experts gate g mixes
        allowed[torch.arange(t).repeat_interleave(ks), torch.arange(t * ks)] = True
        allowed[:, t * ks :] = True  # every gate sees the shared experts
        allowed[t] = True  # the shared gate sees all experts
        self.register_buffer("expert_group", groups, persistent=False)
        self.register_buffer("allowed", allowed, persistent=False)
        d_out = config.expert_hidden[-1]
        self.experts = nn.ModuleList()
        self.gate_layers = nn.ModuleList()
        for level in range(config.num_levels):
            d_in = self.embedding.out_dim if level == 0 else d_out
            num_gates = t if level == config.num_levels - 1 else t + 1  # top level: no shared gate
            self.experts.append(BatchedMLP(e, d_in, config.expert_hidden))
            self.gate_layers.append(BatchedMLP(num_gates, d_in, (), e))
        self.towers = BatchedMLP(t, d_out, config.tower_hidden, 1)

    def _levels(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D_in) → top-level task inputs (B, T, D) and top-level gates (B, T, E)."""
        # Inputs are kept group-major, (G, B, D), so picking each expert's input is a contiguous
        # index_select and BatchedMLP (which works in (E, B, D)) needs no copy.
        gates, inputs = x.new_empty(0), x.new_empty(0)
        for level, (experts, gate_layer) in enumerate(zip(self.experts, self.gate_layers)):
            num_gates = gate_layer.num
            if level == 0:  # every expert and gate reads the same (B, D_in) input
                outs, logits = experts(x), gate_layer(x)  # (B, E, D), (B, G', E)
            else:
                expert_in = inputs.index_select(0, self.expert_group)  # (E, B, D)
                outs = experts(expert_in.transpose(0, 1))  # (B, E, D)
                logits = gate_layer(inputs[:num_gates].transpose(0, 1))  # (B, G', E)
            logits = logits.masked_fill(~self.allowed[:num_gates], float("-inf"))
            gates = torch.softmax(logits, dim=-1)  # (B, G', E)
            inputs = torch.einsum("bge,bed->gbd", gates, outs)  # (G', B, D)
        inputs = inputs.transpose(0, 1)  # (B, T, D)
        return inputs, gates

    def gates(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T, E) top-level task gates (zero on other tasks' experts)."""
        return self._levels(self.embedding(batch))[1]

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys → (B, T) logits."""
        inputs, _ = self._levels(self.embedding(batch))  # (B, T, D)
        return self.towers(inputs).squeeze(-1)  # (B, T)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The top level's expert output layer (for GradNorm)."""
        top = self.experts[-1]
        return [top.weights[-1], top.biases[-1]]
