"""DistMult: a relation is a diagonal bilinear form, score = Σ_d h_d · r_d · t_d.

Yang, Yih, He, Gao and Deng, "Embedding Entities and Relations for Learning and Inference in
Knowledge Bases", ICLR 2015. Trained with the self-adversarial negative sampling loss of Sun, Deng,
Nie and Tang, "RotatE: Knowledge Graph Embedding by Relational Rotation in Complex Space",
ICLR 2019 (hard negatives weigh more).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_float, check_ids, check_int, check_nonempty
from mtrec.data.kg import check_triples, corrupt


@dataclass(frozen=True)
class DistMultConfig:
    """DistMult hyper-parameters."""

    num_entities: int  # N, including the OOV entity 0 (KnowledgeGraph.num_entities)
    num_relations: int  # R
    d_model: int = 64  # D, width of entity and relation vectors
    num_negatives: int = 8  # K corrupted triples per positive
    adversarial_temperature: float = 1.0  # α: weights softmax(α · s_neg); 0 = uniform weights
    l2: float = 1e-4  # L2 penalty on the vectors of each batch (DistMult overfits without it)
    init_std: float = 0.1  # std of the normal initialisation

    def __post_init__(self) -> None:
        for name in ("num_entities", "num_relations", "d_model", "num_negatives"):
            check_int(getattr(self, name), f"DistMultConfig.{name}", min=1)
        check_float(self.adversarial_temperature, "DistMultConfig.adversarial_temperature")
        check_float(self.l2, "DistMultConfig.l2")
        check_float(self.init_std, "DistMultConfig.init_std")
        if self.num_entities < 2 or self.num_relations < 1 or self.d_model < 1:
            raise ValueError(
                f"need num_entities >= 2, num_relations >= 1, d_model >= 1; got "
                f"{self.num_entities}, {self.num_relations}, {self.d_model}"
            )
        if self.num_negatives < 1 or self.adversarial_temperature < 0 or self.l2 < 0:
            raise ValueError(
                f"need num_negatives >= 1, adversarial_temperature >= 0 and l2 >= 0; got "
                f"{self.num_negatives}, {self.adversarial_temperature}, {self.l2}"
            )

    @classmethod
    def tiny(cls) -> DistMultConfig:
        return cls(num_entities=12, num_relations=3, d_model=8, num_negatives=4)


class DistMult(nn.Module):
    """score(h, r, t) = ⟨e_h, w_r, e_t⟩ (higher = plausible; symmetric in h and t).

    Batch keys (see :func:`mtrec.data.kg.triple_batches`): ``heads``, ``relations``, ``tails``,
    each (B,) long. Symmetry means DistMult cannot tell ``sequel`` from ``prequel`` by direction;
    this graph names both directions with separate relations, which keeps that cost small.
    """

    def __init__(self, config: DistMultConfig) -> None:
        super().__init__()
        self.config = config
        self.entity_embedding = nn.Embedding(config.num_entities, config.d_model)
        self.relation_embedding = nn.Embedding(config.num_relations, config.d_model)
        nn.init.normal_(self.entity_embedding.weight, std=config.init_std)
        nn.init.normal_(self.relation_embedding.weight, mean=1.0, std=config.init_std)

    def _check(self, **ids: Tensor) -> list[Tensor]:
        """Each of ``heads``/``tails`` (entity ids) and ``relations`` as long, in range."""
        sizes = {"heads": self.config.num_entities, "tails": self.config.num_entities}
        sizes["relations"] = self.config.num_relations
        return [check_ids(x, name, sizes[name]) for name, x in ids.items()]

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """Scores of broadcastable (B, ...) id tensors → the broadcast shape."""
        heads, relations, tails = self._check(heads=heads, relations=relations, tails=tails)
        h, r, t = (
            self.entity_embedding(heads),
            self.relation_embedding(relations),
            self.entity_embedding(tails),
        )
        return (h * r * t).sum(dim=-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """−log σ(s⁺) − Σ_k p_k log σ(−s⁻_k), p = softmax(α s⁻) without gradient; + L2."""
        cfg = self.config
        check_triples(batch, cfg.num_entities, cfg.num_relations)
        check_nonempty(batch["heads"], "batch['heads']", fix="a loss needs at least one triple")
        heads, relations, tails = batch["heads"], batch["relations"], batch["tails"]
        neg_heads, neg_tails = corrupt(
            heads, tails, num_negatives=cfg.num_negatives, num_entities=cfg.num_entities
        )  # (B, K) each
        positive = self.score(heads, relations, tails)  # (B,)
        negative = self.score(neg_heads, relations[:, None], neg_tails)  # (B, K)
        weights = torch.softmax(cfg.adversarial_temperature * negative.detach(), dim=-1)  # (B, K)
        loss = -F.logsigmoid(positive) - (weights * F.logsigmoid(-negative)).sum(dim=-1)
        reg = (
            self.entity_embedding(heads).pow(2).sum(-1)
            + self.relation_embedding(relations).pow(2).sum(-1)
            + self.entity_embedding(tails).pow(2).sum(-1)
        )
        return loss.mean() + cfg.l2 * reg.mean()

    @torch.no_grad()
    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        """(B, N) scores of every entity as the tail of (B,) (head, relation) queries."""
        heads, relations = self._check(heads=heads, relations=relations)
        query = self.entity_embedding(heads) * self.relation_embedding(relations)  # (B, D)
        return query @ self.entity_embedding.weight.T

    @torch.no_grad()
    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        """(B, N) scores of every entity as the head of (B,) (relation, tail) queries."""
        relations, tails = self._check(relations=relations, tails=tails)
        query = self.entity_embedding(tails) * self.relation_embedding(relations)  # (B, D)
        return query @ self.entity_embedding.weight.T

    @torch.no_grad()
    def entity_vectors(self) -> Tensor:
        """(N, D) entity vectors (features for recommenders)."""
        return self.entity_embedding.weight.detach().clone()
