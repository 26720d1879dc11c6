"""Seeded, leakage-free splits. Each function states its protocol; tests check disjointness.

Model selection and early stopping use the validation part only; the test part is read once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec.checks import check_float, check_int
from mtrec.data.schema import require_columns


def _check_frame(frame: object, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    return frame


@dataclass(frozen=True)
class Split:
    """Three disjoint row sets of one frame."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def random_split(
    frame: pd.DataFrame, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), *, seed: int = 0
) -> Split:
    """Random row split (for click-like tasks): a seeded permutation cut at the fractions."""
    _check_frame(frame, "frame")
    if isinstance(fractions, (str, bytes)) or not hasattr(fractions, "__len__"):
        raise TypeError(f"fractions must be three numbers (train, valid, test), got {fractions!r}")
    fractions = tuple(fractions)
    for i, value in enumerate(fractions):
        check_float(value, f"fractions[{i}]")
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negatives summing to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(frame))
    n_train = int(round(fractions[0] * len(frame)))
    n_valid = int(round(fractions[1] * len(frame)))
    parts = np.split(order, [n_train, n_train + n_valid])
    return Split(*(frame.iloc[np.sort(p)].reset_index(drop=True) for p in parts))


def leave_last_out(
    ratings: pd.DataFrame,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    min_interactions: int = 3,
) -> Split:
    """Temporal leave-last-out for sequential models.

    Protocol: each user's interactions are ordered by (timestamp, item id) — ties in ML-100k
    timestamps are broken by item id so the order is deterministic. The last interaction is the
    test target, the second-to-last the validation target, the rest is training history. Users
    with fewer than ``min_interactions`` interactions are dropped. Ranking is then done against all
    items the user has not interacted with before the target.
    """
    require_columns(_check_frame(ratings, "ratings"), [user_col, item_col, time_col],
                    what="ratings")  # fmt: skip
    min_interactions = check_int(min_interactions, "min_interactions", min=2)
    ordered = ratings.sort_values([user_col, time_col, item_col], kind="stable")
    counts = ordered.groupby(user_col)[item_col].transform("size")
    ordered = ordered[counts >= min_interactions]
    position_from_end = ordered.groupby(user_col).cumcount(ascending=False)
    return Split(
        train=ordered[position_from_end >= 2].reset_index(drop=True),
        valid=ordered[position_from_end == 1].reset_index(drop=True),
        test=ordered[position_from_end == 0].reset_index(drop=True),
    )


def per_user_split(
    ratings: pd.DataFrame,
    *,
    test_fraction: float = 0.25,
    valid_fraction: float = 0.0,
    user_col: str = "user_id",
    seed: int = 0,
) -> Split:
    """Per-user stratified random split for top-K evaluation (the standard 75/25 protocol).

    Protocol: within each user, a seeded random ``test_fraction`` of the interactions (rounded,
    at least one) is held out; optionally a ``valid_fraction`` of the remainder is held out for
    model selection. Every user appears in train and test; items seen in train are removed from
    that user's candidate list at evaluation time.
    """
    require_columns(_check_frame(ratings, "ratings"), [user_col], what="ratings")
    check_float(test_fraction, "test_fraction")
    check_float(valid_fraction, "valid_fraction")
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1:
        raise ValueError("need 0 < test_fraction < 1 and 0 <= valid_fraction < 1")
    rng = np.random.default_rng(seed)
    frame = ratings.reset_index(drop=True)
    random_key = rng.random(len(frame))
    rank = (
        pd.DataFrame({"u": frame[user_col].to_numpy(), "r": random_key})
        .groupby("u")["r"]
        .rank(method="first")
        .to_numpy()
    )
    size = frame.groupby(user_col)[user_col].transform("size").to_numpy()
    n_test = np.maximum(1, np.round(size * test_fraction)).astype(int)
    n_valid = np.round((size - n_test) * valid_fraction).astype(int)
    is_test = rank <= n_test
    is_valid = (~is_test) & (rank <= n_test + n_valid)
    is_train = ~(is_test | is_valid)
    return Split(
        train=frame[is_train].reset_index(drop=True),
        valid=frame[is_valid].reset_index(drop=True),
        test=frame[is_test].reset_index(drop=True),
    )


def cold_item_split(
    ratings: pd.DataFrame,
    *,
    item_fraction: float = 0.2,
    valid_fraction: float = 0.5,
    item_col: str = "item_id",
    seed: int = 0,
) -> Split:
    """Cold-start split: a seeded ``item_fraction`` of items is held out with all their ratings.

    Protocol: held-out items never appear in training; they are divided into validation and test
    items (``valid_fraction`` of them to validation). Only content-based and hybrid models can
    score them.
    """
    require_columns(_check_frame(ratings, "ratings"), [item_col], what="ratings")
    check_float(item_fraction, "item_fraction", min=0.0, max=1.0)
    check_float(valid_fraction, "valid_fraction", min=0.0, max=1.0)
    items = np.sort(ratings[item_col].unique())
    rng = np.random.default_rng(seed)
    held = rng.permutation(items)[: int(round(item_fraction * len(items)))]
    n_valid = int(round(valid_fraction * len(held)))
    valid_items, test_items = set(held[:n_valid].tolist()), set(held[n_valid:].tolist())
    col = ratings[item_col]
    return Split(
        train=ratings[~col.isin(valid_items | test_items)].reset_index(drop=True),
        valid=ratings[col.isin(valid_items)].reset_index(drop=True),
        test=ratings[col.isin(test_items)].reset_index(drop=True),
    )
