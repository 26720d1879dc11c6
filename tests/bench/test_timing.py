"""The timing protocol: warm-up, one time per repeat, the budget, interleaving.

Correctness only: no assertion here depends on how fast anything ran (speed lives in the tables).
"""

import pytest
import torch

from mtrec import bench


def test_time_steps_warms_up_then_times_each_repeat():
    calls = []
    timing = bench.time_steps(
        lambda: calls.append(1), device=torch.device("cpu"), batch_size=32, warmup=2, repeats=5
    )
    assert len(calls) == 7 and len(timing.times_ms) == 5
    assert timing.ms_p50 <= timing.ms_p90
    assert timing.samples_per_s == pytest.approx(32 / (timing.ms_p50 / 1e3))
    assert timing.peak_mem_mb > 0
    with pytest.raises(ValueError, match="repeats"):
        bench.time_steps(lambda: None, device=torch.device("cpu"), batch_size=1, repeats=0)


def test_time_steps_stops_at_the_budget_after_min_repeats():
    timing = bench.time_steps(
        lambda: None,
        device=torch.device("cpu"),
        batch_size=1,
        warmup=0,
        repeats=1000,
        budget_s=0.0,
        min_repeats=3,
    )
    assert len(timing.times_ms) == 3
