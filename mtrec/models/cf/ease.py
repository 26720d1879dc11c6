"""EASE: an item-item linear autoencoder with a zero diagonal, solved in closed form.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mtrec.checks import check_float
from mtrec.models.ranking import check_interactions


@dataclass(frozen=True)
class EASEConfig:
    """EASE hyper-parameters."""

    l2: float = 500.0  # ridge penalty λ on the item-item weights (Steck: a few hundred for ML)

    def __post_init__(self) -> None:
        check_float(self.l2, "EASEConfig.l2")
        if self.l2 <= 0:
            raise ValueError(
                f"l2 must be > 0 (the Gram matrix needs it to be invertible), got {self.l2}"
            )

    @classmethod
    def tiny(cls) -> EASEConfig:
        return cls(l2=1.0)


class EASE:
    """Closed-form B = argmin ||X − XB||² + λ||B||² subject to diag(B) = 0.

    ``fit(X)`` with X (U, I) user-item interactions; ``scores(X)`` returns (U, I) = X B.
    """

    def __init__(self, config: EASEConfig = EASEConfig()) -> None:
        self.config = config
        self.weights: Tensor | None = None  # (I, I)

    def fit(self, interactions: Tensor) -> EASE:
        """Solve for B on (U, I) training interactions."""
        x = check_interactions(interactions).double()  # (U, I); float64 for a stable inverse
        gram = x.T @ x  # (I, I)
        gram.diagonal().add_(self.config.l2)
        precision = torch.linalg.inv(gram)  # (I, I)
        weights = -precision / precision.diagonal()[None, :]  # B_ij = -P_ij / P_jj
        weights.diagonal().zero_()
        self.weights = weights.float()
        return self

    def scores(self, interactions: Tensor) -> Tensor:
        """(U, I) scores for users described by their (U, I) interaction rows."""
        if self.weights is None:
            raise RuntimeError("call fit(interactions) before scores()")
        check_interactions(interactions)
        if interactions.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"interactions have {interactions.shape[1]} item columns, the model was fitted "
                f"on {self.weights.shape[0]}; use the same IdIndex for both"
            )
        return interactions.float() @ self.weights
