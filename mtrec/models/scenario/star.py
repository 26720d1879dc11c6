"""STAR: one model for many scenarios via star-topology FC layers (shared ⊙ scenario weights).

Sheng, Zhao, Zhang, Zhou, Li, Zhu, Sun, Hu, Lin & Gai, "One Model to Serve All: Star Topology
Adaptive Recommender for Multi-Domain CTR Prediction", CIKM 2021. Three pieces:

* star-topology FC: scenario p's layer is W ⊙ W_p with bias b + b_p (shared and specific);
* partitioned normalisation (PN): batch statistics shared, scale and shift γ·γ_p, β + β_p per
  scenario (here applied to the input embedding; running statistics at eval time and for a
  one-row training batch, which has no variance: :class:`mtrec.nn.layers.SmallBatchNorm1d`);
* an auxiliary network on the scenario embedding and the input whose logit is added to STAR's.

Rows are grouped by scenario and W ⊙ W_p is formed once per scenario present in the batch,
then applied by one batched matmul (:func:`mtrec.nn.scenario.grouped_matmul`): the cost per batch
is flat in the number of scenarios S. Ids outside 0..S-1 raise
ValueError (:func:`mtrec.nn.scenario.check_scenario_ids`); ``add_scenario`` adds one to a trained
model without changing the others (see :mod:`mtrec.train.transfer`).

Batch keys: the declared feature names, "scenario_ids" (B,) long, "labels" (B, T) float with
NaN = unlabelled (left out of that task's loss).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import MLP, FeatureEmbedding, SmallBatchNorm1d, lookup
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import (
    ScenarioGroups,
    StarLinear,
    append_row,
    batch_scenario_ids,
    check_new_scenario_id,
    new_scenario_row,
)


@dataclass(frozen=True)
class STARConfig:
    """STAR hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T: logits of the last star layer
    hidden: tuple[int, ...] = (64, 32)  # widths of the star-topology FC layers
    aux_hidden: tuple[int, ...] = (32,)  # hidden widths of the auxiliary network
    scenario_embed_dim: int = 8  # scenario embedding fed to the auxiliary network

    def __post_init__(self) -> None:
        for name in ("num_scenarios", "num_tasks", "scenario_embed_dim"):
            check_int(getattr(self, name), f"STARConfig.{name}", min=1)
        check_widths(self.hidden, "STARConfig.hidden")
        check_widths(self.aux_hidden, "STARConfig.aux_hidden")
        if not self.features or self.num_scenarios < 1 or self.num_tasks < 1:
            raise ValueError("STARConfig needs features, num_scenarios >= 1 and num_tasks >= 1")

    @classmethod
    def tiny(cls, **overrides: object) -> STARConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), hidden=(8,), aux_hidden=(4,))
        return cls(**{**base, **overrides})


class PartitionedNorm(nn.Module):
    """BatchNorm statistics shared by all scenarios, affine (γ·γ_p, β + β_p) per scenario."""

    def __init__(self, num_scenarios: int, dim: int) -> None:
        super().__init__()
        self.norm = SmallBatchNorm1d(dim, affine=False)  # one-row batches: running stats
        self.gamma, self.beta = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.gamma_p = nn.Parameter(torch.ones(num_scenarios, dim))
        self.beta_p = nn.Parameter(torch.zeros(num_scenarios, dim))

    def forward(self, x: Tensor, ids: Tensor) -> Tensor:
        """x (B, D), ids (B,) → (B, D)."""
        gamma = self.gamma * self.gamma_p.index_select(0, ids)  # (B, D)
        return gamma * self.norm(x) + (self.beta + self.beta_p.index_select(0, ids))

    def add_scenario(self, init: str = "shared", *, nearest: int | None = None) -> None:
        """Append γ_p, β_p rows for a new scenario ("shared": 1 and 0, the shared affine alone)."""
        one, zero = torch.ones(1), torch.zeros(1)
        g = new_scenario_row(self.gamma_p, init, nearest=nearest, shared=one)
        b = new_scenario_row(self.beta_p, init, nearest=nearest, shared=zero)
        self.gamma_p = append_row(self.gamma_p, g.expand_as(self.gamma_p[0]))  # (S + 1, D)
        self.beta_p = append_row(self.beta_p, b.expand_as(self.beta_p[0]))  # (S + 1, D)


class STAR(nn.Module):
    """Features → PN → star FC stack → (B, T) logits, plus the auxiliary network's logits."""

    def __init__(self, config: STARConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d_in = self.embedding.out_dim
        self.norm = PartitionedNorm(config.num_scenarios, d_in)
        widths = [d_in, *config.hidden, config.num_tasks]
        self.layers = nn.ModuleList(
            StarLinear(config.num_scenarios, a, b) for a, b in pairwise(widths)
        )
        self.scenario_embedding = nn.Embedding(config.num_scenarios, config.scenario_embed_dim)
        self.aux = MLP(d_in + config.scenario_embed_dim, config.aux_hidden, config.num_tasks)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        if "scenario_ids" not in batch:
            raise KeyError("STAR needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        x = self.embedding(batch)  # (B, D_in)
        h = self.norm(x, ids)
        groups = ScenarioGroups.of(ids) if len(ids) else None  # sorted once for every layer
        for i, layer in enumerate(self.layers):
            h = layer(h, ids, groups)
            if i < len(self.layers) - 1:
                h = F.relu_(h)  # in place on the fresh layer output
        aux = self.aux(torch.cat([x, lookup(self.scenario_embedding, ids)], dim=-1))  # (B, T)
        return h + aux

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The shared weights of the last hidden star layer (for GradNorm)."""
        return [self.layers[-2 if len(self.layers) > 1 else -1].weight]

    def add_scenario(
        self, init: str = "shared", *, nearest: int | None = None, scenario_id: int | None = None
    ) -> int:
        """Add a scenario without touching the trained ones; return its id (the old S).

        Every per-scenario parameter (PN's γ_p, β_p; each star layer's W_p, b_p; the scenario
        embedding) gets one more row, so the trained scenarios' outputs stay bit-identical.

        Args:
            init: "shared" (W_p = 1, b_p = 0, γ_p = 1, β_p = 0: the shared weights alone; the
                scenario embedding, which has no neutral value, starts at the trained mean),
                "mean" (the mean of the trained scenarios' rows) or "nearest" (a copy of
                scenario ``nearest``'s rows, e.g. the one with the most similar item texts).
            nearest: the trained scenario to copy with init="nearest".
            scenario_id: optional check: must be S, the next id.

        Parameters are replaced: build the optimizer after adding.
        """
        new_id = check_new_scenario_id(scenario_id, self.config.num_scenarios)
        self.norm.add_scenario(init, nearest=nearest)
        for layer in self.layers:
            layer.add_scenario(init, nearest=nearest)
        table = self.scenario_embedding.weight  # (S, D_s)
        row = new_scenario_row(table, "mean" if init == "shared" else init, nearest=nearest)
        self.scenario_embedding = nn.Embedding.from_pretrained(
            torch.cat([table.detach(), row.unsqueeze(0)]), freeze=False
        )  # (S + 1, D_s)
        self.config = replace(self.config, num_scenarios=new_id + 1)
        return new_id

    def scenario_parameters(self) -> list[nn.Parameter]:
        """The stacked (S, ...) parameters: row p belongs to scenario p alone."""
        stars = [p for layer in self.layers for p in (layer.weight_p, layer.bias_p)]
        return [self.norm.gamma_p, self.norm.beta_p, *stars, self.scenario_embedding.weight]
