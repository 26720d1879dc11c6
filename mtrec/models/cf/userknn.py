"""User-based k-nearest-neighbour collaborative filtering with cosine similarity.

Resnick, Iacovou, Suchak, Bergstrom and Riedl, "GroupLens: An Open Architecture for
Collaborative Filtering of Netnews", CSCW 1994; Herlocker et al., SIGIR 1999.
"""

from __future__ import annotations

from torch import Tensor

from mtrec.models.cf.itemknn import KNNConfig, topk_cosine
from mtrec.models.ranking import check_interactions


class UserKNN:
    """score(u, i) = Σ_v sim(u, v) · x_vi over u's ``neighbours`` most similar users.

    ``fit(X)`` with X (U, I) the training users; ``scores()`` returns (U, I) for those users.
    """

    def __init__(self, config: KNNConfig | None = None) -> None:
        self.config = config or KNNConfig()
        self.similarity: Tensor | None = None  # (U, U)
        self.interactions: Tensor | None = None  # (U, I)

    def fit(self, interactions: Tensor) -> UserKNN:
        self.interactions = check_interactions(interactions).float()
        self.similarity = topk_cosine(self.interactions, self.config)  # (U, U)
        return self

    def scores(self, interactions: Tensor | None = None) -> Tensor:
        """(U, I) scores for the fitted users (``interactions``, if given, must be theirs)."""
        if self.similarity is None or self.interactions is None:
            raise RuntimeError("call fit(interactions) before scores()")
        if (
            interactions is not None
            and check_interactions(interactions).shape != self.interactions.shape
        ):
            raise ValueError(
                f"UserKNN scores the users it was fitted on: expected {tuple(self.interactions.shape)}"
                f", got {tuple(interactions.shape)}; refit on the new users' rows"
            )
        return self.similarity @ self.interactions  # (U, U) @ (U, I)
