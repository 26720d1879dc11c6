"""MovieLens-100k tasks: the click tasks, the user demographics, next-item and top-K splits.

Every MovieLens feature pipeline of the suite lives here, so each number (an encoder, a scaling
constant, a split seed) is written once:

* :func:`ml100k_impressions`: ratings plus sampled unrated films, tasks watch / like (notebook 06).
* :func:`ml100k_by_age`: ratings in 3 age scenarios, task like (the multi-scenario benchmark).
* :func:`user_demographics`: per-user gender, occupation and age tensors (serving, notebooks 11
  and 14), with one set of constants (:data:`GENDER_CODES`, :data:`AGE_CENTRE`,
  :data:`AGE_SCALE`).
* :func:`ml100k_leave_last_out` / :func:`ml100k_next_item`: the leave-last-out next-item task.
* :func:`ml100k_topk_split`: the per-user 75/25 top-K split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_int, check_nonempty
from mtrec.data.batching import Batch, frame_to_tensors
from mtrec.data.loaders import ML_SCENARIOS, load_movielens, movielens_multitask
from mtrec.data.scenarios import ML_AGE_SCENARIOS, movielens_age_scenarios
from mtrec.data.schema import CategoryEncoder, DenseFeature, SparseFeature, require_columns
from mtrec.data.sequences import SequenceData, build_sequences
from mtrec.data.splits import Split, leave_last_out, per_user_split, random_split
from mtrec.data.tasks.base import ClickTask

__all__ = [
    "AGE_CENTRE",
    "AGE_SCALE",
    "GENDER_CODES",
    "IMPRESSION_ROWS",
    "TOPK_TEST_FRACTION",
    "ml100k_by_age",
    "ml100k_impressions",
    "ml100k_leave_last_out",
    "ml100k_next_item",
    "ml100k_topk_split",
    "user_demographics",
]

IMPRESSION_ROWS = 30_000  # ML-100k impressions used (of 200k: 100k ratings + 100k negatives)
SPLIT_SEED = 0  # the click tasks' random 8:1:1 split is fixed; model seeds change the rest
GENDER_CODES = {"M": 1, "F": 2}  # 0 = unknown
AGE_CENTRE = 34  # years: the mean age of the 943 ML-100k users (34.05), rounded
AGE_SCALE = 12  # years: about the std of the users' age (12.2), so the scaled age is of order 1
TOPK_TEST_FRACTION = 0.25  # the per-user top-K split holds out 25% of each user's rows

DenseFn = Callable[[pd.DataFrame], Tensor]


def _split_tensors(
    split: Split,
    sparse: Sequence[tuple[str, int]],
    dense: Mapping[str, DenseFn],
    tasks: Sequence[str],
) -> tuple[tuple, Batch, Batch, Batch]:
    """Fit a CategoryEncoder per sparse column on ``split.train``; tensors of the three parts.

    Returns:
        The sparse features (in ``sparse`` order) and one batch per part: the sparse ids
        (int64), ``dense`` columns (each ``fn(part)``), ``"labels"`` (B, T) float32 and, where the
        frame has ``scenario_id``, ``"scenario_ids"`` (B,) int64.
    """
    encoders = {c: CategoryEncoder().fit(split.train[c]) for c, _ in sparse}
    features = tuple(SparseFeature(c, encoders[c].vocab_size, d) for c, d in sparse)

    def tensors(part: pd.DataFrame) -> Batch:
        ids = pd.DataFrame({c: enc.transform(part[c]) for c, enc in encoders.items()})
        out = frame_to_tensors(ids, dict.fromkeys(encoders, torch.int64))
        out.update({name: fn(part) for name, fn in dense.items()})
        out["labels"] = torch.tensor(part[list(tasks)].to_numpy(), dtype=torch.float32)
        if "scenario_id" in part:
            out.update(frame_to_tensors(part, {"scenario_id": torch.int64}))
            out["scenario_ids"] = out.pop("scenario_id")
        return out

    return features, tensors(split.train), tensors(split.valid), tensors(split.test)


def ml100k_impressions(*, rows: int = IMPRESSION_ROWS, seed: int = 0) -> ClickTask:
    """ML-100k impressions, tasks watch / like (notebook 06 and ``mtrec.experiments.multitask``).

    The first ``rows`` rows of :func:`~mtrec.data.movielens_multitask` (``seed`` draws the
    sampled negatives and the row order), split 8:1:1 at random with seed :data:`SPLIT_SEED`
    (whatever ``seed``). Sparse user, item, occupation, gender (CategoryEncoders, embedding 8)
    and dense age, year standardised with the training mean and std (+ 1e-6), missing years → 0;
    all fitted on the training part. Scenarios: the film's genre group (:data:`ML_SCENARIOS`).
    """
    rows = check_int(rows, "rows", min=10)
    frame = movielens_multitask(seed=seed).head(rows)
    split = random_split(frame, seed=SPLIT_SEED)
    dense_cols = ("age", "year")
    stats = {c: (split.train[c].mean(), split.train[c].std() + 1e-6) for c in dense_cols}

    def standardised(column: str) -> DenseFn:
        mean, std = stats[column]
        return lambda p: frame_to_tensors(
            pd.DataFrame({column: ((p[column] - mean) / std).fillna(0)}), {column: torch.float32}
        )[column]

    sparse = [(c, 8) for c in ("user_id", "item_id", "occupation", "gender")]
    tasks = ("watch", "like")
    features, *parts = _split_tensors(
        split, sparse, {c: standardised(c) for c in dense_cols}, tasks
    )
    return ClickTask(
        name="ml-100k",
        features=features + tuple(DenseFeature(c) for c in dense_cols),
        task_names=tasks,
        scenario_names=tuple(ML_SCENARIOS),
        train=parts[0],
        valid=parts[1],
        test=parts[2],
        protocol=f"first {rows} impressions (seed {seed}); random 8:1:1 split (seed "
        f"{SPLIT_SEED}); encoders, means and stds fitted on train",
    )


def ml100k_by_age(*, frame: pd.DataFrame | None = None) -> ClickTask:
    """ML-100k ratings in 3 age scenarios, task like (``mtrec.experiments.multiscenario``).

    Sparse user, item, gender, occupation, zip code and first genre (CategoryEncoders fitted on
    the training part, embedding 16) and min-max-scaled age; random 8:1:1 split (seed
    :data:`SPLIT_SEED`). Scenarios: :data:`~mtrec.data.scenarios.ML_AGE_SCENARIOS`.

    Args:
        frame: the rows (default :func:`~mtrec.data.scenarios.movielens_age_scenarios`).
    """
    frame = movielens_age_scenarios() if frame is None else frame
    require_columns(frame, ["age", "like", "scenario_id"], what="frame")
    # min / max of age over all rows: a constant of the user table (every user's age is known
    # before any rating), not a label leak, so it is taken from the whole frame, as before.
    low, high = frame.age.min(), frame.age.max()

    def age(part: pd.DataFrame) -> Tensor:
        scaled = pd.DataFrame({"age": (part.age - low) / (high - low)})
        return frame_to_tensors(scaled, {"age": torch.float32})["age"]

    columns = ("user_id", "item_id", "gender", "occupation", "zip_code", "genre")
    split = random_split(frame, seed=SPLIT_SEED)
    features, *parts = _split_tensors(split, [(c, 16) for c in columns], {"age": age}, ["like"])
    return ClickTask(
        name="ml-100k-age",
        features=(*features, DenseFeature("age")),
        task_names=("like",),
        scenario_names=tuple(ML_AGE_SCENARIOS),
        train=parts[0],
        valid=parts[1],
        test=parts[2],
        protocol=f"random 8:1:1 split (seed {SPLIT_SEED}); encoders fitted on train; age "
        "min-max scaled over the user table",
    )


def user_demographics(users: pd.DataFrame) -> tuple[dict[str, Tensor], int]:
    """Per-user demographics, indexed by user id (row 0 and absent ids: all 0).

    One coding for every caller: gender by :data:`GENDER_CODES` (0 = unknown); occupation ids
    1..n in sorted order of the occupations in ``users`` (0 = unknown); age as
    (age - :data:`AGE_CENTRE`) / :data:`AGE_SCALE`. These are constants of the user table (no
    label enters them), so they may be taken from all users.

    Args:
        users: one row per user: user_id (distinct integers >= 0), gender, occupation, age.

    Returns:
        ``{"gender": (U,) int64, "occupation": (U,) int64, "age": (U,) float32}`` with
        U = largest user id + 1, and the number of occupation ids (0 included).
    """
    if not isinstance(users, pd.DataFrame):
        raise TypeError(f"users must be a pandas DataFrame, got {type(users).__name__}")
    require_columns(users, ["user_id", "gender", "occupation", "age"], what="users")
    check_nonempty(users, "users", fix="pass load_movielens().users")
    if users.user_id.dtype.kind not in "iu":
        raise TypeError(f"users.user_id must hold integer ids, got dtype {users.user_id.dtype}")
    if users.user_id.min() < 0 or users.user_id.duplicated().any():
        raise ValueError(
            "users.user_id must be distinct ids >= 0, got "
            f"{int(users.user_id.duplicated().sum())} duplicates and min {users.user_id.min()}; "
            "pass one row per user"
        )
    occupation = CategoryEncoder().fit(users.occupation)
    codes = pd.DataFrame(
        {
            "gender": users.gender.map(GENDER_CODES).fillna(0).to_numpy(np.int64),
            "occupation": occupation.transform(users.occupation),
            "age": ((users.age - AGE_CENTRE) / AGE_SCALE).to_numpy(np.float32),
        }
    )
    values = frame_to_tensors(
        codes, {"gender": torch.int64, "occupation": torch.int64, "age": torch.float32}
    )
    ids = torch.tensor(users.user_id.to_numpy(np.int64))
    size = int(ids.max()) + 1
    out = {k: torch.zeros(size, dtype=v.dtype).index_copy(0, ids, v) for k, v in values.items()}
    return out, int(occupation.vocab_size)


def ml100k_leave_last_out(ratings: pd.DataFrame | None = None) -> Split:
    """ML-100k ratings split leave-last-out (:func:`~mtrec.data.leave_last_out`).

    Args:
        ratings: the ratings (default ``load_movielens().ratings``).
    """
    return leave_last_out(load_movielens().ratings if ratings is None else ratings)


def ml100k_next_item(
    max_len: int = 50, num_items: int | None = None, *, split: Split | None = None
) -> SequenceData:
    """The leave-last-out next-item task: padded histories and seen masks per user.

    Args:
        max_len: history length L kept (the last L items).
        num_items: N, items are 1..N (default: the largest item id rated).
        split: a leave-last-out split (default :func:`ml100k_leave_last_out`), to reuse one.
    """
    split = ml100k_leave_last_out() if split is None else split
    return build_sequences(split, max_len=max_len, num_items=num_items)


def ml100k_topk_split(frame: pd.DataFrame, *, seed: int = 0, valid_fraction: float = 0.0) -> Split:
    """The per-user top-K split: :data:`TOPK_TEST_FRACTION` of each user's rows held out.

    Args:
        frame: (user_id, item_id, ...) rows to split, e.g. the ratings or the positives.
        seed: the split's seed (one split per seed).
        valid_fraction: fraction of each user's remaining rows held out for validation.
    """
    return per_user_split(
        frame, test_fraction=TOPK_TEST_FRACTION, valid_fraction=valid_fraction, seed=seed
    )
