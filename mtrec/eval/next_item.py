"""Leave-last-out sequences as padded tensors, and full-ranking evaluation for next-item models.

Protocol (``mtrec.data.leave_last_out``): per user, interactions in time order; the last is the
test target, the second-to-last the validation target, the rest is training history. Validation
ranks the validation target given the training history; test ranks the test target given the
training history plus the validation item. Each target is ranked against every item the user
has not interacted with before it (seen items are scored ``-inf``; the target itself never is).
Histories are **left-padded** with item id 0 (most recent item last) and cut to the last L items.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from mtrec.eval.metrics import hit_ndcg_from_rank, target_rank

__all__ = ["evaluate_next_item"]


@torch.no_grad()
def evaluate_next_item(
    score_fn: Callable[[Tensor], Tensor],
    history: Tensor,
    target: Tensor,
    seen: Tensor,
    *,
    k: int = 10,
    batch_size: int = 512,
) -> dict[str, float]:
    """HR@k and NDCG@k of ranking each target among all items not in ``seen``.

    Args:
        score_fn: (B, L) histories → (B, N+1) scores (column 0 = padding, ignored).
        history: (U, L) left-padded histories.
        target: (U,) target item ids.
        seen: (U, N+1) bool, True = excluded (scored -inf).
        k: cut-off.
    """
    ranks = []
    for start in range(0, len(history), batch_size):
        part = slice(start, start + batch_size)
        scores = score_fn(history[part]).float().cpu()
        if scores.shape != seen[part].shape:
            raise ValueError(
                f"score_fn must return (B, N+1) = {tuple(seen[part].shape)}, got {tuple(scores.shape)}"
            )
        ranks.append(target_rank(scores.masked_fill(seen[part], float("-inf")), target[part]))
    hr, ndcg = hit_ndcg_from_rank(np.concatenate(ranks), k)
    return {f"hr@{k}": hr, f"ndcg@{k}": ndcg}
