"""mtrec.bench.profile: the profiles and layouts behind notebook 10, section 4."""

import math

from mtrec.bench import student_case
from mtrec.bench.profile import bottleneck, profile_cases, profile_train_step, star_layouts


def test_a_profiled_step_splits_its_time_into_matmuls_and_the_rest(capfd):
    result = profile_train_step(student_case(), 8)
    assert 0.0 < result["matmul share"] < 1.0
    assert result["top other ops"].count("%") == 3
    assert "USDT" not in capfd.readouterr().err  # the profiler's own log lines stay silent


def test_every_profiled_model_names_a_case_and_a_batch():
    cases = profile_cases()
    assert {"mmoe", "star", "distilled-student", "attention-mtrec L200 D64 H2"} <= set(cases)
    assert all(batch >= 1 for _, batch in cases.values())


def test_the_verdict_follows_the_ceiling_then_the_profile():
    assert bottleneck(0.6, None).startswith("compute-bound")
    assert bottleneck(0.2, float("nan")) == "not profiled"
    assert bottleneck(0.2, 0.3, "sqrt 15%") == "memory-bound / overhead: sqrt 15%"
    assert bottleneck(0.2, 0.8).startswith("matmuls below")
    assert bottleneck(0.2, 0.8, "threshold_backward 9%").endswith(
        "; the rest: threshold_backward 9%"
    )


def test_star_layouts_time_both_layouts_of_the_same_layer():
    table = star_layouts(scenarios=(2, 4), batch_size=32, width=8, repeats=3, budget_s=0.1)
    assert list(table.S) == [2, 4]
    assert (table["grouped ms"] > 0).all() and (table["per-row ms"] > 0).all()
    ratio = table["per-row ms"] / table["grouped ms"]
    assert all(math.isclose(a, b) for a, b in zip(ratio, table["per-row / grouped"]))
