"""A small MLP (or ID-only) click-like model, the student of knowledge distillation.

The student is deliberately plain: declared features → one embedding per feature → a narrow MLP
→ one logit per task. With only ``user_id`` and ``item_id`` declared it is an ID-only model (a
neural matrix-factorisation-like scorer). It is the "small, fast" model of Hinton, Vinyals & Dean,
"Distilling the Knowledge in a Neural Network" (NIPS Deep Learning Workshop, 2015), which
:mod:`mtrec.train.distill` trains from a large teacher.

Batch keys: every declared feature name, ``"labels"`` (B, T) floats (NaN = unlabelled, left out of
that task's loss), optionally ``"scenario_ids"`` (B,) (unused by the model, used by evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_probability, check_widths
from mtrec.data.batching import Batch
from mtrec.data.schema import Feature, SparseFeature
from mtrec.nn.layers import MLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce


@dataclass(frozen=True)
class StudentConfig:
    """Configuration of :class:`StudentMLP`."""

    features: tuple[Feature, ...]  # declared input features (ID-only: user_id and item_id)
    task_names: tuple[str, ...]  # one logit per task, in this order (T)
    hidden: tuple[int, ...] = (32,)  # widths of the hidden layers; () = a linear model
    dropout: float = 0.0  # dropout after each hidden activation

    def __post_init__(self) -> None:
        check_widths(self.hidden, "StudentConfig.hidden")
        check_probability(self.dropout, "StudentConfig.dropout")
        if not self.features:
            raise ValueError("StudentConfig.features is empty; declare at least one feature")
        if not self.task_names:
            raise ValueError("StudentConfig.task_names is empty; name at least one task")
        if len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"task names must be unique, got {self.task_names}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def num_tasks(self) -> int:
        """T, the number of tasks."""
        return len(self.task_names)

    @classmethod
    def tiny(cls) -> StudentConfig:
        """An ID-only two-task student for tests: 50 users, 40 items, width 8."""
        return cls(
            features=(SparseFeature("user_id", 50, 8), SparseFeature("item_id", 40, 8)),
            task_names=("watch", "like"),
            hidden=(8,),
        )


class StudentMLP(nn.Module):
    """Embeddings → MLP → (B, T) logits; ``hidden`` (B, D) is exposed for feature distillation."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.task_names = config.task_names
        self.embedding = FeatureEmbedding(config.features)
        self.mlp = MLP(self.embedding.out_dim, config.hidden, dropout=config.dropout)
        self.head = nn.Linear(self.mlp.out_dim, config.num_tasks)
        self.hidden_dim = self.mlp.out_dim

    def hidden(self, batch: Batch) -> Tensor:
        """Features → the last hidden layer, (B, D) with D = ``hidden_dim``."""
        return self.mlp(self.embedding(batch))

    def forward(self, batch: Batch) -> Tensor:
        """Features → logits (B, T)."""
        return self.head(self.hidden(batch))

    def loss(self, batch: Batch) -> Tensor:
        """Per-task mean BCE over labelled rows, (T,); ``batch["labels"]`` is (B, T)."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: Batch) -> Tensor:
        """Probabilities (B, T)."""
        return torch.sigmoid(self(batch))
