"""Co-occurrence baseline: windowed counts by hand, recency weighting, bad input."""

import numpy as np
import pytest
import torch

from mtrec.models.sequential.cooccurrence import CoOccurrence


def test_counts_match_hand_computation():
    seqs = [np.array([1, 2, 3]), np.array([1, 2]), np.array([2, 1])]
    co = CoOccurrence(3, window=1, recent=1).fit(seqs)
    # transitions: 1→2 twice, 2→3 once, 2→1 once; rows normalised
    torch.testing.assert_close(co.matrix[1, 1:], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(co.matrix[2, 1:], torch.tensor([0.5, 0.0, 0.5]))
    scores = co.scores(torch.tensor([[0, 2], [0, 1]]))
    assert scores[:, 0].eq(float("-inf")).all()
    assert scores[0, 1:].tolist() == [0.5, 0.0, 0.5] and scores[1].argmax().item() == 2
    wide = CoOccurrence(3, window=2, recent=2, decay=0.5, symmetric=True).fit(seqs)
    expected = 0.5 * wide.matrix[1] + wide.matrix[2]
    torch.testing.assert_close(wide.scores(torch.tensor([[1, 2]]))[0, 1:], expected[1:])


def test_user_boundaries_do_not_leak():
    co = CoOccurrence(4, window=3).fit([np.array([1]), np.array([4])])
    assert co.matrix.sum() == 0


def test_bad_input():
    with pytest.raises(ValueError, match="window=0"):
        CoOccurrence(3, window=0)
    with pytest.raises(ValueError, match="item ids must be in 1..3"):
        CoOccurrence(3).fit([np.array([0, 1])])
    with pytest.raises(RuntimeError, match="not fitted"):
        CoOccurrence(3).scores(torch.zeros(1, 2, dtype=torch.long))


def test_item_vectors_put_co_occurring_items_close():
    rng = np.random.default_rng(0)
    # two tastes: items 1-3 are watched together, in any order, and so are items 4-6
    seqs = [rng.permutation([1, 2, 3] if rng.random() < 0.5 else [4, 5, 6]) for _ in range(200)]
    co = CoOccurrence(6, window=1).fit(seqs)
    vectors = co.item_vectors(2)  # the two leading directions: one per taste
    assert vectors.shape == (7, 2) and vectors[0].abs().max() == 0
    cos = torch.nn.functional.cosine_similarity
    assert (
        cos(vectors[1], vectors[2], dim=0) > 0.9 and cos(vectors[1], vectors[4], dim=0).abs() < 0.1
    )
    assert vectors.norm(dim=1)[1:].mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dim must be in 1..7"):
        co.item_vectors(0)
    with pytest.raises(RuntimeError, match="not fitted"):
        CoOccurrence(3).item_vectors(2)
