"""What the recommender is built from: its config, item profiles, feature tensors, training rows
and the MMoE's config.

:class:`RecommenderConfig` says what it routes between and predicts; every function here turns
MovieLens frames (in :class:`mtrec.data.MovieLens`'s schema) into tensors, and
:meth:`mtrec.serving.recommender.Recommender.fit` calls them in order and saves what they
return. Item rows are the items sorted by id: row ``r`` is the ``r``-th smallest item id and has
embedding id ``r + 1`` in the MMoE (0 is out-of-vocabulary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_finite, check_ids, check_int, check_nonempty, check_tensor
from mtrec.data import ML_SCENARIOS, DenseFeature, SparseFeature, TextFeature
from mtrec.data.tasks.movielens import user_demographics
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.of_record import multitask_mmoe_config
from mtrec.nn.pca import pca_project
from mtrec.routing import RuleTaskMapper

# The tasks a rating can label: task name → what makes a training row positive for it.
TASK_LABELS = {"watch": "the user rated the item", "like": "the user rated it 4 or 5"}


@dataclass(frozen=True)
class RecommenderConfig:
    """What the recommender routes between and predicts; saved in ``config.json``."""

    scenarios: tuple[str, ...]  # lower-case scenario (page) names; an item's `scenario` is one
    tasks: tuple[str, ...]  # the MMoE's heads in label-column order, names from TASK_LABELS
    task_table: Mapping[str, tuple[str, ...]] | None = None  # scenario → its tasks (None: all)
    text_dim: int = 32  # width of the item text projection (PCA of the embeddings) fed to the MMoE

    def __post_init__(self) -> None:
        for name in ("scenarios", "tasks"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise TypeError(f"{name} must be a list of names, got {value!r}; e.g. [{value!r}]")
        if self.task_table is not None and not isinstance(self.task_table, Mapping):
            raise TypeError(f"task_table must be a dict scenario -> tasks, got {self.task_table!r}")
        scenarios, tasks = tuple(self.scenarios), tuple(self.tasks)
        if (
            not scenarios
            or len(set(scenarios)) < len(scenarios)
            or any(not isinstance(s, str) or s != s.strip().lower() or not s for s in scenarios)
        ):
            raise ValueError(
                f"scenarios must be distinct, non-empty, lower-case names (pages are matched "
                f"case-insensitively), got {list(scenarios)}"
            )
        unknown = [t for t in tasks if t not in TASK_LABELS]
        if not tasks or unknown or len(set(tasks)) < len(tasks):
            raise ValueError(
                f"tasks must be distinct names from {list(TASK_LABELS)} (what ratings can label: "
                f"{TASK_LABELS}), got {list(tasks)}"
            )
        table = {s: tasks for s in scenarios} if self.task_table is None else self.task_table
        table = {s: tuple(ts) for s, ts in table.items()}
        RuleTaskMapper(table, scenarios=scenarios, tasks=tasks)  # raises on a mismatched table
        if type(self.text_dim) is not int or self.text_dim < 1:
            raise ValueError(f"text_dim must be an int >= 1, got {self.text_dim!r}")
        object.__setattr__(self, "scenarios", scenarios)
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "task_table", table)

    @classmethod
    def movielens(cls) -> RecommenderConfig:
        """MovieLens-100k: five genre groups, watch and like, family pages score watch only."""
        scenarios = tuple(ML_SCENARIOS)
        table = {s: ("watch",) if s == "family" else ("watch", "like") for s in scenarios}
        return cls(scenarios=scenarios, tasks=("watch", "like"), task_table=table, text_dim=32)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts, for ``config.json``."""
        return {"scenarios": list(self.scenarios), "tasks": list(self.tasks),
                "task_table": {s: list(t) for s, t in self.task_table.items()},
                "text_dim": self.text_dim}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecommenderConfig:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise TypeError(
                f"a RecommenderConfig dict must be a mapping, got {type(data).__name__}"
            )
        known = {"scenarios", "tasks", "task_table", "text_dim"}
        unknown, missing = sorted(set(data) - known), sorted({"scenarios", "tasks"} - set(data))
        if unknown or missing:
            raise KeyError(
                f"RecommenderConfig: unknown keys {unknown}, missing keys {missing}; expected "
                f"{sorted(known)} (task_table and text_dim optional)"
            )
        return cls(**data)


