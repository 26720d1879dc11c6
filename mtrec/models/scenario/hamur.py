"""HAMUR: per-scenario backbones plus an adapter whose weights a shared hyper-network writes.

Xiaopeng Li et al., "HAMUR: Hyper Adapter for Multi-Domain Recommendation", CIKM 2023. Pieces:

* a **backbone MLP per scenario** (rows grouped by scenario,
  :class:`mtrec.nn.scenario.ScenarioRouter`: a row runs through its own scenario's MLP only);
* a **hyper-network**, shared by all scenarios, that reads the instance (its embedding and its
  scenario embedding) and writes a k × k matrix H per row;
* an **adapter** after the backbone with instance-specific weights ``W = U H V`` (U, V shared,
  low rank k): down-projection → sigmoid → up-projection → normalisation → residual. No row's
  D × r matrix is ever formed: ``((h U) H) V`` costs B·k·(D + k + r) multiply-adds;
* a per-scenario output layer (routed like the backbone).

The adapter's normalisation uses BatchNorm statistics (running ones at eval time) where the
reference code normalises each batch with its own statistics; a one-row training batch,
which has no variance, uses the running ones (:class:`mtrec.nn.layers.SmallBatchNorm1d`).

Batch keys: the declared feature names, "scenario_ids" (B,) long, "labels" (B, T) float with
NaN = unlabelled. Ids outside 0..S-1 raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import MLP, FeatureEmbedding, SmallBatchNorm1d
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import ScenarioRouter, batch_scenario_ids


@dataclass(frozen=True)
class HAMURConfig:
    """HAMUR hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T: outputs of each scenario's output layer
    hidden: tuple[int, ...] = (64, 32)  # widths of each scenario's backbone MLP (last = D)
    adapter_dim: int = 16  # r: bottleneck width of the adapter
    rank: int = 8  # k: the hyper-network writes a k × k matrix per row
    hyper_hidden: tuple[int, ...] = (32,)  # hidden widths of the hyper-network
    scenario_embed_dim: int = 8  # width of the scenario embedding read by the hyper-network

    def __post_init__(self) -> None:
        for name in ("num_scenarios", "num_tasks", "adapter_dim", "rank", "scenario_embed_dim"):
            check_int(getattr(self, name), f"HAMURConfig.{name}", min=1)
        check_widths(self.hidden, "HAMURConfig.hidden", allow_empty=False)
        check_widths(self.hyper_hidden, "HAMURConfig.hyper_hidden")
        if not self.features or min(self.num_scenarios, self.num_tasks) < 1 or not self.hidden:
            raise ValueError(
                "HAMURConfig needs features, num_scenarios >= 1, num_tasks >= 1 and hidden"
            )
        if min(self.adapter_dim, self.rank) < 1:
            raise ValueError(
                f"adapter_dim and rank must be >= 1, got {self.adapter_dim}, {self.rank}"
            )

    @classmethod
    def tiny(cls, **overrides: object) -> HAMURConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), hidden=(8,), adapter_dim=4, rank=3, hyper_hidden=(4,))
        return cls(**{**base, **overrides})


class HAMUR(nn.Module):
    """Features → own-scenario backbone → hyper-adapter (residual) → own-scenario output layer."""

    def __init__(self, config: HAMURConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in, d, k, r = self.embedding.out_dim, config.hidden[-1], config.rank, config.adapter_dim
        s = config.num_scenarios
        self.scenario_embedding = nn.Embedding(s, config.scenario_embed_dim)
        self.backbone = ScenarioRouter(s, d_in, config.hidden[:-1], d)
        self.hyper = MLP(d_in + config.scenario_embed_dim, config.hyper_hidden, k * k)
        # Low-rank factors of the adapter's down (D → r) and up (r → D) projections: W = U H V.
        self.down_u, self.down_v = nn.Parameter(torch.empty(d, k)), nn.Parameter(torch.empty(k, r))
        self.up_u, self.up_v = nn.Parameter(torch.empty(r, k)), nn.Parameter(torch.empty(k, d))
        for p in (self.down_u, self.down_v, self.up_u, self.up_v):
            nn.init.xavier_uniform_(p)
        self.down_b, self.up_b = nn.Parameter(torch.zeros(r)), nn.Parameter(torch.zeros(d))
        self.norm = SmallBatchNorm1d(d)  # a one-row training batch uses running statistics
        self.out = ScenarioRouter(s, d, (), config.num_tasks)

    @staticmethod
    def hyper_linear(h: Tensor, u: Tensor, hyper: Tensor, v: Tensor) -> Tensor:
        """Row b of ``h`` (B, D_in) times its own weight U H_b V: ((h U) H_b) V → (B, D_out)."""
        return torch.bmm((h @ u).unsqueeze(1), hyper).squeeze(1) @ v  # (B, k) → (B, D_out)

    def adapter(self, h: Tensor, hyper: Tensor) -> Tensor:
        """h (B, D), hyper (B, k, k) → (B, D): h + norm(up(sigmoid(down(h))))."""
        a = torch.sigmoid(self.hyper_linear(h, self.down_u, hyper, self.down_v) + self.down_b)
        return h + self.norm(self.hyper_linear(a, self.up_u, hyper, self.up_v) + self.up_b)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        if "scenario_ids" not in batch:
            raise KeyError("HAMUR needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        x = self.embedding(batch)  # (B, D_in)
        k = self.config.rank
        hyper = self.hyper(torch.cat([x, self.scenario_embedding(ids)], -1)).view(-1, k, k)
        h = F.relu(self.backbone(x, ids))  # (B, D)
        return self.out(self.adapter(h, hyper), ids)  # (B, T)

    # Same as mtrec.models.scenario.scenario_moe.ScenarioMoE.loss / predict (one file per model).
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))
