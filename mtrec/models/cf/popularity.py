"""Popularity: recommend the items with the most training interactions, the same for everyone.

The classic non-personalised baseline (e.g. Cremonesi, Koren & Turrin, "Performance of
Recommender Algorithms on Top-N Recommendation Tasks", RecSys 2010). Any personalised model that
does not beat it is not learning from the user.

One model for both families that rank items:

* **Top-K** (a (U, I) 0/1 interaction matrix): an item's score is the number of users who
  interacted with it in training; ``scores(interactions) -> (U, I)``.
* **Sequential** (1-D item ids 1..N, 0 = padding): an item's score is its number of training
  interactions; ``scores(histories) -> (U, N+1)`` with column 0 (padding) at ``-inf``.

Every user gets the same row; ties keep the lower id first (``topk`` order).

Usage::

    pop = Popularity().fit(train)                     # (U, I) matrix
    scores = pop.scores(train)                        # (U, I)
    pop = Popularity(num_items).fit(train_item_ids)   # 1-D ids 1..N
    scores = pop.scores(histories)                    # (U, N+1) for (U, L) histories
    top = pop.recommend(histories, k=10)              # (U, k) item ids, history excluded
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_finite, check_ids, check_int, check_tensor
from mtrec.models.ranking import top_k_unseen

__all__ = ["Popularity"]


class Popularity:
    """Scores every item by its training interaction count (ties keep the lower id first).

    Args:
        num_items: N. Required for item ids (the scores then have N+1 columns, 0 = padding);
            optional for a (U, I) matrix, where it must equal I when given.
    """

    def __init__(self, num_items: int | None = None) -> None:
        if num_items is not None:
            num_items = check_int(num_items, "num_items", min=1)
        self.num_items = num_items
        self.counts: Tensor | None = None  # (N+1,) with index 0 at -inf, or (I,)

    def fit(self, data: np.ndarray | Tensor) -> Popularity:
        """Count training interactions.

        Args:
            data: either 1-D item ids in 1..num_items (0 / padding is ignored), or a (U, I)
                interaction matrix (> 0 = interacted; an item counts each user once).
        """
        ndim = np.ndim(data)
        if ndim == 1:
            self.counts = self._count_ids(data)
        elif ndim == 2:
            self.counts = self._count_matrix(torch.as_tensor(data))
        else:
            raise ValueError(
                f"fit takes 1-D item ids or a (U, I) interaction matrix, got {ndim} dimensions; "
                "for a padded array of item ids pass ids.flatten()"
            )
        return self

    def _count_ids(self, item_ids: np.ndarray | Tensor) -> Tensor:
        if self.num_items is None:
            raise ValueError("fitting on item ids needs num_items: use Popularity(num_items)")
        raw = item_ids.detach().cpu() if isinstance(item_ids, Tensor) else np.asarray(item_ids)
        ids = check_ids(raw, "item ids")  # (n,) long; 1.7 is refused, not truncated
        if ids.numel() and (ids.min() < 0 or ids.max() > self.num_items):
            raise ValueError(
                f"item ids must be in 0..{self.num_items}, got range {ids.min()}..{ids.max()}"
            )
        counts = torch.bincount(ids, minlength=self.num_items + 1).float()  # (N+1,)
        counts[0] = float("-inf")
        return counts

    def _count_matrix(self, interactions: Tensor) -> Tensor:
        check_finite(check_tensor(interactions, "interactions"), "interactions")
        if self.num_items is not None and interactions.shape[1] != self.num_items:
            raise ValueError(
                f"the (U, I) matrix must have I = num_items = {self.num_items} columns, got "
                f"{tuple(interactions.shape)}; for a padded array of item ids pass ids.flatten()"
            )
        return interactions.gt(0).float().sum(dim=0)  # (I,) users per item

    def scores(self, inputs: Tensor) -> Tensor:
        """(U, ...) histories or interactions (only U is used) → (U, I) or (U, N+1) scores."""
        if self.counts is None:
            raise RuntimeError("Popularity is not fitted; call fit(train) first")
        if np.ndim(inputs) == 0:
            raise ValueError(
                f"inputs must be (U, ...) histories or interactions (one row per user), got "
                f"{type(inputs).__name__} {inputs!r}"
            )
        return self.counts.expand(np.shape(inputs)[0], -1).clone()

    def recommend(self, history: Tensor, k: int = 10, *, exclude_seen: bool = True) -> Tensor:
        """(U, L) histories of item ids → (U, k) most popular item ids, minus each history.

        Never returns padding (0) or a seen item: a row with fewer than ``k`` unseen items
        left raises ValueError (:func:`mtrec.models.ranking.top_k_unseen`).
        """
        scores = self.scores(history)
        return top_k_unseen(scores, history, k, exclude_seen=exclude_seen, what="Popularity")
