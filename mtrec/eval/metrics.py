"""Evaluation metrics, vectorised over users, and a per-scenario × per-task breakdown.

Conventions
-----------
* Click-like metrics take 1-D ``labels`` (0/1) and ``scores`` (any monotone score: logits or
  probabilities; ``logloss`` needs probabilities).
* Ranking metrics take ``scores`` (U, N) and ``relevance`` (U, N): one row per user, one column
  per candidate item; relevance is 0/1 (or graded for NDCG). Exclude items (e.g. already seen) by
  setting their score to ``-inf``. Users without any relevant item are left out of the mean.
* **Ties.** One rule for every ranking metric here and in :mod:`mtrec.eval.next_item`,
  :mod:`mtrec.eval.topk` and :mod:`mtrec.eval.link_prediction`: the *pessimistic* rank. An item
  tied with others is ranked after every item it ties with that is less relevant, and a target
  after every item it ties with (:func:`target_rank` counts the items scored higher *or equal*).
  A model can therefore never gain from ties: a constant model scores HR@k = 0 when k is below
  the number of candidates (the former rule, "count only strictly higher scores", ranked a tied
  target first and gave a constant model HR@10 = 1). Pessimistic ranks are a lower bound of the
  expected metric under random tie-breaking; for continuous scores of a trained model the two
  agree, and for integer scores (popularity counts) the bound is what the tables report.
* Every function accepts NumPy arrays or torch tensors and returns a Python float (``reduce=True``)
  or a per-user NumPy array (``reduce=False``).

Bad inputs raise ``ValueError``/``TypeError`` naming the argument: NaN scores (exclude items with
``-inf`` instead), labels outside {0, 1} for AUC/GAUC/LogLoss (binarise ratings first), empty
inputs, k < 1. One value is *undefined* rather than wrong: the AUC of rows holding one class only
(and GAUC when no group holds both). It is returned as NaN together with an
:class:`UndefinedMetricWarning`, so a per-scenario table can show it; :func:`mtrec.train.fit`
refuses such a NaN as a validation score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_binary_labels, check_ids, check_int

ArrayLike = np.ndarray | torch.Tensor | Sequence[float] | pd.Series


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for these rows (e.g. AUC with one class) and was returned as NaN."""


def _np(x: ArrayLike, dtype: type = np.float64, name: str = "input") -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be numbers (a NumPy array, tensor or list), got "
            f"{type(x).__name__} {str(x)[:60]}; convert it, e.g. np.asarray(values, dtype=float)"
        ) from None


def _check_no_nan(values: np.ndarray, name: str, fix: str) -> None:
    if np.isnan(values).any():
        raise ValueError(f"{name} contains {int(np.isnan(values).sum())} NaN values; {fix}")


_SCORE_FIX = "check the model's inputs for NaN (a NaN feature gives a NaN score)"


def _check_1d(labels: np.ndarray, scores: np.ndarray, *, binary: bool = True) -> None:
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"labels and scores must be 1-D of the same length, got {labels.shape} and "
            f"{scores.shape}; flatten per-task columns before calling"
        )
    if labels.size == 0:
        raise ValueError("labels and scores are empty; pass at least one row")
    _check_no_nan(scores, "scores", _SCORE_FIX)
    if binary:
        check_binary_labels(torch.from_numpy(labels), "labels", allow_nan=False)


def _undefined(what: str) -> float:
    """NaN with an :class:`UndefinedMetricWarning` saying why (never a silent NaN)."""
    warnings.warn(
        f"{what}; returning NaN. Evaluate on rows that hold both classes (a larger or "
        "stratified split)",
        UndefinedMetricWarning,
        stacklevel=3,
    )
    return float("nan")


