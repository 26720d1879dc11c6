"""SAR-Net: scenario-specific feature transforms, shared + scenario-specific experts, a bias net.

Qijie Shen et al., "SAR-Net: A Scenario-Aware Ranking Network for Personalized Fair
Recommendation in Hundreds of Travel Scenarios", CIKM 2021. Pieces kept here:

* a **scenario-specific transformation** of the input, ``x ⊙ w_s + b_s`` (one scale and shift per
  scenario, gathered per row);
* **multi-expert network**: E shared experts for every row plus K experts owned by the row's
  scenario (routed: rows grouped by scenario, :class:`mtrec.nn.scenario.ScenarioRouter`, so a
  row never runs through another scenario's experts), mixed per task by a softmax gate on the
  transformed input and the scenario embedding;
* a **debias net**: a logit offset per scenario and task from the scenario embedding, so the
  experts model preference and the offset absorbs how often each scenario converts.

The paper's cross-scenario attention over user behaviour sequences is left out: the features
here have no sequences.

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
from mtrec.nn.layers import BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import ScenarioRouter, batch_scenario_ids


@dataclass(frozen=True)
class SARNetConfig:
    """SAR-Net hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T
    num_shared_experts: int = 4  # E: experts every row runs through
    num_specific_experts: int = 1  # K: experts owned by each scenario (its rows only)
    expert_dim: int = 32  # D: width of each expert (one linear layer + ReLU)
    tower_hidden: tuple[int, ...] = (16,)  # hidden widths of each task tower
    scenario_embed_dim: int = 8  # width of the scenario embedding (gate and debias net)

    def __post_init__(self) -> None:
        for name in (
            "num_scenarios",
            "num_tasks",
            "expert_dim",
            "scenario_embed_dim",
            "num_specific_experts",
        ):
            check_int(getattr(self, name), f"SARNetConfig.{name}", min=1)
        check_int(self.num_shared_experts, "SARNetConfig.num_shared_experts", min=0)
        check_widths(self.tower_hidden, "SARNetConfig.tower_hidden")
        if not self.features or min(self.num_scenarios, self.num_tasks, self.expert_dim) < 1:
            raise ValueError(
                "SARNetConfig needs features and num_scenarios, num_tasks, expert_dim >= 1"
            )
        if self.num_shared_experts < 0 or self.num_specific_experts < 1:
            raise ValueError(
                "SARNetConfig needs num_shared_experts >= 0, num_specific_experts >= 1"
            )

    @classmethod
    def tiny(cls, **overrides: object) -> SARNetConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), num_shared_experts=2, expert_dim=4, tower_hidden=(4,))
        return cls(**{**base, **overrides})


class SARNet(nn.Module):
    """x ⊙ w_s + b_s → [E shared ⊕ K own-scenario experts] → per-task gates → towers + bias."""

    def __init__(self, config: SARNetConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in, d_s, d = self.embedding.out_dim, config.scenario_embed_dim, config.expert_dim
        s, t, k = config.num_scenarios, config.num_tasks, config.num_specific_experts
        self.scale = nn.Parameter(torch.ones(s, d_in))  # w_s, starts as the identity
        self.shift = nn.Parameter(torch.zeros(s, d_in))  # b_s
        self.scenario_embedding = nn.Embedding(s, d_s)
        if config.num_shared_experts:
            self.shared = BatchedMLP(config.num_shared_experts, d_in, (d,))
        self.specific = ScenarioRouter(s, d_in, (), k * d)  # K experts per scenario, side by side
        self.num_gated = config.num_shared_experts + k
        self.gate = nn.Linear(d_in + d_s, t * self.num_gated)
        self.towers = BatchedMLP(t, d, config.tower_hidden, 1)
        self.debias = nn.Linear(d_s, t)

    def transform(self, x: Tensor, ids: Tensor) -> Tensor:
        """Scenario-specific transformation: x (B, D_in) ⊙ w_s + b_s → (B, D_in)."""
        return x * self.scale.index_select(0, ids) + self.shift.index_select(0, ids)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        if "scenario_ids" not in batch:
            raise KeyError("SARNet needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        x = self.transform(self.embedding(batch), ids)  # (B, D_in)
        s = self.scenario_embedding(ids)  # (B, D_s)
        n, t = len(ids), self.config.num_tasks
        k, d = self.config.num_specific_experts, self.config.expert_dim
        own = F.relu(self.specific(x, ids)).view(n, k, d)  # (B, K, D)
        experts = own if not self.config.num_shared_experts else torch.cat([self.shared(x), own], 1)
        gates = torch.softmax(self.gate(torch.cat([x, s], -1)).view(n, t, self.num_gated), -1)
        mixed = torch.einsum("bte,bed->btd", gates, experts)  # (B, T, D), experts (B, E + K, D)
        return self.towers(mixed).squeeze(-1) + self.debias(s)  # (B, T)

    # Same as mtrec.models.scenario.scenario_moe.ScenarioMoE.loss / predict (one file per model).
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))
