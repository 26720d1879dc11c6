"""Shared-Bottom multi-task model, optionally multi-scenario (scenario embedding, routed towers).

Caruana, "Multitask Learning", Machine Learning 28, 1997: one shared bottom network, one tower per
task. With ``num_scenarios > 0`` the input also carries a learned scenario embedding, and with
``scenario_towers=True`` each row goes through its own scenario's towers
(:class:`mtrec.nn.scenario.ScenarioRouter`: rows grouped by scenario).

Batch keys: the declared feature names, "labels" (B, T) float with NaN = unlabelled (that row is
left out of that task's loss), "scenario_ids" (B,) long when ``num_scenarios > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from mtrec.checks import check_int, check_probability, check_widths
from mtrec.data.schema import Feature
from mtrec.data.synthetic import tiny_features
from mtrec.nn.layers import MLP, BatchedMLP, FeatureEmbedding
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import (
    ScenarioRouter,
    batch_scenario_ids,
    check_new_scenario_id,
    check_scenario_init,
    new_scenario_row,
)


@dataclass(frozen=True)
class SharedBottomConfig:
    """Shared-Bottom hyper-parameters."""

    features: tuple[Feature, ...]  # declared input features (FeatureEmbedding builds from them)
    num_tasks: int = 2  # T: one logit per task
    bottom_hidden: tuple[int, ...] = (128, 64)  # widths of the shared bottom MLP
    tower_hidden: tuple[int, ...] = (32,)  # hidden widths of each task tower
    num_scenarios: int = 0  # S > 0: add a scenario embedding (multi-scenario shared-bottom)
    scenario_embed_dim: int = 8  # width of that scenario embedding
    scenario_towers: bool = False  # route each row to its scenario's own towers (needs S > 0)
    dropout: float = 0.0  # dropout in the bottom MLP

    def __post_init__(self) -> None:
        for name in ("num_tasks", "scenario_embed_dim"):
            check_int(getattr(self, name), f"SharedBottomConfig.{name}", min=1)
        check_int(self.num_scenarios, "SharedBottomConfig.num_scenarios", min=0)
        check_widths(self.bottom_hidden, "SharedBottomConfig.bottom_hidden", allow_empty=False)
        check_widths(self.tower_hidden, "SharedBottomConfig.tower_hidden")
        check_probability(self.dropout, "SharedBottomConfig.dropout")
        if not self.features or self.num_tasks < 1 or not self.bottom_hidden:
            raise ValueError("SharedBottomConfig needs features, num_tasks >= 1, bottom_hidden")
        if self.num_scenarios < 0 or (self.scenario_towers and self.num_scenarios < 1):
            raise ValueError(
                f"scenario_towers=True needs num_scenarios >= 1, got {self.num_scenarios}"
            )

    @classmethod
    def tiny(cls, **overrides: object) -> SharedBottomConfig:
        """A few-hundred-parameter config for tests."""
        base = dict(features=tiny_features(), bottom_hidden=(16,), tower_hidden=(8,))
        return cls(**{**base, **overrides})


class SharedBottom(nn.Module):
    """Features → shared MLP → T towers (or S×T routed towers) → (B, T) logits."""

    def __init__(self, config: SharedBottomConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.features)
        in_dim = self.embedding.out_dim
        if config.num_scenarios:
            self.scenario_embedding = nn.Embedding(config.num_scenarios, config.scenario_embed_dim)
            in_dim += config.scenario_embed_dim
        self.bottom = MLP(in_dim, config.bottom_hidden, dropout=config.dropout)
        width = config.bottom_hidden[-1]
        if config.scenario_towers:
            self.router = ScenarioRouter(
                config.num_scenarios, width, config.tower_hidden, config.num_tasks
            )
        else:
            self.towers = BatchedMLP(config.num_tasks, width, config.tower_hidden, 1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys (+ "scenario_ids" (B,)) → (B, T) logits."""
        x = self.embedding(batch)  # (B, D_in)
        ids = None
        if self.config.num_scenarios:
            if "scenario_ids" not in batch:
                raise KeyError(
                    "this SharedBottom has num_scenarios > 0: batch needs 'scenario_ids'"
                )
            ids = batch_scenario_ids(batch, self.config.num_scenarios)
            x = torch.cat([x, self.scenario_embedding(ids)], dim=-1)  # (B, D_in + D_s)
        h = self.bottom(x)  # (B, D)
        if self.config.scenario_towers:
            return self.router(h, ids)  # (B, T)
        return self.towers(h).squeeze(-1)  # (B, T, 1) → (B, T)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over rows with a label (NaN rows masked out per task)."""
        return masked_bce(self(batch), check_labels(batch, self.config.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last shared layer's parameters (for GradNorm)."""
        last = [m for m in self.bottom.net if isinstance(m, nn.Linear)][-1]
        return list(last.parameters())

    def add_scenario(
        self, init: str = "mean", *, nearest: int | None = None, scenario_id: int | None = None
    ) -> int:
        """Add a scenario (embedding row, and routed towers if any); return its id (the old S).

        Args:
            init: "mean" (mean of the trained scenarios' embedding rows and towers) or "nearest"
                (a copy of scenario ``nearest``'s); "shared" is refused: no neutral value exists.
            nearest: the trained scenario to copy with init="nearest".
            scenario_id: optional check: must be S, the next id.

        The trained scenarios' outputs stay bit-identical. Build the optimizer after adding.
        """
        if not self.config.num_scenarios:
            raise ValueError("this SharedBottom has num_scenarios=0: it has no scenarios to extend")
        new_id = check_new_scenario_id(scenario_id, self.config.num_scenarios)
        check_scenario_init(init, nearest, new_id, has_shared=False)
        if self.config.scenario_towers:
            self.router.add_scenario(init, nearest=nearest)
        table = self.scenario_embedding.weight  # (S, D_s)
        row = new_scenario_row(table, init, nearest=nearest)
        self.scenario_embedding = nn.Embedding.from_pretrained(
            torch.cat([table.detach(), row.unsqueeze(0)]), freeze=False
        )  # (S + 1, D_s)
        self.config = replace(self.config, num_scenarios=new_id + 1)
        return new_id

    def scenario_parameters(self) -> list[nn.Parameter]:
        """The stacked (S, ...) parameters: row p belongs to scenario p alone."""
        routed = self.router.scenario_parameters() if self.config.scenario_towers else []
        return [self.scenario_embedding.weight, *routed] if self.config.num_scenarios else []
