"""The leave-last-out checker passes the reference and names each known mistake."""

import numpy as np
import pytest

from mtrec.exercises import leave_last_out


def test_the_reference_passes(capsys):
    assert leave_last_out.check_leave_last_out(leave_last_out.reference_parts) is True
    assert "All 4 cases passed" in capsys.readouterr().out


def test_a_numpy_answer_passes(capsys):
    def as_numpy(user_ids, timestamps, item_ids):
        return leave_last_out.reference_parts(user_ids, timestamps, item_ids).numpy()

    assert leave_last_out.check_leave_last_out(as_numpy) is True


@pytest.mark.parametrize("wrong, message", leave_last_out.DIAGNOSES, ids=lambda w: str(w)[:20])
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert leave_last_out.check_leave_last_out(wrong) is False
    assert message in capsys.readouterr().out


def test_every_case_has_a_test_and_a_validation_row_per_user():
    for case in leave_last_out.cases():
        users = np.unique(case.kwargs["user_ids"])
        parts = case.expected.numpy()
        assert (parts == 2).sum() == len(users) and (parts == 1).sum() == len(users)
