"""Self-check for notebook 10: the p50 and p90 of per-step timings, after the warm-up.

The student writes ``step_percentiles(times_ms, warmup) -> (p50, p90)``: ``times_ms`` holds the
wall time of every step in milliseconds, in the order they ran (a 1-D numpy array), ``warmup`` how
many of the first steps are warm-up and must be left out. p50 is the median, p90 the 90th
percentile with numpy's default (linear) interpolation, as in :mod:`mtrec.bench.timing`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtrec.exercises._harness import Case, run_cases


def reference_step_percentiles(times_ms: np.ndarray, warmup: int) -> tuple[float, float]:
    """(p50, p90) in ms of the steps after the first ``warmup``."""
    timed = np.asarray(times_ms, dtype=float)[warmup:]
    return float(np.percentile(timed, 50)), float(np.percentile(timed, 90))


def _warmup_kept(times_ms, warmup):
    return reference_step_percentiles(times_ms, 0)


def _mean_not_median(times_ms, warmup):
    timed = np.asarray(times_ms, dtype=float)[warmup:]
    return float(timed.mean()), float(np.percentile(timed, 90))


def _max_not_p90(times_ms, warmup):
    timed = np.asarray(times_ms, dtype=float)[warmup:]
    return float(np.percentile(timed, 50)), float(timed.max())


def _swapped(times_ms, warmup):
    p50, p90 = reference_step_percentiles(times_ms, warmup)
    return p90, p50


DIAGNOSES = (
    (_warmup_kept, "the warm-up steps were kept: slice them off first (times_ms[warmup:])"),
    (_mean_not_median, "p50 is the median (np.percentile(x, 50)), not the mean: one slow step "
     "drags the mean"),
    (_max_not_p90, "p90 is np.percentile(x, 90), not the slowest step"),
    (_swapped, "return (p50, p90) in that order"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded): a slow first step, an outlier, an odd and an even count."""
    rng = np.random.default_rng(10)
    steady = 5.0 + rng.random(20)  # (20,) ms, a steady state of 5-6 ms
    specs = [
        ("a slow first step, warmup=1", np.array([40.0, 6.0, 5.0, 7.0, 5.5, 6.5]), 1,
         "drop the warm-up step, then take the median and the 90th percentile"),
        ("two warm-up steps and one outlier", np.concatenate([[90.0, 30.0], steady, [25.0]]), 2,
         "np.percentile(x, 50) and np.percentile(x, 90) of times_ms[warmup:]"),
        ("no warm-up, an even count", steady[:10].copy(), 0,
         "with an even count the median is the mean of the two middle values"),
    ]  # fmt: skip
    return [
        Case(name, {"times_ms": t, "warmup": w}, reference_step_percentiles(t, w), hint, DIAGNOSES)
        for name, t, w, hint in specs
    ]


def check_step_percentiles(student: Callable[..., tuple[float, float]]) -> bool:
    """Check ``student(times_ms, warmup) -> (p50, p90)``."""
    return run_cases("p50 and p90 of timed steps", student, cases())
