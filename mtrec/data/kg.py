"""The MovieLens-100k knowledge graph as integer tensors, its link-prediction split, item features.

Source: the KB4Rec Freebase subgraph of ML-100k (Zhao et al., "KB4Rec", Data Intelligence 2019),
as shipped by RecBole (``mtrec.data.load_ml100k_kg``): 91,631 (head, relation, tail) triples and
1,598 movie ↔ entity links.

Encoding: entity ids are 1..N-1 in sorted order of the Freebase ids and **0 is the OOV entity**:
an ML-100k item without a link (84 of the 1,682 movies) maps to it. The OOV entity appears in no
triple, so a KG model never trains it; :func:`item_kg_vectors` gives such items a zero vector.
Relations are 0..R-1; a triple naming an unknown entity or relation is an error, never OOV.

**Known defect of the shipped links** (RUCAIBox/RecSysDatasets issue #130): the item ids of
RecBole's ``ml-100k.link`` follow another MovieLens id scheme (MovieLens-1M / latest: 260 is
*Star Wars* there, *Event Horizon* in ML-100k), so most ML-100k items are linked to the entity of
a *different* film. Only ids that agree in both schemes (e.g. 1 = *Toy Story*) are right.
:func:`sequel_order_check` measures it: with correct links a film's ``film.film.sequel`` is
released later in nearly every pair; with these links, in about half. The triples themselves are
sound (link prediction works); item features and explanations built on the links are not, until
a correct ML-100k ↔ Freebase mapping is fetched.

Link-prediction split (:func:`split_triples`): the graph holds every relation with its inverse
(``film.film.genre`` and ``film.film_genre.films_in_this_genre``), so a random split of triples
leaks — a test triple's inverse in training answers it (Toutanova and Chen, 2015, on FB15k). We
split *unordered entity pairs*: all triples between two entities land in the same part. Held-out
pairs whose entity never occurs in training go back to training (their vectors could not be
learned), so every valid/test entity has training triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_float, check_ids, check_int, check_nonempty, check_tensor
from mtrec.data.batching import TensorBatcher
from mtrec.data.loaders import load_ml100k_kg
from mtrec.data.schema import OOV, PretrainedFeature, require_columns

OOV_ENTITY = "<oov>"  # name of entity id 0


@dataclass(frozen=True)
class KnowledgeGraph:
    """An integer-encoded knowledge graph with its item ↔ entity links.

    Attributes:
        entities: (N,) entity names; id e is ``entities[e]``, ``entities[0]`` is the OOV entity.
        relations: (R,) relation names; id r is ``relations[r]``.
        triples: (M, 3) long tensor of (head, relation, tail) ids.
        links: DataFrame ``item_id`` → ``entity_id`` (one row per linked item).
    """

    entities: np.ndarray
    relations: np.ndarray
    triples: Tensor
    links: pd.DataFrame

    @property
    def num_entities(self) -> int:
        """N, including the OOV entity 0."""
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def encode_triples(self, frame: pd.DataFrame) -> Tensor:
        """(M, 3) ids for a frame of raw (head, relation, tail) names; raises on unknown names."""
        require_columns(frame, ["head", "relation", "tail"], what="triples")
        heads = _lookup(self.entities, frame["head"], "entity", skip_oov=True)
        rels = _lookup(self.relations, frame["relation"], "relation")
        tails = _lookup(self.entities, frame["tail"], "entity", skip_oov=True)
        return torch.as_tensor(np.stack([heads, rels, tails], axis=1), dtype=torch.long)

    def item_entity_ids(self, item_ids: np.ndarray) -> Tensor:
        """(I,) entity id of each raw item id; items without a link get the OOV entity 0."""
        mapping = dict(zip(self.links.item_id.tolist(), self.links.entity_id.tolist()))
        ids = check_ids(np.asarray(item_ids).reshape(-1), "item_ids").tolist()
        return torch.tensor([mapping.get(int(i), OOV) for i in ids], dtype=torch.long)


def build_kg(links: pd.DataFrame, triples: pd.DataFrame) -> KnowledgeGraph:
    """Integer-encode raw triples (head, relation, tail) and links (item_id, entity).

    Linked entities that occur in no triple still get an id (with no edges).
    """
    require_columns(triples, ["head", "relation", "tail"], what="triples")
    require_columns(links, ["item_id", "entity"], what="links")
    if links.item_id.duplicated().any():
        dup = links.item_id[links.item_id.duplicated()].tolist()[:3]
        raise ValueError(f"links must map each item to one entity; items {dup} appear twice")
    names = np.unique(
        np.concatenate([triples["head"], triples["tail"], links["entity"]]).astype(str)
    )
    entities = np.concatenate([[OOV_ENTITY], names])
    relations = np.unique(triples["relation"].astype(str))
    kg = KnowledgeGraph(entities, relations, torch.empty(0, 3, dtype=torch.long), pd.DataFrame())
    encoded = kg.encode_triples(triples)
    entity_ids = _lookup(entities, links["entity"], "entity", skip_oov=True)
    frame = pd.DataFrame({"item_id": links["item_id"].to_numpy(), "entity_id": entity_ids})
    return KnowledgeGraph(entities, relations, encoded, frame.reset_index(drop=True))


def load_kg() -> KnowledgeGraph:
    """The ML-100k knowledge graph (fetched with ``mtrec data fetch ml-100k-kg``), encoded."""
    return build_kg(*load_ml100k_kg())


def _lookup(sorted_names: np.ndarray, values: pd.Series, what: str, *, skip_oov: bool = False):
    names = sorted_names[1:] if skip_oov else sorted_names
    values = np.asarray(values).astype(str)
    pos = np.searchsorted(names, values).clip(0, len(names) - 1)
    bad = names[pos] != values
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} {what} names are not in the graph (e.g. {values[bad][:3].tolist()});"
            f" expected one of its {len(names)} {what} names. Build the graph with build_kg over "
            "every triple first, or drop those rows"
        )
    return pos + (1 if skip_oov else 0)


@dataclass(frozen=True)
class TripleSplit:
    """Link-prediction parts, each (M_part, 3) long (head, relation, tail)."""

    train: Tensor
    valid: Tensor
    test: Tensor


def split_triples(
    triples: Tensor, *, valid_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> TripleSplit:
    """Leak-free split by unordered entity pair (see the module docstring).

    Args:
        triples: (M, 3) long (head, relation, tail).
        valid_fraction, test_fraction: share of entity pairs held out for each part.
        seed: seed of the pair permutation.
    """
    check_tensor(triples, "triples")
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(
            f"triples must be (M, 3) (head, relation, tail); got {tuple(triples.shape)}"
        )
    check_nonempty(triples, "triples", fix="pass at least one (head, relation, tail) triple")
    triples = check_ids(triples, "triples")
    check_float(valid_fraction, "valid_fraction")
    check_float(test_fraction, "test_fraction")
    if not (0 <= valid_fraction and 0 < test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError("need valid_fraction >= 0, test_fraction > 0 and their sum < 1")
    h, t = triples[:, 0], triples[:, 2]
    lo, hi = torch.minimum(h, t), torch.maximum(h, t)
    pairs, pair_of = torch.unique(lo * (int(triples.max()) + 1) + hi, return_inverse=True)
    gen = torch.Generator().manual_seed(seed)
    rank = torch.empty(len(pairs), dtype=torch.long)
    rank[torch.randperm(len(pairs), generator=gen)] = torch.arange(len(pairs))
    n_test, n_valid = round(test_fraction * len(pairs)), round(valid_fraction * len(pairs))
    part = torch.zeros(len(pairs), dtype=torch.long)  # 0 train, 1 valid, 2 test
    part[rank < n_test + n_valid] = 1
    part[rank < n_test] = 2
    part = part[pair_of]  # (M,)
    in_train = torch.zeros(int(triples[:, [0, 2]].max()) + 1, dtype=torch.bool)
    in_train[triples[part == 0][:, [0, 2]].flatten()] = True
    orphan = (part > 0) & ~(in_train[h] & in_train[t])  # entity without any training triple
    part[orphan] = 0
    return TripleSplit(triples[part == 0], triples[part == 1], triples[part == 2])


def item_kg_vectors(kg: KnowledgeGraph, entity_vectors: Tensor, item_ids: np.ndarray) -> Tensor:
    """(I, D) KG vector of each raw item id; items without a link (OOV entity) get zeros."""
    _check_vectors(kg, entity_vectors)
    ids = kg.item_entity_ids(item_ids)
    return entity_vectors.detach().float()[ids] * (ids != OOV).float()[:, None]


def kg_item_feature(
    kg: KnowledgeGraph, entity_vectors: Tensor, *, name: str = "item_kg", dim: int | None = None
) -> PretrainedFeature:
    """A :class:`PretrainedFeature` over entity ids (batch key ``name``: ``kg.item_entity_ids``).

    Row 0 (the OOV entity, items without a link) is set to zero. ``dim``: the width the model
    expects; a mismatching ``entity_vectors`` raises.
    """
    _check_vectors(kg, entity_vectors)
    table = entity_vectors.detach().float().clone()
    table[OOV] = 0.0
    return PretrainedFeature(name, table, dim=dim)


def _check_vectors(kg: KnowledgeGraph, entity_vectors: Tensor) -> None:
    check_tensor(entity_vectors, "entity_vectors")
    if entity_vectors.ndim != 2 or entity_vectors.shape[0] != kg.num_entities:
        raise ValueError(
            f"expected entity vectors of shape ({kg.num_entities}, D), one row per entity with "
            f"row 0 = OOV; received {tuple(entity_vectors.shape)}. Train the KG model with "
            "num_entities=kg.num_entities"
        )


def corrupt(
    heads: Tensor, tails: Tensor, *, num_negatives: int, num_entities: int
) -> tuple[Tensor, Tensor]:
    """Vectorised negative sampling (Bordes et al., 2013): (B, K) corrupted heads and tails.

    Each of the K negatives of a (B,) positive replaces, with probability 1/2, its head or else its
    tail by an entity drawn uniformly from 1..N-1 (never the OOV entity 0). Uses torch's global RNG,
    which :func:`mtrec.train.fit` seeds.
    """
    check_tensor(heads, "heads", ndim=1)
    check_tensor(tails, "tails", shape=(len(heads),))
    check_int(num_negatives, "num_negatives")
    check_int(num_entities, "num_entities")
    if num_negatives < 1 or num_entities < 2:
        raise ValueError(
            f"need num_negatives >= 1 and num_entities >= 2, got {num_negatives}, {num_entities}"
        )
    shape = (len(heads), num_negatives)
    random = torch.randint(1, num_entities, shape, device=heads.device)  # (B, K)
    flip_head = torch.rand(shape, device=heads.device) < 0.5  # (B, K)
    neg_heads = torch.where(flip_head, random, heads[:, None].expand(shape))
    neg_tails = torch.where(flip_head, tails[:, None].expand(shape), random)
    return neg_heads, neg_tails


def check_triples(batch: dict[str, Tensor], num_entities: int, num_relations: int) -> None:
    """Raise (expected / received / fix) unless ``batch`` holds in-range (B,) heads, relations, tails."""
    for key, size in (
        ("heads", num_entities),
        ("relations", num_relations),
        ("tails", num_entities),
    ):
        if key not in batch:
            raise KeyError(
                f"KG batches need keys heads, relations, tails (B,); got {sorted(batch)}"
            )
        ids = check_ids(batch[key], f"batch[{key!r}]")
        if ids.ndim != 1 or (len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= size)):
            raise ValueError(
                f"{key}: expected (B,) ids in [0, {size}), received shape {tuple(ids.shape)} "
                f"with range [{int(ids.min()) if len(ids) else 0}, {int(ids.max()) if len(ids) else 0}]; "
                "encode triples with KnowledgeGraph.encode_triples and size the model from that graph"
            )


def triple_batches(triples: Tensor, batch_size: int = 1024, *, seed: int = 0) -> TensorBatcher:
    """A shuffled re-iterable :class:`TensorBatcher` of ``heads``, ``relations``, ``tails`` (B,)."""
    check_tensor(triples, "triples")
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(
            f"triples must be (M, 3) (head, relation, tail); got {tuple(triples.shape)}"
        )
    from_cols = {"heads": triples[:, 0], "relations": triples[:, 1], "tails": triples[:, 2]}
    return TensorBatcher(from_cols, batch_size, shuffle=True, seed=seed)


def sequel_order_check(kg: KnowledgeGraph, years: pd.Series) -> dict[str, float]:
    """A test of the item ↔ entity links: is a linked film's sequel released after it?

    Args:
        kg: the encoded graph.
        years: release year indexed by raw item id (e.g. ``load_movielens().items``).

    Returns:
        ``{"pairs", "later", "earlier"}``: the number of ``film.film.sequel`` triples between two
        linked items with known years, and the shares whose sequel is later / earlier. Correct
        links give ``later`` near 1; links to unrelated films give about 0.5 / 0.5.
    """
    if "film.film.sequel" not in set(kg.relations.tolist()):
        raise ValueError("the graph has no 'film.film.sequel' relation to check the links with")
    sequel = int(np.nonzero(kg.relations == "film.film.sequel")[0][0])
    entity_item = dict(zip(kg.links.entity_id.tolist(), kg.links.item_id.tolist()))
    pairs = [
        (entity_item[h], entity_item[t])
        for h, r, t in kg.triples.tolist()
        if r == sequel and h in entity_item and t in entity_item
    ]
    first = years.reindex([a for a, _ in pairs]).to_numpy(dtype=float)
    second = years.reindex([b for _, b in pairs]).to_numpy(dtype=float)
    known = ~(np.isnan(first) | np.isnan(second))
    n = int(known.sum())
    later = float((second[known] > first[known]).mean()) if n else float("nan")
    earlier = float((second[known] < first[known]).mean()) if n else float("nan")
    return {"pairs": n, "later": later, "earlier": earlier}
