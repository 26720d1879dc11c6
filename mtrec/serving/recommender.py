"""The end-to-end recommender: history + context → scenario → tasks → scores → re-ranked list.

:class:`Recommender` wires the course's building blocks into one API on MovieLens-100k:
1. **features**: MiniLM (:class:`mtrec.extractors.text.TextEncoder`) embeds item profiles
   ("Title (year) | Genre, Genre") and the query; ML-100k has no images or audio.
2. **scenario**: a :class:`mtrec.routing.ScenarioClassifier` (``kind="lm"``, trained on item
   profile → genre group) routes a free-text query; a page name ("comedy", "page:comedy") names
   the scenario; no context falls back to the user's history mix.
3. **tasks**: :class:`mtrec.routing.RuleTaskMapper` (``TASK_TABLE``: family → watch only).
4. **scoring**: one :class:`mtrec.models.multitask.mmoe.MMoE` (watch, like) over user, item, scenario,
   demographics and a 32-d item text projection; relevance = Σ active tasks' log-probabilities.
5. **generation**: context fusion, seen-item filtering, de-duplication of repeated titles, MMR
   re-ranking and per-item explanations from attention over the user's history.

Saved as ``config.json`` + ``tensors.safetensors`` (no pickle anywhere).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtrec.data import ML_SCENARIOS, CategoryEncoder, DenseFeature, SparseFeature, TextFeature
from mtrec.data.batching import TensorBatcher
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.nn.attention import scaled_dot_product_attention
from mtrec.routing import RuleTaskMapper, ScenarioClassifier
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)

SCENARIOS = list(ML_SCENARIOS)
TASKS = ["watch", "like"]
TASK_TABLE = {s: ["watch"] if s == "family" else ["watch", "like"] for s in SCENARIOS}
TEXT_DIM = 32  # width of the item text projection fed to the MMoE


@dataclass
class Recommendation:
    """The answer to one request: items in order, their scores, explanations and timings."""

    item_ids: list[int]
    titles: list[str]
    scores: list[float]  # fused relevance of each item (before the MMR diversity term)
    explanations: list[str]
    scenario: str
    scenario_probs: dict[str, float]
    tasks: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The list as a table."""
        return pd.DataFrame({"item_id": self.item_ids, "title": self.titles,
                             "score": np.round(self.scores, 3), "because": self.explanations})  # fmt: skip


@dataclass
class Candidates:
    """The fused candidate pool of one request, before re-ranking."""

    rows: Tensor  # (P,) item rows, best fused score first, unseen and de-duplicated
    scores: Tensor  # (P,) fused scores
    history: Tensor  # (L,) the user's history item rows
    scenario: str
    scenario_probs: Tensor  # (S,)
    tasks: list[str]
    timings_ms: dict[str, float]


def item_profiles(items: pd.DataFrame) -> list[str]:
    """ "Title (year) | Genre, Genre" per item (the same text as notebook 07, so cached)."""
    return [f"{t} | {g.replace('|', ', ')}" for t, g in zip(items.title, items.genres)]


def _zscore(x: Tensor) -> Tensor:
    return (x - x.mean()) / x.std().clamp_min(1e-6)


