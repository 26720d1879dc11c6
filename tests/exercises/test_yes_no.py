"""The yes/no probability check of notebook 15 passes the reference and names known mistakes."""

import torch

from mtrec.exercises.yes_no import DIAGNOSES, check_yes_probability, reference_yes_probability


def test_reference_passes(capsys):
    assert check_yes_probability(reference_yes_probability) is True
    assert "All 3 cases passed" in capsys.readouterr().out


def test_the_two_way_softmax_passes():
    def two_way(last_logits, yes_id, no_id):
        return last_logits[:, [yes_id, no_id]].softmax(-1)[:, 0]

    assert check_yes_probability(two_way) is True


def test_each_known_mistake_fails_with_its_diagnosis(capsys):
    for wrong, message in DIAGNOSES:
        assert check_yes_probability(wrong) is False
        assert message in capsys.readouterr().out


def test_unfinished_and_crashing_answers_do_not_raise(capsys):
    def unfinished(last_logits, yes_id, no_id):
        raise NotImplementedError

    assert check_yes_probability(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out
    assert check_yes_probability(lambda last_logits, yes_id, no_id: torch.zeros(7)) is False
