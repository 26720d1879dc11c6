"""M2M: a meta network turns the scenario into the weights of the expert attention and towers.

Qianqian Zhang et al., "Leaving No One Behind: A Multi-Scenario Multi-Task Meta Learning Approach
for Advertiser Modeling", WSDM 2022. Pieces:

* a shared **backbone** of E experts (MLPs) over the input embedding (the paper puts a
  Transformer over behaviour sequences in front; the features here have no sequences);
* a **meta unit**: a linear map from the scenario representation (a learned embedding) to the
  weight matrix and bias of a layer — every scenario gets its own layer without its own
  free parameters;
* **meta attention**: per task t and expert e the score ``vᵀ LeakyReLU([expert_e ⊕ task_t] W(s) +
  b(s))``, softmax over experts, then the experts mixed per task;
* **meta tower**: residual layers ``h ← LeakyReLU(h W(s) + b(s) + h)`` with meta weights, then
  a plain output MLP per task.

A meta weight depends on the scenario only, so it is generated once per scenario present in the
batch and applied to that scenario's rows by one batched matmul
(:func:`mtrec.nn.scenario.grouped_matmul`), never once per row.

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
from mtrec.nn.layers import BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import batch_scenario_ids, grouped_matmul


@dataclass(frozen=True)
class M2MConfig:
    """M2M hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features
    num_scenarios: int = 3  # S
    num_tasks: int = 1  # T
    num_experts: int = 4  # E, shared by every scenario and task
    expert_dim: int = 16  # D: width of each expert's output (and of the meta tower)
    scenario_embed_dim: int = 8  # width of the scenario representation fed to the meta units
    meta_layers: int = 1  # residual meta-tower layers
    out_hidden: tuple[int, ...] = (32,)  # hidden widths of each task's output MLP
    negative_slope: float = 0.1  # LeakyReLU slope of the meta layers (as the paper)

    def __post_init__(self) -> None:
        for name in (
            "num_scenarios",
            "num_tasks",
            "num_experts",
            "expert_dim",
            "scenario_embed_dim",
        ):
            check_int(getattr(self, name), f"M2MConfig.{name}", min=1)
        check_int(self.meta_layers, "M2MConfig.meta_layers", min=0)
        check_widths(self.out_hidden, "M2MConfig.out_hidden")
        check_float(self.negative_slope, "M2MConfig.negative_slope")
        if not self.features or min(self.num_scenarios, self.num_tasks, self.num_experts) < 1:
            raise ValueError(
                "M2MConfig needs features and num_scenarios, num_tasks, num_experts >= 1"
            )
        if self.expert_dim < 1 or self.meta_layers < 0:
            raise ValueError("M2MConfig needs expert_dim >= 1 and meta_layers >= 0")

    @classmethod
    def tiny(cls, **overrides: object) -> M2MConfig:
        """A small config for tests."""
        base = dict(features=tiny_features(), num_experts=3, expert_dim=8, out_hidden=(4,))
        return cls(**{**base, **overrides})


class MetaLinear(nn.Module):
    """A linear layer whose (D_in, D_out) weight and bias are generated from the scenario."""

    def __init__(self, scenario_dim: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.to_weight = nn.Linear(scenario_dim, in_dim * out_dim)
        self.to_bias = nn.Linear(scenario_dim, out_dim)
        nn.init.normal_(self.to_weight.weight, std=0.1 / in_dim**0.5)
        nn.init.uniform_(self.to_weight.bias, -(in_dim**-0.5), in_dim**-0.5)

    def weight(self, scenarios: Tensor) -> Tensor:
        """(S', D_s) scenario representations → (S', D_in, D_out) weights."""
        return self.to_weight(scenarios).view(-1, self.in_dim, self.out_dim)

    def forward(self, x: Tensor, ids: Tensor, table: Tensor) -> Tensor:
        """x (N, D_in), ids (N,), table (S, D_s) → (N, D_out); grouped by scenario."""
        out = grouped_matmul(x, ids, lambda present: self.weight(table.index_select(0, present)))
        return out + self.to_bias(table).index_select(0, ids)  # (N, D_out)


class M2M(nn.Module):
    """Experts → meta attention per task → meta tower → per-task output MLP → (B, T) logits."""

    def __init__(self, config: M2MConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        d, d_s = config.expert_dim, config.scenario_embed_dim
        self.scenario_embedding = nn.Embedding(config.num_scenarios, d_s)
        self.experts = BatchedMLP(config.num_experts, self.embedding.out_dim, (d,))
        self.task_embedding = nn.Parameter(torch.randn(config.num_tasks, d) * 0.1)  # (T, D)
        self.attention = MetaLinear(d_s, 2 * d, 2 * d)
        self.attention_v = nn.Parameter(torch.randn(2 * d) * (2 * d) ** -0.5)  # (2D,)
        self.tower = nn.ModuleList(MetaLinear(d_s, d, d) for _ in range(config.meta_layers))
        self.out = BatchedMLP(config.num_tasks, d, config.out_hidden, 1)

    def _leaky(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.config.negative_slope)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits."""
        if "scenario_ids" not in batch:
            raise KeyError("M2M needs batch['scenario_ids'] (B,) long")
        ids = batch_scenario_ids(batch, self.config.num_scenarios)
        n, t, d = len(ids), self.config.num_tasks, self.config.expert_dim
        table = self.scenario_embedding.weight  # (S, D_s)
        experts = self.experts(self.embedding(batch))  # (B, E, D)
        # [expert ⊕ task] W(s) = expert W_top(s) + task W_bottom(s): the experts go through the
        # grouped matmul once (not once per task), the tasks once per scenario.
        att = self.attention
        top = grouped_matmul(
            experts.reshape(-1, d),  # (B·E, D)
            ids.repeat_interleave(experts.shape[1]),
            lambda present: att.weight(table.index_select(0, present))[:, :d],  # (S', D, 2D)
        ).view(n, 1, experts.shape[1], 2 * d)  # (B, 1, E, 2D)
        bottom = torch.einsum("td,sdk->stk", self.task_embedding, att.weight(table)[:, d:])
        bottom = (bottom + att.to_bias(table).unsqueeze(1)).index_select(0, ids)  # (B, T, 2D)
        hidden = top + bottom.unsqueeze(2)  # (B, T, E, 2D)
        scores = self._leaky(hidden) @ self.attention_v  # (B, T, E)
        mixed = torch.einsum("bte,bed->btd", torch.softmax(scores, -1), experts)  # (B, T, D)
        h, row_ids = mixed.reshape(n * t, d), ids.repeat_interleave(t)  # (B·T, D), (B·T,)
        for layer in self.tower:
            h = self._leaky(layer(h, row_ids, table) + h)  # (B·T, D)
        return self.out(h.view(n, t, d)).squeeze(-1)  # task t's MLP on row (b, t): (B, T)

    # Same as mtrec.models.scenario.scenario_moe.ScenarioMoE.loss / predict (one file per model).
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))