def mmr(relevance: Tensor, similarity: Tensor, k: int, trade_off: float) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998) over a candidate pool.

    Picks, k times, the candidate maximising ``trade_off · rel − (1 − trade_off) · max sim to the
    picked ones``; ``trade_off = 1`` is plain relevance order.

    Args:
        relevance: (N,) scores, rescaled to [0, 1] inside.
        similarity: (N, N) item-item similarities.
    """
    if not 0.0 <= trade_off <= 1.0:
        raise ValueError(f"trade_off must be in [0, 1], got {trade_off}")
    rel = (relevance - relevance.min()) / (relevance.max() - relevance.min()).clamp_min(1e-9)
    picked: list[int] = []
    max_sim = torch.full_like(rel, -1.0)  # no item picked yet: no redundancy penalty
    available = torch.ones_like(rel, dtype=torch.bool)
    for _ in range(min(k, len(rel))):
        gain = trade_off * rel - (1 - trade_off) * max_sim.clamp_min(0.0)
        best = int(gain.masked_fill(~available, float("-inf")).argmax())
        picked.append(best)
        available[best] = False
        max_sim = torch.maximum(max_sim, similarity[best])
    return picked


class Recommender:
    """A fitted end-to-end recommender over MovieLens-100k; build with :meth:`fit` or :meth:`load`.

    Call :meth:`recommend` with a user (a known user id, or a list of item ids for a new user)
    and a context (a free-text query, a scenario/page name, or ``""``).
    """

    def __init__(self, state: dict[str, Tensor], config: dict[str, Any], encoder: Any) -> None:
        self.config, self.encoder = config, encoder
        self.device = get_device(config.get("device"))
        self.items = state  # item tensors: ids, embeddings, text projection, scenario ids
        self.titles: list[str] = config["titles"]
        self.item_ids = state["item_ids"]  # (I,) item id per row
        self.row_of = {int(i): r for r, i in enumerate(self.item_ids.tolist())}
        self.title_ids = torch.as_tensor(pd.factorize(pd.Series(self.titles))[0])  # (I,)
        self.embeddings = state["item_embeddings"]  # (I, D) unit rows
        self.similarity = self.embeddings @ self.embeddings.T  # (I, I) cosine
        indptr, indices = state["history_indptr"], state["history_rows"]
        self.history = {
            int(u): indices[indptr[n] : indptr[n + 1]]
            for n, u in enumerate(state["history_users"].tolist())
        }  # user id → (L,) item rows, oldest first
        self.mapper = RuleTaskMapper(config["task_table"], scenarios=SCENARIOS, tasks=TASKS)
        self.model = MMoE(_mmoe_config(config)).to(self.device).eval()
        self.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        self.router = ScenarioClassifier("lm", encoder=encoder, device="cpu")
        self.router.classes_ = np.array(config["router_classes"])
        self.router._model = self.router._net(np.zeros((1, self.embeddings.shape[1])),
                                              len(SCENARIOS))  # fmt: skip
        self.router._model.load_state_dict(
            {k[7:]: v for k, v in state.items() if k.startswith("router.")}
        )
        self.router._model.eval()
        self.demographics = {k: state[k] for k in ("user_gender", "user_occupation", "user_age")}

    # ------------------------------------------------------------------ fit / save / load
    @classmethod
    def fit(
        cls,
        ratings: pd.DataFrame,
        users: pd.DataFrame,
        items: pd.DataFrame,
        *,
        encoder: Any,
        epochs: int = 2,
        seed: int = 0,
        device: str | None = None,
    ) -> Recommender:
        """Train the router and the MMoE on ``ratings`` (the training interactions only).

        Args:
            ratings, users, items: frames in :class:`mtrec.data.MovieLens`'s schema.
            encoder: a :class:`mtrec.extractors.text.TextEncoder` (or anything with ``encode``).
        """
        set_seed(seed)
        items = items.sort_values("item_id").reset_index(drop=True)
        embeddings = encoder.encode(item_profiles(items)).float()  # (I, D)
        router = ScenarioClassifier("lm", encoder=encoder, epochs=30, seed=seed, device="cpu")
        router.fit(item_profiles(items), items.scenario.tolist())
        centred = embeddings - embeddings.mean(0)
        _, _, v = torch.pca_lowrank(centred, q=TEXT_DIM, center=False)
        text = centred @ v[:, :TEXT_DIM]  # (I, TEXT_DIM)
        text = text / text.std()
        occupation = CategoryEncoder().fit(users.occupation)
        users = users.set_index("user_id")
        max_user = int(users.index.max())
        demo = {
            "user_gender": torch.zeros(max_user + 1, dtype=torch.long),
            "user_occupation": torch.zeros(max_user + 1, dtype=torch.long),
            "user_age": torch.zeros(max_user + 1),
        }
        demo["user_gender"][users.index] = torch.as_tensor(
            np.array(users.gender.map({"M": 1, "F": 2}).fillna(0), dtype=np.int64))  # fmt: skip
        demo["user_occupation"][users.index] = torch.as_tensor(
            np.array(occupation.transform(users.occupation), dtype=np.int64))  # fmt: skip
        demo["user_age"][users.index] = torch.as_tensor(
            np.array((users.age - 35.0) / 12.0, dtype=np.float32))  # fmt: skip
        ordered = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        row_of = pd.Series(np.arange(len(items)), index=items.item_id)
        hist_users, counts = np.unique(ordered.user_id.to_numpy(), return_counts=True)
        config = {
            "version": 1, "seed": seed, "epochs": epochs, "device": device,
            "encoder": repr(encoder), "num_users": max_user + 1, "num_items": len(items) + 1,
            "occupations": int(occupation.vocab_size), "text_dim": TEXT_DIM,
            "task_table": TASK_TABLE, "router_classes": router.classes_.tolist(),
            "titles": items.title.tolist(),
            "fusion": {"query": 1.0, "scenario": 1.0, "pool": 100, "trade_off": 0.7, "tau": 0.05},
        }  # fmt: skip
        state = {
            "item_ids": torch.tensor(items.item_id.to_numpy(np.int64)),
            "item_scenarios": torch.tensor(items.scenario_id.to_numpy(np.int64)),
            "item_embeddings": embeddings.contiguous(),
            "item_text": text.float().contiguous(),
            "history_users": torch.as_tensor(hist_users),
            "history_indptr": torch.as_tensor(np.concatenate([[0], np.cumsum(counts)])),
            "history_rows": torch.tensor(row_of[ordered.item_id].to_numpy(np.int64)),
            **demo,
            **{f"router.{k}": v.detach().cpu() for k, v in router._model.state_dict().items()},
        }
        model = MMoE(_mmoe_config(config))
        rows = _training_rows(ordered, items, seed)
        batches = TensorBatcher(_features(rows, state), 1024, shuffle=True, seed=seed)
        from mtrec.train import fit as fit_model

        fit_model(model, batches, epochs=epochs, lr=3e-3, seed=seed, device=device, progress=False)
        state.update({f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()})
        return cls(state, config, encoder)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``tensors.safetensors`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = dict(self.items)
        state.update({f"model.{k}": v.detach().cpu() for k, v in self.model.state_dict().items()})
        state.update({f"router.{k}": v.detach().cpu()
                      for k, v in self.router._model.state_dict().items()})  # fmt: skip
        save_file({k: v.contiguous() for k, v in state.items()}, directory / "tensors.safetensors")
        (directory / "config.json").write_text(json.dumps(self.config, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Any) -> Recommender:
        """Rebuild a saved recommender (safetensors + JSON only; nothing is unpickled)."""
        directory = Path(directory)
        missing = [
            n for n in ("config.json", "tensors.safetensors") if not (directory / n).exists()
        ]
        if missing:
            raise FileNotFoundError(
                f"{directory} does not hold a saved pipeline: expected config.json and "
                f"tensors.safetensors, missing {missing}; write one with Recommender.save(directory)"
            )
        config = json.loads((directory / "config.json").read_text())
        if config.get("version") != 1:
            raise ValueError(
                f"{directory}/config.json has pipeline format version {config.get('version')!r}, "
                "expected 1; re-fit and save with this version of mtrec"
            )
        return cls(load_file(directory / "tensors.safetensors"), config, encoder)

    # ------------------------------------------------------------------ serving
    def _user_history(self, user: int | Sequence[int]) -> tuple[int, Tensor]:
        if isinstance(user, (int, np.integer)) and not isinstance(user, bool):
            if int(user) not in self.history:
                raise ValueError(
                    f"unknown user id {user}; known ids are {min(self.history)}.."
                    f"{max(self.history)}, or pass a new user's history as a list of item ids"
                )
            return int(user), self.history[int(user)]
        if isinstance(user, str) or not isinstance(user, Sequence):
            raise TypeError(f"user must be an int id or a list of item ids, got {type(user)}")
        if len(user) == 0:
            raise ValueError(
                "the history is empty: expected at least one item id a new user liked, got []; "
                "pass a few item ids, or a known user id"
            )
        unknown = [i for i in user if int(i) not in self.row_of]
        if unknown:
            raise ValueError(
                f"history has unknown item ids {unknown[:5]}; expected ids in "
                f"{min(self.row_of)}..{max(self.row_of)}; drop or map those items"
            )
        return 0, torch.as_tensor([self.row_of[int(i)] for i in user], dtype=torch.long)

    def _scenario_probs(self, page: str, query: Tensor | None, history: Tensor) -> Tensor:
        """(S,) scenario probabilities in ``SCENARIOS`` order."""
        if query is not None:  # free text: the router on its sentence embedding
            with torch.no_grad():
                probs = torch.softmax(self.router._model(query[None]), dim=-1)[0]  # classes_ order
            return probs[[list(self.router.classes_).index(s) for s in SCENARIOS]]
        if page:  # a page context names its scenario
            one_hot = torch.nn.functional.one_hot(
                torch.tensor(SCENARIOS.index(page)), len(SCENARIOS)
            )
            return one_hot.float() * 0.9 + 0.02
        counts = torch.bincount(self.items["item_scenarios"][history], minlength=len(SCENARIOS))
        return (counts.float() + 1) / (counts.sum() + len(SCENARIOS))  # the history's mix

    def _relevance(self, user_id: int, tasks: Tensor) -> Tensor:
        """(I,) Σ over active tasks of log P(task) for every item, from the MMoE."""
        rows = torch.arange(len(self.item_ids))
        frame = {"user_row": torch.full_like(rows, user_id), "item_row": rows}
        batch = {k: v.to(self.device) for k, v in _features(frame, self.items).items()}
        with torch.no_grad():
            log_p = torch.nn.functional.logsigmoid(self.model(batch)).cpu()  # (I, T)
        return (log_p * tasks.float()).sum(dim=1)

    def candidate_pool(self, user: int | Sequence[int], context: str = "") -> Candidates:
        """Stages 1-5 up to re-ranking: the fused, filtered, de-duplicated candidate pool.

        Args:
            user: a known user id, or a new user's history as a list of item ids (oldest first).
            context: a free-text query ("a scary film for tonight"), a page name from
                ``SCENARIOS`` ("comedy" or, strictly, "page:comedy"), or ``""`` (no context: the
                history's scenario mix).
        """
        if not isinstance(context, str):
            raise TypeError(f"context must be a string (query or page name), got {type(context)}")
        page = context.strip().lower()
        if page.startswith("page:"):  # an explicit page must name a scenario
            page = page[5:].strip()
            if page not in SCENARIOS:
                raise ValueError(
                    f"unknown page {page!r}: expected one of {SCENARIOS}; fix the name, or pass "
                    "the text without 'page:' to use it as a free-text query"
                )
        fusion, times = self.config["fusion"], {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            times[stage] = (now - clock) * 1000
            clock = now

        user_id, history = self._user_history(user)
        query = None
        if page and page not in SCENARIOS:
            query = self.encoder.encode([context]).float()[0]  # (D,)
        lap("feature extraction")
        probs = self._scenario_probs(page, query, history)
        scenario = SCENARIOS[int(probs.argmax())]
        lap("scenario classification")
        tasks = self.mapper.mask(torch.tensor([SCENARIOS.index(scenario)]))[0]  # (T,)
        lap("task mapping")
        relevance = self._relevance(user_id, tasks)
        lap("multi-task scoring")
        fused = _zscore(relevance) + fusion["scenario"] * probs.log()[self.items["item_scenarios"]]
        if query is not None:
            fused = fused + fusion["query"] * _zscore(self.embeddings @ query)
        seen_title = torch.zeros(int(self.title_ids.max()) + 1, dtype=torch.bool)
        seen_title[self.title_ids[history]] = True
        fused[seen_title[self.title_ids]] = float("-inf")  # filter seen items (and their copies)
        order = torch.argsort(fused, descending=True, stable=True)  # (I,)
        titles = self.title_ids[order]  # de-duplicate repeated titles: keep the best-scored copy
        first = torch.full_like(seen_title, len(order), dtype=torch.long).scatter_reduce(
            0, titles, torch.arange(len(order)), reduce="amin"
        )  # first position of each title in the order
        keep = (first[titles] == torch.arange(len(order))) & torch.isfinite(fused[order])
        pool = order[keep][: fusion["pool"]]
        lap("fusion + filter + dedup")
        return Candidates(
            rows=pool, scores=fused[pool], history=history,
            scenario=scenario, scenario_probs=probs,
            tasks=[t for t, on in zip(TASKS, tasks.tolist()) if on], timings_ms=times,
        )  # fmt: skip

    def recommend(
        self, user: int | Sequence[int], context: str = "", k: int = 10, *,
        trade_off: float | None = None,
    ) -> Recommendation:  # fmt: skip
        """Top-``k`` unseen, de-duplicated, MMR re-ranked items with explanations.

        Args:
            user: a known user id, or a new user's history as a list of item ids (oldest first).
            context: a free-text query, a page name from ``SCENARIOS``, or ``""``.
            k: list length, 1..``fusion["pool"]``.
            trade_off: MMR's relevance weight in [0, 1] (default ``fusion["trade_off"]``).
        """
        fusion = self.config["fusion"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= fusion["pool"]:
            raise ValueError(
                f"k must be an int in 1..{fusion['pool']} (the candidate pool, at most the "
                f"{len(self.titles)}-item catalogue), got {k!r}; ask for fewer items or raise "
                "config['fusion']['pool']"
            )
        trade_off = fusion["trade_off"] if trade_off is None else trade_off
        pool = self.candidate_pool(user, context)
        if len(pool.rows) < k:
            raise ValueError(
                f"k={k} but only {len(pool.rows)} unseen, distinct items are left for this user; "
                f"ask k <= {len(pool.rows)}"
            )
        start = time.perf_counter()
        positions = self.rerank(pool, k, trade_off)
        picked = pool.rows[positions]
        middle = time.perf_counter()
        explanations = self._explain(picked, pool.history)
        times = {**pool.timings_ms, "MMR re-ranking": (middle - start) * 1000,
                 "explanation": (time.perf_counter() - middle) * 1000}  # fmt: skip
        return Recommendation(
            item_ids=self.item_ids[picked].tolist(),
            titles=[self.titles[r] for r in picked.tolist()],
            scores=pool.scores[positions].tolist(),
            explanations=explanations,
            scenario=pool.scenario,
            scenario_probs={s: round(float(p), 3) for s, p in zip(SCENARIOS, pool.scenario_probs)},
            tasks=pool.tasks,
            timings_ms=times,
        )

    def rerank(self, pool: Candidates, k: int, trade_off: float) -> list[int]:
        """Positions in ``pool`` of the MMR top-``k`` (item text cosine as the similarity)."""
        return mmr(pool.scores, self.similarity[pool.rows][:, pool.rows], k, trade_off)

    def attention_weights(self, item_rows: Tensor, history: Tensor) -> Tensor:
        """(K, L) attention of each recommended item over the history items (softmax(cos / τ))."""
        tau, d = self.config["fusion"]["tau"], self.embeddings.shape[1]
        recent = history[-50:]  # the last 50 history items
        q = self.embeddings[item_rows] * math.sqrt(d) / tau  # scaled so weights = softmax(cos/τ)
        keys = self.embeddings[recent]
        _, weights = scaled_dot_product_attention(q, keys, keys, return_weights=True)
        return weights

    def _explain(self, item_rows: Tensor, history: Tensor) -> list[str]:
        if len(history) == 0:
            return ["popular in this context (no history yet)"] * len(item_rows)
        weights = self.attention_weights(item_rows, history)  # (K, L)
        recent = history[-50:]
        top_w, top_i = weights.topk(min(2, weights.shape[1]), dim=1)
        return [
            " + ".join(f"{self.titles[int(recent[i])]} ({w:.2f})" for w, i in zip(ws, idx))
            for ws, idx in zip(top_w.tolist(), top_i.tolist())
        ]


def _mmoe_config(config: dict[str, Any]) -> MMoEConfig:
    features = (
        SparseFeature("user_id", config["num_users"], 16),
        SparseFeature("item_id", config["num_items"], 16),
        SparseFeature("scenario", len(SCENARIOS) + 1, 4),
        SparseFeature("gender", 3, 2),
        SparseFeature("occupation", config["occupations"], 4),
        DenseFeature("age"),
        TextFeature("item_text", config["text_dim"]),
    )
    return MMoEConfig(features=features, num_tasks=len(TASKS), num_experts=4,
                      expert_hidden=(64, 32), tower_hidden=(16,))  # fmt: skip


def _features(frame: dict[str, Tensor], state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rows of (user id, item row[, labels]) → the MMoE's batch tensors (gathered lookups)."""
    users, rows = frame["user_row"], frame["item_row"]
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


def _training_rows(ordered: pd.DataFrame, items: pd.DataFrame, seed: int) -> dict[str, Tensor]:
    """Positives (every training rating) and one uniformly sampled unrated item each (seeded)."""
    rng = np.random.default_rng(seed)
    row_of = pd.Series(np.arange(len(items)), index=items.item_id)
    users = ordered.user_id.to_numpy(np.int64)
    pos = row_of[ordered.item_id].to_numpy(np.int64)
    neg = rng.integers(0, len(items), size=len(users))
    seen = set(zip(users.tolist(), pos.tolist()))
    clash = np.fromiter((p in seen for p in zip(users.tolist(), neg.tolist())), bool, len(users))
    keep = ~clash  # drop the few sampled negatives the user did rate
    like = (ordered.rating.to_numpy() >= 4).astype(np.float32)
    labels = np.concatenate([np.stack([np.ones_like(like), like], 1),
                             np.zeros((int(keep.sum()), 2), np.float32)])  # fmt: skip
    return {
        "user_row": torch.as_tensor(np.concatenate([users, users[keep]])),
        "item_row": torch.as_tensor(np.concatenate([pos, neg[keep]])),
        "labels": torch.as_tensor(labels),
    }
