"""Compute budgets: which tasks and how deep a cascade each request gets, under a latency SLO.

* :class:`BudgetTable`, per scenario: the tasks it needs (a task it does not need is skipped)
  and the largest cascade depth worth paying for there. :meth:`BudgetTable.from_quality` learns
  the depths offline from the quality-vs-depth curve of each scenario (on validation users):
  the smallest depth whose lists agree with the teacher's to a target NDCG@10, so scenarios
  where the student is already good get a shallower cascade.
* :class:`DepthController`: per request, the deepest cascade from a fixed grid whose measured
  cost fits the time left before the SLO, for this request *and* for those already queued
  behind it (each assumed to get the cheapest, student-only service). The rule is a deadline
  check on the current queue, with the costs of :class:`mtrec.serving.cascade.StageCosts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_float, check_int, check_nonempty
from mtrec.serving.cascade import StageCosts


def _names(value: object, name: str) -> list[str]:
    """A sequence of names as a list (a lone string is refused: it would be split into letters)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of names, got {value!r}; e.g. [{value!r}]")
    return list(value)


def _array(value: object, name: str) -> np.ndarray:
    """A 1-D float array of finite ms values, or a clear error."""
    try:
        array = np.asarray(value, float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers (ms), got {value!r}") from None
    if array.ndim != 1 or not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must be a 1-D sequence of finite ms values >= 0, got {value!r}")
    return array


@dataclass(frozen=True)
class ScenarioBudget:
    """The compute budget of one scenario."""

    tasks: tuple[str, ...]  # the tasks whose log-probabilities are summed into the relevance
    max_depth: int | None = None  # largest cascade depth N here; None = no cap (the controller's)


class BudgetTable:
    """Scenario → :class:`ScenarioBudget`, checked against the declared scenarios and tasks.

    Args:
        budgets: ``{scenario: ScenarioBudget}``; every scenario of ``scenarios`` must appear.
        scenarios: scenario names in id order.
        tasks: task names in logit-column order (T).
    """

    def __init__(
        self,
        budgets: Mapping[str, ScenarioBudget],
        *,
        scenarios: Sequence[str],
        tasks: Sequence[str],
    ) -> None:
        self.scenarios, self.tasks = _names(scenarios, "scenarios"), _names(tasks, "tasks")
        if not isinstance(budgets, Mapping):
            raise TypeError(f"budgets must be a dict scenario -> ScenarioBudget, got {budgets!r}")
        for s, b in budgets.items():
            if not isinstance(b, ScenarioBudget):
                raise TypeError(
                    f"budgets[{s!r}] must be a ScenarioBudget, got {b!r}; e.g. "
                    f"ScenarioBudget(tasks=({self.tasks[0] if self.tasks else 'watch'!r},))"
                )
            _names(b.tasks, f"budgets[{s!r}].tasks")
            if b.max_depth is not None:
                check_int(b.max_depth, f"budgets[{s!r}].max_depth")
        missing = [s for s in self.scenarios if s not in budgets]
        unknown_s = [s for s in budgets if s not in self.scenarios]
        unknown_t = sorted({t for b in budgets.values() for t in b.tasks} - set(self.tasks))
        empty = [s for s, b in budgets.items() if not b.tasks]
        if missing or unknown_s or unknown_t or empty:
            raise ValueError(
                f"budget table does not match: scenarios without a budget {missing}, budgets for "
                f"unknown scenarios {unknown_s}, unknown tasks {unknown_t}, scenarios with no "
                f"task {empty}; expected every scenario of {self.scenarios} with tasks from "
                f"{self.tasks}; fix the names or declare the missing rows"
            )
        bad = {s: b.max_depth for s, b in budgets.items() if (b.max_depth or 0) < 0}
        if bad:
            raise ValueError(f"max_depth must be >= 0 or None, got {bad}")
        self.budgets = {s: budgets[s] for s in self.scenarios}

    def _get(self, scenario: str) -> ScenarioBudget:
        if scenario not in self.scenarios:
            raise ValueError(
                f"unknown scenario {scenario!r}: expected one of {self.scenarios}; fix the name "
                "or add a budget for it"
            )
        return self.budgets[scenario]

    def task_mask(self, scenario: str) -> Tensor:
        """(T,) bool: the tasks that run in ``scenario``, in ``tasks`` order."""
        wanted = self._get(scenario).tasks
        return torch.tensor([t in wanted for t in self.tasks], dtype=torch.bool)

    def max_depth(self, scenario: str) -> int | None:
        """The scenario's depth cap (None = none)."""
        return self._get(scenario).max_depth

    @classmethod
    def from_quality(
        cls,
        quality: Mapping[str, Mapping[int, float]],
        tasks: Mapping[str, Sequence[str]],
        *,
        all_tasks: Sequence[str],
        target: float,
    ) -> BudgetTable:
        """Depth caps learned offline: per scenario, the smallest depth whose quality ≥ target.

        Args:
            quality: ``{scenario: {depth: NDCG@10 against the teacher's lists}}`` measured on
                calibration users (not the users the policy is then evaluated on).
            tasks: ``{scenario: [task, ...]}``, e.g. a ``RuleTaskMapper`` table.
            all_tasks: every task name in logit order.
            target: agreement in (0, 1]; a scenario that never reaches it gets no cap.
        """
        target = check_float(target, "target")
        if not isinstance(quality, Mapping) or not isinstance(tasks, Mapping):
            raise TypeError("quality and tasks must be dicts keyed by scenario name")
        check_nonempty(quality, "quality", fix="measure the quality of at least one scenario")
        for scenario, curve in quality.items():
            if not isinstance(curve, Mapping) or not curve:
                raise ValueError(f"quality[{scenario!r}] must be a non-empty dict depth -> NDCG")
            for d, q in curve.items():
                check_int(d, f"a depth of quality[{scenario!r}]", min=0)
                check_float(q, f"quality[{scenario!r}][{d}]")
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target must be in (0, 1], got {target}")
        unknown = sorted(set(quality) ^ set(tasks))
        if unknown:
            raise ValueError(
                f"quality and tasks must name the same scenarios; only in one of them: {unknown}"
            )
        budgets = {}
        for scenario, curve in quality.items():
            good = [d for d, q in sorted(curve.items()) if q >= target]
            budgets[scenario] = ScenarioBudget(tuple(tasks[scenario]), good[0] if good else None)
        return cls(budgets, scenarios=list(quality), tasks=all_tasks)


class DepthController:
    """Chooses a request's cascade depth from a latency SLO and the current queue.

    For the request starting now (waited ``w_0``) and the requests queued behind it (waited
    ``w_1..w_q``, each then served at its cheapest cost ``m_i``), request i finishes after
    ``s + m_1 + … + m_i``; its latency stays within the SLO when
    ``s <= SLO − w_i − (m_1 + … + m_i)``. The service budget ``s`` is the smallest such bound
    over the requests that can still make it, and the depth is the deepest grid value with
    ``cost(C, depth) <= s`` (and within the scenario's cap). When nothing fits, depth 0.

    Args:
        costs: measured stage costs.
        slo_ms: the latency objective in ms (queueing + service), e.g. for the p99.
        depths: the depth grid to choose from (sorted; 0 is always allowed).
        table: optional per-scenario budgets (depth caps).
        min_candidates: the smallest C a request will have; the SLO must cover its student-only
            cost, or no depth could ever be served within it.
    """

    def __init__(
        self,
        costs: StageCosts,
        slo_ms: float,
        *,
        depths: Sequence[int],
        table: BudgetTable | None = None,
        min_candidates: int = 1,
    ) -> None:
        if not isinstance(costs, StageCosts):
            raise TypeError(f"costs must be StageCosts (see measure_costs), got {costs!r}")
        if table is not None and not isinstance(table, BudgetTable):
            raise TypeError(f"table must be a BudgetTable or None, got {table!r}")
        check_int(min_candidates, "min_candidates", min=0)
        floor = float(costs.request_ms(min_candidates, 0))
        slo_ms = check_float(slo_ms, "slo_ms")
        if not np.isfinite(slo_ms) or slo_ms < floor:
            raise ValueError(
                f"slo_ms must be at least the student-only cost of a request, {floor:.3f} ms "
                f"(measured, {min_candidates} candidates), got {slo_ms}; raise the budget or "
                "make the student cheaper"
            )
        if isinstance(depths, (str, bytes)) or not isinstance(depths, (Sequence, np.ndarray)):
            raise TypeError(f"depths must be a sequence of ints, got {depths!r}")
        grid = sorted({check_int(d, "depths[i]") for d in depths} | {0})
        if grid[0] < 0:
            raise ValueError(f"depths must be >= 0, got {list(depths)}")
        self.costs, self.slo_ms, self.table = costs, float(slo_ms), table
        self.depths = np.asarray(grid)

    def service_budget_ms(
        self,
        wait_ms: float,
        queued_waits_ms: Sequence[float] | np.ndarray,
        queued_min_ms: Sequence[float] | np.ndarray,
        *,
        own_min_ms: float = 0.0,
    ) -> float:
        """The most this request's service may take so that no queued request misses the SLO.

        Queued requests that would miss even if this one took only ``own_min_ms`` (its
        student-only cost) are ignored: they cannot be saved, and honouring them would starve
        everyone else.
        """
        wait_ms = check_float(wait_ms, "wait_ms", min=0.0)
        own_min_ms = check_float(own_min_ms, "own_min_ms", min=0.0)
        waits = _array(queued_waits_ms, "queued_waits_ms")
        ahead = np.cumsum(_array(queued_min_ms, "queued_min_ms"))  # (q,) m_1 + … + m_i
        if waits.shape != ahead.shape:
            raise ValueError(
                f"queued_waits_ms and queued_min_ms must have one value per queued request, got "
                f"shapes {waits.shape} and {ahead.shape}"
            )
        bounds = self.slo_ms - waits - ahead  # (q,) the most s may be for request i
        feasible = bounds[bounds >= own_min_ms]
        budget = self.slo_ms - wait_ms
        return float(min(budget, feasible.min())) if len(feasible) else budget

    def choose(
        self,
        num_candidates: int,
        *,
        wait_ms: float,
        queued_waits_ms: Sequence[float] | np.ndarray = (),
        queued_min_ms: Sequence[float] | np.ndarray = (),
        scenario: str | None = None,
    ) -> int:
        """The cascade depth for one request with ``num_candidates`` candidates.

        Args:
            wait_ms: how long this request has queued.
            queued_waits_ms: (q,) how long each request queued behind it has waited, oldest first.
            queued_min_ms: (q,) their cheapest (student-only) service times.
            scenario: the request's scenario, for its depth cap (needs ``table``).
        """
        check_int(num_candidates, "num_candidates", min=0)
        own_min = float(self.costs.request_ms(num_candidates, 0))
        budget = self.service_budget_ms(wait_ms, queued_waits_ms, queued_min_ms, own_min_ms=own_min)
        grid = np.minimum(self.depths, num_candidates)
        if scenario is not None and self.table is not None:
            cap = self.table.max_depth(scenario)
            if cap is not None:
                grid = grid[grid <= cap]
        fits = grid[self.costs.request_ms(num_candidates, grid) <= budget]
        return int(fits.max()) if len(fits) else 0
