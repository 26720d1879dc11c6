"""PEPNet: the scenario and the person rescale the input embedding and every tower layer.

Jianxin Chang et al., "PEPNet: Parameter and Embedding Personalized Network
for Infusing with Personalized Prior Information", KDD 2023. Two gated parts built from one
unit, the Gate NU (``γ · sigmoid(MLP(·))``, values in (0, γ), centred on 1 at γ = 2):

* **EPNet** (embedding personalisation): the input embedding E is scaled element-wise by
  ``GateNU([scenario embedding ⊕ stop-grad(E)])``, so each scenario sees its own view of the
  shared features;
* **PPNet** (parameter personalisation): before every layer of every task tower the hidden
  vector is scaled by its own ``GateNU([personal prior ⊕ stop-grad(EPNet output)])``. The paper's
  priors are user / item / author id embeddings; here the prior is the scenario embedding and
  the (stop-gradient) EPNet output, which already carries the user and item embeddings.

No scenario owns a tower: scenario information enters through the gates, computed per row (one
matmul per gate for the whole batch), so nothing runs once per scenario.

Batch keys: the declared feature names, "scenario_ids" (B,) long, "labels" (B, T) float with
NaN = unlabelled. Ids outside 0..S-1 raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_float, check_int, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import MLP, BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import batch_scenario_ids


@dataclass(frozen=True)
class PEPNetConfig:
    """PEPNet hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T: one PPNet-gated tower per task
    tower_hidden: tuple[int, ...] = (64, 32)  # hidden widths of each task tower
    gate_hidden: int = 32  # hidden width of every Gate NU
    gamma: float = 2.0  # Gate NU range (0, γ); 2 makes an untrained gate (≈ 0.5 · γ) the identity
    scenario_embed_dim: int = 8  # width of the scenario embedding (the domain-side prior)

    def __post_init__(self) -> None:
        for name in ("num_scenarios", "num_tasks", "gate_hidden", "scenario_embed_dim"):
            check_int(getattr(self, name), f"PEPNetConfig.{name}", min=1)
        check_widths(self.tower_hidden, "PEPNetConfig.tower_hidden")
        check_float(self.gamma, "PEPNetConfig.gamma")
        if not self.features or min(self.num_scenarios, self.num_tasks, self.gate_hidden) < 1:
            raise ValueError(
                "PEPNetConfig needs features and num_scenarios, num_tasks, gate_hidden >= 1"
            )
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0 (gate range (0, gamma)), got {self.gamma}")

    @classmethod
    def tiny(cls, **overrides: object) -> PEPNetConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), tower_hidden=(8,), gate_hidden=4)
        return cls(**{**base, **overrides})


class PEPNet(nn.Module):
    """Features → EPNet scaling → T towers whose every layer input is scaled by PPNet gates."""

    def __init__(self, config: PEPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in, d_s, t = self.embedding.out_dim, config.scenario_embed_dim, config.num_tasks
        self.scenario_embedding = nn.Embedding(config.num_scenarios, d_s)
        self.epnet = MLP(d_in + d_s, (config.gate_hidden,), d_in)
        self.towers = BatchedMLP(t, d_in, config.tower_hidden, 1)  # parameters only
        widths = [d_in, *config.tower_hidden]  # input width of every tower layer
        self.ppnet = nn.ModuleList(MLP(d_in + d_s, (config.gate_hidden,), t * w) for w in widths)

    def gate(self, net: nn.Module, x: Tensor) -> Tensor:
        """A Gate NU: γ · sigmoid(net(x)), values in (0, γ)."""
        return self.config.gamma * torch.sigmoid(net(x))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        if "scenario_ids" not in batch:
            raise KeyError("PEPNet needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        x = self.embedding(batch)  # (B, D_in)
        s = self.scenario_embedding(ids)  # (B, D_s)
        x = x * self.gate(self.epnet, torch.cat([s, x.detach()], dim=-1))  # EPNet, (B, D_in)
        prior = torch.cat([s, x.detach()], dim=-1)  # PPNet input, (B, D_s + D_in)
        t, last = self.config.num_tasks, len(self.towers.weights) - 1
        h = x.unsqueeze(0).expand(t, -1, -1)  # (T, B, D_in): every tower reads x
        for i, (w, b, net) in enumerate(zip(self.towers.weights, self.towers.biases, self.ppnet)):
            delta = (
                self.gate(net, prior).view(len(x), t, h.shape[-1]).transpose(0, 1)
            )  # (T, B, D_i)
            h = torch.baddbmm(b.unsqueeze(1), h * delta, w)  # (T, B, D_{i+1})
            if i < last:
                h = F.relu(h)
        return h.squeeze(-1).transpose(0, 1)  # (T, B, 1) → (B, T)

    # Same as mtrec.models.scenario.scenario_moe.ScenarioMoE.loss / predict (one file per model).
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))
