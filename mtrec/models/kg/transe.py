"""TransE: a relation is a translation between entity vectors, h + r ≈ t.

Bordes, Usunier, Garcia-Durán, Weston and Yakhnenko, "Translating Embeddings for Modeling
Multi-relational Data", NeurIPS 2013.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_float, check_ids, check_int, check_nonempty
from mtrec.data.kg import check_triples, corrupt


@dataclass(frozen=True)
class TransEConfig:
    """TransE hyper-parameters."""

    num_entities: int  # N, including the OOV entity 0 (KnowledgeGraph.num_entities)
    num_relations: int  # R
    d_model: int = 64  # D, width of entity and relation vectors
    margin: float = 1.0  # γ of the margin ranking loss
    num_negatives: int = 8  # K corrupted triples per positive
    p_norm: int = 1  # 1 (L1, the paper's choice on Freebase) or 2

    def __post_init__(self) -> None:
        for name in ("num_entities", "num_relations", "d_model", "num_negatives", "p_norm"):
            check_int(getattr(self, name), f"TransEConfig.{name}", min=1)
        check_float(self.margin, "TransEConfig.margin")
        if self.num_entities < 2 or self.num_relations < 1 or self.d_model < 1:
            raise ValueError(
                f"need num_entities >= 2, num_relations >= 1, d_model >= 1; got "
                f"{self.num_entities}, {self.num_relations}, {self.d_model}"
            )
        if self.margin <= 0 or self.num_negatives < 1 or self.p_norm not in (1, 2):
            raise ValueError(
                f"need margin > 0, num_negatives >= 1, p_norm in (1, 2); got {self.margin}, "
                f"{self.num_negatives}, {self.p_norm}"
            )

    @classmethod
    def tiny(cls) -> TransEConfig:
        return cls(num_entities=12, num_relations=3, d_model=8, num_negatives=4)


class TransE(nn.Module):
    """score(h, r, t) = −‖ê_h + w_r − ê_t‖_p with unit-norm entity vectors ê (higher = plausible).

    Batch keys (see :func:`mtrec.data.kg.triple_batches`): ``heads``, ``relations``, ``tails``,
    each (B,) long. Entity vectors are L2-normalised inside every score, the paper's constraint
    ‖e‖ = 1 written as a reparametrisation instead of a projection step after each update.
    """

    def __init__(self, config: TransEConfig) -> None:
        super().__init__()
        self.config = config
        bound = 6 / math.sqrt(config.d_model)  # the paper's uniform initialisation
        self.entity_embedding = nn.Embedding(config.num_entities, config.d_model)
        self.relation_embedding = nn.Embedding(config.num_relations, config.d_model)
        nn.init.uniform_(self.entity_embedding.weight, -bound, bound)
        nn.init.uniform_(self.relation_embedding.weight, -bound, bound)
        with torch.no_grad():
            self.relation_embedding.weight.copy_(
                F.normalize(self.relation_embedding.weight, dim=-1)
            )

    def _entities(self, ids: Tensor) -> Tensor:
        return F.normalize(self.entity_embedding(ids), dim=-1)  # (..., D)

    def _check(self, **ids: Tensor) -> list[Tensor]:
        """Each of ``heads``/``tails`` (entity ids) and ``relations`` as long, in range."""
        sizes = {"heads": self.config.num_entities, "tails": self.config.num_entities}
        sizes["relations"] = self.config.num_relations
        return [check_ids(x, name, sizes[name]) for name, x in ids.items()]

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """Scores of broadcastable (B, ...) id tensors → the broadcast shape."""
        heads, relations, tails = self._check(heads=heads, relations=relations, tails=tails)
        h, r, t = self._entities(heads), self.relation_embedding(relations), self._entities(tails)
        return -(h + r - t).norm(p=self.config.p_norm, dim=-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Margin ranking: mean over B·K of max(0, γ − s(h, r, t) + s(h', r, t'))."""
        cfg = self.config
        check_triples(batch, cfg.num_entities, cfg.num_relations)
        check_nonempty(batch["heads"], "batch['heads']", fix="a loss needs at least one triple")
        heads, relations, tails = batch["heads"], batch["relations"], batch["tails"]
        neg_heads, neg_tails = corrupt(
            heads, tails, num_negatives=cfg.num_negatives, num_entities=cfg.num_entities
        )  # (B, K) each
        positive = self.score(heads, relations, tails)  # (B,)
        negative = self.score(neg_heads, relations[:, None], neg_tails)  # (B, K)
        return F.relu(cfg.margin - positive[:, None] + negative).mean()

    @torch.no_grad()
    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        """(B, N) scores of every entity as the tail of (B,) (head, relation) queries."""
        heads, relations = self._check(heads=heads, relations=relations)
        query = self._entities(heads) + self.relation_embedding(relations)  # (B, D)
        return -torch.cdist(query, self._entities_all(), p=self.config.p_norm)

    @torch.no_grad()
    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        """(B, N) scores of every entity as the head of (B,) (relation, tail) queries."""
        relations, tails = self._check(relations=relations, tails=tails)
        query = self._entities(tails) - self.relation_embedding(relations)  # (B, D)
        return -torch.cdist(query, self._entities_all(), p=self.config.p_norm)

    def _entities_all(self) -> Tensor:
        return F.normalize(self.entity_embedding.weight, dim=-1)  # (N, D)

    @torch.no_grad()
    def entity_vectors(self) -> Tensor:
        """(N, D) the unit-norm entity vectors used in scores (features for recommenders)."""
        return self._entities_all().detach().clone()