# --------------------------------------------------------------------------------------------
# click-like metrics
# --------------------------------------------------------------------------------------------
def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with average ranks for ties).

    ``labels`` must be 0/1 and ``scores`` free of NaN (``ValueError`` otherwise). Returns NaN with
    an :class:`UndefinedMetricWarning` when only one class is present (AUC is undefined there).
    """
    y, s = _np(labels, name="labels"), _np(scores, name="scores")
    _check_1d(y, s)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return _undefined(f"AUC is undefined: all {len(y)} labels are {int(n_pos > 0)}")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike) -> float:
    """Group AUC: per-group AUC averaged with weights = group size (Zhou et al., KDD 2018).

    Groups (usually users) with only one class are skipped. NaN (with an
    :class:`UndefinedMetricWarning`) if no group has both classes.
    """
    y, s = _np(labels, name="labels"), _np(scores, name="scores")
    _check_1d(y, s)
    g = np.asarray(groups.detach().cpu() if isinstance(groups, torch.Tensor) else groups)
    if g.shape != y.shape:
        raise ValueError(f"groups must be 1-D like labels {y.shape}, got shape {g.shape}")
    if g.dtype.kind == "f" and np.isnan(g).any():
        raise ValueError("groups contains NaN; give every row a group (e.g. its user id)")
    frame = pd.DataFrame({"g": g, "y": y, "s": s})
    frame["r"] = frame.groupby("g")["s"].rank(method="average")
    stats = frame.groupby("g").agg(n=("y", "size"), pos=("y", "sum"))
    stats["rank_pos"] = frame[frame.y == 1].groupby("g")["r"].sum()
    stats = stats[(stats.pos > 0) & (stats.pos < stats.n)]
    if stats.empty:
        return _undefined("GAUC is undefined: no group holds both classes")
    neg = stats.n - stats.pos
    per_group = (stats.rank_pos - stats.pos * (stats.pos + 1) / 2) / (stats.pos * neg)
    return float((per_group * stats.n).sum() / stats.n.sum())


def logloss(labels: ArrayLike, probs: ArrayLike, *, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [eps, 1 - eps]); labels 0/1."""
    y, p = _np(labels, name="labels"), _np(probs, name="probs")
    _check_1d(y, p)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("logloss takes probabilities in [0, 1]; apply torch.sigmoid to logits")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def rmse(targets: ArrayLike, predictions: ArrayLike) -> float:
    """Root mean squared error."""
    t, p = _np(targets, name="targets"), _np(predictions, name="predictions")
    _check_1d(t, p, binary=False)
    _check_no_nan(t, "targets", "drop rows without a target first")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("targets and predictions must be finite; got infinite values")
    return float(np.sqrt(np.mean((t - p) ** 2)))


