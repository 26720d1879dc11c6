import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data.interactions import IdIndex, interaction_matrix
from mtrec.eval.metrics import map_at_k, ndcg_at_k, precision_at_k, recall_at_k
from mtrec.eval.topk import evaluate_topk, mask_seen


def _frames():
    train = pd.DataFrame({"user_id": [10, 10, 20, 30], "item_id": [1, 2, 2, 3]})
    test = pd.DataFrame({"user_id": [10, 20, 30], "item_id": [3, 1, 5]})
    return train, test


def test_index_and_matrix():
    train, test = _frames()
    index = IdIndex.from_frames(train, test, items=[7])
    assert index.num_users == 3 and index.item_ids.tolist() == [1, 2, 3, 5, 7]
    x = interaction_matrix(train, index)
    assert x.shape == (3, 5) and x.sum() == 4 and x[0, 1] == 1
    with pytest.raises(ValueError, match="not in the IdIndex"):
        index.columns(np.array([99]))


def test_perfect_ranking_gives_one_and_seen_items_are_masked():
    train, test = _frames()
    index = IdIndex.from_frames(train, test)
    tr, te = interaction_matrix(train, index), interaction_matrix(test, index)
    scores = te * 10 + tr * 100  # seen items score highest but must be removed
    result = evaluate_topk(scores, tr, te, k=2)
    assert result["ndcg@2"] == pytest.approx(1.0) and result["recall@2"] == pytest.approx(1.0)
    assert result["users"] == 3
    assert torch.isinf(mask_seen(scores, tr)[0, 0])


def test_matches_full_metrics_on_random_data():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(40, 60, generator=gen)
    train = (torch.rand(40, 60, generator=gen) < 0.2).float()
    test = (torch.rand(40, 60, generator=gen) < 0.3).float() * (1 - train)
    result = evaluate_topk(scores, train, test, k=10)
    s, r = mask_seen(scores, train).numpy(), test.numpy()
    keep = r.sum(1) > 0
    s, r = s[keep], r[keep]
    for name, fn in [("ndcg", ndcg_at_k), ("precision", precision_at_k), ("recall", recall_at_k),
                     ("map", map_at_k)]:  # fmt: skip
        assert result[f"{name}@10"] == pytest.approx(fn(s, r, 10)), name


def test_candidates():
    train = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0]])
    test = torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 1]])
    cold = torch.tensor([False, False, True, True])
    result = evaluate_topk(torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0]]), train, test, k=1,
                           candidates=cold)  # fmt: skip
    assert result["precision@1"] == 1.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="must all be"):
        evaluate_topk(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4))
