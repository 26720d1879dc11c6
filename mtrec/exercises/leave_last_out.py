"""Self-check: the leave-last-out split of sequential recommendation, row by row.

The student writes ``split_parts(user_ids, timestamps, item_ids) -> parts``: three (N,) integer
arrays describe N interactions (in any row order); ``parts`` (N,) says where each row goes in the
row order given: 2 = test (the user's last interaction), 1 = validation (the second-to-last),
0 = training (the rest). Each user's interactions are ordered by time, ties broken by item id, as
:func:`mtrec.data.leave_last_out` does (every user here has at least three interactions). Nothing
in training then comes after that user's validation or test target: the split cannot leak the
future.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.data import leave_last_out
from mtrec.exercises._harness import Case, run_cases


def _parts(
    user_ids, timestamps, item_ids, *, by=("user", "time", "item"), ascending=False
) -> Tensor:
    rows = pd.DataFrame({"user": user_ids, "time": timestamps, "item": item_ids})
    ordered = rows.sort_values(list(by), kind="stable")
    groups = ordered.groupby("user") if "user" in by else ordered.groupby(np.zeros(len(rows)))
    from_end = groups.cumcount(ascending=ascending).sort_index().to_numpy()  # 0 = newest
    return torch.as_tensor(np.select([from_end == 0, from_end == 1], [2, 1], default=0))


def reference_parts(user_ids: np.ndarray, timestamps: np.ndarray, item_ids: np.ndarray) -> Tensor:
    """2 / 1 / 0 per row (test / validation / training); checked against mtrec.data."""
    parts = _parts(user_ids, timestamps, item_ids)
    frame = pd.DataFrame({"user_id": user_ids, "item_id": item_ids, "timestamp": timestamps})
    split = leave_last_out(frame)
    for code, part in ((2, split.test), (1, split.valid)):
        rows = (parts == code).numpy()
        got = set(zip(frame.user_id[rows], frame.item_id[rows]))
        assert got == set(zip(part.user_id, part.item_id)), (code, got)
    return parts


def _no_tie_break(user_ids, timestamps, item_ids):
    return _parts(user_ids, timestamps, item_ids, by=("user", "time"))


def _oldest_out(user_ids, timestamps, item_ids):
    return _parts(user_ids, timestamps, item_ids, ascending=True)


def _swapped(user_ids, timestamps, item_ids):
    parts = _parts(user_ids, timestamps, item_ids)
    return torch.where(parts == 2, 1, torch.where(parts == 1, 2, 0))


def _global(user_ids, timestamps, item_ids):
    return _parts(user_ids, timestamps, item_ids, by=("time", "item"))


DIAGNOSES = (
    (_no_tie_break, "ties in time must be broken by item id: sort by (user, time, item)"),
    (_oldest_out, "you held out the oldest interactions; test is each user's newest one"),
    (_swapped, "validation and test are swapped: test is the last, validation the second-to-last"),
    (_global, "split within each user (group by user), not over all rows at once"),
)


def cases() -> list[Case]:
    """The hidden cases (seeded, so every student sees the same ones)."""
    rng = np.random.default_rng(0)
    users = rng.permutation(np.repeat(np.arange(1, 9), rng.integers(3, 10, 8)))
    specs = [
        ("one user, 5 interactions in time order", [7] * 5, [10, 20, 30, 40, 50],
         [3, 1, 4, 2, 5], "sort by time; the last row is test, the one before it validation"),
        ("two users, rows shuffled", [2, 1, 2, 1, 1, 2, 2], [5, 9, 1, 3, 1, 8, 3],
         [11, 12, 13, 14, 15, 16, 17], "order each user's rows separately (group by user)"),
        ("ties in time, broken by item id", [1, 1, 1, 1, 1], [100, 300, 300, 200, 300],
         [50, 40, 20, 30, 10], "three rows share the last time: the largest item id is last"),
        ("8 users, 49 rows, many ties", users, rng.integers(0, 6, len(users)),
         rng.permutation(len(users)) + 1, "sort by (user, time, item); count from each user's end"),
    ]  # fmt: skip
    out = []
    for name, user_ids, timestamps, item_ids, hint in specs:
        kwargs = {"user_ids": np.asarray(user_ids), "timestamps": np.asarray(timestamps),
                  "item_ids": np.asarray(item_ids)}  # fmt: skip
        out.append(Case(name, kwargs, reference_parts(**kwargs), hint, DIAGNOSES, atol=0))
    return out


def check_leave_last_out(student: Callable[..., np.ndarray | Tensor]) -> bool:
    """Check ``student(user_ids, timestamps, item_ids) -> parts``; print feedback; True if right."""
    return run_cases("leave-last-out split", student, cases())