# --------------------------------------------------------------------------------------------
# top-K ranking metrics
# --------------------------------------------------------------------------------------------
def _topk(scores: ArrayLike, relevance: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    s, r = _np(scores, name="scores"), _np(relevance, name="relevance")
    if s.ndim != 2 or s.shape != r.shape:
        raise ValueError(
            f"scores and relevance must be (U, N) matrices of the same shape, got {s.shape} and "
            f"{r.shape}; use target_rank() for one target item per user"
        )
    k = check_int(k, "k", min=1)
    if s.size == 0:
        raise ValueError(
            f"scores and relevance are empty, shape {s.shape}; pass at least one user and item"
        )
    _check_no_nan(s, "scores", "exclude items with score -inf, not NaN; " + _SCORE_FIX)
    _check_no_nan(r, "relevance", "use 0 for items that are not relevant")
    if (r < 0).any() or np.isinf(r).any():
        raise ValueError("relevance must be finite and >= 0 (0 = not relevant)")
    k = min(k, s.shape[1])
    order = pessimistic_order(s, r)[:, :k]  # (U, k)
    return np.take_along_axis(r, order, axis=1), r


def pessimistic_order(scores: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """(U, N) column order per row: score descending, and within a tie the less relevant first.

    The ranking rule of every metric here (module docstring): ties never lift a relevant item.
    """
    return np.lexsort((relevance, -scores), axis=1)


def _reduce(per_user: np.ndarray, has_relevant: np.ndarray, reduce: bool) -> float | np.ndarray:
    per_user = np.where(has_relevant, per_user, np.nan)
    if not reduce:
        return per_user
    if not has_relevant.any():
        return _undefined(
            f"no user of {len(per_user)} has a relevant item, so the mean is undefined"
        )
    return float(np.nanmean(per_user))


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
    s = _np(scores, name="scores")
    top, r = _topk(s, relevance, max(s.shape[-1], 1) if s.ndim else 1)
    has = (top > 0).any(axis=1)
    first = np.argmax(top > 0, axis=1)
    return _reduce(np.where(has, 1.0 / (first + 1), 0.0), (r > 0).any(axis=1), reduce)


def target_rank(
    scores: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray
) -> np.ndarray:
    """0-based pessimistic rank of one target column per row: the other items scored >= it.

    A target tied with other items ranks after all of them (module docstring, "Ties"), so a
    constant model ranks every target last.

    Args:
        scores: (U, N) scores; excluded items at ``-inf``.
        targets: (U,) column index of each user's target item.
    """
    s = torch.as_tensor(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be (U, N), got shape {tuple(s.shape)}")
    t = check_ids(targets, "targets (column of each user's target)", vocab_size=s.shape[1])
    t = t.to(s.device)
    if t.shape != (s.shape[0],):
        raise ValueError(
            f"expected scores (U, N) and targets (U,), got {tuple(s.shape)}, {tuple(t.shape)}"
        )
    if s.is_floating_point() and bool(torch.isnan(s).any()):
        raise ValueError(
            f"scores contain {int(torch.isnan(s).sum())} NaN values; a NaN target would rank "
            "first. Exclude items with -inf, not NaN; " + _SCORE_FIX
        )
    target_scores = s.gather(1, t[:, None])  # (U, 1)
    return ((s >= target_scores).sum(dim=1) - 1).cpu().numpy()  # minus the target itself


def hit_ndcg_from_rank(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """HR@k and NDCG@k for one relevant item per user, from 0-based ranks."""
    ranks = _np(ranks, name="ranks")
    k = check_int(k, "k", min=1)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array (one per user), got {ranks.shape}")
    if not np.isfinite(ranks).all() or (ranks < 0).any():
        raise ValueError("ranks must be finite and >= 0 (0-based ranks from target_rank)")
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
    Scenario ids must lie in ``0..len(scenario_names)-1`` (``ValueError`` naming the others: a
    row is never dropped silently). A scenario whose rows hold one class gets AUC NaN (with an
    :class:`UndefinedMetricWarning`).
    """
    sid = check_ids(_np(scenario_ids, name="scenario_ids"), "scenario_ids").numpy()
    if sid.ndim != 1:
        raise ValueError(f"scenario_ids must be 1-D (one per row), got shape {sid.shape}")
    records = []
    names = scenario_names or [str(i) for i in range(int(sid.max()) + 1 if sid.size else 0)]
    unknown = np.unique(sid[(sid < 0) | (sid >= len(names))])
    if unknown.size:
        raise ValueError(
            f"scenario_ids {unknown[:5].tolist()} are not among the {len(names)} scenarios "
            f"{list(names)[:8]} (ids 0..{len(names) - 1}); map them to a known scenario or "
            "pass scenario_names covering every id"
        )
    for task, task_labels in labels.items():
        if task not in probs:
            raise ValueError(f"no predictions for task {task!r}; got tasks {sorted(probs)}")
        y, p = _np(task_labels, name=f"labels[{task!r}]"), _np(probs[task], name="probs")
        if y.shape != sid.shape or p.shape != sid.shape:
            raise ValueError(
                f"task {task!r}: labels {y.shape}, probs {p.shape} and scenario_ids "
                f"{sid.shape} must have one value per row"
            )
        keep = ~np.isnan(y)
        groups = [("all", keep)] + [(names[i], keep & (sid == i)) for i in range(len(names))]
        for scenario, mask in groups:
            for metric, fn in metrics.items():
                value = fn(y[mask], p[mask]) if mask.any() else float("nan")
                records.append((scenario, task, metric, value, int(mask.sum())))
    return pd.DataFrame.from_records(records, columns=["scenario", "task", "metric", "value", "n"])
