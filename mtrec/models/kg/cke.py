"""CKE-style KG-enhanced matrix factorisation: item vector = ID embedding + projected side vectors.

Zhang, Yuan, Lian, Xie and Ma, "Collaborative Knowledge Base Embedding for Recommender Systems",
KDD 2016. CKE trains TransR jointly with BPR; here the knowledge-graph vectors are pretrained
(TransE or DistMult, :mod:`mtrec.models.kg`) and frozen, and a learned linear map brings them (and
optionally text vectors) into the collaborative space — the two-stage variant, cheaper on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrec.checks import check_float, check_ids, check_int, check_tensor
from mtrec.models.ranking import BPRSampler, bpr_loss, check_interactions


@dataclass(frozen=True)
class CKEConfig:
    """CKE hyper-parameters (the BPR ones match :class:`mtrec.models.cf.bpr.BPRConfig`)."""

    num_users: int  # U, rows of the interaction matrix
    num_items: int  # I, columns of the interaction matrix
    d_model: int = 64  # D, latent factors per user and item
    l2: float = 1e-4  # L2 penalty on the user and item-ID vectors of each triple
    init_std: float = 0.1  # std of the normal initialisation
    side_dims: tuple[
        tuple[str, int], ...
    ] = ()  # (name, width D_s) of each side source; () = BPR-MF

    def __post_init__(self) -> None:
        for name in ("num_users", "num_items", "d_model"):
            check_int(getattr(self, name), f"CKEConfig.{name}", min=1)
        check_float(self.l2, "CKEConfig.l2")
        check_float(self.init_std, "CKEConfig.init_std")
        if min(self.num_users, self.num_items, self.d_model) < 1:
            raise ValueError(
                f"num_users, num_items and d_model must be >= 1, got {self.num_users}, "
                f"{self.num_items}, {self.d_model}"
            )
        if self.l2 < 0 or self.init_std <= 0 or any(dim < 1 for _, dim in self.side_dims):
            raise ValueError(f"need l2 >= 0, init_std > 0, side widths >= 1; got {self}")

    @classmethod
    def tiny(cls) -> CKEConfig:
        return cls(num_users=6, num_items=8, d_model=4, side_dims=(("kg", 5),))


class CKE(nn.Module):
    """score(u, i) = p_u · q_i + b_i with q_i = m_i·e_i + Σ_s W_s x_si and b_i = m_i·c_i + Σ_s v_s·x_si.

    e_i, c_i: item-ID embedding and bias; x_si: fixed (I, D_s) side vectors (a KG item vector, a
    text vector); W_s, v_s: one learned map per source; m_i = 1 for items seen in training, 0 for
    cold ones (their ID parts were never trained, so only side information scores them).

    Batch keys: ``user_ids``, ``pos_item_ids``, ``neg_item_ids``, all (B,) long (as for BPR-MF;
    :class:`WarmItemSampler` makes them).
    """

    def __init__(self, config: CKEConfig, side: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        side = dict(side or {})
        for name, x in side.items():
            check_tensor(x, f"side[{name!r}]")
        expected = dict(config.side_dims)
        received = {name: tuple(x.shape) for name, x in side.items()}
        if set(expected) != set(side) or any(
            x.shape != (config.num_items, expected[n]) for n, x in side.items()
        ):
            raise ValueError(
                f"expected side vectors {{name: (num_items, D_s)}} = "
                f"{ {n: (config.num_items, d) for n, d in expected.items()} }, received {received}; "
                "declare each source in CKEConfig.side_dims with its width"
            )
        for name, x in side.items():  # a NaN row would make every user's scores NaN
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x)).any(dim=1).sum())
                raise ValueError(
                    f"side vectors {name!r} have NaN or inf in {bad} of {x.shape[0]} rows (items); "
                    "their scores, and after one training step every score, would be NaN: give "
                    "items without a side vector a zero row (torch.nan_to_num(x, nan=0.0)) or fix "
                    "the source that made them"
                )
        self.config = config
        self.user_embedding = nn.Embedding(config.num_users, config.d_model)
        self.item_embedding = nn.Embedding(config.num_items, config.d_model)
        self.item_bias = nn.Embedding(config.num_items, 1)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        nn.init.zeros_(self.item_bias.weight)
        self.names = sorted(side)
        for name in self.names:
            self.register_buffer(f"side_{name}", side[name].detach().float().clone())  # (I, D_s)
        self.projections = nn.ModuleDict(
            {n: nn.Linear(expected[n], config.d_model + 1, bias=False) for n in self.names}
        )  # the last output column adds to the bias
        for proj in self.projections.values():
            nn.init.zeros_(proj.weight)  # start as BPR-MF; the side part grows from zero
        self.register_buffer("warm", torch.ones(config.num_items, dtype=torch.bool))  # (I,)

    def set_warm(self, warm: Tensor) -> CKE:
        """Mark (I,) bool items seen in training; the others are scored by side vectors only."""
        if warm.shape != (self.config.num_items,):
            raise ValueError(
                f"warm must be ({self.config.num_items},) bool, got {tuple(warm.shape)}"
            )
        self.warm.copy_(warm.bool())
        return self

    def item_vectors(self, item_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, D) item vectors and (B,) biases of ``item_ids`` (all I items when None)."""
        ids = (
            torch.arange(self.config.num_items, device=self.warm.device)
            if item_ids is None
            else check_ids(item_ids, "item_ids", self.config.num_items)
        )
        keep = self.warm[ids].float()[:, None]  # (B, 1)
        out = torch.cat([self.item_embedding(ids), self.item_bias(ids)], dim=-1) * keep  # (B, D+1)
        for name in self.names:
            out = out + self.projections[name](getattr(self, f"side_{name}")[ids])  # (B, D+1)
        return out[:, :-1], out[:, -1]

    def forward(self, user_ids: Tensor, item_ids: Tensor) -> Tensor:
        """(B,) logits for (B,) user and (B,) item indices."""
        user_ids = check_ids(user_ids, "user_ids", self.config.num_users)
        q, b = self.item_vectors(item_ids)
        return (self.user_embedding(user_ids) * q).sum(dim=-1) + b

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """BPR's loss (:func:`mtrec.models.ranking.bpr_loss`); the ID vectors are the regularised ones."""
        return bpr_loss(self, batch, l2=self.config.l2)

    @torch.no_grad()
    def scores(self, interactions: Tensor | None = None) -> Tensor:
        """(U, I) scores for every user (``interactions`` is ignored: users are ids here)."""
        q, b = self.item_vectors()
        return self.user_embedding.weight @ q.T + b[None, :]  # (U, I)


class WarmItemSampler:
    """BPR triples whose negatives come only from items seen in training.

    A cold item (no training interaction) must not be a negative: the model would learn "side
    vectors like these are never liked" from the split itself. Wraps :class:`BPRSampler` on the
    warm columns and maps the indices back to the full (U, I) matrix.
    """

    def __init__(self, interactions: Tensor, batch_size: int = 1024, *, seed: int = 0) -> None:
        self.warm = (check_interactions(interactions) > 0).any(dim=0)  # (I,)
        self.columns = self.warm.nonzero().squeeze(1)  # (I_warm,)
        self.inner = BPRSampler(interactions[:, self.columns], batch_size, seed=seed)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for batch in self.inner:
            yield {
                "user_ids": batch["user_ids"],
                "pos_item_ids": self.columns[batch["pos_item_ids"]],
                "neg_item_ids": self.columns[batch["neg_item_ids"]],
            }
