"""Content-based recommendation: cosine between a user profile and language-model item vectors.

Item vectors come from a pretrained sentence encoder (:class:`mtrec.extractors.text.TextEncoder`,
all-MiniLM-L6-v2 over "title | genres"); the profile is the (rating-weighted) mean of the user's
training items. Lops, de Gemmis and Semeraro, "Content-based Recommender Systems: State of the
Art and Trends", Recommender Systems Handbook, 2011; Reimers and Gurevych, EMNLP 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from mtrec.checks import check_finite, check_nonempty, check_tensor
from mtrec.models.ranking import check_interactions


@dataclass(frozen=True)
class ContentConfig:
    """Content-based hyper-parameters."""

    center: bool = True  # subtract the mean item vector first (removes the shared "movie" part)

    @classmethod
    def tiny(cls) -> ContentConfig:
        return cls()


class ContentRecommender:
    """score(u, i) = cos(profile_u, v_i), profile_u = Σ_j x_uj v_j.

    Works for items without any interaction (cold items) because only their text is needed.
    A user without history (a zero row) gets all-zero scores: fall back to popularity.
    """

    def __init__(self, item_vectors: Tensor, config: ContentConfig = ContentConfig()) -> None:
        if check_tensor(item_vectors, "item_vectors").ndim != 2:
            raise ValueError(f"item_vectors must be (I, D), got {tuple(item_vectors.shape)}")
        check_nonempty(item_vectors, "item_vectors", fix="pass one vector per item")
        check_finite(item_vectors, "item_vectors", fix="encode every item (no NaN rows)")
        self.config = config
        vectors = item_vectors.float()
        if config.center:
            vectors = vectors - vectors.mean(dim=0, keepdim=True)
        self.item_vectors = F.normalize(vectors, dim=1)  # (I, D)

    def fit(self, interactions: Tensor) -> ContentRecommender:
        """Nothing to learn: profiles are built from the rows given to ``scores``."""
        return self

    def profiles(self, interactions: Tensor) -> Tensor:
        """(U, D) unit user profiles from (U, I) interactions (zero rows stay zero)."""
        check_interactions(interactions)
        if interactions.shape[1] != self.item_vectors.shape[0]:
            raise ValueError(
                f"interactions have {interactions.shape[1]} item columns but there are "
                f"{self.item_vectors.shape[0]} item vectors; use the same IdIndex"
            )
        return F.normalize(interactions.float() @ self.item_vectors, dim=1)

    def scores(self, interactions: Tensor) -> Tensor:
        return self.profiles(interactions) @ self.item_vectors.T  # (U, I)
