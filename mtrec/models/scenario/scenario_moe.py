"""Scenario-gated mixture of experts: the scenario decides how shared experts are mixed per task.

In the spirit of HMoE (Li, Ni, Zhao, Wu & Jiang, "Improving Multi-Scenario Learning to Rank in
E-commerce by Exploiting Task Relationships in the Label Space", CIKM 2020) and PEPNet (Chang et
al., "PEPNet: Parameter and Embedding Personalized Network for Infusing with Personalized Prior
Information", KDD 2023): a shared pool of E experts; per task a softmax gate whose input is the
scenario embedding next to the features; optionally PEPNet's EPNet, which rescales the input
embedding by 2·sigmoid(MLP(scenario embedding ⊕ stop-grad features)) per scenario.

Batch keys: the declared feature names, "scenario_ids" (B,) long, "labels" (B, T) float with
NaN = unlabelled. Ids outside 0..S-1 raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_int, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import MLP, BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import batch_scenario_ids


@dataclass(frozen=True)
class ScenarioMoEConfig:
    """Scenario-gated MoE hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T
    num_experts: int = 4  # E, shared by every scenario and task
    expert_hidden: tuple[int, ...] = (64, 32)  # widths of each expert (last = expert output)
    tower_hidden: tuple[int, ...] = (32,)  # hidden widths of each task tower
    scenario_embed_dim: int = 8  # width of the scenario embedding fed to the gates
    epnet: bool = True  # scale the input embedding per scenario (PEPNet's EPNet)

    def __post_init__(self) -> None:
        for name in ("num_scenarios", "num_tasks", "num_experts", "scenario_embed_dim"):
            check_int(getattr(self, name), f"ScenarioMoEConfig.{name}", min=1)
        check_widths(self.expert_hidden, "ScenarioMoEConfig.expert_hidden", allow_empty=False)
        check_widths(self.tower_hidden, "ScenarioMoEConfig.tower_hidden")
        if not self.features or min(self.num_scenarios, self.num_tasks, self.num_experts) < 1:
            raise ValueError(
                "ScenarioMoEConfig needs features and num_scenarios, num_tasks, num_experts >= 1"
            )
        if not self.expert_hidden:
            raise ValueError("expert_hidden needs at least one width")

    @classmethod
    def tiny(cls, **overrides: object) -> ScenarioMoEConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), num_experts=3, expert_hidden=(8,), tower_hidden=(4,))
        return cls(**{**base, **overrides})


class ScenarioMoE(nn.Module):
    """Features (scaled per scenario) → E experts → per-task gates on [scenario ⊕ features]."""

    def __init__(self, config: ScenarioMoEConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in, d_s = self.embedding.out_dim, config.scenario_embed_dim
        self.scenario_embedding = nn.Embedding(config.num_scenarios, d_s)
        if config.epnet:
            self.epnet = MLP(d_in + d_s, (d_in,), d_in)
        self.experts = BatchedMLP(config.num_experts, d_in, config.expert_hidden)
        self.gate = nn.Linear(d_in + d_s, config.num_tasks * config.num_experts)
        self.towers = BatchedMLP(config.num_tasks, config.expert_hidden[-1], config.tower_hidden, 1)

    def _inputs(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        if "scenario_ids" not in batch:
            raise KeyError("ScenarioMoE needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        x = self.embedding(batch)  # (B, D_in)
        s = self.scenario_embedding(ids)  # (B, D_s)
        if self.config.epnet:
            x = x * 2 * torch.sigmoid(self.epnet(torch.cat([x.detach(), s], dim=-1)))
        return x, s

    def _gates(self, x: Tensor, s: Tensor) -> Tensor:
        logits = self.gate(torch.cat([x, s], dim=-1))  # (B, T·E)
        return torch.softmax(logits.view(-1, self.config.num_tasks, self.config.num_experts), -1)

    def gates(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T, E) gate weights, e.g. averaged per scenario for a heatmap."""
        return self._gates(*self._inputs(batch))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" → (B, T) logits."""
        x, s = self._inputs(batch)
        experts = self.experts(x)  # (B, E, D)
        mixed = torch.einsum("bte,bed->btd", self._gates(x, s), experts)  # (B, T, D)
        return self.towers(mixed).squeeze(-1)  # (B, T)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The experts' last layer (for GradNorm)."""
        return [self.experts.weights[-1], self.experts.biases[-1]]
