"""mtrec.experiments.allocation (notebook 14's study): the quality-per-depth table agrees with
the cascade scorer, the depth caps with the budget table, and the experiment runs end to end."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.experiments import allocation as experiment
from mtrec.experiments.allocation_study import (
    DepthQuality,
    FeatureTables,
    depth_quality,
    user_scenarios,
)
from mtrec.models import MMoE, MMoEConfig, StudentConfig, StudentMLP
from mtrec.serving.budget import BudgetTable
from mtrec.serving.cascade import CascadeScorer

pytestmark = pytest.mark.usefixtures("one_thread")
DEPTHS = [0, 3, 10, 29]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    teacher, student = MMoE(MMoEConfig.tiny()), StudentMLP(StudentConfig.tiny())
    tables = FeatureTables(
        user={"user": torch.arange(20), "user_id": torch.arange(20)},
        item={"item_id": torch.arange(30), "item": torch.arange(30), "dense": torch.randn(30, 2)},
    )  # 29 items, ids 1..29
    seen = {u: np.array([u, u + 1, u + 2]) for u in range(1, 6)}
    targets = {u: 10 + u for u in range(1, 6)}
    return teacher.eval(), student.eval(), tables, seen, targets


def test_depth_quality_matches_the_cascade_scorer(setup):
    teacher, student, tables, seen, targets = setup
    users, tasks = [1, 2, 3, 4, 5], torch.ones(5, 2, dtype=torch.bool)
    quality = depth_quality(teacher, student, tables, users, seen=seen, targets=targets,
                            tasks=tasks, depths=DEPTHS, k=5, chunk=2)  # fmt: skip
    np.testing.assert_allclose(quality.agreement[:, -1], 1.0)  # depth >= C: the teacher's list
    np.testing.assert_allclose(quality.held_out[:, -1], quality.teacher_held_out)
    scorer = CascadeScorer(student, teacher)
    for row, u in enumerate(users):
        candidates = torch.tensor(sorted(set(range(1, 30)) - set(seen[u].tolist())))  # (C,)
        batch = tables.batch(torch.full_like(candidates, u), candidates)
        teacher_top = candidates[scorer.rank(batch, len(candidates))[:5]]
        for col, depth in enumerate(DEPTHS):
            top = candidates[scorer.rank(batch, min(depth, len(candidates)))[:5]]
            hits = np.isin(top.numpy(), teacher_top.numpy())
            expected = (hits / np.log2(np.arange(2, 7))).sum() / (
                1 / np.log2(np.arange(2, 7))
            ).sum()
            assert quality.agreement[row, col] == pytest.approx(expected, abs=1e-6)


def test_lookup_maps_depths_to_the_grid():
    q = DepthQuality(depths=np.array([0, 10, 100]), agreement=np.array([[0.5, 0.9, 1.0]]),
                     held_out=np.array([[0.0, 0.1, 0.2]]), teacher_held_out=np.array([0.2]))  # fmt: skip
    agree, held = q.lookup(np.array([0, 0, 0]), np.array([0, 10, 80]), np.array([80, 80, 80]))
    assert agree.tolist() == [0.5, 0.9, 1.0] and held.tolist() == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="not on the grid"):
        q.lookup(np.array([0]), np.array([5]), np.array([80]))


def test_user_scenarios_are_the_histories_majority():
    item_scenario = torch.tensor([0, 0, 1, 1, 2])  # item id → scenario id
    assert user_scenarios(
        {7: np.array([1, 2, 3]), 8: np.array([4])}, item_scenario, [7, 8]
    ).tolist() == [1, 2]


def test_depth_caps_follow_the_budget_tables_rule():
    rng = np.random.default_rng(0)
    for _ in range(20):
        curves = {s: dict(zip(experiment.DEPTHS, np.sort(rng.uniform(0.9, 1.0, 9)).tolist()))
                  for s in experiment.SCENARIOS}  # fmt: skip
        caps = experiment.depth_caps(curves, 0.98)
        table = BudgetTable.from_quality(curves, experiment.TASK_TABLE, all_tasks=("watch", "like"),
                                         target=0.98)  # fmt: skip
        assert caps == {s: table.max_depth(s) for s in experiment.SCENARIOS}


def test_policy_depths_clip_to_the_candidates():
    num_candidates = np.array([30, 1600, 1600])
    scenarios = ["family", "drama", "comedy"]
    caps = {"family": 50, "drama": 20, "comedy": None}
    depths = {p: experiment.policy_depths(p, num_candidates, scenarios, caps).tolist()
              for p in experiment.POLICIES}  # fmt: skip
    assert depths == {"teacher only": [30, 1600, 1600], "student only": [0, 0, 0],
                      "cascade N=50": [30, 50, 50], "cascade N=400": [30, 400, 400],
                      "adaptive (SLO + budgets)": [30, 20, 1600]}  # fmt: skip
    assert experiment.result_name("adaptive (SLO + budgets)") == (
        "cascade-adaptive-SLO-and-budgets@2x-load"
    )


def test_policy_rows_are_tidy():
    quality = DepthQuality(depths=np.array(experiment.DEPTHS),
                           agreement=np.linspace(0.5, 1.0, 9)[None].repeat(4, 0),
                           held_out=np.zeros((4, 9)), teacher_held_out=np.zeros(4))  # fmt: skip
    rows = experiment.policy_rows(quality, np.array([2, 3, 3]), np.array([1600, 1600, 1600]),
                                  ["drama", "drama", "family"], {"drama": 20, "family": 10})  # fmt: skip
    assert list(rows.columns) == ["model", "metric", "value"] and len(rows) == 10
    assert set(rows.metric) == {"ndcg@10", "ndcg@10_vs_teacher"}
    by = rows.set_index(["model", "metric"]).value
    assert by["cascade-teacher-only@2x-load", "ndcg@10_vs_teacher"] == 1.0
    assert by["cascade-student-only@2x-load", "ndcg@10_vs_teacher"] == 0.5


@pytest.mark.slow
def test_main_runs_one_tiny_seed_and_writes_nothing(monkeypatch, capsys):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    threads = torch.get_num_threads()
    try:
        table = experiment.main(["--seeds", "0", "--teacher-epochs", "1", "--student-epochs", "1",
                                 "--transfer-size", "100", "--eval-users", "6",
                                 "--requests", "20"])  # fmt: skip
        assert torch.get_num_threads() == 1  # the recorded rows were measured on one thread
    finally:
        torch.set_num_threads(threads)
    assert "written to nowhere" in capsys.readouterr().out
    assert isinstance(table, pd.DataFrame) and len(table) == 10
    assert set(table.model) == {experiment.result_name(p) for p in experiment.POLICIES}
    assert set(table.dataset) == {"ml-100k"} and set(table.task) == {"top10_leave_last_out"}
    assert table.value.between(0, 1).all() and set(table.seeds) == {1}


def test_options_are_checked():
    with pytest.raises(SystemExit):
        experiment.main(["--eval-users", "many"])
    with pytest.raises(ValueError, match="eval-users"):
        experiment.run_seed(
            0,
            experiment.runner.build_parser(experiment.EXPERIMENT).parse_args(["--eval-users", "2"]),
        )
