"""Link prediction on held-out triples: filtered MRR and Hits@K over every entity.

Protocol (Bordes et al., NeurIPS 2013, "filtered" setting): each test triple (h, r, t) asks two
queries, (h, r, ?) and (?, r, t). Every entity except the OOV entity 0 is a candidate; candidates
that form another *known* triple (train, valid or test) are removed, so a model is not punished
for ranking another true answer first. The rank of the true entity is 1 + the number of
other candidates scored higher *or equal*: the pessimistic rank, the tie rule of every ranking
metric in :mod:`mtrec.eval.metrics`, so a collapsed model that scores every entity alike ranks
the true entity last rather than first. MRR = mean of 1/rank; Hits@K = share of ranks ≤ K.

A model here is anything with ``score_tails(heads, relations) -> (B, N)`` and
``score_heads(relations, tails) -> (B, N)`` (the KG family of :mod:`mtrec.models.kg`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from mtrec.checks import check_ids, check_int, check_nonempty, check_tensor


class LinkScorer(Protocol):
    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor: ...
    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor: ...


class RandomScorer:
    """Uniform random scores: the chance baseline (MRR ≈ ln(N)/N, Hits@10 ≈ 10/N)."""

    def __init__(self, num_entities: int, *, seed: int = 0) -> None:
        self.num_entities = num_entities
        self.generator = torch.Generator().manual_seed(seed)

    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        return torch.rand(len(heads), self.num_entities, generator=self.generator)

    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        return torch.rand(len(tails), self.num_entities, generator=self.generator)


def _filter_index(known: Tensor, num_relations: int, query: int, answer: int):
    """Known triples sorted by the (query entity, relation) key, and the sorted keys."""
    keys = known[:, query] * num_relations + known[:, 1]
    order = keys.argsort()
    return keys[order], known[order, answer]


def _check_link_scores(scores: Tensor, rows: int, max_entity: int) -> None:
    check_tensor(scores, "model scores", ndim=2)
    if scores.shape[0] != rows or scores.shape[1] <= max_entity:
        raise ValueError(
            f"the model returned scores of shape {tuple(scores.shape)} for {rows} queries, but "
            f"the test or known triples hold entity id {max_entity}; score_tails/score_heads must give "
            "(B, num_entities) with every test entity among the columns"
        )
    if bool(torch.isnan(scores).any()):
        raise ValueError(
            "the model returned NaN scores; a NaN true entity would rank first. Check the "
            "model's weights (training diverged?) and inputs"
        )


def filtered_ranks(
    model: LinkScorer, test: Tensor, *, known: Tensor, batch_size: int = 512
) -> Tensor:
    """(2M,) filtered ranks of the true tails, then the true heads, of (M, 3) test triples."""
    check_tensor(test, "test")
    check_tensor(known, "known")
    batch_size = check_int(batch_size, "batch_size", min=1)
    if test.ndim != 2 or test.shape[1] != 3 or known.ndim != 2 or known.shape[1] != 3:
        raise ValueError(
            f"test and known must be (M, 3) (head, relation, tail); got {tuple(test.shape)}, "
            f"{tuple(known.shape)}"
        )
    check_nonempty(test, "test", fix="pass at least one held-out (head, relation, tail) triple")
    test, known = check_ids(test, "test triples"), check_ids(known, "known triples")
    num_relations = int(torch.cat([test[:, 1], known[:, 1]]).max()) + 1
    entities = torch.cat([test[:, 0], test[:, 2], known[:, 0], known[:, 2]])
    if bool((entities < 0).any()) or bool((torch.cat([test[:, 1], known[:, 1]]) < 0).any()):
        raise ValueError(
            "test and known triples must hold ids >= 0, got negative ids; encode the triples "
            "with KnowledgeGraph.encode_triples"
        )
    max_entity = int(entities.max())
    ranks = []
    for query, answer in ((0, 2), (2, 0)):  # predict tails from heads, then heads from tails
        sorted_keys, sorted_answers = _filter_index(known, num_relations, query, answer)
        for start in range(0, len(test), batch_size):
            chunk = test[start : start + batch_size]
            q, r, a = chunk[:, query], chunk[:, 1], chunk[:, answer]
            with torch.no_grad():
                if answer == 2:
                    scores = model.score_tails(q, r).float().clone()  # (b, N)
                else:
                    scores = model.score_heads(r, q).float().clone()  # (b, N)
            _check_link_scores(scores, len(chunk), max_entity)
            target = scores.gather(1, a[:, None])  # (b, 1)
            key = q * num_relations + r
            lo = torch.searchsorted(sorted_keys, key)
            hi = torch.searchsorted(sorted_keys, key, right=True)
            counts = hi - lo  # known answers per query
            rows = torch.repeat_interleave(torch.arange(len(chunk)), counts)
            offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(
                counts.cumsum(0) - counts, counts
            )
            scores[rows, sorted_answers[torch.repeat_interleave(lo, counts) + offsets]] = -torch.inf
            scores[:, 0] = -torch.inf  # the OOV entity is never a candidate
            scores[torch.arange(len(chunk)), a] = -torch.inf  # the true entity itself
            ranks.append(1 + (scores >= target).sum(dim=1))  # pessimistic: ties rank above
    return torch.cat(ranks)


def evaluate_link_prediction(
    model: LinkScorer,
    test: Tensor,
    *,
    known: Tensor,
    ks: Sequence[int] = (1, 10),
    batch_size: int = 512,
) -> dict[str, float]:
    """``{"mrr", "hits@k" for k in ks, "queries"}`` in the filtered setting (module docstring).

    Args:
        model: a KG model (or :class:`RandomScorer`).
        test: (M, 3) held-out triples.
        known: (K, 3) every true triple to filter (train + valid + test).
    """
    ks = [check_int(k, "ks[...]", min=1) for k in ks]
    ranks = filtered_ranks(model, test, known=known, batch_size=batch_size).float()
    out = {"mrr": float((1 / ranks).mean())}
    out.update({f"hits@{k}": float((ranks <= k).float().mean()) for k in ks})
    out["queries"] = len(ranks)
    return out