def item_profiles(items: pd.DataFrame) -> list[str]:
    """ "Title (year) | Genre, Genre" per item (the same text as notebook 07, so cached)."""
    _columns(items, "items", ("title", "genres"))
    if items.title.isna().any() or items.genres.isna().any():
        raise ValueError("items has missing titles or genres; fill them (e.g. fillna('')) first")
    return [f"{t} | {g.replace('|', ', ')}" for t, g in zip(items.title, items.genres)]


def _columns(frame: object, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` when it is a DataFrame with ``columns``; else a clear error."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{name} lacks the columns {missing}; it has {list(frame.columns)}")
    return frame


def scenario_ids(items: pd.DataFrame, config: RecommenderConfig) -> Tensor:
    """(I,) each item's scenario id: its ``scenario`` name's position in ``config.scenarios``."""
    if not isinstance(config, RecommenderConfig):
        raise TypeError(f"config must be a RecommenderConfig, got {type(config).__name__}")
    _columns(items, "items", ("scenario",))
    ids = items.scenario.map({s: i for i, s in enumerate(config.scenarios)})
    unknown = sorted(set(items.scenario[ids.isna()]))
    empty = sorted(set(config.scenarios) - set(items.scenario))
    if unknown or empty:
        raise ValueError(
            f"items and RecommenderConfig.scenarios {list(config.scenarios)} disagree: item "
            f"scenarios missing from the config {unknown}, config scenarios without items (the "
            f"router cannot learn them) {empty}; make the config list exactly the items' scenarios"
        )
    return torch.tensor(ids.to_numpy(np.int64))


def text_projection(embeddings: Tensor, dim: int) -> Tensor:
    """(I, D) sentence embeddings → (I, dim) principal components, scaled to unit std.

    The projection is :func:`mtrec.nn.pca.pca_project`'s randomized one (``torch.pca_lowrank``):
    it draws from the global torch random state, so the result depends on what ran before it
    (the caller seeds).
    """
    check_tensor(embeddings, "embeddings", ndim=2)
    check_nonempty(embeddings, "embeddings")
    check_finite(embeddings, "embeddings")
    check_int(dim, "text_dim")
    if not 1 <= dim <= min(embeddings.shape):
        raise ValueError(
            f"text_dim must be in 1..{min(embeddings.shape)} (the embedding width and item "
            f"count), got {dim}; lower RecommenderConfig.text_dim"
        )
    text = pca_project(embeddings, dim, randomized=True)  # (I, dim)
    if not float(text.std()) > 0:
        raise ValueError("embeddings are all equal (no variance): nothing to project")
    return (text / text.std()).float().contiguous()


def user_tensors(users: pd.DataFrame) -> tuple[dict[str, Tensor], int]:
    """Demographics indexed by user id (0 where unknown), and the occupation vocabulary size.

    The coding is :func:`mtrec.data.tasks.movielens.user_demographics` (shared with
    :mod:`mtrec.experiments.allocation`).

    Returns:
        ``{"user_gender": (U,) long, "user_occupation": (U,) long, "user_age": (U,) float}``
        with U = largest user id + 1, and the number of occupation ids (OOV included).
    """
    _columns(users, "users", ("user_id", "gender", "occupation", "age"))
    demo, occupations = user_demographics(users)
    return {f"user_{key}": value for key, value in demo.items()}, occupations


def history_tensors(ordered: pd.DataFrame, items: pd.DataFrame) -> dict[str, Tensor]:
    """Each user's rated item rows, oldest first, as a CSR: users (U,), indptr (U+1,), rows (N,).

    Args:
        ordered: ratings sorted by user, then time (then item id, for ties).
        items: the catalogue sorted by item id.
    """
    _check_rated(ordered, items)
    row_of = pd.Series(np.arange(len(items)), index=items.item_id)
    users, counts = np.unique(ordered.user_id.to_numpy(), return_counts=True)
    return {
        "history_users": torch.as_tensor(users),
        "history_indptr": torch.as_tensor(np.concatenate([[0], np.cumsum(counts)])),
        "history_rows": torch.tensor(row_of[ordered.item_id].to_numpy(np.int64)),
    }


def _check_rated(ordered: pd.DataFrame, items: pd.DataFrame) -> None:
    """Ratings whose item ids are all in the (non-empty) catalogue ``items``."""
    _columns(ordered, "ratings", ("user_id", "item_id", "rating"))
    _columns(items, "items", ("item_id",))
    check_nonempty(items, "items", fix="pass the item catalogue")
    unknown = sorted(set(ordered.item_id) - set(items.item_id))
    if unknown:
        raise KeyError(f"ratings name item ids not in items: {unknown[:5]}; filter them first")


def training_rows(
    ordered: pd.DataFrame, items: pd.DataFrame, tasks: tuple[str, ...], seed: int
) -> dict[str, Tensor]:
    """Positives (every training rating) and one uniformly sampled unrated item each (seeded).

    Returns:
        ``{"user_row": (N,), "item_row": (N,), "labels": (N, T)}`` with one label column per
        task of ``tasks`` (see ``TASK_LABELS``); sampled negatives are 0 for every task.
    """
    _check_rated(ordered, items)
    unknown = [t for t in tasks if t not in TASK_LABELS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be names from {list(TASK_LABELS)}, got {list(tasks)}")
    check_int(seed, "seed", min=0)
    rng = np.random.default_rng(seed)
    row_of = pd.Series(np.arange(len(items)), index=items.item_id)
    users = ordered.user_id.to_numpy(np.int64)
    pos = row_of[ordered.item_id].to_numpy(np.int64)
    neg = rng.integers(0, len(items), size=len(users))
    seen = set(zip(users.tolist(), pos.tolist()))
    clash = np.fromiter((p in seen for p in zip(users.tolist(), neg.tolist())), bool, len(users))
    keep = ~clash  # drop the few sampled negatives the user did rate
    columns = {
        "watch": np.ones(len(users), np.float32),
        "like": (ordered.rating.to_numpy() >= 4).astype(np.float32),
    }
    labels = np.concatenate([np.stack([columns[t] for t in tasks], 1),
                             np.zeros((int(keep.sum()), len(tasks)), np.float32)])  # fmt: skip
    return {
        "user_row": torch.as_tensor(np.concatenate([users, users[keep]])),
        "item_row": torch.as_tensor(np.concatenate([pos, neg[keep]])),
        "labels": torch.as_tensor(labels),
    }


def features(frame: dict[str, Tensor], state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rows of (user id, item row[, labels]) → the MMoE's batch tensors (gathered lookups).

    Args:
        frame: ``{"user_row": (B,), "item_row": (B,)}`` and optionally ``"labels"`` (B, T).
        state: the item and user tensors (``item_scenarios``, ``item_text``, ``user_*``).
    """
    missing = [k for k in ("user_row", "item_row") if k not in frame]
    if missing:
        raise KeyError(f"frame lacks {missing}; it needs 'user_row' and 'item_row' (B,) ids")
    users = check_ids(frame["user_row"], "frame['user_row']", len(state["user_gender"]))
    rows = check_ids(frame["item_row"], "frame['item_row']", len(state["item_scenarios"]))
    if users.shape != rows.shape or users.ndim != 1:
        raise ValueError(
            f"user_row and item_row must be (B,) of one length, got {tuple(users.shape)} and "
            f"{tuple(rows.shape)}"
        )
    out = {
        "user_id": users,
        "item_id": rows + 1,  # item row r has embedding id r + 1 (0 = OOV)
        "scenario": state["item_scenarios"][rows] + 1,
        "gender": state["user_gender"][users],
        "occupation": state["user_occupation"][users],
        "age": state["user_age"][users],
        "item_text": state["item_text"][rows],
    }
    if "labels" in frame:
        out["labels"] = frame["labels"]
    return out


def mmoe_config(
    config: RecommenderConfig, *, num_users: int, num_items: int, occupations: int
) -> MMoEConfig:
    """The scoring MMoE over user, item, scenario, demographics and the item text projection.

    Its sizes are notebook 06's MMoE (:func:`mtrec.models.of_record.multitask_mmoe_config`).

    Args:
        config: gives the scenario count, the heads (``tasks``) and the text width.
        num_users, num_items, occupations: embedding vocabularies (largest id + 1).
    """
    features = (
        SparseFeature("user_id", num_users, 16),
        SparseFeature("item_id", num_items, 16),
        SparseFeature("scenario", len(config.scenarios) + 1, 4),
        SparseFeature("gender", 3, 2),
        SparseFeature("occupation", occupations, 4),
        DenseFeature("age"),
        TextFeature("item_text", config.text_dim),
    )
    return multitask_mmoe_config(features, len(config.tasks))


def scoring_model(config: RecommenderConfig, meta: Mapping[str, Any]) -> MMoE:
    """A fresh scoring MMoE (:func:`mmoe_config`) sized by a fit's catalogue (``meta``)."""
    sizes = {k: meta[k] for k in ("num_users", "num_items", "occupations")}
    return MMoE(mmoe_config(config, **sizes))
