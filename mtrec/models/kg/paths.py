"""Knowledge-path explanations: "because you liked X, which shares an actor with this film".

A recommended item is explained by a path of length ≤ 2 in the knowledge graph from one of the
user's liked items: a direct link (X is the prequel of the film) or X –r₁– m –r₂– film through a
middle entity m (an actor, director, writer, genre, ...). Among several paths the one through the
*rarest* middle entity (lowest degree) wins: sharing an actor with 3 films explains more than
sharing the genre "Drama" with 700. Edges are followed in either direction; every path is a list
of real triples of the graph. In the spirit of Xian et al., "Reinforcement Knowledge Graph
Reasoning for Explainable Recommendation", SIGIR 2019 (here by exhaustive search, not RL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mtrec.data.kg import KnowledgeGraph
from mtrec.data.schema import OOV


@dataclass(frozen=True)
class PathExplanation:
    """One explanation: the liked item, the recommended item and the triples linking them."""

    item: int  # column of the recommended item
    liked_item: int  # column of the liked item that explains it
    triples: tuple[tuple[int, int, int], ...]  # 1 or 2 (head, relation, tail) ids of the graph
    middle: int | None  # the middle entity id (None for a direct link)
    middle_degree: int  # its number of neighbours (0 for a direct link)


class KGExplainer:
    """Find knowledge paths between a user's liked items and a recommendation.

    Args:
        kg: the encoded graph.
        item_entities: (I,) entity id of each item column (OOV 0 = no link, never explained).

    The graph is held as an undirected adjacency in CSR form (one edge per entity pair, keeping a
    film-headed triple when there are several), each row sorted by the neighbours' degree, so the
    first hit of a search is the rarest middle entity.
    """

    def __init__(self, kg: KnowledgeGraph, item_entities: Tensor) -> None:
        self.kg = kg
        self.item_entities = item_entities.long()
        self._entities_np = self.item_entities.numpy()
        self.entity_item = {int(e): i for i, e in enumerate(item_entities.tolist()) if e != OOV}
        n = kg.num_entities
        triples = kg.triples.numpy()
        is_film = np.zeros(n, dtype=bool)
        is_film[list(self.entity_item)] = True
        src = np.concatenate([triples[:, 0], triples[:, 2]])  # both directions
        dst = np.concatenate([triples[:, 2], triples[:, 0]])
        which = np.concatenate([np.arange(len(triples))] * 2)  # triple of each edge
        order = np.lexsort((~is_film[triples[which, 0]], dst, src))  # film-headed triple first
        src, dst, which = src[order], dst[order], which[order]
        first = np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])]  # one edge per pair
        src, dst, which = src[first], dst[first], which[first]
        self.degree = np.bincount(src, minlength=n)  # (N,) neighbours per entity
        order = np.lexsort((dst, self.degree[dst], src))  # rows by source, rarest neighbour first
        self.indices = dst[order]
        self.indptr = np.r_[0, np.cumsum(self.degree)]
        self._triples = triples
        self._pair = {(a, b): w for a, b, w in zip(src.tolist(), dst.tolist(), which.tolist())}
        films = np.array(sorted(self.entity_item), dtype=np.int64)  # (F,) film entity ids
        self._film_row = np.full(n, -1)
        self._film_row[films] = np.arange(len(films))
        from_film = self._film_row[src] >= 0
        index = torch.as_tensor(np.stack([dst[from_film], self._film_row[src[from_film]]]))
        self._incidence = torch.sparse_coo_tensor(
            index, torch.ones(index.shape[1]), (n, len(films)), check_invariants=False
        )  # (N, F): entity m is linked to film f

    def neighbours(self, entity: int) -> np.ndarray:
        """Neighbour ids of ``entity``, rarest (lowest degree) first."""
        return self.indices[self.indptr[entity] : self.indptr[entity + 1]]

    def edge(self, a: int, b: int) -> tuple[int, int, int]:
        """The (head, relation, tail) triple stored for the entity pair (a, b)."""
        if (a, b) not in self._pair:
            raise ValueError(f"entities {a} and {b} are not linked in the graph")
        h, r, t = self._triples[self._pair[a, b]].tolist()
        return h, r, t

    def explain(
        self, liked_items: Sequence[int], item: int, *, max_degree: int | None = None
    ) -> PathExplanation | None:
        """The best path from any of ``liked_items`` (columns) to ``item``, or None.

        ``max_degree``: ignore middle entities with more neighbours (e.g. 50 keeps actors and
        directors, drops "Drama" and "English").
        """
        return self.explain_many([liked_items], torch.tensor([[item]]), max_degree=max_degree)[0][0]

    def explain_many(
        self,
        histories: Sequence[Sequence[int]],
        recommendations: Tensor,
        *,
        max_degree: int | None = None,
    ) -> list[list[PathExplanation | None]]:
        """Explanations of (U, K) recommended columns from each user's liked columns."""
        out: list[list[PathExplanation | None]] = []
        entities = self.item_entities.numpy()
        for start in range(0, len(histories), 256):  # users in chunks of C
            chunk = histories[start : start + 256]
            liked = np.zeros((len(chunk), self.kg.num_entities), dtype=np.float32)  # (C, N)
            for u, history in enumerate(chunk):
                liked[u, entities[list(history)]] = 1.0
            liked[:, OOV] = 0.0
            films = torch.as_tensor(liked[:, self._film_row >= 0])  # (C, F), films in id order
            reach = torch.sparse.mm(self._incidence, films.T).T.numpy()  # (C, N) liked neighbours
            rows = recommendations[start : start + len(chunk)].tolist()
            for u, row in enumerate(rows):
                out.append([self._explain(liked[u], reach[u], int(i), max_degree) for i in row])
        return out

    def _explain(
        self, liked: np.ndarray, reach: np.ndarray, item: int, max_degree: int | None
    ) -> PathExplanation | None:
        target = int(self._entities_np[item])
        if target == OOV:
            return None
        nb = self.neighbours(target)
        direct = nb[liked[nb] > 0]
        if len(direct):
            e = int(direct[0])
            return PathExplanation(item, self.entity_item[e], (self.edge(e, target),), None, 0)
        keep = reach[nb] - liked[target] > 0  # a liked film other than the target
        if max_degree is not None:
            keep &= self.degree[nb] <= max_degree
        if not keep.any():
            return None
        middle = int(nb[keep][0])
        around = self.neighbours(middle)
        e = int(np.sort(around[(liked[around] > 0) & (around != target)])[0])
        path = (self.edge(e, middle), self.edge(middle, target))
        return PathExplanation(item, self.entity_item[e], path, middle, int(self.degree[middle]))

    def describe(self, explanation: PathExplanation, titles: Sequence[str]) -> str:
        """A sentence for a reader, with item titles indexed by column."""
        liked, film = titles[explanation.liked_item], titles[explanation.item]
        if explanation.middle is None:
            relation = self.kg.relations[explanation.triples[0][1]]
            return f"because you liked {liked}, linked to {film} by {relation}"
        h, r, _ = explanation.triples[1]
        relation = str(self.kg.relations[r])
        role = relation.rsplit(".", 1)[-1] if h != explanation.middle else relation.split(".")[1]
        article = "an" if role[:1] in "aeiou" else "a"
        return (
            f"because you liked {liked}, which shares {article} {role} "
            f"({self.kg.entities[explanation.middle]}, {explanation.middle_degree} links) with {film}"
        )


def path_exists(kg: KnowledgeGraph, explanation: PathExplanation) -> bool:
    """True when every triple of the explanation is a triple of ``kg`` (a check, not a search)."""
    n, r = kg.num_entities, max(kg.num_relations, 1)
    known = (kg.triples[:, 0] * r + kg.triples[:, 1]) * n + kg.triples[:, 2]  # (M,) one key each
    path = torch.tensor(explanation.triples, dtype=torch.long).reshape(-1, 3)
    keys = (path[:, 0] * r + path[:, 1]) * n + path[:, 2]
    return bool(torch.isin(keys, known).all())


def explained_fraction(
    explainer: KGExplainer,
    histories: Sequence[Sequence[int]],
    recommendations: Tensor,
    *,
    max_degree: int | None = None,
) -> float:
    """Share of the (U, K) recommended items that get a path from the user's history."""
    found = explainer.explain_many(histories, recommendations, max_degree=max_degree)
    flat = [x is not None for row in found for x in row]
    return sum(flat) / len(flat) if flat else 0.0
