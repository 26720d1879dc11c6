"""One tie rule for every ranking metric: the pessimistic rank (mtrec.eval.metrics, "Ties").

Each case would pass a model that scores every item alike under the former rule, which ranked a
tied target first (a constant model scored HR@10 = 1 and a collapsed KG model MRR = 1).
"""

import numpy as np
import pytest
import torch

from mtrec.eval.link_prediction import evaluate_link_prediction
from mtrec.eval.metrics import (
    hit_ndcg_from_rank,
    hit_rate_at_k,
    map_at_k,
    mrr,
    ndcg_at_k,
    pessimistic_order,
    precision_at_k,
    recall_at_k,
    target_rank,
)
from mtrec.eval.next_item import evaluate_next_item
from mtrec.eval.topk import evaluate_topk

MATRIX_METRICS = (ndcg_at_k, hit_rate_at_k, precision_at_k, recall_at_k, map_at_k)


def test_a_constant_model_ranks_every_target_last():
    scores = torch.zeros(4, 100)
    ranks = target_rank(scores, torch.tensor([0, 5, 50, 99]))
    assert ranks.tolist() == [99, 99, 99, 99]
    assert hit_ndcg_from_rank(ranks, 10) == (0.0, 0.0)


def test_a_target_ranks_after_its_ties_and_before_lower_scores():
    scores = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0]])
    assert target_rank(scores, torch.tensor([1])).tolist() == [3]  # 3.0 and two ties above
    assert target_rank(scores, torch.tensor([0])).tolist() == [0]
    assert target_rank(scores, torch.tensor([4])).tolist() == [4]


@pytest.mark.parametrize("metric", MATRIX_METRICS)
def test_matrix_metrics_give_a_constant_model_nothing(metric):
    relevance = np.zeros((3, 20))
    relevance[:, 0] = 1  # the relevant item sits in the first column, where a stable sort wins
    assert metric(np.zeros((3, 20)), relevance, 5) == 0.0


def test_mrr_of_a_constant_model_is_one_over_the_catalogue():
    relevance = np.zeros((2, 10))
    relevance[:, 0] = 1
    assert mrr(np.ones((2, 10)), relevance) == pytest.approx(0.1)


def test_pessimistic_order_breaks_ties_against_relevance_only():
    scores = np.array([[1.0, 2.0, 2.0, 0.5]])
    relevance = np.array([[0.0, 1.0, 0.0, 1.0]])
    assert pessimistic_order(scores, relevance).tolist() == [[2, 1, 0, 3]]


@pytest.mark.parametrize("seed", range(5))
def test_untied_scores_rank_as_before(seed):
    """Continuous scores have no ties: every metric equals the plain descending sort's."""
    rng = np.random.default_rng(seed)
    scores, relevance = rng.random((30, 40)), (rng.random((30, 40)) < 0.1).astype(float)
    relevance[:, 0] = 1
    order = np.argsort(-scores, axis=1)
    top = np.take_along_axis(relevance, order, axis=1)[:, :10]
    assert hit_rate_at_k(scores, relevance, 10) == pytest.approx(top.any(axis=1).mean())
    target = torch.from_numpy(rng.integers(0, 40, 30))
    strictly_higher = (
        torch.from_numpy(scores) > torch.from_numpy(scores)[range(30), target][:, None]
    ).sum(1)
    assert target_rank(torch.from_numpy(scores), target).tolist() == strictly_higher.tolist()


def test_evaluate_topk_agrees_with_the_metrics_on_tied_scores():
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.integers(0, 3, (25, 30)).astype(np.float32))  # many ties
    train = torch.zeros(25, 30)
    test = torch.from_numpy((rng.random((25, 30)) < 0.2).astype(np.float32))
    test[:, 1] = 1
    out = evaluate_topk(scores, train, test, k=5)
    expected = {
        "ndcg@5": ndcg_at_k(scores, test, 5),
        "precision@5": precision_at_k(scores, test, 5),
        "recall@5": recall_at_k(scores, test, 5),
        "map@5": map_at_k(scores, test, 5),
    }
    for name, value in expected.items():
        assert out[name] == pytest.approx(value), name
    constant = evaluate_topk(torch.zeros(25, 30), train, torch.eye(25, 30), k=5)
    assert constant["ndcg@5"] == constant["precision@5"] == 0.0


class Collapsed:
    """A KG model whose embeddings collapsed: every entity scores alike."""

    def score_tails(self, heads, relations):
        return torch.zeros(len(heads), 50)

    def score_heads(self, relations, tails):
        return torch.zeros(len(tails), 50)


def test_a_collapsed_kg_model_earns_no_link_prediction_credit():
    test = torch.tensor([[1, 0, 3], [4, 1, 7]])
    out = evaluate_link_prediction(Collapsed(), test, known=test, ks=(1, 10))
    assert out["hits@1"] == 0.0 and out["hits@10"] == 0.0
    assert out["mrr"] == pytest.approx(1 / 49)  # 49 candidates (entity 0 is OOV): ranked last


def test_next_item_evaluation_of_a_constant_model_scores_zero():
    history = torch.tensor([[0, 1, 2], [3, 4, 5]])
    seen = torch.zeros(2, 31, dtype=torch.bool)
    seen[:, 0] = True  # the padding column
    out = evaluate_next_item(lambda h: torch.zeros(len(h), 31), history, torch.tensor([6, 7]),
                             seen, k=(1, 10))  # fmt: skip
    assert out == {"hr@1": 0.0, "ndcg@1": 0.0, "hr@10": 0.0, "ndcg@10": 0.0}
