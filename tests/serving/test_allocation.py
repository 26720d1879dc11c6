"""The quality-per-depth table of notebook 14 agrees with the cascade scorer, on tiny models."""

import numpy as np
import pytest
import torch

from mtrec.models import MMoE, MMoEConfig, StudentConfig, StudentMLP
from mtrec.serving.allocation import DepthQuality, FeatureTables, depth_quality, user_scenarios
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
