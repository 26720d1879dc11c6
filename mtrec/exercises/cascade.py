"""Self-check for notebook 14: the depth controller's rule, on one request.

The student writes ``pick_depth(depths, cost_ms, time_left_ms) -> int``: ``depths`` is the grid
of cascade depths N (increasing ints, N = 0 means the student alone), ``cost_ms`` the measured
cost of a request at each depth (same length, increasing), ``time_left_ms`` the service budget
left before the latency objective. Return the deepest N whose cost fits the budget
(``cost <= time_left``); when none fits, 0 (the cheapest service). This is the rule of
:class:`mtrec.serving.budget.DepthController`, without the queue and the scenario cap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtrec.exercises._harness import Case, run_cases


def reference_pick_depth(depths: np.ndarray, cost_ms: np.ndarray, time_left_ms: float) -> int:
    """The deepest depth whose cost is <= time_left_ms, else 0."""
    fits = np.asarray(depths)[np.asarray(cost_ms) <= time_left_ms]
    return int(fits.max()) if len(fits) else 0


def _shallowest(depths, cost_ms, time_left_ms):
    fits = np.asarray(depths)[np.asarray(cost_ms) <= time_left_ms]
    return int(fits.min()) if len(fits) else 0


def _strict(depths, cost_ms, time_left_ms):
    fits = np.asarray(depths)[np.asarray(cost_ms) < time_left_ms]
    return int(fits.max()) if len(fits) else 0


def _ignores_budget(depths, cost_ms, time_left_ms):
    return int(np.asarray(depths).max())


def _deepest_when_none_fits(depths, cost_ms, time_left_ms):
    fits = np.asarray(depths)[np.asarray(cost_ms) <= time_left_ms]
    return int(fits.max()) if len(fits) else int(np.asarray(depths).max())


DIAGNOSES = (
    (_shallowest, "pick the *deepest* depth that fits (more teacher, better lists), not the first"),
    (_strict, "a cost equal to the time left still fits: use <="),
    (_deepest_when_none_fits, "when nothing fits, serve the cheapest way: depth 0 (student only)"),
    (_ignores_budget, "the budget was ignored: keep only depths with cost_ms <= time_left_ms"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases: a roomy, a tight, an exact and an impossible budget."""
    depths = np.array([0, 10, 50, 200, 1682])
    cost = np.array([0.3, 0.5, 0.7, 1.3, 6.5])  # ms, like the costs measured in notebook 14
    specs = [
        ("a roomy budget: 10 ms", 10.0, "every depth fits: the deepest wins"),
        ("a tight budget: 1.0 ms", 1.0, "depths 0, 10 and 50 fit; take the deepest"),
        ("a budget equal to one cost: 1.3 ms", 1.3, "cost <= time left counts as fitting"),
        ("no depth fits: 0.1 ms", 0.1, "when nothing fits, return 0"),
    ]
    return [
        Case(name, {"depths": depths, "cost_ms": cost, "time_left_ms": left},
             reference_pick_depth(depths, cost, left), hint, DIAGNOSES, atol=0.0)
        for name, left, hint in specs
    ]  # fmt: skip


def check_pick_depth(student: Callable[..., int]) -> bool:
    """Check ``student(depths, cost_ms, time_left_ms) -> int``."""
    return run_cases("the depth controller's rule", student, cases())
