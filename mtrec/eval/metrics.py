"""Evaluation metrics, vectorised over users, and a per-scenario × per-task breakdown.

Conventions
-----------
* Click-like metrics take 1-D ``labels`` (0/1) and ``scores`` (any monotone score: logits or
  probabilities; ``logloss`` needs probabilities).
* Ranking metrics take ``scores`` (U, N) and ``relevance`` (U, N): one row per user, one column
  per candidate item; relevance is 0/1 (or graded for NDCG). Exclude items (e.g. already seen) by
  setting their score to ``-inf``. Ties are broken by column order (a stable sort), so give
  continuous scores. Users without any relevant item are left out of the mean.
* Every function accepts NumPy arrays or torch tensors and returns a Python float (``reduce=True``)
  or a per-user NumPy array (``reduce=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[float] | pd.Series


def _np(x: ArrayLike, dtype: type = np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_1d(labels: np.ndarray, scores: np.ndarray) -> None:
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"labels and scores must be 1-D of the same length, got {labels.shape} and "
            f"{scores.shape}; flatten per-task columns before calling"
        )


# --------------------------------------------------------------------------------------------
# click-like metrics
# --------------------------------------------------------------------------------------------
def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with average ranks for ties).

    Returns NaN when only one class is present (AUC is undefined there).
    """
    y, s = _np(labels), _np(scores)
    _check_1d(y, s)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike) -> float:
    """Group AUC: per-group AUC averaged with weights = group size (Zhou et al., KDD 2018).

    Groups (usually users) with only one class are skipped. NaN if no group has both classes.
    """
    y, s = _np(labels), _np(scores)
    _check_1d(y, s)
    g = np.asarray(groups.detach().cpu() if isinstance(groups, torch.Tensor) else groups)
    frame = pd.DataFrame({"g": g, "y": y, "s": s})
    frame["r"] = frame.groupby("g")["s"].rank(method="average")
    stats = frame.groupby("g").agg(n=("y", "size"), pos=("y", "sum"))
    stats["rank_pos"] = frame[frame.y == 1].groupby("g")["r"].sum()
    stats = stats[(stats.pos > 0) & (stats.pos < stats.n)]
    if stats.empty:
        return float("nan")
    neg = stats.n - stats.pos
    per_group = (stats.rank_pos - stats.pos * (stats.pos + 1) / 2) / (stats.pos * neg)
    return float((per_group * stats.n).sum() / stats.n.sum())


def logloss(labels: ArrayLike, probs: ArrayLike, *, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [eps, 1 - eps])."""
    y, p = _np(labels), _np(probs)
    _check_1d(y, p)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("logloss takes probabilities in [0, 1]; apply torch.sigmoid to logits")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def rmse(targets: ArrayLike, predictions: ArrayLike) -> float:
    """Root mean squared error."""
    t, p = _np(targets), _np(predictions)
    _check_1d(t, p)
    return float(np.sqrt(np.mean((t - p) ** 2)))


# --------------------------------------------------------------------------------------------
# top-K ranking metrics
# --------------------------------------------------------------------------------------------
def _topk(scores: ArrayLike, relevance: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    s, r = _np(scores), _np(relevance)
    if s.ndim != 2 or s.shape != r.shape:
        raise ValueError(
            f"scores and relevance must be (U, N) matrices of the same shape, got {s.shape} and "
            f"{r.shape}; use target_rank() for one target item per user"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, s.shape[1])
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]  # (U, k)
    return np.take_along_axis(r, order, axis=1), r


def _reduce(per_user: np.ndarray, has_relevant: np.ndarray, reduce: bool) -> float | np.ndarray:
    per_user = np.where(has_relevant, per_user, np.nan)
    if not reduce:
        return per_user
    return float(np.nanmean(per_user)) if has_relevant.any() else float("nan")


def ndcg_at_k(
    scores: ArrayLike, relevance: ArrayLike, k: int, *, reduce: bool = True
) -> float | np.ndarray:
    """Normalised discounted cumulative gain at k (linear gains, log2 discounts)."""
    top, r = _topk(scores, relevance, k)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (top * discounts).sum(axis=1)
    ideal = -np.sort(-r, axis=1)[:, : top.shape[1]]
    idcg = (ideal * discounts).sum(axis=1)
    return _reduce(dcg / np.where(idcg > 0, idcg, 1.0), idcg > 0, reduce)


def hit_rate_at_k(
    scores: ArrayLike, relevance: ArrayLike, k: int, *, reduce: bool = True
) -> float | np.ndarray:
    """1 when at least one relevant item is in the top k."""
    top, r = _topk(scores, relevance, k)
    return _reduce((top > 0).any(axis=1).astype(float), (r > 0).any(axis=1), reduce)


def precision_at_k(
    scores: ArrayLike, relevance: ArrayLike, k: int, *, reduce: bool = True
) -> float | np.ndarray:
    """Relevant items in the top k, divided by k."""
    top, r = _topk(scores, relevance, k)
    return _reduce((top > 0).sum(axis=1) / k, (r > 0).any(axis=1), reduce)


def recall_at_k(
    scores: ArrayLike, relevance: ArrayLike, k: int, *, reduce: bool = True
) -> float | np.ndarray:
    """Relevant items in the top k, divided by the user's number of relevant items."""
    top, r = _topk(scores, relevance, k)
    n_rel = (r > 0).sum(axis=1)
    return _reduce((top > 0).sum(axis=1) / np.maximum(n_rel, 1), n_rel > 0, reduce)


