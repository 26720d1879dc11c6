"""Adult census income as a two-task click task (the multi-task experiment, notebook 06).

Protocol: :data:`ADULT_ROWS` rows sampled from the 48,842 (``random_state=seed``), a random
8:1:1 split; tasks income > 50K and never married, with marital status and relationship left out
of the inputs (they would give the second task away). Sparse columns are encoded with
:class:`~mtrec.data.schema.CategoryEncoder` (8-d, unseen values → OOV 0); dense columns are
standardised with the training split's mean and std (+ 1e-6), missing values set to 0. Every
transform is fitted on the training split. One scenario ("all": ``scenario_ids`` all 0).
"""

from __future__ import annotations

import pandas as pd
import torch

from mtrec.checks import check_int
from mtrec.data.batching import Batch, frame_to_tensors
from mtrec.data.loaders import load_adult
from mtrec.data.schema import CategoryEncoder, DenseFeature, SparseFeature
from mtrec.data.splits import random_split
from mtrec.data.tasks.base import ClickTask

ADULT_ROWS = 20_000  # rows sampled (of 48,842)
TASKS = ("income_50k", "never_married")
SPARSE = ("workclass", "education", "occupation", "race", "gender", "native_country")
DENSE = ("age", "hours_per_week", "capital_gain", "capital_loss")
EMBED_DIM = 8
STD_EPSILON = 1e-6  # added to each training std (a constant column would divide by 0)


def _batch(part: pd.DataFrame, encoders: dict, stats: dict) -> Batch:
    columns = {c: enc.transform(part[c]) for c, enc in encoders.items()}
    for c, (mean, std) in stats.items():
        columns[c] = ((part[c] - mean) / std).fillna(0).to_numpy()
    dtypes = {c: torch.int64 for c in encoders} | {c: torch.float32 for c in stats}
    out = frame_to_tensors(pd.DataFrame(columns), dtypes)
    out["labels"] = torch.tensor(part[list(TASKS)].to_numpy(), dtype=torch.float32)
    out["scenario_ids"] = torch.zeros(len(part), dtype=torch.int64)
    return out


def adult_income(*, rows: int = ADULT_ROWS, seed: int = 0, split_seed: int = 0) -> ClickTask:
    """The Adult task: ``rows`` sampled rows, tasks income_50k and never_married.

    Args:
        rows: rows sampled from the dataset (at most its 48,842).
        seed: ``random_state`` of the row sample.
        split_seed: seed of the random 8:1:1 split.

    Raises:
        ValueError: ``rows`` is not a positive number or exceeds the dataset.
    """
    rows = check_int(rows, "rows", min=1)
    frame = load_adult()
    if rows > len(frame):
        raise ValueError(
            f"rows must be at most the {len(frame):,} rows of Adult, received {rows:,}; pass "
            f"rows <= {len(frame)}"
        )
    split = random_split(frame.sample(rows, random_state=seed), seed=split_seed)
    encoders = {c: CategoryEncoder().fit(split.train[c]) for c in SPARSE}
    stats = {c: (split.train[c].mean(), split.train[c].std() + STD_EPSILON) for c in DENSE}
    features = tuple(SparseFeature(c, encoders[c].vocab_size, EMBED_DIM) for c in SPARSE)
    features += tuple(DenseFeature(c) for c in DENSE)
    parts = (_batch(p, encoders, stats) for p in (split.train, split.valid, split.test))
    protocol = (f"{rows} rows sampled (seed {seed}), random 8:1:1 split (seed {split_seed}); "
                "encoders and standardisation fitted on the training split")  # fmt: skip
    return ClickTask("adult", features, TASKS, ("all",), *parts, protocol)
