"""check_step_percentiles: passes the reference, fails and names every known mistake."""

import pytest

from mtrec.exercises import timing


def test_the_reference_passes(capsys):
    assert timing.check_step_percentiles(timing.reference_step_percentiles) is True
    assert "All" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message", timing.DIAGNOSES, ids=lambda x: getattr(x, "__name__", "")
)
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert timing.check_step_percentiles(wrong) is False
    assert f"diagnosis: {message}" in capsys.readouterr().out


def test_an_unfinished_answer_says_so(capsys):
    def unfinished(**kwargs):
        raise NotImplementedError

    assert timing.check_step_percentiles(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out
