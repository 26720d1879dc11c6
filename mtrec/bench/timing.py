"""Timers: warm-up, CUDA-aware synchronize, per-step wall times and their percentiles.

How a step is timed (the same for every model): ``warmup`` untimed steps first (allocator, thread
pool, cuDNN/oneDNN autotuning, lazy init); each timed step ends with
:func:`mtrec.utils.synchronize` (a no-op on CPU; on CUDA the kernels are queued asynchronously and
the clock would otherwise stop before they ran); the median (p50) and p90 of the per-step wall
times; samples/s = batch size / p50. Peak memory: ``torch.cuda.max_memory_allocated`` on GPU; on
CPU the process resident set size (RSS) sampled after every step: it includes everything the
process holds (Python, earlier cases), so it is an upper bound for the case.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtrec.utils import synchronize

SEED = 0  # every benchmark input and model is drawn from it


def rss_mb() -> float:
    """Current resident set size of this process in MiB (peak RSS when psutil is absent)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # ru_maxrss is KiB on Linux, bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@dataclass
class Timing:
    """Per-step wall times (ms) of one case and its peak memory (MiB)."""

    times_ms: list[float]
    peak_mem_mb: float
    batch_size: int

    @property
    def ms_p50(self) -> float:
        return float(np.percentile(self.times_ms, 50))

    @property
    def ms_p90(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / (self.ms_p50 / 1e3)


@dataclass
class Settings:
    """How hard to measure: ``--quick`` lowers repeats and per-case budgets."""

    quick: bool = False
    warmup: int = 3
    repeats: int = 10
    case_budget_s: float = 3.0

    @classmethod
    def from_quick(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick=True, warmup=1, repeats=5, case_budget_s=0.8)
        return cls()


def _timed_ms(step: Callable[[], Any], device: torch.device) -> float:
    """Wall time of one call of ``step`` in ms, its queued CUDA kernels included."""
    t0 = time.perf_counter()
    step()
    synchronize(device)
    return (time.perf_counter() - t0) * 1e3


def time_steps(
    step: Callable[[], Any],
    *,
    device: torch.device,
    batch_size: int,
    warmup: int = 3,
    repeats: int = 10,
    budget_s: float | None = None,
    min_repeats: int = 3,
) -> Timing:
    """Time ``step()`` properly: warm-up, synchronize after each step (CUDA only), percentiles.

    Args:
        step: one training or inference step (no arguments).
        device: where the step's kernels run; :func:`mtrec.utils.synchronize` waits for them.
        batch_size: samples per step, for samples/s.
        warmup: untimed steps first.
        repeats: timed steps.
        budget_s: stop timing after this many seconds (but only after ``min_repeats`` steps).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    synchronize(device)
    times: list[float] = []
    peak = 0.0
    started = time.perf_counter()
    for i in range(repeats):
        times.append(_timed_ms(step, device))
        if not cuda:
            peak = max(peak, rss_mb())
        if (
            budget_s is not None
            and i + 1 >= min_repeats
            and time.perf_counter() - started > budget_s
        ):
            break
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    return Timing(times, peak, batch_size)


def time_interleaved(
    steps: dict[str, Callable[[], Any]],
    *,
    device: torch.device,
    batch_size: int,
    warmup: int,
    repeats: int,
    budget_s: float,
    min_repeats: int = 3,
    block: int = 1,
    settle: int = 0,
) -> dict[str, Timing]:
    """Time several steps in alternation (A B A B ...) so that load on a shared machine hits
    every side of a comparison alike; each step's own warm-up comes first.

    ``repeats`` rounds; in each, every step runs ``settle`` untimed calls and then ``block``
    timed ones. Steps of very different kinds (a large matmul beside a model's train step) evict
    each other's caches and buffers: a block after an untimed settling call times each side in
    its own steady state, while the rounds still share the machine's load.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    started = time.perf_counter()
    for i in range(repeats):
        for name, step in steps.items():
            for _ in range(settle):
                step()
            times[name].extend(_timed_ms(step, device) for _ in range(block))
        if i + 1 >= min_repeats and time.perf_counter() - started > budget_s:
            break
    peak = rss_mb() if device.type == "cpu" else torch.cuda.max_memory_allocated(device) / 2**20
    return {name: Timing(t, peak, batch_size) for name, t in times.items()}
