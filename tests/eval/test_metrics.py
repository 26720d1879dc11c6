"""Metrics against scikit-learn (to 1e-9) and at their limits."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, log_loss, ndcg_score, roc_auc_score

from mtrec.eval import metrics as m

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500), 2)  # many ties
    assert abs(m.auc(y, s) - roc_auc_score(y, s)) < 1e-9


def test_auc_limits():
    y = np.array([0, 0, 1, 1])
    assert m.auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert m.auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert m.auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    with pytest.warns(m.UndefinedMetricWarning, match="one|all 3 labels"):
        assert np.isnan(m.auc([1, 1, 1], [0.1, 0.2, 0.3]))  # one class only: undefined


def test_auc_accepts_tensors():
    y = torch.tensor([0, 1, 0, 1])
    s = torch.tensor([0.1, 0.9, 0.3, 0.7])
    assert m.auc(y, s) == 1.0


def test_gauc_is_size_weighted_mean_of_group_aucs():
    groups = RNG.integers(0, 20, 2000)
    y = RNG.integers(0, 2, 2000)
    s = RNG.random(2000)
    num, den = 0.0, 0
    for g in np.unique(groups):
        mask = groups == g
        if 0 < y[mask].sum() < mask.sum():
            num += roc_auc_score(y[mask], s[mask]) * mask.sum()
            den += mask.sum()
    assert abs(m.gauc(y, s, groups) - num / den) < 1e-9


def test_gauc_skips_one_class_groups():
    y = np.array([1, 1, 0, 1])
    s = np.array([0.9, 0.1, 0.2, 0.8])
    g = np.array([0, 0, 1, 1])  # group 0 has one class only
    assert m.gauc(y, s, g) == 1.0
    with pytest.warns(m.UndefinedMetricWarning, match="no group"):
        assert np.isnan(m.gauc([1, 1], [0.2, 0.3], [0, 1]))


def test_logloss_and_rmse_match_sklearn():
    y = RNG.integers(0, 2, 300)
    p = RNG.uniform(0.01, 0.99, 300)
    assert abs(m.logloss(y, p) - log_loss(y, p)) < 1e-9
    t, q = RNG.random(100), RNG.random(100)
    assert abs(m.rmse(t, q) - np.sqrt(np.mean((t - q) ** 2))) < 1e-12
    with pytest.raises(ValueError, match="sigmoid"):
        m.logloss([0, 1], [-1.0, 2.0])


@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_ndcg_matches_sklearn(k):
    scores = RNG.random((40, 30))
    rel = (RNG.random((40, 30)) < 0.2).astype(float)
    rel[:, 3] = 1  # every user has a relevant item
    assert abs(m.ndcg_at_k(scores, rel, k) - ndcg_score(rel, scores, k=k)) < 1e-9


def test_graded_ndcg_matches_sklearn():
    scores = RNG.random((20, 15))
    rel = RNG.integers(0, 4, (20, 15)).astype(float)
    rel[:, 0] = 3
    assert abs(m.ndcg_at_k(scores, rel, 5) - ndcg_score(rel, scores, k=5)) < 1e-9


def test_map_at_full_length_matches_sklearn_average_precision():
    scores = RNG.random((25, 20))
    rel = (RNG.random((25, 20)) < 0.3).astype(float)
    rel[:, 0] = 1
    expected = np.mean([average_precision_score(rel[i], scores[i]) for i in range(25)])
    assert abs(m.map_at_k(scores, rel, 20) - expected) < 1e-9


def _loop_topk(scores, rel, k):
    prec, rec, hit, rr = [], [], [], []
    for s, r in zip(scores, rel):
        top = np.argsort(-s, kind="stable")[:k]
        hits = r[top].sum()
        prec.append(hits / k)
        rec.append(hits / r.sum())
        hit.append(float(hits > 0))
        full = np.argsort(-s, kind="stable")
        rr.append(1.0 / (np.flatnonzero(r[full])[0] + 1))
    return np.mean(prec), np.mean(rec), np.mean(hit), np.mean(rr)


def test_precision_recall_hit_mrr_match_a_plain_loop():
    scores = RNG.random((30, 25))
    rel = (RNG.random((30, 25)) < 0.15).astype(float)
    rel[:, 7] = 1
    p, r, h, rr = _loop_topk(scores, rel, 10)
    assert abs(m.precision_at_k(scores, rel, 10) - p) < 1e-12
    assert abs(m.recall_at_k(scores, rel, 10) - r) < 1e-12
    assert abs(m.hit_rate_at_k(scores, rel, 10) - h) < 1e-12
    assert abs(m.mrr(scores, rel) - rr) < 1e-12


def test_ranking_limits():
    rel = np.array([[1.0, 1.0, 0.0, 0.0]])
    perfect = np.array([[4.0, 3.0, 2.0, 1.0]])
    worst = -perfect
    assert m.ndcg_at_k(perfect, rel, 2) == 1.0
    assert m.map_at_k(perfect, rel, 2) == 1.0
    assert m.precision_at_k(perfect, rel, 2) == 1.0
    assert m.ndcg_at_k(worst, rel, 2) == 0.0
    assert m.hit_rate_at_k(worst, rel, 2) == 0.0
    assert m.mrr(worst, rel) == pytest.approx(1 / 3)


def test_users_without_relevant_items_are_left_out():
    scores = np.array([[0.9, 0.1], [0.9, 0.1]])
    rel = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert m.ndcg_at_k(scores, rel, 1) == 1.0
    per_user = m.ndcg_at_k(scores, rel, 1, reduce=False)
    assert per_user[0] == 1.0 and np.isnan(per_user[1])


def test_excluded_items_never_rank():
    scores = np.array([[np.inf * -1, 0.2, 0.1]])
    rel = np.array([[1.0, 0.0, 1.0]])
    assert m.precision_at_k(scores, rel, 1) == 0.0


def test_target_rank_and_single_target_ndcg():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    ranks = m.target_rank(scores, torch.tensor([2, 0]))
    np.testing.assert_array_equal(ranks, [1, 0])
    hr, ndcg = m.hit_ndcg_from_rank(ranks, 1)
    assert hr == 0.5 and ndcg == 0.5
    # Equals ndcg_at_k with a one-hot relevance matrix.
    rel = np.zeros((2, 3))
    rel[0, 2] = rel[1, 0] = 1
    assert abs(m.hit_ndcg_from_rank(ranks, 2)[1] - m.ndcg_at_k(scores.numpy(), rel, 2)) < 1e-12


def test_shape_errors_teach():
    with pytest.raises(ValueError, match="same length"):
        m.auc([0, 1], [0.2])
    with pytest.raises(ValueError, match="target_rank"):
        m.ndcg_at_k(np.zeros(3), np.zeros(3), 1)


def test_breakdown_is_tidy_and_masks_nan_labels():
    sid = np.array([0, 0, 1, 1, 1, 0])
    labels = {"like": np.array([1, 0, 1, 0, np.nan, 1.0])}
    probs = {"like": np.array([0.9, 0.1, 0.8, 0.3, 0.5, 0.7])}
    table = m.breakdown(sid, labels, probs, scenario_names=["a", "b"])
    assert list(table.columns) == ["scenario", "task", "metric", "value", "n"]
    auc_rows = table[table.metric == "auc"].set_index("scenario")
    assert auc_rows.loc["all", "n"] == 5 and auc_rows.loc["b", "n"] == 2
    assert auc_rows.loc["all", "value"] == 1.0
    assert isinstance(table, pd.DataFrame)
