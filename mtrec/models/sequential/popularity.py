"""Popularity: recommend the items with the most training interactions, the same for everyone.

The classic non-personalised baseline (e.g. Cremonesi, Koren & Turrin, "Performance of
Recommender Algorithms on Top-N Recommendation Tasks", RecSys 2010). Any personalised model that
does not beat it is not learning from the user.

Usage::

    pop = Popularity(num_items).fit(train_item_ids)
    scores = pop.score(history)          # (B, N+1); column 0 (padding) is -inf
    top = pop.recommend(history, k=10)   # (B, k) item ids
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["Popularity"]


class Popularity:
    """Scores every item by its training interaction count (ties keep the lower id first)."""

    def __init__(self, num_items: int) -> None:
        if num_items < 1:
            raise ValueError(f"num_items must be >= 1, got {num_items}")
        self.num_items = num_items
        self.counts: Tensor | None = None  # (N+1,) float, index 0 unused

    def fit(self, item_ids: np.ndarray | Tensor) -> Popularity:
        """Count interactions. ``item_ids``: 1-D ids in 1..num_items (0 / padding is ignored)."""
        ids = torch.as_tensor(np.array(item_ids, dtype=np.int64)).flatten()  # a copy: writable
        if ids.numel() and (ids.min() < 0 or ids.max() > self.num_items):
            raise ValueError(
                f"item ids must be in 0..{self.num_items}, got range {ids.min()}..{ids.max()}"
            )
        counts = torch.bincount(ids, minlength=self.num_items + 1).float()
        counts[0] = float("-inf")
        self.counts = counts
        return self

    def score(self, history: Tensor) -> Tensor:
        """(B, L) histories (only B is used) → (B, N+1) scores."""
        if self.counts is None:
            raise RuntimeError("Popularity is not fitted; call fit(train_item_ids) first")
        return self.counts.expand(history.shape[0], -1)

    def recommend(self, history: Tensor, k: int = 10, *, exclude_seen: bool = True) -> Tensor:
        """(B, L) histories → (B, k) most popular item ids, minus each user's history."""
        scores = self.score(history).clone()
        if exclude_seen:
            scores.scatter_(1, history, float("-inf"))
        return scores.topk(k, dim=1).indices
