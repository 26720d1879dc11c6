"""A two-tower recommender: score(u, i) = user_vector(u) · item_vector(i), trained with BPR.

The item tower is an ID embedding (matrix factorisation), a linear map of a frozen content
vector, or a fusion of several frozen per-item vectors with the ID embedding. Two-tower
retrieval: Covington, Adams and Sargin, "Deep Neural Networks for YouTube Recommendations",
RecSys 2016; Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations", RecSys 2019. Loss: Rendle et al., "BPR", UAI 2009.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_choice, check_ids, check_int, check_tensor

ITEM_TOWERS = ("id", "content", "fused")
FusionFactory = Callable[[dict[str, int], int], nn.Module]  # (dims, d_model) -> fusion module


@dataclass(frozen=True)
class TwoTowerConfig:
    """Two-tower hyper-parameters."""

    num_users: int  # user ids 0..num_users-1
    num_items: int  # item ids 0..num_items-1
    d_model: int = 32  # width of the user and item vectors
    item_tower: str = "id"  # "id": ID embedding; "content": Linear(content); "fused": a fusion
    content: str = "text"  # the feature the "content" tower maps (listed first in a fusion)
    init_std: float = 0.1  # std of the normal initialisation of the user and ID embeddings

    def __post_init__(self) -> None:
        for name in ("num_users", "num_items", "d_model"):
            check_int(getattr(self, name), f"TwoTowerConfig.{name}", min=1)
        check_choice(self.item_tower, "TwoTowerConfig.item_tower", ITEM_TOWERS)
        if self.init_std <= 0:
            raise ValueError(f"TwoTowerConfig.init_std must be > 0, got {self.init_std}")

    @classmethod
    def tiny(cls, item_tower: str = "id") -> TwoTowerConfig:
        return cls(num_users=5, num_items=7, d_model=4, item_tower=item_tower)


class TwoTower(nn.Module):
    """score(u, i) = p_u · v_i; v_i from the ID, a frozen content vector, or a fusion of both.

    Args:
        config: sizes and the kind of item tower.
        features: frozen per-item vectors, name → (num_items, D_m) (row = item id); needed by
            the "content" tower (``features[config.content]``) and the "fused" tower (all of them).
        fusion: builds the fusion from ``(dims, d_model)``, e.g. a class of
            :data:`mtrec.extractors.FUSIONS`; its modalities are ``config.content``, ``"id"``, then
            the other features in their given order. Required by the "fused" tower.

    Batch keys (BPR triples): ``user_ids``, ``pos_item_ids``, ``neg_item_ids``, each (B,) long.
    """

    def __init__(
        self,
        config: TwoTowerConfig,
        *,
        features: Mapping[str, Tensor] | None = None,
        fusion: FusionFactory | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        features = dict(features or {})
        if config.item_tower != "id" and config.content not in features:
            raise ValueError(
                f"item_tower={config.item_tower!r} needs features[{config.content!r}], got "
                f"features {sorted(features)}; pass features={{{config.content!r}: (I, D) tensor}}"
            )
        if config.item_tower == "fused" and fusion is None:
            raise ValueError("item_tower='fused' needs fusion=..., e.g. FUSIONS['attention']")
        for name, table in features.items():
            check_tensor(table, f"features[{name!r}]", shape=(config.num_items, None))
        self.user_embedding = nn.Embedding(config.num_users, config.d_model)
        self.item_embedding = nn.Embedding(config.num_items, config.d_model)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        self.names = list(features)
        for name, table in features.items():  # frozen: buffers move with .to(device), never train
            self.register_buffer(f"feature_{name}", table.float(), persistent=False)
        self.content = None
        if features:  # built whenever features exist, so one seed draws the same fusion weights
            self.content = nn.Linear(features[config.content].shape[1], config.d_model)
        self.fusion = None
        if config.item_tower == "fused":
            dims = {config.content: features[config.content].shape[1], "id": config.d_model}
            dims.update({n: t.shape[1] for n, t in features.items() if n != config.content})
            self.fusion = fusion(dims, config.d_model)

    def feature(self, name: str) -> Tensor:
        """The frozen (num_items, D_m) table ``name``."""
        return getattr(self, f"feature_{name}")

    def item_vectors(
        self, item_ids: Tensor, *, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """(B, D) item vectors for (B,) item ids (and the fusion's (B, M) weights when asked)."""
        item_ids = check_ids(item_ids, "item_ids", self.config.num_items)
        tower = self.config.item_tower
        if return_weights and tower != "fused":
            raise ValueError(f"return_weights needs item_tower='fused', this tower is {tower!r}")
        if tower == "id":
            return self.item_embedding(item_ids)
        if tower == "content":
            return self.content(self.feature(self.config.content)[item_ids])
        inputs = {name: self.feature(name)[item_ids] for name in self.names}
        inputs["id"] = self.item_embedding(item_ids)
        return self.fusion(inputs, return_weights=return_weights)

    def forward(self, user_ids: Tensor, item_ids: Tensor) -> Tensor:
        """(B,) scores for (B,) user and (B,) item ids."""
        user_ids = check_ids(user_ids, "user_ids", self.config.num_users)
        return (self.user_embedding(user_ids) * self.item_vectors(item_ids)).sum(-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """BPR: -log σ(s(u, i⁺) − s(u, i⁻)), averaged over the batch (no L2 term)."""
        for key in ("user_ids", "pos_item_ids", "neg_item_ids"):
            if key not in batch:
                raise KeyError(f"TwoTower batches need key {key!r}; got {sorted(batch)}")
        users = self.user_embedding(check_ids(batch["user_ids"], "user_ids",
                                              self.config.num_users))  # (B, D)  # fmt: skip
        pos = (users * self.item_vectors(batch["pos_item_ids"])).sum(-1)  # (B,)
        neg = (users * self.item_vectors(batch["neg_item_ids"])).sum(-1)  # (B,)
        return -F.logsigmoid(pos - neg).mean()

    @torch.no_grad()
    def scores(self, interactions: Tensor | None = None) -> Tensor:
        """(U, I) scores of every user for every item (``interactions`` is ignored)."""
        items = self.item_vectors(torch.arange(self.config.num_items, device=self._device()))
        return self.user_embedding.weight @ items.T  # (U, I)

    def _device(self) -> torch.device:
        return self.user_embedding.weight.device
