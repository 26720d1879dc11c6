"""mtrec.experiments.distillation: the teacher of notebook 09, trained once and cached."""

import pytest
import torch

from mtrec.data import SparseFeature
from mtrec.experiments.distillation import cache_teacher_rows, train_teacher
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.student import StudentConfig
from mtrec.train import distill

IDS = (SparseFeature("user_id", 20, 4), SparseFeature("item_id", 30, 4))


def _rows(n, seed, labels=True):
    g = torch.Generator().manual_seed(seed)
    out = {"user_id": torch.randint(0, 20, (n,), generator=g),
           "item_id": torch.randint(0, 30, (n,), generator=g),
           "labels": torch.randint(0, 2, (n, 2), generator=g).float()}  # fmt: skip
    if not labels:
        out["labels"] = torch.full_like(out["labels"], float("nan"))
    return out


def _teacher(seed=0):
    config = MMoEConfig(features=IDS, num_tasks=2, num_experts=2, expert_hidden=(8,),
                        tower_hidden=(4,))  # fmt: skip
    return train_teacher(config, _rows(64, 0), valid_fn=lambda m: 0.0, epochs=1, batch_size=16,
                         seed=seed)  # fmt: skip


def test_the_teacher_is_trained_reproducibly_and_returned_on_cpu_in_eval_mode():
    a, b = _teacher(), _teacher()
    assert isinstance(a, MMoE) and not a.training
    assert next(a.parameters()).device.type == "cpu"
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_cached_rows_hold_the_teachers_outputs_labelled_rows_first():
    teacher = _teacher()
    student = StudentConfig(features=IDS, task_names=("watch", "like"), hidden=(8,))
    labelled, transfer = _rows(40, 1), _rows(25, 2, labels=False)
    rows = cache_teacher_rows(teacher, student, labelled, transfer)
    both, first = rows["labelled+transfer"], rows["labelled"]
    assert len(both["labels"]) == 65 and len(first["labels"]) == 40
    assert both[distill.TEACHER_LOGITS].shape == (65, 2)
    assert both[distill.TEACHER_HIDDEN].shape[0] == 65
    with torch.no_grad():
        torch.testing.assert_close(first[distill.TEACHER_LOGITS], teacher(labelled))
    assert torch.isnan(both["labels"][40:]).all()


def test_mismatched_row_sets_are_refused_with_the_fix():
    student = StudentConfig(features=IDS, task_names=("watch", "like"), hidden=(8,))
    transfer = {k: v for k, v in _rows(5, 2).items() if k != "item_id"}
    with pytest.raises(KeyError, match="same keys"):
        cache_teacher_rows(_teacher(), student, _rows(10, 1), transfer)
