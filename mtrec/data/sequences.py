"""Leave-last-out sequences as left-padded tensors with seen-item masks, for next-item models.

Histories are **left-padded** with item id 0 (most recent item last) and cut to the last L
items; see :func:`mtrec.eval.next_item.evaluate_next_item` for the protocol they serve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_ids, check_int, check_nonempty
from mtrec.data.schema import require_columns
from mtrec.data.splits import Split

__all__ = ["SequenceData", "build_sequences", "left_pad"]


def left_pad(sequences: list[np.ndarray], length: int) -> Tensor:
    """Keep the last ``length`` ids of each sequence, left-padded with 0 → (U, length) int64."""
    length = check_int(length, "length", min=1)
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):  # data preparation, not a forward pass
        tail = seq[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return torch.from_numpy(out)


@dataclass(frozen=True)
class SequenceData:
    """Padded next-item tensors for U users over items 1..num_items (0 = padding)."""

    users: np.ndarray  # (U,) user ids, in row order
    num_items: int  # N; item ids are 1..N
    train_inputs: Tensor  # (U, L) training history without its last item
    train_targets: Tensor  # (U, L) the next item at each input position (0 = none)
    valid_history: Tensor  # (U, L) training history, to predict valid_target
    valid_target: Tensor  # (U,)
    valid_seen: Tensor  # (U, N+1) bool: excluded when ranking valid_target (column 0 always)
    test_history: Tensor  # (U, L) training history + the validation item
    test_target: Tensor  # (U,)
    test_seen: Tensor  # (U, N+1) bool: excluded when ranking test_target
    train_sequences: list[np.ndarray]  # full (untruncated) training history per user

    def train_batch(self) -> dict[str, Tensor]:
        """All users as one batch: "item_ids" (U, L) inputs, "targets" (U, L) next items."""
        return {"item_ids": self.train_inputs, "targets": self.train_targets}

    def train_windows(self) -> dict[str, Tensor]:
        """Every training transition once: each user's sequence cut into windows of L steps.

        :meth:`train_batch` keeps each user's last L transitions only (38,762 of ML-100k's
        97,171); here a user with n training items gives ceil((n-1)/L) rows, the newest window
        first and the oldest left-padded, so each next-item pair is a target exactly once (a
        window sees no items before its start).

        Returns:
            "item_ids" (W, L) inputs and "targets" (W, L) next items, 0 = padding.
        """
        length = self.train_inputs.shape[1]
        inputs, targets = [], []
        for seq in self.train_sequences:  # data preparation, not a forward pass
            for end in range(len(seq), 1, -length):
                start = max(0, end - length - 1)
                inputs.append(seq[start : end - 1])
                targets.append(seq[start + 1 : end])
        return {"item_ids": left_pad(inputs, length), "targets": left_pad(targets, length)}


def _seen(sequences: list[np.ndarray], num_items: int) -> Tensor:
    seen = torch.zeros(len(sequences), num_items + 1, dtype=torch.bool)
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    seen[torch.from_numpy(rows), torch.from_numpy(np.concatenate(sequences))] = True
    seen[:, 0] = True  # padding is never a candidate
    return seen


def build_sequences(
    split: Split,
    *,
    max_len: int = 50,
    num_items: int | None = None,
    user_col: str = "user_id",
    item_col: str = "item_id",
) -> SequenceData:
    """Turn a :func:`mtrec.data.leave_last_out` split into padded (U, L) tensors and seen masks.

    Item ids must be integers >= 1 (0 is padding); ML-100k's 1..1682 are used as they are.
    """
    if not isinstance(split, Split):
        raise TypeError(f"split must be a Split (from leave_last_out), got {type(split).__name__}")
    max_len = check_int(max_len, "max_len", min=1)
    for part, frame in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        require_columns(frame, [user_col, item_col], what=f"split.{part}")
    check_nonempty(split.test, "split.test", fix="pass a leave_last_out split with users in it")
    items = np.concatenate([p[item_col].to_numpy() for p in (split.train, split.valid, split.test)])
    items = check_ids(items, f"column {item_col!r}").numpy()
    if num_items is not None:
        num_items = check_int(num_items, "num_items", min=1)
    if items.min() < 1:
        raise ValueError(f"item ids must be >= 1 (0 is padding), got min {items.min()}")
    num_items = int(items.max()) if num_items is None else num_items
    if items.max() > num_items:
        raise ValueError(f"num_items={num_items} but the split holds item id {items.max()}")
    valid = split.valid.set_index(user_col)[item_col]
    test = split.test.set_index(user_col)[item_col]
    users = np.sort(test.index.to_numpy())
    if not np.array_equal(np.sort(valid.index.to_numpy()), users):
        raise ValueError("valid and test must hold one row for each of the same users")
    grouped = split.train.groupby(user_col, sort=True)[item_col].apply(np.asarray)
    train = [grouped.get(u, np.zeros(0, dtype=np.int64)) for u in users]
    valid_t = torch.tensor(valid.loc[users].to_numpy(), dtype=torch.long)
    test_t = torch.tensor(test.loc[users].to_numpy(), dtype=torch.long)
    with_valid = [np.append(s, v) for s, v in zip(train, valid_t.numpy())]
    valid_seen, test_seen = _seen(train, num_items), _seen(with_valid, num_items)
    rows = torch.arange(len(users))
    valid_seen[rows, valid_t] = False  # the target is always a candidate
    test_seen[rows, test_t] = False
    return SequenceData(
        users=users,
        num_items=num_items,
        train_inputs=left_pad([s[:-1] for s in train], max_len),
        train_targets=left_pad([s[1:] for s in train], max_len),
        valid_history=left_pad(train, max_len),
        valid_target=valid_t,
        valid_seen=valid_seen,
        test_history=left_pad(with_valid, max_len),
        test_target=test_t,
        test_seen=test_seen,
        train_sequences=train,
    )
