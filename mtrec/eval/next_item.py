"""Next-item evaluation of sequential models: leave-last-out, full ranking, HR@k and NDCG@k.

The one entry point is :func:`evaluate_next_item` (the sequences come from
:func:`mtrec.data.sequences.build_sequences`).

Protocol (``mtrec.data.leave_last_out``): per user, interactions in time order; the last is the
test target, the second-to-last the validation target, the rest is training history. Validation
ranks the validation target given the training history; test ranks the test target given the
training history plus the validation item. Each target is ranked against every item the user
has not interacted with before it (seen items are scored ``-inf``; the target itself never is).
Histories are **left-padded** with item id 0 (most recent item last) and cut to the last L items.
A user's score is 1 / log2(rank + 2) for NDCG and 1 for HR when the target's 0-based rank (the
number of unseen items scored strictly higher) is below k; both are averaged over users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_int, check_tensor
from mtrec.eval.metrics import hit_ndcg_from_rank, target_rank

__all__ = ["evaluate_next_item"]


@torch.no_grad()
def evaluate_next_item(
    score_fn: Callable[[Any], Tensor] | Any,
    history: Tensor | Sequence[Sequence[int]],
    target: Tensor,
    seen: Tensor,
    *,
    k: int | Sequence[int] = 10,
    batch_size: int = 512,
) -> dict[str, float]:
    """HR@k and NDCG@k of ranking each target among all items not in ``seen``.

    Args:
        score_fn: a sequential model (its ``scores`` method is used) or a function mapping a
            slice of ``history`` to (B, N+1) scores (column 0 = padding, ignored), e.g.
            ``model.scores``.
        history: (U, L) left-padded histories, or any sliceable sequence of U histories that
            ``score_fn`` accepts (e.g. lists of item ids for P5's prompts).
        target: (U,) target item ids.
        seen: (U, N+1) bool, True = excluded (scored -inf).
        k: one cut-off or several (e.g. ``(5, 10)``).
        batch_size: users scored per call of ``score_fn``.

    Returns:
        ``{"hr@k", "ndcg@k"}`` for each cut-off, in the order given.
    """
    scores_of = score_fn.scores if hasattr(score_fn, "scores") else score_fn
    if not callable(scores_of):
        raise TypeError(
            f"score_fn must be a sequential model (with .scores) or a function, got "
            f"{type(score_fn).__name__}"
        )
    batch_size = check_int(batch_size, "batch_size", min=1)
    cutoffs = [check_int(c, "k", min=1) for c in ((k,) if isinstance(k, int) else k)]
    if not cutoffs:
        raise ValueError("k is empty; pass one cut-off (e.g. 10) or several (e.g. (5, 10))")
    check_tensor(target, "target", ndim=1)
    check_tensor(seen, "seen", ndim=2)
    if seen.dtype != torch.bool:
        raise TypeError(f"seen must be a bool tensor (True = excluded), got {seen.dtype}")
    if len(target) == 0:
        raise ValueError("no users to evaluate: history, target and seen are empty")
    if len(history) != len(target) or tuple(seen.shape[:1]) != (len(target),):
        raise ValueError(
            f"history, target and seen must cover the same U users, got {len(history)}, "
            f"{len(target)}, {tuple(seen.shape)}"
        )
    ranks = []
    for start in range(0, len(history), batch_size):
        part = slice(start, start + batch_size)
        scores = check_tensor(scores_of(history[part]), "score_fn output").float().cpu()
        if scores.shape != seen[part].shape:
            raise ValueError(
                f"score_fn must return (B, N+1) = {tuple(seen[part].shape)}, got {tuple(scores.shape)}"
            )
        ranks.append(target_rank(scores.masked_fill(seen[part], float("-inf")), target[part]))
    ranks = np.concatenate(ranks)
    results = {}
    for cutoff in cutoffs:
        results[f"hr@{cutoff}"], results[f"ndcg@{cutoff}"] = hit_ndcg_from_rank(ranks, cutoff)
    return results
