"""Women's Clothing reviews as click tasks: the one Clothing feature pipeline and its tasks.

Features (notebook 05's, fitted on the training split only): item and class name as 8-d sparse
ids (:class:`~mtrec.data.schema.CategoryEncoder`, unseen values → OOV 0), the reviewer's age as
``(age - AGE_CENTRE) / AGE_SCALE`` and the review title as a :data:`TITLE_DIM`-d truncated SVD
of its TF-IDF (words in at least :data:`TITLE_MIN_DF` training titles), times
:data:`TITLE_SCALE`. Tasks recommended / like / helpful; scenario = department.

Tasks:

* :func:`clothing_departments`: the 6 departments in :data:`CLOTHING_SCENARIOS` order, random
  8:1:1 split (the multi-scenario benchmark, notebook 05, and the multi-task experiment).
* :func:`clothing_leave_one_out`: the same rows and features with one department's id last
  (scenario transfer, notebook 12).

Change for the multi-task experiment (notebook 06), which had its own copy of the pipeline: it
fitted the TF-IDF and SVD on *every* title, the validation and test titles included (a leak),
fed the title as 16 separate 1-d dense features ``title0..title15`` each standardised with the
training mean/std, and standardised age with the training mean/std. It now reads this pipeline:
TF-IDF + SVD fitted on the training titles only, one 16-d ``title`` feature scaled by 4, age as
``(age - 43) / 12``; split, ids, labels and scenario ids are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_int
from mtrec.data.batching import Batch, frame_to_tensors
from mtrec.data.loaders import CLOTHING_SCENARIOS, clothing_multitask
from mtrec.data.schema import CategoryEncoder, DenseFeature, SparseFeature, require_columns
from mtrec.data.splits import random_split
from mtrec.data.tasks.base import ClickTask

TASKS = ("recommended", "like", "helpful")  # label columns of clothing_multitask()
SPARSE = ("item_id", "class_name")  # encoded on the training rows, looked up in 8-d tables
EMBED_DIM = 8
# Dense inputs, brought to the scale of the 8-d embeddings (values of order 1):
AGE_CENTRE, AGE_SCALE = 43, 12  # years: the train split's mean (43.1) and std (12.3) reviewer age
TITLE_MIN_DF = 3  # a title word must occur in 3 train titles to enter the TF-IDF vocabulary
TITLE_DIM = 16  # the title TF-IDF compressed to 16 dimensions (truncated SVD)
TITLE_SCALE = 4  # the SVD coordinates have std 0.11 (most titles share few words); x4 → ~0.5
SVD_ITERATIONS = 3  # randomized SVD power iterations


class ClothingFeatures:
    """The Clothing feature pipeline: fit on the training rows, then turn any rows into a batch.

    Args:
        seed: ``random_state`` of the truncated SVD (the tasks pass their split seed).

    Example:
        >>> split = random_split(clothing_multitask())  # doctest: +SKIP
        >>> pipeline = ClothingFeatures().fit(split.train)  # doctest: +SKIP
        >>> batch = pipeline.transform(split.test, CLOTHING_SCENARIOS)  # doctest: +SKIP
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = check_int(seed, "seed", min=0)
        self.encoders: dict[str, CategoryEncoder] = {}
        self._tfidf = None
        self._svd = None

    def fit(self, train: pd.DataFrame) -> ClothingFeatures:
        """Fit the encoders, the TF-IDF vocabulary and the SVD on ``train`` (never on labels)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        require_columns(train, [*SPARSE, "age", "title"], what="Clothing training rows")
        self.encoders = {c: CategoryEncoder().fit(train[c]) for c in SPARSE}
        self._tfidf = TfidfVectorizer(min_df=TITLE_MIN_DF, dtype=np.float32).fit(train.title)
        self._svd = TruncatedSVD(TITLE_DIM, n_iter=SVD_ITERATIONS, random_state=self.seed)
        self._svd.fit(self._tfidf.transform(train.title))
        return self

    @property
    def vocabulary(self) -> dict[str, int]:
        """The TF-IDF title vocabulary (word → column), learnt from the training titles."""
        self._check_fitted()
        return self._tfidf.vocabulary_

    @property
    def features(self) -> tuple:
        """Declared inputs, in batch order: item_id, class_name (8-d), age, title (16-d)."""
        self._check_fitted()
        sparse = tuple(SparseFeature(c, self.encoders[c].vocab_size, EMBED_DIM) for c in SPARSE)
        return (*sparse, DenseFeature("age"), DenseFeature("title", TITLE_DIM))

    def title(self, titles: pd.Series) -> torch.Tensor:
        """(N, TITLE_DIM) float32: the scaled SVD coordinates of each title's TF-IDF."""
        self._check_fitted()
        coords = self._svd.transform(self._tfidf.transform(titles)) * TITLE_SCALE
        return torch.tensor(coords, dtype=torch.float32)

    def transform(self, part: pd.DataFrame, scenario_names: Sequence[str]) -> Batch:
        """``part`` as a batch: the feature keys, "labels" (N, 3) and "scenario_ids" (N,).

        Args:
            part: rows of :func:`~mtrec.data.loaders.clothing_multitask`.
            scenario_names: departments in scenario-id order (every department of ``part``).

        Raises:
            ValueError: ``part`` lacks a column, or holds a department not in ``scenario_names``.
        """
        self._check_fitted()
        require_columns(part, [*SPARSE, "age", "title", "scenario", *TASKS], what="Clothing rows")
        ids = part.scenario.map({name: i for i, name in enumerate(scenario_names)})
        if ids.isna().any():
            unknown = sorted(set(part.scenario[ids.isna()]))
            raise ValueError(
                f"rows of departments {unknown} have no scenario id: expected departments in "
                f"{list(scenario_names)}, received {sorted(set(part.scenario))}; pass every "
                "department of the rows in scenario_names"
            )
        columns = {c: self.encoders[c].transform(part[c]) for c in SPARSE}
        columns["age"] = ((part.age - AGE_CENTRE) / AGE_SCALE).to_numpy()
        columns["scenario_ids"] = ids.to_numpy()
        dtypes = {c: torch.int64 for c in SPARSE} | {
            "age": torch.float32,
            "scenario_ids": torch.int64,
        }
        plain = frame_to_tensors(pd.DataFrame(columns), dtypes)
        return {
            **{c: plain[c] for c in (*SPARSE, "age")},
            "title": self.title(part.title),
            "labels": torch.tensor(part[list(TASKS)].to_numpy(), dtype=torch.float32),
            "scenario_ids": plain["scenario_ids"],
        }

    def _check_fitted(self) -> None:
        if self._svd is None:
            raise RuntimeError("ClothingFeatures is not fitted; call fit(split.train) first")


