"""AdaSparse: one shared network, pruned neuron by neuron differently in each scenario.

Xuanhua Yang et al., "AdaSparse: Learning Adaptively Sparse Structures for Multi-Domain
Click-Through Rate Prediction", CIKM 2022. Before the input
and after every hidden layer a small **pruner** reads the domain (scenario) embedding next to
the layer's neurons and outputs a weighting factor π per neuron:

* "scaling": π = β · sigmoid(α z) (soft re-weighting, range (0, β));
* "fusion": the same, with every π below ε set to exactly 0 (neurons pruned for that row; the
  paper's default, and the one that makes the structure sparse);
* "binary": π = 1[sigmoid(α z) > 0.5] with a straight-through gradient.

The factors are computed per row by one matmul per layer for the whole batch (no scenario owns a
tower, none runs once per scenario). Simplifications, stated: α is a fixed temperature (the
paper anneals it during training), and the paper's optional sparsity regulariser is left out;
:meth:`AdaSparse.sparsity` reports the share of pruned neurons instead.

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
from mtrec.nn.layers import FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import batch_scenario_ids

FORMS = ("scaling", "fusion", "binary")


@dataclass(frozen=True)
class AdaSparseConfig:
    """AdaSparse hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T: logits of the output layer
    hidden: tuple[int, ...] = (64, 32)  # widths of the shared, pruned MLP
    scenario_embed_dim: int = 8  # width of the domain embedding read by every pruner
    form: str = "fusion"  # weighting factor: "scaling", "fusion" or "binary"
    alpha: float = 1.0  # temperature α inside sigmoid(α z)
    beta: float = 2.0  # range of the scaling / fusion factors (0, β)
    epsilon: float = 1e-2  # fusion: factors below ε are set to 0 (pruned)

    def __post_init__(self) -> None:
        for name in ("num_scenarios", "num_tasks", "scenario_embed_dim"):
            check_int(getattr(self, name), f"AdaSparseConfig.{name}", min=1)
        check_widths(self.hidden, "AdaSparseConfig.hidden", allow_empty=False)
        check_float(self.alpha, "AdaSparseConfig.alpha")
        check_float(self.beta, "AdaSparseConfig.beta")
        check_float(self.epsilon, "AdaSparseConfig.epsilon")
        if not self.features or min(self.num_scenarios, self.num_tasks) < 1 or not self.hidden:
            raise ValueError(
                "AdaSparseConfig needs features, num_scenarios >= 1, num_tasks >= 1, hidden"
            )
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        if min(self.alpha, self.beta) <= 0 or not 0 <= self.epsilon < self.beta:
            raise ValueError("AdaSparseConfig needs alpha, beta > 0 and 0 <= epsilon < beta")

    @classmethod
    def tiny(cls, **overrides: object) -> AdaSparseConfig:
        """A small config for tests."""
        return cls(**{**dict(features=tiny_features(), hidden=(8,)), **overrides})


class AdaSparse(nn.Module):
    """Features → (prune → linear → ReLU)* → prune → linear → (B, T) logits."""

    def __init__(self, config: AdaSparseConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_s = config.scenario_embed_dim
        self.scenario_embedding = nn.Embedding(config.num_scenarios, d_s)
        widths = [self.embedding.out_dim, *config.hidden]
        self.pruners = nn.ModuleList(nn.Linear(d_s + w, w) for w in widths)
        self.layers = nn.ModuleList(
            nn.Linear(w + (d_s if i == 0 else 0), v)  # the input layer also reads e_s
            for i, (w, v) in enumerate(zip(widths, [*config.hidden, config.num_tasks]))
        )

    def factors(self, pruner: nn.Module, s: Tensor, h: Tensor) -> Tensor:
        """Weighting factors π (B, D) of the neurons h (B, D) for scenario embeddings s (B, D_s)."""
        c = self.config
        z = c.alpha * pruner(torch.cat([s, h], dim=-1))  # (B, D)
        if c.form == "binary":
            soft = torch.sigmoid(z)
            return soft + ((soft > 0.5).to(soft) - soft).detach()  # straight-through
        pi = c.beta * torch.sigmoid(z)
        return pi * (pi >= c.epsilon) if c.form == "fusion" else pi

    def _run(self, batch: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        if "scenario_ids" not in batch:
            raise KeyError("AdaSparse needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        s = self.scenario_embedding(ids)  # (B, D_s)
        h, all_factors = self.embedding(batch), []  # (B, D_in)
        for i, (pruner, layer) in enumerate(zip(self.pruners, self.layers)):
            pi = self.factors(pruner, s, h)  # (B, D_i)
            all_factors.append(pi)
            h = h * pi
            h = layer(torch.cat([s, h], dim=-1) if i == 0 else h)  # (B, D_{i+1})
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h, all_factors

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        return self._run(batch)[0]

    @torch.no_grad()
    def sparsity(self, batch: dict[str, Tensor]) -> Tensor:
        """(L,) share of neurons pruned (π = 0) per pruned layer, over the batch's rows."""
        return torch.stack([(pi == 0).float().mean() for pi in self._run(batch)[1]])

    # Same as mtrec.models.scenario.scenario_moe.ScenarioMoE.loss / predict (one file per model).
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))
