"""Goal rows: met, not met or not available; the compare-builds helper; ceiling goals."""

import pytest
import torch

from mtrec import bench


def test_goal_rows_say_met_not_met_or_not_available():
    cpu = torch.device("cpu")
    assert bench.goal_row("g", "multitask", cpu, 2.5, 2.0, "")["met"] == "yes"
    assert bench.goal_row("g", "multitask", cpu, 1.5, 2.0, "")["met"] == "no"
    assert bench.goal_row("g", "routing", cpu, 1.2, 1.5, "", lower_is_better=True)["met"] == "yes"
    assert bench.goal_row("g", "multitask", cpu, None, 2.0, "")["met"] == "not available"
    assert (
        bench.goal_row("g", "multitask", cpu, 2.5, 2.0, "")["kind"] == "multitask"
    )  # goals.csv column


@pytest.mark.parametrize(("target", "met"), [(0.0, "yes"), (1e9, "no")])
def test_compare_goal_times_both_builds_and_judges_their_ratio(cpu_context, toy_built, target, met):
    builders = {"ours": lambda: toy_built(8), "theirs": lambda: toy_built(8)}
    rows, goal = bench.compare_goal(
        "toy / toy",
        "multitask",
        builders,
        ours="ours",
        theirs="theirs",
        target=target,
        detail="{ours:.1f} vs {theirs:.1f}",
        phase="train",
        batch_size=8,
        ctx=cpu_context,
    )
    by_name = {r["model"]: r for r in rows}
    assert sorted(by_name) == ["ours", "theirs"]
    assert all(r["batch_size"] == 8 and r["phase"] == "train" for r in rows)
    ours, theirs = by_name["ours"]["samples_per_s"], by_name["theirs"]["samples_per_s"]
    assert goal["measured"] == pytest.approx(round(ours / theirs, 3))
    assert goal["met"] == met and goal["target"] == f">= {target:g}"
    assert goal["detail"] == f"{ours:.1f} vs {theirs:.1f}"


def test_ceiling_goals_time_the_best_batch_beside_the_matmul(cpu_context, monkeypatch):
    env = bench.environment(torch.device("cpu"), "")
    timing = bench.Timing([1.0, 2.0], 10.0, 8)
    rows = [
        bench.row(
            env,
            model="mmoe",
            precision="fp32",
            batch_size=b,
            phase=phase,
            timing=timing,
            gflops=g,
            ceiling=10.0,
        )
        for b, g, phase in (
            (8, 2.0, "train"),
            (16, 6.0, "train"),
            (64, 4.0, "train"),
            (4, 9.0, "inference"),
        )
    ]
    timed = []
    fresh = iter([0.52, 0.47, 0.49])  # the chosen batch's three passes

    def beside(case, batch_size, flops_per_step, ctx):  # what the matmul alternation would give
        timed.append((case.name, batch_size, flops_per_step))
        fraction = {16: 0.40, 64: 0.45}[batch_size] if len(timed) <= 2 else next(fresh)
        return {"fraction": fraction, "gflops": 90 * fraction, "matmul_gflops": 90, "repeats": 8}

    monkeypatch.setattr(bench.goals, "ceiling_beside_matmul", beside)
    (goal,) = bench.ceiling_goals(rows, cpu_context)
    # the two best train rows (batches 16 and 64; not 8, not the inference row) are timed again,
    # each with its FLOPs per step (GFLOP/s x median ms of its row); the better one (64) is then
    # timed in three fresh passes and the median pass counts
    assert (
        timed
        == [("mmoe", 16, pytest.approx(9e6)), ("mmoe", 64, pytest.approx(6e6))]
        + [("mmoe", 64, pytest.approx(6e6))] * bench.goals.CEILING_PASSES
    )
    assert goal["measured"] == 0.49 and goal["met"] == "no" and goal["target"] == ">= 0.5"
    assert "44.1 GFLOP/s at batch 64 against the matmul's 90" in goal["detail"]
    assert "3 passes (0.520, 0.470, 0.490; the target lies among them)" in goal["detail"]
    assert bench.goal_passes(goal["detail"]) == (0.52, 0.47, 0.49)
    assert "batch 16 0.400, batch 64 0.450" in goal["detail"]
    assert "best-of ceiling 0.400" in goal["detail"]


def test_ceiling_goals_say_nothing_of_the_target_when_every_pass_agrees(cpu_context, monkeypatch):
    env = bench.environment(torch.device("cpu"), "")
    timing = bench.Timing([1.0, 2.0], 10.0, 8)
    rows = [bench.row(env, model="star", precision="fp32", batch_size=64, phase="train",
                      timing=timing, gflops=2.0, ceiling=10.0)]  # fmt: skip
    fractions = iter([0.2, 0.21, 0.19, 0.22])

    def beside(case, batch_size, flops_per_step, ctx):
        f = next(fractions)
        return {"fraction": f, "gflops": 90 * f, "matmul_gflops": 90, "repeats": 8}

    monkeypatch.setattr(bench.goals, "ceiling_beside_matmul", beside)
    (goal,) = bench.ceiling_goals(rows, cpu_context)
    assert goal["measured"] == 0.21 and goal["met"] == "no" and goal["target"] == ">= 0.3"
    assert "3 passes (0.210, 0.190, 0.220)" in goal["detail"]
    assert "target lies" not in goal["detail"]
    assert bench.goal_passes(goal["detail"]) == (0.21, 0.19, 0.22)
    assert bench.goal_passes("an older row without passes") == ()


def test_ceiling_beside_matmul_divides_the_two_medians(cpu_context, toy_case):
    beside = bench.ceiling_beside_matmul(toy_case, 16, 1e6, cpu_context)
    assert beside["repeats"] >= 3 and beside["gflops"] > 0 and beside["matmul_gflops"] > 0
    assert beside["fraction"] == pytest.approx(beside["gflops"] / beside["matmul_gflops"])


def test_ceiling_targets_follow_the_model():
    assert bench.ceiling_target("mmoe") == bench.ceiling_target("ple") == 0.5
    assert bench.ceiling_target("star") == 0.3
    assert bench.ceiling_target("sasrec") == bench.ceiling_target("encoder-decoder") == 0.35


def test_median_pass_names_the_middle_pass_and_a_target_among_the_passes():
    assert bench.median_pass([0.52, 0.47, 0.49], 0.5) == (
        2,
        "the median of 3 passes (0.520, 0.470, 0.490; the target lies among them)",
    )
    # lower is better: met at or below the target; one pass at it and one above straddle it
    middle, note = bench.median_pass([0.068, -0.003, 0.02], 0.02, lower_is_better=True)
    assert middle == 2 and note.endswith("; the target lies among them)")
    assert bench.goal_passes(note) == (0.068, -0.003, 0.02)
    assert bench.median_pass([0.01, 0.02], 0.02, lower_is_better=True)[1].endswith("0.020)")
    with pytest.raises(ValueError, match="at least one pass"):
        bench.median_pass([], 0.5)
