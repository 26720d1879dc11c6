"""The compute-allocation study's parts: the MovieLens-100k teacher/student pair and its
quality-per-depth table (the experiment is :mod:`mtrec.experiments.allocation`, notebook 14
replays it under load with :mod:`mtrec.serving`'s cascade, budgets and controller).

* :func:`movielens_tables`: per-user and per-item feature tables (ids, demographics, genres, a
  MiniLM title embedding reduced by PCA), so any (user, item) batch is two gathers.
* :func:`fit_pair`: the **teacher**, an MMoE (Ma et al., KDD 2018) over all those features
  (:func:`mtrec.models.of_record.teacher_config`), fit on
  the training ratings (positives) and as many sampled unrated items (negatives), tasks *watch*
  and *like* (rating >= 4); the **student**, an ID-only :class:`mtrec.models.StudentMLP`
  distilled from it (Hinton et al., 2015) on those rows plus a transfer set of random
  (user, item) pairs, i.e. the pairs it will rank at serving time, with labels withheld.
* :func:`depth_quality`: for each user and each cascade depth, NDCG@10 of the cascade's top-10
  against the teacher's top-10 and against the user's held-out item. A ranking depends only on
  (user, depth), so the load simulation looks the quality up instead of re-ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import as_tensor, check_finite, check_ids, check_int, check_nonempty, check_tensor
from mtrec.data import ML_GENRES, DenseFeature, SparseFeature, TensorBatcher, TextFeature
from mtrec.data.tasks.movielens import user_demographics
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.of_record import student_config, teacher_config
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.nn.pca import pca_project
from mtrec.train import fit
from mtrec.train.distill import DistillConfig, Distiller

TASKS = ("watch", "like")


@dataclass
class FeatureTables:
    """Feature tables indexed by raw id (row 0 unused): ``user[k]`` (U+1, ...), ``item[k]`` (I+1, ...)."""

    user: dict[str, Tensor]
    item: dict[str, Tensor]

    def batch(self, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        """(B,) user ids and (B,) item ids → the models' batch (every key (B, ...))."""
        users = check_ids(users, "users", self.user["user_id"].shape[0])
        items = check_ids(items, "items", self.item["item_id"].shape[0])
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(
                f"users and items must be (B,) id tensors of one length, got shapes "
                f"{tuple(users.shape)} and {tuple(items.shape)}"
            )
        out = {k: v[users] for k, v in self.user.items()}
        out.update({k: v[items] for k, v in self.item.items()})
        return out

    @property
    def num_items(self) -> int:
        """I, the largest item id."""
        return self.item["item_id"].shape[0] - 1


TITLE_SCALE = 4  # ×4: the projected titles at a unit-ish scale next to the other inputs


def title_pca(embeddings: Tensor, dim: int) -> Tensor:
    """(I, 384) sentence embeddings → (I, dim): centred, projected on the top principal axes
    (:func:`mtrec.nn.pca.pca_project`, exact), times :data:`TITLE_SCALE`."""
    return pca_project(embeddings, dim) * TITLE_SCALE


def movielens_tables(users: pd.DataFrame, items: pd.DataFrame, text: Tensor) -> FeatureTables:
    """Tables of ML-100k users and items; ``text`` (I, D) is aligned with ``items`` rows."""
    for frame, name, columns in ((users, "users", ("user_id", "gender", "occupation", "age")),
                                 (items, "items", ("item_id", *ML_GENRES))):  # fmt: skip
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        check_nonempty(frame, name)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} lacks the columns {missing}; load it with load_movielens()")
    check_tensor(text, "text", ndim=2)
    check_finite(text, "text")
    if text.shape[0] != len(items):
        raise ValueError(
            f"text must have one row per item ({len(items)}), got shape {tuple(text.shape)}"
        )
    if users.user_id.min() < 1 or items.item_id.min() < 1:
        raise ValueError("user_id and item_id must be >= 1 (row 0 of the tables is unused)")
    num_users, num_items = int(users.user_id.max()), int(items.item_id.max())
    iid = torch.tensor(items.item_id.to_numpy())
    demographics, _ = user_demographics(users)  # the coding shared with mtrec.serving.build
    user = {"user_id": torch.arange(num_users + 1), **demographics}
    item = {"item_id": torch.arange(num_items + 1)}
    genres = torch.tensor(items[ML_GENRES].to_numpy(np.float32))
    item["genres"] = torch.zeros(num_items + 1, len(ML_GENRES)).index_copy(0, iid, genres)
    item["item_text"] = torch.zeros(num_items + 1, text.shape[1]).index_copy(0, iid, text.float())
    return FeatureTables(user=user, item=item)


