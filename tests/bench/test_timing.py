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


def test_interleaved_blocks_settle_untimed_then_time_each_side_in_turn():
    calls: list[str] = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    timings = bench.time_interleaved(
        steps,
        device=torch.device("cpu"),
        batch_size=1,
        warmup=1,
        repeats=2,
        budget_s=60.0,
        block=3,
        settle=1,
    )
    assert [len(t.times_ms) for t in timings.values()] == [6, 6]  # 2 rounds x 3 timed
    # warm-ups first, then per round: a's settling call and block, then b's
    assert calls == ["a", "b"] + (["a"] * 4 + ["b"] * 4) * 2
