"""Matrix factorisation trained with Bayesian Personalised Ranking (pairwise implicit feedback).

Rendle, Freudenthaler, Gantner and Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
Implicit Feedback", UAI 2009.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_float, check_ids, check_int
from mtrec.models.ranking import BPRSampler, bpr_loss

__all__ = ["BPRMF", "BPRConfig", "BPRSampler", "bpr_loss"]  # the sampler and loss live in ranking


@dataclass(frozen=True)
class BPRConfig:
    """BPR-MF hyper-parameters."""

    num_users: int  # rows of the interaction matrix
    num_items: int  # columns of the interaction matrix
    d_model: int = 64  # latent factors per user and item
    l2: float = 1e-4  # L2 penalty on the embeddings used in each triple (per-sample, as in BPR)
    init_std: float = 0.1  # std of the normal initialisation

    def __post_init__(self) -> None:
        for name in ("num_users", "num_items", "d_model"):
            check_int(getattr(self, name), f"BPRConfig.{name}", min=1)
        check_float(self.l2, "BPRConfig.l2")
        check_float(self.init_std, "BPRConfig.init_std")
        if min(self.num_users, self.num_items, self.d_model) < 1:
            raise ValueError(
                f"num_users, num_items and d_model must be >= 1, got {self.num_users}, "
                f"{self.num_items}, {self.d_model}"
            )
        if self.l2 < 0 or self.init_std <= 0:
            raise ValueError(f"need l2 >= 0 and init_std > 0, got {self.l2}, {self.init_std}")

    @classmethod
    def tiny(cls) -> BPRConfig:
        return cls(num_users=6, num_items=8, d_model=4)


class BPRMF(nn.Module):
    """score(u, i) = p_u · q_i + b_i.

    Batch keys: ``user_ids`` (B,), ``pos_item_ids`` (B,), ``neg_item_ids`` (B,), all long
    row/column indices of the interaction matrix.
    """

    def __init__(self, config: BPRConfig) -> None:
        super().__init__()
        self.config = config
        self.user_embedding = nn.Embedding(config.num_users, config.d_model)
        self.item_embedding = nn.Embedding(config.num_items, config.d_model)
        self.item_bias = nn.Embedding(config.num_items, 1)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, user_ids: Tensor, item_ids: Tensor) -> Tensor:
        """(B,) logits for (B,) user and (B,) item indices."""
        user_ids = check_ids(user_ids, "user_ids", self.config.num_users)
        item_ids = check_ids(item_ids, "item_ids", self.config.num_items)
        p, q = self.user_embedding(user_ids), self.item_embedding(item_ids)  # (B, D)
        return (p * q).sum(dim=-1) + self.item_bias(item_ids).squeeze(-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """-log σ(s(u, i⁺) − s(u, i⁻)) + l2 · ||θ||², averaged over the batch."""
        return bpr_loss(self, batch, l2=self.config.l2)

    @torch.no_grad()
    def scores(self, interactions: Tensor | None = None) -> Tensor:
        """(U, I) scores for every user (``interactions`` is ignored: users are ids here)."""
        users, items = self.user_embedding.weight, self.item_embedding.weight
        return users @ items.T + self.item_bias.weight.T  # (U, I)
