"""User × item interaction matrices with a stable mapping from raw ids to rows and columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.data.schema import require_columns


@dataclass(frozen=True)
class IdIndex:
    """Maps raw user and item ids to contiguous rows/columns (0..U-1, 0..I-1).

    Attributes:
        user_ids: (U,) sorted raw user ids; row u of every matrix is ``user_ids[u]``.
        item_ids: (I,) sorted raw item ids; column i is ``item_ids[i]``.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_frames(cls, *frames: pd.DataFrame, items: Sequence[int] | None = None) -> IdIndex:
        """Index every user and item in ``frames`` (plus ``items``, e.g. a full catalogue)."""
        if not frames:
            raise ValueError("IdIndex.from_frames needs at least one frame (e.g. train, test)")
        for i, frame in enumerate(frames):
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"frames[{i}] must be a DataFrame, got {type(frame).__name__}")
            require_columns(frame, ["user_id", "item_id"], what=f"frames[{i}]")
            for col in ("user_id", "item_id"):
                if frame[col].isna().any():
                    raise ValueError(
                        f"frames[{i}] column {col!r} has missing values (NaN); drop those rows "
                        "first: an id index cannot map a missing id"
                    )
        users = np.unique(np.concatenate([f["user_id"].to_numpy() for f in frames]))
        all_items = [f["item_id"].to_numpy() for f in frames]
        if items is not None:
            all_items.append(np.asarray(items))
        return cls(users, np.unique(np.concatenate(all_items)))

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Row index of each raw user id; raises on an id outside the index."""
        return _lookup(self.user_ids, np.asarray(user_ids), "user")

    def columns(self, item_ids: np.ndarray) -> np.ndarray:
        """Column index of each raw item id; raises on an id outside the index."""
        return _lookup(self.item_ids, np.asarray(item_ids), "item")


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    if ids.ndim != 1:
        ids = ids.reshape(-1) if ids.ndim == 0 else ids
        if ids.ndim != 1:
            raise ValueError(f"{what} ids must be 1-D, got shape {ids.shape}")
    try:
        pos = np.searchsorted(sorted_ids, ids)
    except TypeError:
        raise TypeError(
            f"{what} ids of type {ids.dtype} cannot be compared with the index's "
            f"{sorted_ids.dtype} ids; pass ids of the same kind as the frames"
        ) from None
    pos = pos.clip(0, max(len(sorted_ids) - 1, 0))
    bad = sorted_ids[pos] != ids if len(sorted_ids) else np.ones(len(ids), bool)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} {what} ids are not in the IdIndex (e.g. {ids[bad][:3].tolist()}); "
            "build it with IdIndex.from_frames(train, valid, test) over every split"
        )
    return pos


def interaction_matrix(
    frame: pd.DataFrame, index: IdIndex, *, value_col: str | None = None
) -> Tensor:
    """Dense (U, I) float32 matrix: 1 (or ``frame[value_col]``) where a user met an item."""
    require_columns(frame, ["user_id", "item_id"] + ([value_col] if value_col else []),
                    what="interactions")  # fmt: skip
    matrix = torch.zeros(index.num_users, index.num_items)
    rows = torch.as_tensor(index.rows(frame["user_id"].to_numpy()))
    cols = torch.as_tensor(index.columns(frame["item_id"].to_numpy()))
    values = (
        torch.ones(len(frame))
        if value_col is None
        else torch.tensor(frame[value_col].to_numpy(), dtype=torch.float32)
    )
    if not bool(torch.isfinite(values).all()):
        raise ValueError(
            f"column {value_col!r} has NaN or infinite values; fill or drop them before building "
            "the interaction matrix"
        )
    matrix[rows, cols] = values
    return matrix
