"""The cascade scorer: its two limits (N = all is the teacher, N = 0 the student), the order in
between, task masks, and the measured cost model."""

import numpy as np
import pytest
import torch

from mtrec.data.synthetic import random_batch
from mtrec.models import MMoE, MMoEConfig, StudentConfig, StudentMLP
from mtrec.serving.cascade import (
    CascadeScorer,
    StageCosts,
    cascade_order,
    measure_costs,
    task_relevance,
)

pytestmark = pytest.mark.usefixtures("one_thread")
C = 64  # candidates of one request


@pytest.fixture(scope="module")
def scorer_and_batch():
    torch.manual_seed(0)
    teacher, student = MMoE(MMoEConfig.tiny()), StudentMLP(StudentConfig.tiny())
    batch = random_batch(teacher.config.features, C, seed=0)
    batch.update(random_batch(student.config.features, C, seed=1))
    batch = {k: v for k, v in batch.items() if k not in ("labels", "scenario_ids")}
    return CascadeScorer(student, teacher), batch


def by_score(scores):
    return torch.argsort(scores, descending=True, stable=True)


def test_depth_all_is_the_teacher_ranking(scorer_and_batch):
    scorer, batch = scorer_and_batch
    teacher_order = by_score(scorer.teacher_scores(batch))
    assert torch.equal(scorer.rank(batch, C), teacher_order)


def test_depth_zero_is_the_student_ranking(scorer_and_batch):
    scorer, batch = scorer_and_batch
    assert torch.equal(scorer.rank(batch, 0), by_score(scorer.student_scores(batch)))


@pytest.mark.parametrize("depth", [1, 5, 20, C - 1])
def test_intermediate_depth_reorders_only_the_students_top_n(scorer_and_batch, depth):
    scorer, batch = scorer_and_batch
    order = scorer.rank(batch, depth)
    student = by_score(scorer.student_scores(batch))
    teacher = scorer.teacher_scores(batch)
    assert sorted(order.tolist()) == list(range(C))  # a permutation of the candidates
    assert set(order[:depth].tolist()) == set(student[:depth].tolist())
    assert torch.equal(order[depth:], student[depth:])  # the tail keeps the student's order
    head = teacher[order[:depth]]
    assert torch.all(head[:-1] >= head[1:])  # the head in the teacher's order


def test_task_mask_drops_a_task_from_the_relevance():
    logits = torch.tensor([[0.0, 2.0], [1.0, -3.0]])
    log_p = torch.nn.functional.logsigmoid(logits)
    torch.testing.assert_close(task_relevance(logits), log_p.sum(1))
    torch.testing.assert_close(task_relevance(logits, torch.tensor([True, False])), log_p[:, 0])
    with pytest.raises(ValueError, match="at least one True"):
        task_relevance(logits, torch.tensor([False, False]))
    with pytest.raises(ValueError, match=r"\(C, T\)"):
        task_relevance(logits[0])


def test_bad_depths_and_shapes_raise(scorer_and_batch):
    scorer, batch = scorer_and_batch
    with pytest.raises(ValueError, match=r"depth must be in 0\.\.64"):
        scorer.rank(batch, C + 1)
    with pytest.raises(ValueError, match="depth must be in"):
        scorer.rank(batch, -1)
    with pytest.raises(TypeError, match="depth must be an int"):
        scorer.rank(batch, 2.5)
    with pytest.raises(ValueError, match=r"teacher_scores must be \(3,\)"):
        cascade_order(torch.zeros(5), torch.zeros(2), 3)
    with pytest.raises(ValueError, match="one first dimension"):
        scorer.rank({"user": torch.zeros(3, dtype=torch.long), "item": torch.zeros(4)}, 0)


def test_stage_costs_model_and_checks():
    costs = StageCosts(overhead_ms=0.1, student_fixed_ms=0.05, student_ms=0.001,
                       teacher_fixed_ms=0.2, teacher_ms=0.02)  # fmt: skip
    np.testing.assert_allclose(costs.request_ms(100, 0), 0.1 + 0.05 + 0.1)
    np.testing.assert_allclose(costs.request_ms(100, 10), 0.25 + 0.2 + 0.2)
    np.testing.assert_allclose(costs.teacher_only_ms(100), 0.1 + 0.2 + 2.0)
    np.testing.assert_allclose(costs.request_ms(np.array([100, 100]), np.array([0, 10])),
                               [0.25, 0.65])  # fmt: skip
    with pytest.raises(ValueError, match="finite and >= 0"):
        StageCosts(overhead_ms=-1.0, student_fixed_ms=0, student_ms=0, teacher_fixed_ms=0,
                   teacher_ms=0)  # fmt: skip


def test_measure_costs_gives_finite_non_negative_costs(scorer_and_batch):
    scorer, batch = scorer_and_batch
    costs = measure_costs(scorer, batch, sizes=(8, 32, 64), repeats=3)
    assert all(np.isfinite(v) and v >= 0 for v in vars(costs).values())
    with pytest.raises(ValueError, match="sizes must hold"):
        measure_costs(scorer, batch, sizes=(8, 128), repeats=1)
