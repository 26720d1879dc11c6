"""MMoE: a shared pool of experts mixed by one softmax gate per task.

Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018. All E experts run in one einsum per layer
(:class:`mtrec.nn.layers.BatchedMLP`), all T gates in one linear layer, all towers batched.

Batch keys: the declared feature names, "labels" (B, T) float with NaN = unlabelled (left out of
that task's loss only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_int, check_probability, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce


@dataclass(frozen=True)
class MMoEConfig:
    """MMoE hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_tasks: int = 2  # T
    num_experts: int = 8  # E, shared by all tasks
    expert_hidden: tuple[int, ...] = (64, 32)  # widths of each expert MLP (last = expert output)
    tower_hidden: tuple[int, ...] = (32,)  # hidden widths of each task tower
    dropout: float = 0.0  # dropout inside the experts

    def __post_init__(self) -> None:
        for name in ("num_tasks", "num_experts"):
            check_int(getattr(self, name), f"MMoEConfig.{name}", min=1)
        check_widths(self.expert_hidden, "MMoEConfig.expert_hidden", allow_empty=False)
        check_widths(self.tower_hidden, "MMoEConfig.tower_hidden")
        check_probability(self.dropout, "MMoEConfig.dropout")
        if not self.features or self.num_tasks < 1 or self.num_experts < 1:
            raise ValueError(
                f"MMoEConfig needs features, num_tasks >= 1 and num_experts >= 1, got "
                f"{len(self.features)} features, {self.num_tasks} tasks, {self.num_experts} experts"
            )
        if not self.expert_hidden:
            raise ValueError("expert_hidden needs at least one width (the expert output width)")

    @classmethod
    def tiny(cls, **overrides: object) -> MMoEConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), num_experts=3, expert_hidden=(8,), tower_hidden=(4,))
        return cls(**{**base, **overrides})


class MMoE(nn.Module):
    """Features → E experts; per task t: softmax gate g_t(x) mixes experts → tower_t → logit."""

    def __init__(self, config: MMoEConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in = self.embedding.out_dim
        self.experts = BatchedMLP(
            config.num_experts, d_in, config.expert_hidden, dropout=config.dropout
        )
        self.gate = nn.Linear(d_in, config.num_tasks * config.num_experts)  # all T gates at once
        self.towers = BatchedMLP(config.num_tasks, config.expert_hidden[-1], config.tower_hidden, 1)

    def gates(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T, E) gate weights (each row sums to 1), e.g. for expert-usage heatmaps."""
        return self._gates(self.embedding(batch))

    def _gates(self, x: Tensor) -> Tensor:
        logits = self.gate(x).view(-1, self.config.num_tasks, self.config.num_experts)  # (B, T, E)
        return torch.softmax(logits, dim=-1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys → (B, T) logits."""
        x = self.embedding(batch)  # (B, D_in)
        experts = self.experts(x)  # (B, E, D)
        mixed = torch.einsum("bte,bed->btd", self._gates(x), experts)  # (B, T, D)
        return self.towers(mixed).squeeze(-1)  # (B, T)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The experts' last layer (shared by all tasks; for GradNorm)."""
        return [self.experts.weights[-1], self.experts.biases[-1]]