def pair_configs(tables: FeatureTables) -> tuple[MMoEConfig, StudentConfig]:
    """The teacher's and the student's configs of record (same tasks, in ``TASKS`` order)."""
    num_users, num_items = tables.user["user_id"].shape[0], tables.item["item_id"].shape[0]
    occupations = int(tables.user["occupation"].max()) + 1
    teacher_features = (
        SparseFeature("user_id", num_users, 16), SparseFeature("item_id", num_items, 16),
        SparseFeature("gender", 3, 4), SparseFeature("occupation", occupations, 8),
        DenseFeature("age"), DenseFeature("genres", len(ML_GENRES)),
        TextFeature("item_text", tables.item["item_text"].shape[1]),
    )  # fmt: skip
    return teacher_config(teacher_features, len(TASKS)), student_config(num_users, num_items, TASKS)


def training_rows(ratings: pd.DataFrame, num_items: int, *, seed: int) -> dict[str, Tensor]:
    """Every training rating (watch = 1, like = rating >= 4) and one sampled unrated item each."""
    check_int(num_items, "num_items", min=1)
    check_int(seed, "seed", min=0)
    rng = np.random.default_rng(seed)
    users = ratings.user_id.to_numpy(np.int64)
    items = ratings.item_id.to_numpy(np.int64)
    neg = rng.integers(1, num_items + 1, size=len(users))
    seen = set(zip(users.tolist(), items.tolist()))
    keep = ~np.fromiter((p in seen for p in zip(users.tolist(), neg.tolist())), bool, len(users))
    like = (ratings.rating.to_numpy() >= 4).astype(np.float32)
    labels = np.concatenate([np.stack([np.ones_like(like), like], 1),
                             np.zeros((int(keep.sum()), 2), np.float32)])  # fmt: skip
    return {
        "users": torch.as_tensor(np.concatenate([users, users[keep]])),
        "items": torch.as_tensor(np.concatenate([items, neg[keep]])),
        "labels": torch.as_tensor(labels),
    }


def fit_pair(
    tables: FeatureTables,
    ratings: pd.DataFrame,
    *,
    teacher_epochs: int = 2,
    student_epochs: int = 3,
    transfer_size: int = 100_000,
    seed: int = 0,
) -> tuple[MMoE, StudentMLP]:
    """Train the teacher on ``ratings`` (training part only), then distil the student from it.

    The student learns from the teacher alone (α = 0, T = 1: the best cell of notebook 09's
    grid) on the training rows plus ``transfer_size`` uniformly random (user, item) pairs. Fixed
    epoch counts, no early stopping (nothing here looks at validation or test items).
    """
    check_int(teacher_epochs, "teacher_epochs", min=1)
    check_int(student_epochs, "student_epochs", min=1)
    check_int(transfer_size, "transfer_size", min=0)
    check_int(seed, "seed", min=0)
    teacher_config, student_config = pair_configs(tables)
    rows = training_rows(ratings, tables.num_items, seed=seed)
    batch = {**tables.batch(rows["users"], rows["items"]), "labels": rows["labels"]}
    teacher = MMoE(teacher_config)
    fit(teacher, TensorBatcher(batch, 2048, shuffle=True, seed=seed), epochs=teacher_epochs,
        lr=5e-3, seed=seed, device="cpu", progress=False)  # fmt: skip
    teacher.eval()
    g = torch.Generator().manual_seed(seed)
    users = torch.tensor(ratings.user_id.unique())
    t_users = users[torch.randint(len(users), (transfer_size,), generator=g)]
    t_items = torch.randint(1, tables.num_items + 1, (transfer_size,), generator=g)
    all_users, all_items = torch.cat([rows["users"], t_users]), torch.cat([rows["items"], t_items])
    labels = torch.cat([rows["labels"], torch.full((transfer_size, len(TASKS)), float("nan"))])
    student = StudentMLP(student_config)
    distiller = Distiller(student, teacher, DistillConfig(alpha=0.0, temperature=1.0))
    cached = distiller.cache_teacher({**tables.batch(all_users, all_items), "labels": labels})
    keep = ("user_id", "item_id", "labels", "teacher_logits")
    fit(distiller, TensorBatcher({k: cached[k] for k in keep}, 4096, shuffle=True, seed=seed),
        epochs=student_epochs, lr=2e-2, seed=seed, device="cpu", progress=False)  # fmt: skip
    return teacher, student.eval()


