"""Self-check for notebook 13: the TransE score of a (head, relation, tail) triple.

The student writes ``transe_score(h, r, t) -> (B,)``: h, r, t are (B, D) tensors (head entity,
relation and tail entity vectors); the score is ``−‖h + r − t‖₁`` per row, so a true fact, whose
tail lies where the relation translates the head, scores close to 0 and a corrupted one far below.
Reference: Bordes et al., "Translating Embeddings for Modeling Multi-relational Data", NeurIPS
2013. One case uses the vectors of a real :class:`mtrec.models.kg.transe.TransE`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases
from mtrec.models.kg.transe import TransE, TransEConfig


def reference_transe_score(h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    """(B,) −‖h + r − t‖₁: higher means more plausible."""
    return -(h + r - t).abs().sum(dim=-1)


def _positive(h, r, t):
    return (h + r - t).abs().sum(dim=-1)


def _l2(h, r, t):
    return -(h + r - t).norm(dim=-1)


def _minus_relation(h, r, t):
    return -(h - r - t).abs().sum(dim=-1)


def _no_abs(h, r, t):
    return -(h + r - t).sum(dim=-1)


DIAGNOSES = (
    (_positive, "the score is the *negative* distance: a true fact must score higher"),
    (_l2, "this is the L2 norm; the notebook's TransE uses L1: .abs().sum(dim=-1)"),
    (_minus_relation, "the relation translates the head: h + r ≈ t, so use h + r − t"),
    (_no_abs, "take the absolute value of each coordinate before summing (the L1 norm)"),
)


def _from_transe(seed: int) -> dict[str, Tensor]:
    with torch.random.fork_rng(), torch.no_grad():  # the caller's random state is left alone
        torch.manual_seed(seed)
        model = TransE(TransEConfig.tiny())
        e = F.normalize(model.entity_embedding.weight, dim=-1)  # (N, D) unit vectors
        r = model.relation_embedding.weight  # (R, D)
        return {"h": e[[1, 2, 3]].clone(), "r": r[[0, 1, 0]].clone(), "t": e[[4, 5, 6]].clone()}


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(13)
    h, r = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    true_fact = {"h": h, "r": r, "t": h + r}
    specs = [
        ("true facts: t = h + r exactly", true_fact, "a perfect translation scores 0"),
        ("random triples, B=5 D=8", {k: torch.randn(5, 8, generator=g) for k in "hrt"},
         "−(h + r − t).abs().sum(dim=-1)"),
        ("a real TransE's vectors", _from_transe(0), "same formula on unit-norm entity vectors"),
    ]  # fmt: skip
    return [
        Case(name, kw, reference_transe_score(**kw), hint, DIAGNOSES) for name, kw, hint in specs
    ]


def check_transe_score(student: Callable[..., Tensor]) -> bool:
    """Check ``student(h, r, t) -> (B,)``."""
    return run_cases("the TransE score", student, cases())
