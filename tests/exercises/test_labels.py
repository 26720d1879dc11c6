"""The like-label checker passes the reference and names each known mistake."""

import pytest
import torch

from mtrec.exercises import labels


def test_the_reference_passes(capsys):
    assert labels.check_binarise(labels.reference_binarise) is True
    assert "All 4 cases passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", labels.DIAGNOSES, ids=lambda w: str(w)[:20])
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert labels.check_binarise(wrong) is False
    assert message in capsys.readouterr().out


def test_the_reference_counts_the_threshold_as_a_like():
    got = labels.reference_binarise(torch.tensor([3.9, 4.0, 5.0]), 4)
    assert got.dtype == torch.float32 and got.tolist() == [0.0, 1.0, 1.0]
