"""Popularity baseline, one model for both families: item-id counts (sequential) and a (U, I)
interaction matrix (top-K), each equal to the behaviour of the two baselines it replaced."""

import numpy as np
import pytest
import torch

from mtrec.models import Popularity


def test_counts_and_recommend_on_item_ids():
    pop = Popularity(5).fit(np.array([3, 3, 3, 1, 1, 5]))
    scores = pop.scores(torch.zeros(2, 4, dtype=torch.long))
    assert scores.shape == (2, 6) and scores[0, 0] == float("-inf")
    assert scores[0, 1:].tolist() == [2.0, 0.0, 3.0, 0.0, 1.0]
    history = torch.tensor([[0, 0, 0, 3], [0, 0, 0, 0]])
    assert pop.recommend(history, k=2).tolist() == [[1, 5], [3, 1]]


def test_item_ids_equal_the_old_sequential_baseline():
    """Old ``mtrec.models.sequential.popularity``: bincount of the ids, padding column -inf."""
    ids = np.array([4, 2, 2, 0, 4, 4, 1, 6, 6])
    old = torch.bincount(torch.as_tensor(ids), minlength=7).float()
    old[0] = float("-inf")
    history = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 0, 6]])
    new = Popularity(6).fit(ids).scores(history)
    assert new.dtype == torch.float32
    torch.testing.assert_close(new, old.expand(3, -1), rtol=0, atol=0)
    # ties (items 1 and 3/5 at 1 and 0) keep the lower id first, as before
    assert new.topk(7, dim=1).indices.tolist() == old.expand(3, -1).topk(7, dim=1).indices.tolist()
    torch.testing.assert_close(Popularity(6).fit(torch.as_tensor(ids)).scores(history), new)


def test_matrix_equals_the_old_topk_baseline():
    """Old ``mtrec.eval.topk.popularity_scores``: users per item, the same row for everyone."""
    gen = torch.Generator().manual_seed(0)
    train = (torch.rand(7, 9, generator=gen) < 0.4).float() * 3  # > 0 counts once
    old = train.gt(0).float().sum(dim=0, keepdim=True).expand_as(train).clone()
    new = Popularity().fit(train).scores(train)
    torch.testing.assert_close(new, old, rtol=0, atol=0)
    assert new.topk(9, dim=1).indices.tolist() == old.topk(9, dim=1).indices.tolist()
    assert Popularity(9).fit(train).scores(train).shape == (7, 9)
    small = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0]])
    assert Popularity().fit(small).scores(small)[0].tolist() == [2, 1, 0, 0]


def test_scores_are_writable():
    pop = Popularity(3).fit(np.array([1, 2, 2]))
    history = torch.zeros(2, 2, dtype=torch.long)
    scores = pop.scores(history)
    scores[0, 1] = 99.0  # a copy: the fitted counts stay
    assert pop.counts[1] == 1.0
    assert not hasattr(pop, "score"), "one scoring name per family: scores"


def test_bad_input():
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity(3).scores(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="item ids must be in 0..3"):
        Popularity(3).fit(np.array([4]))
    with pytest.raises(ValueError, match="needs num_items"):
        Popularity().fit(np.array([1, 2]))
    with pytest.raises(ValueError, match="I = num_items = 3"):
        Popularity(3).fit(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="flatten"):
        Popularity(3).fit(np.zeros((2, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="num_items must be >= 1"):
        Popularity(0)