def _task(name: str, scenario_names: Sequence[str], split_seed: int, protocol: str) -> ClickTask:
    split_seed = check_int(split_seed, "split_seed", min=0)
    split = random_split(clothing_multitask(), seed=split_seed)
    pipeline = ClothingFeatures(seed=split_seed).fit(split.train)
    parts = (pipeline.transform(p, scenario_names) for p in (split.train, split.valid, split.test))
    return ClickTask(name, pipeline.features, TASKS, tuple(scenario_names), *parts, protocol)


def clothing_departments(split_seed: int = 0) -> ClickTask:
    """Clothing reviews, scenario = department (6, in :data:`CLOTHING_SCENARIOS` order).

    Args:
        split_seed: seed of the random 8:1:1 split and of the title SVD.

    Returns:
        The task "clothing-departments": tasks recommended / like / helpful, features of
        :class:`ClothingFeatures` fitted on the training split.
    """
    protocol = (f"random 8:1:1 split (seed {split_seed}); encoders, TF-IDF and SVD fitted on the "
                "training split")  # fmt: skip
    return _task("clothing-departments", CLOTHING_SCENARIOS, split_seed, protocol)


def clothing_leave_one_out(held_out: str = "Jackets", *, split_seed: int = 0) -> ClickTask:
    """:func:`clothing_departments` with ``held_out`` given the last scenario id.

    The rows, split and features are those of :func:`clothing_departments` (same seed); only the
    scenario ids differ: the five other departments keep their relative order as ids 0..4 and
    ``held_out`` is id 5, so a model of the five known departments can be extended by one.

    Raises:
        ValueError: ``held_out`` is not a department.
    """
    if held_out not in CLOTHING_SCENARIOS:
        raise ValueError(
            f"held_out must be a Clothing department, expected one of {CLOTHING_SCENARIOS}, "
            f"received {held_out!r}; pick one of those names (case-sensitive)"
        )
    names = [*(s for s in CLOTHING_SCENARIOS if s != held_out), held_out]
    protocol = (f"random 8:1:1 split (seed {split_seed}); encoders, TF-IDF and SVD fitted on the "
                f"training split; {held_out} is the last scenario id")  # fmt: skip
    return _task(f"clothing-without-{held_out.lower()}", names, split_seed, protocol)
