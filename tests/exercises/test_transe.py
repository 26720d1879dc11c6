"""check_transe_score: passes the reference, fails and names every known mistake."""

import pytest

from mtrec.exercises import transe


def test_the_reference_passes(capsys):
    assert transe.check_transe_score(transe.reference_transe_score) is True
    assert "All" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message", transe.DIAGNOSES, ids=lambda x: getattr(x, "__name__", "")
)
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert transe.check_transe_score(wrong) is False
    assert f"diagnosis: {message}" in capsys.readouterr().out


def test_an_unfinished_answer_says_so(capsys):
    def unfinished(**kwargs):
        raise NotImplementedError

    assert transe.check_transe_score(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out
