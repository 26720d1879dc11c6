"""check_pick_depth: passes the reference, fails and names every known mistake."""

import pytest

from mtrec.exercises import cascade


def test_the_reference_passes(capsys):
    assert cascade.check_pick_depth(cascade.reference_pick_depth) is True
    assert "All" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message", cascade.DIAGNOSES, ids=lambda x: getattr(x, "__name__", "")
)
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert cascade.check_pick_depth(wrong) is False
    assert f"diagnosis: {message}" in capsys.readouterr().out


def test_an_unfinished_answer_says_so(capsys):
    def unfinished(**kwargs):
        raise NotImplementedError

    assert cascade.check_pick_depth(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out
