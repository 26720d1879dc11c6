"""Task mapping: which tasks run for a request, by a declared table or a learned gate.

The second stage of the pipeline's front: after :class:`~mtrec.routing.ScenarioClassifier` has
named the scenario, :class:`RuleTaskMapper` looks its tasks up in a declared table, or
:class:`LearnedTaskMapper` predicts them from the row's features (no scenario id needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int
from mtrec.data.schema import Feature
from mtrec.nn.layers import MLP, FeatureEmbedding
from mtrec.nn.scenario import check_scenario_ids


class RuleTaskMapper:
    """Task mapping by a declared table: scenario name → the tasks that run in it.

    Args:
        table: ``{scenario: [task, ...]}``; every scenario of ``scenarios`` must appear.
        scenarios: scenario names in id order.
        tasks: task names in label-column order.
    """

    def __init__(
        self, table: Mapping[str, Sequence[str]], *, scenarios: Sequence[str], tasks: Sequence[str]
    ) -> None:
        self.scenarios, self.tasks = list(scenarios), list(tasks)
        missing = [s for s in self.scenarios if s not in table]
        unknown_s = [s for s in table if s not in self.scenarios]
        unknown_t = sorted({t for ts in table.values() for t in ts} - set(self.tasks))
        if missing or unknown_s or unknown_t:
            raise ValueError(
                f"task table does not match: scenarios without a row {missing}, rows for unknown "
                f"scenarios {unknown_s}, unknown tasks {unknown_t}; expected scenarios "
                f"{self.scenarios} and tasks {self.tasks}"
            )
        self.table = torch.tensor(
            [[t in table[s] for t in self.tasks] for s in self.scenarios], dtype=torch.bool
        )  # (S, T)

    def mask(self, scenario_ids: Tensor) -> Tensor:
        """(B,) scenario ids → (B, T) bool: which tasks run for each row (a table lookup)."""
        ids = check_scenario_ids(torch.as_tensor(scenario_ids), len(self.scenarios))
        return self.table.to(ids.device)[ids]

    def apply(self, labels: Tensor, scenario_ids: Tensor) -> Tensor:
        """Labels (B, T) with NaN where the task does not run in the row's scenario."""
        return labels.float().masked_fill(~self.mask(scenario_ids), float("nan"))


class LearnedTaskMapper(nn.Module):
    """Task mapping learned as a gate: features → P(task t runs for this row), (B, T).

    Trained with ``mtrec.train.fit`` on batch["labels"] = (B, T) 0/1 "task active" targets (e.g.
    the rule table applied to the true scenarios, or which labels were observed). At serving time
    it needs no scenario id, only the row's features.
    """

    def __init__(
        self, features: Sequence[Feature], num_tasks: int, *, hidden: Sequence[int] = (32,)
    ) -> None:
        super().__init__()
        num_tasks = check_int(num_tasks, "num_tasks", min=1)
        self.num_tasks = num_tasks
        self.embedding = FeatureEmbedding(features)
        self.gate = MLP(self.embedding.out_dim, hidden, num_tasks)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys → (B, T) gate logits."""
        return self.gate(self.embedding(batch))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean BCE against batch["labels"] (B, T) task-active targets."""
        return F.binary_cross_entropy_with_logits(self(batch), batch["labels"].float())

    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities that each task runs."""
        return torch.sigmoid(self(batch))

    def mask(self, batch: dict[str, Tensor], threshold: float = 0.5) -> Tensor:
        """(B, T) bool."""
        return self.predict(batch) > threshold
