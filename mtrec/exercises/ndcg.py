"""Exercise 5: NDCG@K, checked against scikit-learn's ``ndcg_score`` and :mod:`mtrec.eval.metrics`.

The student writes ``ndcg_at_k(scores, relevance, k) -> float``: scores and relevance are (U, N)
NumPy arrays (one row per user, graded relevance ≥ 0); rank each row by score, DCG@k =
Σ_{i<k} rel_i / log2(i + 2), divide by the ideal DCG@k, and average over users that have at
least one relevant item (users without one are left out). Reference: Järvelin & Kekäläinen,
"Cumulated Gain-Based Evaluation of IR Techniques", ACM TOIS 2002.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtrec.eval.metrics import ndcg_at_k as mtrec_ndcg
from mtrec.exercises._harness import Case, run_cases


def reference_ndcg(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    """Mean NDCG@k over users with a relevant item (``mtrec.eval.metrics.ndcg_at_k``)."""
    from sklearn.metrics import ndcg_score  # here, not at the top: scikit-learn takes ~1 s to
    # import, which every exercise notebook (they all import mtrec.exercises) would pay

    value = float(mtrec_ndcg(scores, relevance, k))
    keep = relevance.sum(axis=1) > 0
    if keep.any():  # scikit-learn agrees on users that have a relevant item (no tied scores)
        expected = ndcg_score(relevance[keep], scores[keep], k=k)
        assert abs(expected - value) < 1e-9, (expected, value)
    return value


def _dcg_only(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, axis=1)[:, :k]
    top = np.take_along_axis(relevance, order, axis=1)
    return float((top / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1).mean())


def _ascending(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    return reference_ndcg(-scores, relevance, k)


def _ideal_from_all(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, axis=1)[:, :k]
    top = np.take_along_axis(relevance, order, axis=1)
    dcg = (top / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1)
    ideal_rel = -np.sort(-relevance, axis=1)
    idcg = (ideal_rel / np.log2(np.arange(2, ideal_rel.shape[1] + 2))).sum(axis=1)
    keep = idcg > 0
    return float((dcg[keep] / idcg[keep]).mean())


def _log_off_by_one(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, axis=1)[:, :k]
    top = np.take_along_axis(relevance, order, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        discounts = 1.0 / np.log2(
            np.arange(1, top.shape[1] + 1)
        )  # position 0 divides by log2(1) = 0
        dcg = (top * discounts).sum(axis=1)
        ideal = -np.sort(-relevance, axis=1)[:, :k]
        idcg = (ideal * discounts[: ideal.shape[1]]).sum(axis=1)
        keep = relevance.sum(axis=1) > 0
        return float((dcg[keep] / idcg[keep]).mean())


def _zero_users_counted(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
    per = mtrec_ndcg(scores, relevance, k, reduce=False)
    return float(np.nan_to_num(per, nan=0.0).mean())


DIAGNOSES = (
    (_ascending, "you ranked from the lowest score: sort by -scores (highest score first)"),
    (_dcg_only, "you returned DCG; divide by the ideal DCG (relevance sorted high to low)"),
    (_ideal_from_all, "cut the ideal ranking at k too: IDCG@k uses the k best relevances"),
    (_zero_users_counted, "users without any relevant item must be left out of the mean, not "
     "counted as 0"),
    (_log_off_by_one, "with 0-based positions the discount is log2(i + 2): log2(i + 1) divides the "
     "top item by log2(1) = 0"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded; continuous scores so there are no ties)."""
    rng = np.random.default_rng(5)
    perfect_rel = np.array([[3.0, 2.0, 1.0, 0.0, 0.0]])
    with_empty = (rng.random((4, 8)) < 0.3).astype(float)
    with_empty[1] = 0.0
    with_empty[0, 0] = 1.0
    specs = [
        ("perfect ranking gives 1", -np.arange(5.0)[None, :], perfect_rel, 3,
         "rank by score, highest first; NDCG of the ideal order is exactly 1"),
        ("worst order, binary relevance", np.arange(5.0)[None, :], perfect_rel.clip(max=1), 5,
         "discounts are 1 / log2(position + 2) for 0-based positions"),
        ("graded relevance, 3 users, k=4", rng.random((3, 10)),
         rng.integers(0, 4, (3, 10)).astype(float), 4,
         "gain is the relevance value itself (linear gains), discount 1 / log2(i + 2)"),
        ("k larger than the number of items", rng.random((2, 4)),
         np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]), 10,
         "when k > N use all N items"),
        ("a user without relevant items is skipped", rng.random((4, 8)), with_empty, 3,
         "leave users whose relevance row is all 0 out of the mean"),
    ]  # fmt: skip
    out = []
    for name, scores, relevance, k, hint in specs:
        kwargs = {"scores": scores, "relevance": relevance, "k": k}
        out.append(Case(name, kwargs, reference_ndcg(**kwargs), hint, DIAGNOSES, atol=1e-6))
    return out


def check_ndcg(student: Callable[..., float]) -> bool:
    """Check ``student(scores, relevance, k) -> float`` (mean NDCG@k)."""
    return run_cases("NDCG@K", student, cases())
