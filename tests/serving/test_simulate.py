"""The load simulation: Poisson arrivals, a single-worker FIFO queue on a simulated clock, and
the adaptive controller that never exceeds its budget there."""

import numpy as np
import pytest

from mtrec.serving.budget import DepthController
from mtrec.serving.cascade import StageCosts
from mtrec.serving.simulate import (
    AdaptivePolicy,
    FixedPolicy,
    load_sweep,
    poisson_arrivals,
    simulate,
)

COSTS = StageCosts(overhead_ms=0.2, student_fixed_ms=0.1, student_ms=0.001, teacher_fixed_ms=0.1,
                   teacher_ms=0.02)  # fmt: skip
DEPTHS = [0, 10, 20, 50, 100, 200, 400, 800, 1600]


def test_poisson_arrivals_are_seeded_sorted_and_bounded():
    a = poisson_arrivals(100.0, 5000, seed=3)
    assert np.array_equal(a, poisson_arrivals(100.0, 5000, seed=3))
    assert np.all(np.diff(a) > 0) and len(a) == 5000
    assert 9.5 < np.diff(a).mean() < 10.5  # mean gap 1000 / rate ms
    assert poisson_arrivals(100.0, 5000, seed=3, max_s=1.0).max() <= 1000.0


@pytest.mark.parametrize("rate", [-1.0, 0.0, float("nan")])
def test_bad_rates_raise(rate):
    with pytest.raises(ValueError, match="rate_per_s must be a positive number"):
        poisson_arrivals(rate, 10)


def test_bad_counts_raise():
    with pytest.raises(ValueError, match="num must be an int >= 1"):
        poisson_arrivals(1.0, 0)
    with pytest.raises(ValueError, match="one candidate count"):
        simulate(np.array([0.0, 1.0]), np.array([10]), COSTS, FixedPolicy("s", 0))


def test_fifo_queue_by_hand():
    # two requests 1 ms apart, each 3 ms of teacher-only service: the second waits 2 ms
    costs = StageCosts(overhead_ms=1.0, student_fixed_ms=0.0, student_ms=0.0,
                       teacher_fixed_ms=0.0, teacher_ms=0.02)  # fmt: skip
    result = simulate(np.array([0.0, 1.0, 10.0]), np.array([100, 100, 100]), costs,
                      FixedPolicy("teacher", None, teacher_only=True))  # fmt: skip
    np.testing.assert_allclose(result.latency_ms, [3.0, 5.0, 3.0])
    np.testing.assert_allclose(result.start_ms, [0.0, 3.0, 10.0])
    assert result.depth.tolist() == [100, 100, 100]
    summary = result.summary(slo_ms=4.0)
    assert summary["within_slo"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("load", [0.5, 2.0, 4.0])
def test_the_controller_never_exceeds_its_budget(load):
    candidates = np.random.default_rng(0).integers(900, 1600, size=3000)
    teacher_ms = float(COSTS.teacher_only_ms(candidates).mean())
    slo = 3 * teacher_ms
    arrivals = poisson_arrivals(load * 1000 / teacher_ms, len(candidates), seed=1)
    policy = AdaptivePolicy("adaptive", DepthController(COSTS, slo, depths=DEPTHS))
    result = simulate(arrivals, candidates, COSTS, policy)
    served_deep = result.depth > 0
    assert served_deep.any()
    assert np.all(result.latency_ms[served_deep] <= slo + 1e-9)  # a cascade never breaks the SLO
    assert result.summary(slo)["within_slo"] == 1.0  # here the student alone always fits


def test_sweep_compares_policies_on_the_same_arrivals():
    candidates = np.full(500, 1000)
    teacher = FixedPolicy("teacher only", None, teacher_only=True)
    student = FixedPolicy("student only", 0)
    frame, runs = load_sweep([teacher, student], [10.0, 40.0], candidates, COSTS, slo_ms=100.0)
    assert len(frame) == 4 and set(frame.policy) == {"teacher only", "student only"}
    a, b = runs[("teacher only", 40.0)], runs[("student only", 40.0)]
    assert np.array_equal(a.arrival_ms, b.arrival_ms)
    assert (frame.groupby("policy").p99_ms.max()["student only"]
            < frame.groupby("policy").p99_ms.max()["teacher only"])  # fmt: skip
