"""Item-based k-nearest-neighbour collaborative filtering with cosine similarity.

Sarwar, Karypis, Konstan and Riedl, "Item-Based Collaborative Filtering Recommendation
Algorithms", WWW 2001.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.checks import check_float, check_int
from mtrec.models.ranking import check_interactions


@dataclass(frozen=True)
class KNNConfig:
    """Neighbourhood hyper-parameters (shared by item- and user-based kNN)."""

    neighbours: int = 100  # keep the k most similar rows per row; the rest of the row is zero
    shrink: float = 0.0  # similarity shrinkage: cos · n / (n + shrink), n = co-count (0 = off)

    def __post_init__(self) -> None:
        check_int(self.neighbours, "KNNConfig.neighbours", min=1)
        check_float(self.shrink, "KNNConfig.shrink")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {self.neighbours}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink}")

    @classmethod
    def tiny(cls) -> KNNConfig:
        return cls(neighbours=3)


def topk_cosine(vectors: Tensor, config: KNNConfig) -> Tensor:
    """Cosine similarity between the rows of ``vectors`` (N, D), pruned to k neighbours per row.

    Returns:
        (N, N) similarities, zero diagonal, only each row's ``config.neighbours`` largest kept.
    """
    unit = F.normalize(vectors.float(), dim=1)  # (N, D)
    sim = unit @ unit.T  # (N, N)
    if config.shrink > 0:
        binary = (vectors > 0).float()
        co_counts = binary @ binary.T  # (N, N)
        sim = sim * co_counts / (co_counts + config.shrink)
    sim.fill_diagonal_(0.0)
    k = min(config.neighbours, sim.shape[1])
    top = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, top.indices, top.values)


class ItemKNN:
    """score(u, i) = Σ_j x_uj · sim(j, i), with sim pruned to each item's nearest neighbours.

    ``fit(X)`` with X (U, I); ``scores(X)`` returns (U, I).
    """

    def __init__(self, config: KNNConfig = KNNConfig()) -> None:
        self.config = config
        self.similarity: Tensor | None = None  # (I, I), row j = neighbours of item j

    def fit(self, interactions: Tensor) -> ItemKNN:
        check_interactions(interactions)
        self.similarity = topk_cosine(interactions.T, self.config)  # (I, I)
        return self

    def scores(self, interactions: Tensor) -> Tensor:
        if self.similarity is None:
            raise RuntimeError("call fit(interactions) before scores()")
        check_interactions(interactions)
        if interactions.shape[1] != self.similarity.shape[0]:
            raise ValueError(
                f"interactions have {interactions.shape[1]} item columns, the model was fitted "
                f"on {self.similarity.shape[0]}"
            )
        return interactions.float() @ self.similarity  # (U, I)