@dataclass
class DepthQuality:
    """NDCG@10 per user (U) and depth (D) of the cascade's top-10 lists."""

    depths: np.ndarray  # (D,) the depth grid; C (all candidates) written as its actual value
    agreement: np.ndarray  # (U, D) against the teacher-only top-10 (binary gains)
    held_out: np.ndarray  # (U, D) against the user's one held-out item
    teacher_held_out: np.ndarray  # (U,) the teacher-only list against the held-out item

    def lookup(
        self, rows: np.ndarray, depths: np.ndarray, num_candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per request (n,): (agreement, held-out NDCG@10) of user row ``rows[i]`` at ``depths[i]``.

        A depth >= the request's candidate count is the last column (all candidates re-scored);
        any other depth must be on the grid.
        """
        try:
            rows = np.asarray(rows)
            depths, num_candidates = np.asarray(depths), np.asarray(num_candidates)
        except (TypeError, ValueError):
            raise TypeError("rows, depths and num_candidates must be arrays of ints") from None
        for name, array in (("rows", rows), ("depths", depths), ("num_candidates", num_candidates)):
            if array.dtype.kind not in "iu":
                raise TypeError(f"{name} must hold ints, got dtype {array.dtype}")
        if not rows.shape == depths.shape == num_candidates.shape:
            raise ValueError(
                f"rows, depths and num_candidates need one value per request, got shapes "
                f"{rows.shape}, {depths.shape}, {num_candidates.shape}"
            )
        if rows.size and (rows.min() < 0 or rows.max() >= len(self.agreement)):
            raise ValueError(f"rows must be user rows in 0..{len(self.agreement) - 1}")
        if depths.size and depths.min() < 0:
            raise ValueError(f"depths must be >= 0, got {depths.min()}")
        full = depths >= num_candidates
        col = np.searchsorted(self.depths, depths)
        col = np.where(full, len(self.depths) - 1, np.minimum(col, len(self.depths) - 1))
        off = ~full & (self.depths[col] != depths)
        if off.any():
            raise ValueError(
                f"depths {sorted(set(depths[off].tolist()))[:5]} are not on the grid "
                f"{self.depths.tolist()}; choose depths from the grid the quality was measured on"
            )
        return self.agreement[rows, col], self.held_out[rows, col]


def user_scenarios(
    seen: dict[int, np.ndarray], item_scenario: Tensor, users: Sequence[int]
) -> np.ndarray:
    """(U,) scenario id of each user: the most frequent scenario of their history items.

    ``item_scenario`` (I+1,) holds each item id's scenario id. This is the no-context fallback
    of :class:`mtrec.serving.recommender.Recommender` (a request without a query or page).
    """
    check_ids(item_scenario, "item_scenario")
    check_nonempty(item_scenario, "item_scenario")
    if int(item_scenario.min()) < 0:
        raise ValueError("item_scenario must hold scenario ids >= 0")
    for u in users:
        if int(u) not in seen:
            raise KeyError(f"user {u} has no history in seen; pass seen for every user")
        if len(seen[int(u)]) == 0:
            raise ValueError(f"user {u} has an empty history: no scenario to read from it")
        check_ids(np.asarray(seen[int(u)]), f"seen[{u}]", len(item_scenario))
    num = int(item_scenario.max()) + 1
    return np.array(
        [int(torch.bincount(item_scenario[torch.tensor(seen[int(u)])], minlength=num).argmax())
         for u in users]
    )  # fmt: skip


def _ndcg_of_lists(lists: Tensor, relevant: Tensor) -> Tensor:
    """(U, K) ranked item ids, (U, R) relevant ids (binary gains) → (U,) NDCG@K."""
    hits = (lists[:, :, None] == relevant[:, None, :]).any(-1).float()  # (U, K)
    discounts = 1.0 / torch.log2(torch.arange(2, lists.shape[1] + 2).float())  # (K,)
    ideal = discounts[: min(relevant.shape[1], lists.shape[1])].sum()
    return (hits * discounts).sum(1) / ideal


@torch.no_grad()
def _check_requests(
    users: Sequence[int],
    seen: dict[int, np.ndarray],
    targets: dict[int, int],
    tasks: Tensor,
    num_items: int,
) -> None:
    """Refuse what would score silently wrong: a padding id in a history (0 would block the last
    item), a target that is no item or was already seen (it could never be ranked: NDCG 0),
    a user with no task to rank by (every list would agree with the teacher's)."""
    if tasks.dtype != torch.bool:
        raise TypeError(f"tasks must be a (U, T) bool mask, got dtype {tasks.dtype}")
    idle = (~tasks.any(dim=1)).nonzero().flatten().tolist()
    if idle:
        raise ValueError(
            f"tasks masks every task of {len(idle)} user(s), e.g. user {users[idle[0]]}: no score "
            "to rank by (agreement would be 1.0 for any list); give each user at least one task"
        )
    for u in users:
        if int(u) not in seen or int(u) not in targets:
            raise KeyError(f"user {u} needs an entry in seen and in targets")
        history = check_ids(seen[int(u)], f"seen[{u}]", vocab_size=num_items + 1)
        if bool((history == 0).any()):
            raise ValueError(
                f"seen[{u}] holds item id 0, the padding id (items are 1..{num_items}); drop the "
                f"padding first: seen[u] = h[h > 0]"
            )
        target = int(check_ids([targets[int(u)]], f"targets[{u}]")[0])
        if not 1 <= target <= num_items:
            raise ValueError(
                f"targets[{u}] = {target} is not an item id (items are 1..{num_items}); the "
                "held-out item must be one of the catalogue the tables were built on"
            )
        if bool((history == target).any()):
            raise ValueError(
                f"targets[{u}] = {target} is in the user's own history seen[{u}], which is never "
                "a candidate, so it would score 0; hold out an item the user has not seen in "
                "training (leave_last_out keeps them apart)"
            )


def depth_quality(
    teacher: MMoE,
    student: StudentMLP,
    tables: FeatureTables,
    users: Sequence[int],
    *,
    seen: dict[int, np.ndarray],
    targets: dict[int, int],
    tasks: Tensor,
    depths: Sequence[int],
    k: int = 10,
    chunk: int = 16,
) -> DepthQuality:
    """Cascade top-``k`` quality for every user and depth (candidates: items the user has not seen).

    Both models score each user's whole catalogue once; the cascade at depth N is then the
    teacher's order of the student's top N followed by the student's order of the rest (the
    same order as :meth:`mtrec.serving.cascade.CascadeScorer.rank`, which scores only the top
    N with the teacher: the teacher is pointwise, so the scores are the same).

    Args:
        users: U user ids; ``seen[u]`` the item ids of their training history, ``targets[u]``
            their held-out item.
        tasks: (U, T) bool, the tasks of each user's scenario.
        depths: cascade depths; values above a user's candidate count mean "all".
        chunk: users scored per model call.
    """
    k, chunk = check_int(k, "k", min=1), check_int(chunk, "chunk", min=1)
    check_nonempty(users, "users")
    depths = [check_int(d, "depths[i]", min=0) for d in check_nonempty(depths, "depths")]
    check_tensor(tasks, "tasks", shape=(len(users), None))
    _check_requests(users, seen, targets, tasks, tables.num_items)
    items = torch.arange(1, tables.num_items + 1)  # (I,) the catalogue
    users_t = as_tensor(users, np.int64)
    agreement, held_out, teacher_held_out = [], [], []
    for lo in range(0, len(users_t), chunk):
        part, mask = users_t[lo : lo + chunk], tasks[lo : lo + chunk]  # (u,), (u, T)
        u, num = len(part), len(items)
        batch = tables.batch(part.repeat_interleave(num), items.repeat(u))  # (u·I, ...)
        s = _masked_relevance(student(batch).view(u, num, -1), mask)  # (u, I)
        t = _masked_relevance(teacher(batch).view(u, num, -1), mask)  # (u, I)
        for row, user in enumerate(part.tolist()):  # the user's history is not a candidate
            blocked = torch.as_tensor(np.asarray(seen[user], np.int64) - 1)
            s[row, blocked], t[row, blocked] = -torch.inf, -torch.inf
        by_student = torch.argsort(s, dim=1, descending=True, stable=True)  # (u, I), seen last
        ref = torch.argsort(t, dim=1, descending=True, stable=True)[:, :k] + 1  # (u, k) ids
        target = torch.tensor([targets[user] for user in part.tolist()])[:, None]  # (u, 1)
        agree, hit = [], []
        for d in depths:
            head = by_student[:, : int(d)]  # (u, N)
            order = torch.argsort(t.gather(1, head), dim=1, descending=True, stable=True)
            lists = torch.cat([head.gather(1, order), by_student[:, int(d) :]], 1)[:, :k] + 1
            agree.append(_ndcg_of_lists(lists, ref))
            hit.append(_ndcg_of_lists(lists, target))
        agreement.append(torch.stack(agree, 1))  # (u, D)
        held_out.append(torch.stack(hit, 1))
        teacher_held_out.append(_ndcg_of_lists(ref, target))
    return DepthQuality(
        depths=np.asarray(depths),
        agreement=torch.cat(agreement).numpy(),
        held_out=torch.cat(held_out).numpy(),
        teacher_held_out=torch.cat(teacher_held_out).numpy(),
    )


def _masked_relevance(logits: Tensor, tasks: Tensor) -> Tensor:
    """(u, I, T) logits, (u, T) bool → (u, I) Σ over each row's active tasks of log σ(logit)."""
    return (torch.nn.functional.logsigmoid(logits) * tasks[:, None, :].float()).sum(-1)
