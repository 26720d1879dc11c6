"""Top-K evaluation, per-user split with seen items removed: the one entry point is evaluate_topk.

:func:`evaluate_topk` takes the (U, I) scores of any top-K model (``model.scores(...)``).

Protocol (see :func:`mtrec.data.per_user_split`): every user has train and test interactions;
at evaluation the items the user interacted with in training are removed from the candidates
(score ``-inf``), the remaining items are ranked by the model's score, and nDCG, Precision,
Recall and MAP at K are averaged over users with at least one test item (metrics from
:mod:`mtrec.eval.metrics`). For cold-start evaluation, ``candidates`` restricts the ranking to the
held-out items.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_int, check_tensor
from mtrec.eval.metrics import map_at_k, ndcg_at_k, precision_at_k, recall_at_k


def _check_scores(scores: Tensor, name: str = "scores") -> Tensor:
    check_tensor(scores, name, ndim=2)
    if not scores.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {scores.dtype}; use scores.float()")
    if bool(torch.isnan(scores).any()):
        raise ValueError(
            f"{name} contain {int(torch.isnan(scores).sum())} NaN values; they cannot be ranked. "
            "Check the model's inputs for NaN; exclude items with -inf, not NaN"
        )
    return scores


def mask_seen(scores: Tensor, seen: Tensor) -> Tensor:
    """Scores with seen items (``seen > 0``) set to ``-inf``; both (U, I)."""
    check_tensor(scores, "scores")
    check_tensor(seen, "seen")
    if scores.shape != seen.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and seen {tuple(seen.shape)} must match")
    return scores.masked_fill(seen > 0, float("-inf"))


def top_k_items(scores: Tensor, seen: Tensor, k: int = 10) -> Tensor:
    """(U, k) column indices of the k best unseen items per user.

    Raises ``ValueError`` when a user has fewer than ``k`` unseen items scored above ``-inf``
    (the list would be padded with seen or excluded items) or when scores hold NaN.
    """
    k = check_int(k, "k", min=1)
    masked = mask_seen(_check_scores(scores), seen)
    if k > scores.shape[1]:
        raise ValueError(
            f"k={k} but there are only {scores.shape[1]} items; lower k to at most "
            f"{scores.shape[1]}"
        )
    if masked.numel():
        left = (masked > float("-inf")).sum(dim=1)  # (U,) unseen, not excluded (-inf) items
        if int(left.min()) < k:
            user = int(left.argmin())
            raise ValueError(
                f"k={k} but user row {user} has only {int(left[user])} unseen items of "
                f"{scores.shape[1]}; lower k to at most {int(left.min())} or add items"
            )
    return masked.topk(k, dim=1).indices


def evaluate_topk(
    scores: Tensor,
    train: Tensor,
    test: Tensor,
    *,
    k: int = 10,
    candidates: Tensor | None = None,
) -> dict[str, float]:
    """nDCG, Precision, Recall and MAP at ``k`` with seen items removed.

    Args:
        scores: (U, I) model scores (higher is better).
        train: (U, I) training interactions (> 0 = seen, removed from the ranking).
        test: (U, I) held-out interactions (> 0 = relevant).
        k: cut-off.
        candidates: optional (I,) bool; rank only these columns (cold-start items).

    Returns:
        ``{"ndcg@k", "precision@k", "recall@k", "map@k", "users"}``; users without a test item
        are left out of the means.
    """
    k = check_int(k, "k", min=1)
    for name, value in (("scores", scores), ("train", train), ("test", test)):
        check_tensor(value, name, ndim=2)
    _check_scores(scores.float())
    if not scores.shape == train.shape == test.shape:
        raise ValueError(
            f"scores, train and test must all be (U, I); got {tuple(scores.shape)}, "
            f"{tuple(train.shape)}, {tuple(test.shape)}"
        )
    s = mask_seen(scores.float(), train)
    rel = (test > 0).float()
    if candidates is not None:
        check_tensor(candidates, "candidates", ndim=1)
        if candidates.dtype != torch.bool or len(candidates) != scores.shape[1]:
            raise ValueError(
                f"candidates must be a ({scores.shape[1]},) bool mask over the items, got "
                f"{candidates.dtype} of shape {tuple(candidates.shape)}"
            )
        s, rel = s[:, candidates], rel[:, candidates]
    keep = rel.sum(dim=1) > 0
    s, rel = s[keep], rel[keep]
    if not bool(keep.any()):
        raise ValueError(
            "no user has a test item among the candidates, so the metrics are undefined; pass "
            "test interactions (test > 0) for at least one user"
        )
    top_s, top_rel = _reduce_to_topk(s, rel, k)
    return {
        f"ndcg@{k}": ndcg_at_k(top_s, top_rel, k),
        f"precision@{k}": precision_at_k(top_s, top_rel, k),
        f"recall@{k}": recall_at_k(top_s, top_rel, k),
        f"map@{k}": map_at_k(top_s, top_rel, k),
        "users": int(keep.sum()),
    }


def _reduce_to_topk(scores: Tensor, relevance: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (U, k + W) stand-ins for (U, I) inputs, so the @k metrics sort far fewer columns.

    Columns: the k best items in rank order, then the user's relevant items outside the top k
    (W = the largest such count), zero-padded. Scores decrease along columns, so every @k metric
    of :mod:`mtrec.eval.metrics` (which reads the top k and the row's relevant count) is unchanged.
    """
    k = min(k, scores.shape[1])
    # the pessimistic order (mtrec.eval.metrics, "Ties"): score descending, within a tie the
    # non-relevant items first. Two stable sorts: relevance ascending, then score descending.
    by_relevance = relevance.argsort(dim=1, stable=True)
    by_score = scores.gather(1, by_relevance).argsort(dim=1, descending=True, stable=True)
    top = by_relevance.gather(1, by_score[:, :k])  # (U, k)
    top_rel = relevance.gather(1, top)  # (U, k)
    outside = (relevance > 0).sum(dim=1) - (top_rel > 0).sum(dim=1)  # (U,)
    width = int(outside.max()) if len(outside) else 0
    tail = (torch.arange(width)[None, :] < outside[:, None]).float()  # (U, W)
    reduced_rel = torch.cat([top_rel, tail], dim=1)
    reduced_scores = torch.arange(k + width, 0, -1, dtype=torch.float64).expand_as(reduced_rel)
    return reduced_scores.numpy(), reduced_rel.double().numpy()
