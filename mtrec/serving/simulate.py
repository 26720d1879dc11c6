"""A load simulation: Poisson arrivals, one worker, a FIFO queue, a deterministic simulated clock.

Requests arrive as a Poisson process (seeded), wait in one first-in-first-out queue and are
served one at a time by a single worker. Service times are not measured per request: each
request costs what the measured :class:`mtrec.serving.cascade.StageCosts` say for its candidate
count and chosen depth. The clock is therefore simulated, so a run is exact, reproducible and
takes milliseconds; the price is the assumption that a stage costs the same under load as when
it was timed alone (no cache or CPU-frequency effects, no interference from other processes).

Policies choose each request's depth: :class:`FixedPolicy` (teacher only, student only, or a
fixed cascade depth) or :class:`AdaptivePolicy` (a :class:`mtrec.serving.budget.DepthController`
that sees the request's wait and the queue behind it).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec.checks import check_float, check_int, check_nonempty
from mtrec.serving.budget import DepthController
from mtrec.serving.cascade import StageCosts


def poisson_arrivals(
    rate_per_s: float, num: int, *, seed: int = 0, max_s: float | None = None
) -> np.ndarray:
    """(n,) arrival times in ms of a Poisson process, n = ``num`` (fewer if ``max_s`` cuts it).

    Args:
        rate_per_s: mean arrivals per second, > 0.
        num: how many requests to draw, >= 1 (the bound on the simulation's size).
        seed: seeds the exponential inter-arrival gaps.
        max_s: optional horizon in simulated seconds; later arrivals are dropped.
    """
    if isinstance(rate_per_s, bool) or not isinstance(rate_per_s, numbers.Real):
        raise TypeError(f"rate_per_s must be a number of requests per second, got {rate_per_s!r}")
    if not np.isfinite(rate_per_s) or rate_per_s <= 0:
        raise ValueError(
            f"rate_per_s must be a positive number of requests per second, got {rate_per_s}; "
            "pass e.g. 0.25-4 times the measured capacity"
        )
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num must be an int >= 1 (requests to simulate), got {num!r}")
    check_int(seed, "seed", min=0)
    if max_s is not None:
        max_s = check_float(max_s, "max_s")
    gaps = np.random.default_rng(seed).exponential(1000.0 / rate_per_s, size=int(num))
    arrivals = np.cumsum(gaps)  # (n,) ms
    if max_s is not None:
        if max_s <= 0:
            raise ValueError(f"max_s must be > 0 simulated seconds, got {max_s}")
        arrivals = arrivals[arrivals <= 1000.0 * max_s]
    return arrivals


@dataclass(frozen=True)
class FixedPolicy:
    """The same depth for every request.

    ``depth=None`` re-scores every candidate; with ``teacher_only=True`` there is no student
    stage at all (the plain teacher ranking, the baseline).
    """

    name: str
    depth: int | None  # cascade depth N; None = all candidates
    teacher_only: bool = False

    needs_queue = False

    def __post_init__(self) -> None:
        if self.depth is not None:
            check_int(self.depth, "depth", min=0)

    def choose(self, num_candidates: int, **_: object) -> int:  # the queue is not consulted
        """The depth: fixed, clipped to the candidate count."""
        check_int(num_candidates, "num_candidates", min=0)
        return num_candidates if self.depth is None else min(self.depth, num_candidates)

    def service_ms(self, costs: StageCosts, num_candidates: int, depth: int) -> float:
        """Simulated milliseconds of one request."""
        if self.teacher_only:
            return float(costs.teacher_only_ms(num_candidates))
        return float(costs.request_ms(num_candidates, depth))


@dataclass(frozen=True)
class AdaptivePolicy:
    """A depth per request from a :class:`DepthController` (wait, queue, scenario)."""

    name: str
    controller: DepthController

    needs_queue = True

    def __post_init__(self) -> None:
        if not isinstance(self.controller, DepthController):
            raise TypeError(f"controller must be a DepthController, got {self.controller!r}")

    def choose(self, num_candidates: int, **state: object) -> int:
        """The controller's depth for this request."""
        return self.controller.choose(num_candidates, **state)

    def service_ms(self, costs: StageCosts, num_candidates: int, depth: int) -> float:
        """Simulated milliseconds of one request."""
        return float(costs.request_ms(num_candidates, depth))


@dataclass
class SimResult:
    """Per request (n,): arrival, start and finish times in ms, latency, depth."""

    arrival_ms: np.ndarray
    start_ms: np.ndarray
    finish_ms: np.ndarray
    depth: np.ndarray

    @property
    def latency_ms(self) -> np.ndarray:
        """(n,) queueing + service time."""
        return self.finish_ms - self.arrival_ms

    def summary(self, slo_ms: float) -> dict[str, float]:
        """p50 / p99 latency, fraction within ``slo_ms``, mean depth, worker utilisation."""
        slo_ms = check_float(slo_ms, "slo_ms", min=0.0)
        check_nonempty(self.arrival_ms, "the simulation result", fix="simulate at least 1 request")
        lat = self.latency_ms
        busy = float((self.finish_ms - self.start_ms).sum())
        span = float(self.finish_ms.max() - self.arrival_ms.min())
        return {
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "within_slo": float((lat <= slo_ms + 1e-9).mean()),
            "mean_depth": float(self.depth.mean()),
            "utilisation": busy / span if span > 0 else 0.0,
        }


def simulate(
    arrivals_ms: np.ndarray,
    num_candidates: np.ndarray,
    costs: StageCosts,
    policy: FixedPolicy | AdaptivePolicy,
    *,
    scenarios: Sequence[str] | None = None,
) -> SimResult:
    """Serve ``n`` requests in arrival order on one worker, on the simulated clock.

    Args:
        arrivals_ms: (n,) non-decreasing arrival times.
        num_candidates: (n,) candidates C of each request.
        costs: the measured stage costs that set every service time.
        policy: chooses each request's depth.
        scenarios: optional (n,) scenario name of each request (for per-scenario budgets).
    """
    if not isinstance(costs, StageCosts):
        raise TypeError(f"costs must be StageCosts (see measure_costs), got {costs!r}")
    if not isinstance(policy, (FixedPolicy, AdaptivePolicy)):
        raise TypeError(f"policy must be a FixedPolicy or AdaptivePolicy, got {policy!r}")
    try:
        arrivals = np.asarray(arrivals_ms, float)
        raw = np.asarray(num_candidates)
        if raw.dtype.kind not in "iubf":
            raise TypeError(f"num_candidates must be whole counts, got dtype {raw.dtype}")
        cands = raw.astype(np.int64) if raw.dtype.kind in "iub" else np.asarray(raw, float)
    except ValueError:
        raise TypeError("arrivals_ms and num_candidates must be arrays of numbers") from None
    if arrivals.ndim != 1 or not np.isfinite(arrivals).all():
        raise ValueError(f"arrivals_ms must be a 1-D array of finite times, got {arrivals_ms!r}")
    if cands.dtype.kind == "f":
        whole = np.isfinite(cands) & (cands == np.round(cands)) & (np.abs(cands) < 2**53)
        if not whole.all():
            raise ValueError(f"num_candidates must be whole counts, got {num_candidates!r}")
        cands = cands.astype(np.int64)
    if scenarios is not None and isinstance(scenarios, (str, bytes)):
        raise TypeError(f"scenarios must be a list of names, one per request, got {scenarios!r}")
    n = len(arrivals)
    if n == 0 or cands.shape != (n,) or (scenarios is not None and len(scenarios) != n):
        raise ValueError(
            f"need n >= 1 arrivals and one candidate count (and scenario) per request, got "
            f"{n} arrivals, {cands.shape} candidate counts, "
            f"{None if scenarios is None else len(scenarios)} scenarios"
        )
    if np.any(np.diff(arrivals) < 0) or np.any(cands < 1):
        raise ValueError("arrivals must be sorted and every request needs >= 1 candidate")
    if not policy.needs_queue:  # depths and service times are known up front: Lindley's recursion
        depth = np.array([policy.choose(int(c)) for c in cands], np.int64)
        service = [policy.service_ms(costs, int(c), int(d)) for c, d in zip(cands, depth)]
        start_list, free = [], -np.inf
        for a, s in zip(arrivals.tolist(), service):
            start_list.append(max(a, free))
            free = start_list[-1] + s
        start = np.asarray(start_list)
        return SimResult(arrivals, start, start + np.asarray(service), depth)
    start, finish = np.empty(n), np.empty(n)
    depth = np.empty(n, np.int64)
    min_ms = costs.request_ms(cands, 0)  # (n,) the student-only cost of every request
    free = -np.inf  # when the worker is next free
    for i in range(n):  # one step per request of the simulated clock (not a forward pass)
        start[i] = max(arrivals[i], free)
        last = int(np.searchsorted(arrivals, start[i], side="right"))  # arrived by start
        depth[i] = policy.choose(
            int(cands[i]),
            wait_ms=start[i] - arrivals[i],
            queued_waits_ms=start[i] - arrivals[i + 1 : last],
            queued_min_ms=min_ms[i + 1 : last],
            scenario=None if scenarios is None else scenarios[i],
        )
        finish[i] = start[i] + policy.service_ms(costs, int(cands[i]), int(depth[i]))
        free = finish[i]
    return SimResult(arrival_ms=arrivals, start_ms=start, finish_ms=finish, depth=depth)


def load_sweep(
    policies: Sequence[FixedPolicy | AdaptivePolicy],
    rates_per_s: Sequence[float],
    num_candidates: np.ndarray,
    costs: StageCosts,
    *,
    slo_ms: float,
    scenarios: Sequence[str] | None = None,
    seed: int = 0,
    max_s: float | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, float], SimResult]]:
    """Every policy at every arrival rate, on the same arrivals and requests per rate.

    Request i of every run is the same replayed request (its candidate count and scenario come
    from position i of ``num_candidates`` / ``scenarios``, which also bound the count).

    Returns:
        One row per (policy, rate) with :meth:`SimResult.summary`, and the raw results.
    """
    check_nonempty(policies, "policies", fix="pass at least one FixedPolicy/AdaptivePolicy")
    check_nonempty(rates_per_s, "rates_per_s", fix="pass at least one arrival rate")
    names = [getattr(p, "name", None) for p in policies]
    if len(set(names)) < len(names):
        raise ValueError(f"policy names must be distinct (they key the results), got {names}")
    slo_ms = check_float(slo_ms, "slo_ms", min=0.0)
    rows, runs = [], {}
    for r, rate in enumerate(rates_per_s):
        arrivals = poisson_arrivals(rate, len(num_candidates), seed=seed + r, max_s=max_s)
        n = len(arrivals)
        for policy in policies:
            result = simulate(arrivals, num_candidates[:n], costs, policy,
                              scenarios=None if scenarios is None else scenarios[:n])  # fmt: skip
            runs[(policy.name, rate)] = result
            rows.append({"policy": policy.name, "rate_per_s": rate, "requests": n,
                         **result.summary(slo_ms)})  # fmt: skip
    return pd.DataFrame(rows), runs