def map_at_k(
    scores: ArrayLike, relevance: ArrayLike, k: int, *, reduce: bool = True
) -> float | np.ndarray:
    """Mean average precision at k: Σ_i P@i·rel_i / min(k, #relevant)."""
    top, r = _topk(scores, relevance, k)
    hits = (top > 0).astype(float)
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    n_rel = (r > 0).sum(axis=1)
    ap = (precision_at_i * hits).sum(axis=1) / np.maximum(np.minimum(n_rel, hits.shape[1]), 1)
    return _reduce(ap, n_rel > 0, reduce)


def mrr(scores: ArrayLike, relevance: ArrayLike, *, reduce: bool = True) -> float | np.ndarray:
    """Mean reciprocal rank of the first relevant item over the full ranking."""
    s = _np(scores)
    top, r = _topk(s, relevance, s.shape[1])
    has = (top > 0).any(axis=1)
    first = np.argmax(top > 0, axis=1)
    return _reduce(np.where(has, 1.0 / (first + 1), 0.0), (r > 0).any(axis=1), reduce)


def target_rank(
    scores: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray
) -> np.ndarray:
    """0-based rank of one target column per row: the number of items scored strictly higher.

    Args:
        scores: (U, N) scores; excluded items at ``-inf``.
        targets: (U,) column index of each user's target item.
    """
    s = torch.as_tensor(scores)
    t = torch.as_tensor(targets, dtype=torch.long, device=s.device)
    if s.ndim != 2 or t.shape != (s.shape[0],):
        raise ValueError(
            f"expected scores (U, N) and targets (U,), got {tuple(s.shape)}, {tuple(t.shape)}"
        )
    target_scores = s.gather(1, t[:, None])  # (U, 1)
    return (s > target_scores).sum(dim=1).cpu().numpy()


def hit_ndcg_from_rank(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """HR@k and NDCG@k for one relevant item per user, from 0-based ranks."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


# --------------------------------------------------------------------------------------------
# breakdown
# --------------------------------------------------------------------------------------------
CLICK_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": auc,
    "logloss": logloss,
}


def breakdown(
    scenario_ids: ArrayLike,
    labels: Mapping[str, ArrayLike],
    probs: Mapping[str, ArrayLike],
    *,
    scenario_names: Sequence[str] | None = None,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] = CLICK_METRICS,
) -> pd.DataFrame:
    """Per-scenario × per-task metrics as a tidy frame (scenario, task, metric, value, n).

    Rows with a NaN label are left out of that task. The scenario ``"all"`` pools every row.
    """
    sid = _np(scenario_ids, np.int64)
    records = []
    names = scenario_names or [str(i) for i in range(int(sid.max()) + 1 if sid.size else 0)]
    for task, task_labels in labels.items():
        if task not in probs:
            raise ValueError(f"no predictions for task {task!r}; got tasks {sorted(probs)}")
        y, p = _np(task_labels), _np(probs[task])
        keep = ~np.isnan(y)
        groups = [("all", keep)] + [(names[i], keep & (sid == i)) for i in range(len(names))]
        for scenario, mask in groups:
            for metric, fn in metrics.items():
                value = fn(y[mask], p[mask]) if mask.any() else float("nan")
                records.append((scenario, task, metric, value, int(mask.sum())))
    return pd.DataFrame.from_records(records, columns=["scenario", "task", "metric", "value", "n"])
