"""Self-check: turning explicit ratings into a binary task label (a "like").

The student writes ``binarise(ratings, threshold) -> labels``: ``ratings`` is a tensor of any
shape of ratings (e.g. 1-5 stars, possibly halves), ``labels`` a float tensor of the same shape
with 1.0 where ``rating >= threshold`` and 0.0 elsewhere. The course defines its "like" task this
way on MovieLens and Clothing (rating >= 4, ``datasets/README.md``); binary cross-entropy then
trains on these labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases


def reference_binarise(ratings: Tensor, threshold: float) -> Tensor:
    """1.0 where ``ratings >= threshold``, else 0.0 (float, same shape)."""
    return (ratings >= threshold).float()


def _strict(ratings: Tensor, threshold: float) -> Tensor:
    return (ratings > threshold).float()


def _inverted(ratings: Tensor, threshold: float) -> Tensor:
    return (ratings < threshold).float()


def _rounded(ratings: Tensor, threshold: float) -> Tensor:
    return (ratings.round() >= threshold).float()


def _scaled(ratings: Tensor, threshold: float) -> Tensor:
    return ratings / ratings.max()


DIAGNOSES = (
    (_strict, "a rating equal to the threshold is a like: use >=, not >"),
    (_inverted, "the labels are inverted: 1 means the rating reaches the threshold"),
    (_rounded, "do not round the ratings: 3.5 stars is below a threshold of 4"),
    (_scaled, "the labels must be 0 or 1, not ratings rescaled to [0, 1]"),
)


def cases() -> list[Case]:
    """The hidden cases (fixed, so every student sees the same ones)."""
    g = torch.Generator().manual_seed(0)
    stars = torch.randint(1, 6, (3, 7), generator=g).float()  # (3, 7) ratings 1..5
    specs = [
        ("five ratings, threshold 4", torch.tensor([1.0, 3.0, 4.0, 5.0, 2.0]), 4.0,
         "compare each rating with the threshold and convert the booleans with .float()"),
        ("a (3, 7) matrix of stars", stars, 4.0, "the output keeps the input's shape"),
        ("half stars, threshold 4", torch.tensor([3.5, 4.0, 4.5, 0.5]), 4.0,
         "3.5 is below 4; 4.0 counts"),
        ("threshold 3", torch.tensor([3.0, 2.0, 5.0, 1.0, 3.0]), 3.0,
         "use the threshold argument, not a fixed 4"),
    ]  # fmt: skip
    out = []
    for name, ratings, threshold, hint in specs:
        kwargs = {"ratings": ratings, "threshold": threshold}
        out.append(Case(name, kwargs, reference_binarise(**kwargs), hint, DIAGNOSES))
    return out


def check_binarise(student: Callable[..., Tensor]) -> bool:
    """Check ``student(ratings, threshold) -> labels``; print feedback; True if right."""
    return run_cases("rating -> like label", student, cases())
