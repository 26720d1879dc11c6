"""ESMM: entire-space multi-task model, pCTCVR = pCTR × pCVR learned over all impressions.

Ma, Zhao, Wang, Hu, Zhu, He & Gai, "Entire Space Multi-Task Model: An Effective Approach for
Estimating Post-Click Conversion Rate", SIGIR 2018. The CVR tower is never trained on clicked rows
alone (sample selection bias); it is supervised only through pCTCVR on every impression, and the
two towers share the embedding tables (the fix for data sparsity).

Batch keys: the declared feature names and "labels" (B, 2) float: column 0 the click (e.g.
watch), column 1 click-and-convert over the impression (e.g. like, with like ⊆ watch). NaN = left
out of that task's loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels


@dataclass(frozen=True)
class ESMMConfig:
    """ESMM hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features (shared embeddings of both towers)
    tower_hidden: tuple[int, ...] = (64, 32)  # hidden widths of the CTR and the CVR tower

    def __post_init__(self) -> None:
        check_widths(self.tower_hidden, "ESMMConfig.tower_hidden", allow_empty=False)
        if not self.features or not self.tower_hidden:
            raise ValueError("ESMMConfig needs features and at least one tower_hidden width")

    @property
    def num_tasks(self) -> int:
        """T = 2: (CTR, CTCVR)."""
        return 2

    @classmethod
    def tiny(cls, **overrides: object) -> ESMMConfig:
        """A small config for tests."""
        return cls(**{**dict(features=tiny_features(), tower_hidden=(8,)), **overrides})


def _log1mexp(log_p: Tensor) -> Tensor:
    """log(1 − p) from log p, stable near p → 1 (Mächler's log1mexp)."""
    return torch.where(
        log_p > -0.6931, torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p))
    )


class ESMM(nn.Module):
    """Shared embeddings → CTR tower and CVR tower (batched, (B, 2) logits)."""

    def __init__(self, config: ESMMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        self.towers = BatchedMLP(2, self.embedding.out_dim, config.tower_hidden, 1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys → (B, 2) logits of pCTR and pCVR (CVR is conditional on a click)."""
        return self.towers(self.embedding(batch)).squeeze(-1)  # (B, 2)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(2,): BCE(pCTR, click) and BCE(pCTCVR, click&convert), both over all impressions."""
        labels = check_labels(batch, 2)
        logits = self(batch).float()
        log_ctr = F.logsigmoid(logits)  # (B, 2): log pCTR, log pCVR
        log_p = torch.stack([log_ctr[:, 0], log_ctr.sum(dim=1)], dim=1)  # log pCTR, log pCTCVR
        mask = ~torch.isnan(labels)
        y = torch.where(mask, labels, torch.zeros_like(labels))
        nll = -(y * log_p + (1 - y) * _log1mexp(log_p.clamp_max(-1e-7)))  # (B, 2)
        return (nll * mask).sum(dim=0) / mask.sum(dim=0).clamp_min(1)

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, 2): pCTR and pCTCVR = pCTR · pCVR (aligned with the label columns)."""
        p = torch.sigmoid(self(batch))
        return torch.stack([p[:, 0], p[:, 0] * p[:, 1]], dim=1)

    @torch.no_grad()
    def predict_cvr(self, batch: dict[str, Tensor]) -> Tensor:
        """(B,) pCVR = P(convert | click)."""
        return torch.sigmoid(self(batch)[:, 1])

    def shared_parameters(self) -> list[nn.Parameter]:
        """The shared embedding tables (for GradNorm)."""
        return list(self.embedding.parameters())
