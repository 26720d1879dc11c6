"""The causal + padding mask checker passes the reference and names each known mistake."""

import pytest
import torch

from mtrec.exercises import causal_mask
from mtrec.nn.attention import scaled_dot_product_attention


def test_the_reference_passes(capsys):
    assert causal_mask.check_causal_mask(causal_mask.reference_mask) is True
    assert "All 4 cases passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", causal_mask.DIAGNOSES, ids=lambda w: str(w)[:20])
def test_a_known_mistake_fails_with_its_diagnosis(wrong, message, capsys):
    assert causal_mask.check_causal_mask(wrong) is False
    assert message in capsys.readouterr().out


def test_an_unfinished_answer_is_reported_not_raised(capsys):
    def unfinished(lengths, max_len):
        raise NotImplementedError

    assert causal_mask.check_causal_mask(unfinished) is False
    assert "not implemented yet" in capsys.readouterr().out


def test_the_mask_hides_padding_and_the_future_in_attention():
    mask = causal_mask.reference_mask(torch.tensor([2]), 4)  # (1, 4, 4): two padding slots
    x = torch.randn(1, 4, 8)
    out, weights = scaled_dot_product_attention(x, x, x, mask, return_weights=True)
    assert torch.all(weights[0, :2] == 0) and torch.all(out[0, :2] == 0)  # padded queries
    assert torch.all(weights[0, 2:, :2] == 0)  # padding keys
    assert weights[0, 2, 3] == 0 and weights[0, 3, 2] > 0  # no future, the past is visible
