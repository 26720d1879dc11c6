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


def test_ceiling_goals_use_the_best_train_fraction():
    env = bench.environment(torch.device("cpu"), "")
    timing = bench.Timing([1.0, 2.0], 10.0, 8)
    rows = [
        bench.row(
            env,
            model="mmoe",
            precision="fp32",
            batch_size=b,
            phase="train",
            timing=timing,
            gflops=g,
            ceiling=10.0,
        )
        for b, g in ((8, 2.0), (64, 6.0))
    ]
    rows.append(
        bench.row(
            env,
            model="mmoe",
            precision="fp32",
            batch_size=64,
            phase="inference",
            timing=timing,
            gflops=9.0,
            ceiling=10.0,
        )
    )
    (goal,) = bench.ceiling_goals(rows, torch.device("cpu"))
    assert goal["measured"] == pytest.approx(0.6) and goal["met"] == "yes"
    assert "batch 64" in goal["detail"]
