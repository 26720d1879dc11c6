"""Matrix factorisation trained with Bayesian Personalised Ranking (pairwise implicit feedback).

Rendle, Freudenthaler, Gantner and Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
Implicit Feedback", UAI 2009.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_float, check_ids, check_int, check_nonempty
from mtrec.models.ranking import check_interactions


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


def bpr_loss(model: nn.Module, batch: dict[str, Tensor], *, l2: float) -> Tensor:
    """BPR's loss for any model scoring ``model(user_ids, item_ids) -> (B,)`` logits.

    -log σ(s(u, i⁺) − s(u, i⁻)) + l2 · (||p_u||² + ||q_i⁺||² + ||q_i⁻||²), averaged over the batch,
    where p and q are the model's ``user_embedding`` and ``item_embedding`` (the ID vectors).
    Keys: "user_ids", "pos_item_ids", "neg_item_ids", each (B,) long.
    """
    for key in ("user_ids", "pos_item_ids", "neg_item_ids"):
        if key not in batch:
            raise KeyError(f"BPR batches need key {key!r}; got {sorted(batch)}")
    users = check_nonempty(batch["user_ids"], "batch['user_ids']", fix="pass at least one triple")
    diff = model(users, batch["pos_item_ids"]) - model(users, batch["neg_item_ids"])
    reg = (
        model.user_embedding(users).pow(2).sum(-1)
        + model.item_embedding(batch["pos_item_ids"]).pow(2).sum(-1)
        + model.item_embedding(batch["neg_item_ids"]).pow(2).sum(-1)
    )
    return -F.logsigmoid(diff).mean() + l2 * reg.mean()


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


class BPRSampler:
    """Re-iterable triples: every epoch pairs each positive (u, i⁺) with a fresh unseen i⁻.

    Args:
        interactions: (U, I) training matrix (> 0 = positive).
        batch_size: triples per batch.
        seed: base seed; epoch e uses ``seed + e``.
    """

    def __init__(self, interactions: Tensor, batch_size: int = 1024, *, seed: int = 0) -> None:
        self.seen = check_interactions(interactions) > 0  # (U, I)
        check_int(batch_size, "batch_size", min=1)
        self.users, self.items = self.seen.nonzero(as_tuple=True)
        if len(self.users) == 0:
            raise ValueError("BPRSampler needs at least one positive interaction")
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        num_items = self.seen.shape[1]
        neg = torch.randint(num_items, (len(self.users),), generator=gen)
        for _ in range(20):  # resample negatives that hit a positive (vectorised rounds)
            clash = self.seen[self.users, neg]
            if not clash.any():
                break
            neg[clash] = torch.randint(num_items, (int(clash.sum()),), generator=gen)
        order = torch.randperm(len(self.users), generator=gen)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield {
                "user_ids": self.users[idx],
                "pos_item_ids": self.items[idx],
                "neg_item_ids": neg[idx],
            }
