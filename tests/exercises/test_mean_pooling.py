"""The mean-pooling check of notebook 04 passes the reference and names known mistakes."""

import torch
import torch.nn.functional as F

from mtrec.exercises.mean_pooling import DIAGNOSES, check_mean_pooling, reference_mean_pool


def test_reference_passes(capsys):
    assert check_mean_pooling(reference_mean_pool) is True
    assert "All 3 cases passed" in capsys.readouterr().out


def test_the_notebook_version_passes():
    def mean_pool(token_states, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()  # (B, L, 1)
        return F.normalize((token_states * mask).sum(1) / mask.sum(1), dim=-1)

    assert check_mean_pooling(mean_pool) is True


def test_each_known_mistake_fails_with_its_diagnosis(capsys):
    for wrong, message in DIAGNOSES:
        assert check_mean_pooling(wrong) is False
        assert message in capsys.readouterr().out


def test_unfinished_and_crashing_answers_do_not_raise(capsys):
    def unfinished(token_states, attention_mask):
        raise NotImplementedError

    assert check_mean_pooling(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out
    assert check_mean_pooling(lambda token_states, attention_mask: torch.zeros(2)) is False
