"""Popularity baseline: counts, ordering, exclusion of seen items, bad input."""

import numpy as np
import pytest
import torch

from mtrec.models.sequential.popularity import Popularity


def test_counts_and_recommend():
    pop = Popularity(5).fit(np.array([3, 3, 3, 1, 1, 5]))
    scores = pop.score(torch.zeros(2, 4, dtype=torch.long))
    assert scores.shape == (2, 6) and scores[0, 0] == float("-inf")
    assert scores[0, 1:].tolist() == [2.0, 0.0, 3.0, 0.0, 1.0]
    history = torch.tensor([[0, 0, 0, 3], [0, 0, 0, 0]])
    assert pop.recommend(history, k=2).tolist() == [[1, 5], [3, 1]]


def test_bad_input():
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity(3).score(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="item ids must be in 0..3"):
        Popularity(3).fit(np.array([4]))
