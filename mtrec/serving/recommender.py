"""The end-to-end recommender: history + context → scenario → tasks → scores → re-ranked list.

:class:`Recommender` wires the course's building blocks into one API on MovieLens-100k:
1. **features**: MiniLM (:class:`mtrec.extractors.text.TextEncoder`) embeds item profiles
   ("Title (year) | Genre, Genre") and the query; ML-100k has no images or audio.
2. **scenario**: a :class:`mtrec.routing.ScenarioClassifier` (``kind="lm"``, trained on item
   profile → genre group) routes a free-text query; a page name ("comedy", "page:comedy") names
   the scenario; no context falls back to the user's history mix.
3. **tasks**: :class:`mtrec.routing.RuleTaskMapper` over ``RecommenderConfig.task_table``
   (MovieLens: family → watch only).
4. **scoring**: one :class:`mtrec.models.multitask.mmoe.MMoE` (watch, like) over user, item,
   scenario, demographics and a 32-d item text projection (:mod:`mtrec.serving.build`);
   relevance = Σ active tasks' log-probabilities.
5. **generation**: context fusion, seen-item filtering, de-duplication of repeated titles, MMR
   re-ranking and per-item explanations from attention over the user's history
   (:mod:`mtrec.serving.rerank`).

Saved as ``config.json`` + ``tensors.safetensors`` (no pickle anywhere) by
:mod:`mtrec.serving.persistence`, which checks the whole save before :meth:`Recommender.load`
builds anything: a damaged file raises ``ValueError`` naming it and the fix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_float, check_int
from mtrec.data.batching import TensorBatcher
from mtrec.routing import RuleTaskMapper, ScenarioClassifier
from mtrec.serving.build import (
    RecommenderConfig,
    features,
    history_tensors,
    item_profiles,
    scenario_ids,
    scoring_model,
    text_projection,
    training_rows,
    user_tensors,
)
from mtrec.serving.persistence import (
    check_finite_state,
    prefixed,
    read_saved,
    serving_device,
    unprefixed,
    write_saved,
)
from mtrec.serving.rerank import attention_weights, explain, mmr, unseen_distinct
from mtrec.train import fit as fit_model
from mtrec.utils import set_seed


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


def _zscore(x: Tensor) -> Tensor:
    return (x - x.mean()) / x.std().clamp_min(1e-6)


class Recommender:
    """A fitted end-to-end recommender over MovieLens-100k; build with :meth:`fit` or :meth:`load`.

    Call :meth:`recommend` with a user (a known user id, or a list of item ids for a new user)
    and a context (a free-text query, a scenario/page name, or ``""``).
    """

    def __init__(
        self, state: Mapping[str, Tensor], meta: dict[str, Any], *, config: RecommenderConfig,
        encoder: Any, device: str | None = None,
    ) -> None:  # fmt: skip
        self.config, self.meta, self.encoder = config, meta, encoder
        self.fusion = meta["fusion"]  # weights and sizes of context fusion, MMR and explanations
        self.device = serving_device(device, meta.get("device"), argument="device")
        # item and user tensors: ids, embeddings, text projection, scenario ids, histories
        self.items = {k: v for k, v in state.items() if not k.startswith(("model.", "router."))}
        self.titles: list[str] = meta["titles"]
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
        self.mapper = RuleTaskMapper(
            config.task_table, scenarios=config.scenarios, tasks=config.tasks
        )
        check_finite_state(state)  # NaN weights would give NaN scores: refuse them here
        self.model = scoring_model(config, meta).to(self.device).eval()
        try:
            self.model.load_state_dict(unprefixed("model.", state))
        except RuntimeError as error:
            raise ValueError(
                f"the saved MMoE weights do not fit the sizes in its config ({error}); the "
                "config and tensors come from different fits: save them together again"
            ) from error
        self.router = ScenarioClassifier("lm", encoder=encoder, device="cpu").load_state_dict(
            unprefixed("router.", state), classes=meta["router_classes"]
        )
        classes = list(self.router.classes_)
        self._router_order = [classes.index(s) for s in config.scenarios]  # config order

    @classmethod
    def fit(
        cls,
        ratings: pd.DataFrame,
        users: pd.DataFrame,
        items: pd.DataFrame,
        *,
        encoder: Any,
        config: RecommenderConfig | None = None,
        epochs: int = 2,
        seed: int = 0,
        device: str | None = None,
    ) -> Recommender:
        """Train the router and the MMoE on ``ratings`` (the training interactions only).

        Args:
            ratings, users, items: frames in :class:`mtrec.data.MovieLens`'s schema.
            encoder: a :class:`mtrec.extractors.text.TextEncoder` (or anything with ``encode``).
            config: scenarios, tasks, task table, text width (default: the MovieLens one).
            device: where the MMoE trains and runs (None: CUDA when present, else the CPU).
        """
        serving_device(device, None, argument="device")  # an absent device: refused up front
        config = RecommenderConfig.movielens() if config is None else config
        set_seed(seed)
        items = items.sort_values("item_id").reset_index(drop=True)
        item_scenarios = scenario_ids(items, config)
        embeddings = encoder.encode(item_profiles(items)).float()  # (I, D)
        router = ScenarioClassifier("lm", encoder=encoder, epochs=30, seed=seed, device="cpu")
        router.fit(embeddings.numpy(), items.scenario.tolist())
        text = text_projection(embeddings, config.text_dim)  # after the router (both draw RNG)
        demographics, occupations = user_tensors(users)
        ordered = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        meta = {
            "seed": seed, "epochs": epochs, "device": device, "encoder": repr(encoder),
            "num_users": len(demographics["user_gender"]), "num_items": len(items) + 1,
            "occupations": occupations, "router_classes": router.classes_.tolist(),
            "titles": items.title.tolist(),
            "fusion": {"query": 1.0, "scenario": 1.0, "pool": 100, "trade_off": 0.7, "tau": 0.05},
        }  # fmt: skip
        state = {
            "item_ids": torch.tensor(items.item_id.to_numpy(np.int64)),
            "item_scenarios": item_scenarios,
            "item_embeddings": embeddings.contiguous(),
            "item_text": text,
            **history_tensors(ordered, items),
            **demographics,
            **prefixed("router.", router.state_dict()),
        }
        model = scoring_model(config, meta)
        rows = training_rows(ordered, items, config.tasks, seed)
        batches = TensorBatcher(features(rows, state), 1024, shuffle=True, seed=seed)
        fit_model(model, batches, epochs=epochs, lr=3e-3, seed=seed, device=device, progress=False)
        state.update(prefixed("model.", model.state_dict()))
        return cls(state, meta, config=config, encoder=encoder)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``tensors.safetensors`` into ``directory``."""
        state = {**self.items, **prefixed("model.", self.model.state_dict()),
                 **prefixed("router.", self.router.state_dict())}  # fmt: skip
        return write_saved(directory, state, config=self.config, meta=self.meta)

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Any, device: str | None = None) -> Recommender:
        """Rebuild a saved recommender (safetensors + JSON only; nothing is unpickled).

        ``device`` (e.g. ``"cpu"``): where it runs; None: the device it was saved with when
        this machine has it, else the CPU (a GPU save on a CPU-only machine, warned once).

        Every file and key is checked first (:func:`mtrec.serving.persistence.read_saved`).
        Reads format 2 and format 1 (mtrec 0.2.0, whose MovieLens scenarios and tasks were
        built in: they become :meth:`RecommenderConfig.movielens` with the saved task table).
        """
        state, meta, config = read_saved(directory)
        return cls(state, meta, config=config, encoder=encoder, device=device)

    def user_history(self, user: int | Sequence[int]) -> tuple[int, Tensor]:
        """(the MMoE's user id, 0 for a new user; (L,) the history's item rows, oldest first)."""
        if isinstance(user, (np.ndarray, Tensor)) and user.ndim == 1:
            user = user.tolist()
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
        for position, item in enumerate(user):
            check_int(item, f"history item {position}")  # 1.7 is refused, not truncated to 1
        unknown = [i for i in user if int(i) not in self.row_of]
        if unknown:
            raise ValueError(
                f"history has unknown item ids {unknown[:5]}; expected ids in "
                f"{min(self.row_of)}..{max(self.row_of)}; drop or map those items"
            )
        return 0, torch.as_tensor([self.row_of[int(i)] for i in user], dtype=torch.long)

    def _scenario_probs(self, page: str, query: Tensor | None, history: Tensor) -> Tensor:
        """(S,) scenario probabilities in ``config.scenarios`` order."""
        scenarios = self.config.scenarios
        if query is not None:  # free text: the router on its sentence embedding
            probs = torch.as_tensor(self.router.predict_proba(query[None].numpy()))[0]
            return probs[self._router_order]
        if page:  # a page context names its scenario
            one_hot = torch.nn.functional.one_hot(
                torch.tensor(scenarios.index(page)), len(scenarios)
            )
            return one_hot.float() * 0.9 + 0.02
        counts = torch.bincount(self.items["item_scenarios"][history], minlength=len(scenarios))
        return (counts.float() + 1) / (counts.sum() + len(scenarios))  # the history's mix

    def _relevance(self, user_id: int, tasks: Tensor) -> Tensor:
        """(I,) Σ over active tasks of log P(task) for every item, from the MMoE."""
        rows = torch.arange(len(self.item_ids))
        frame = {"user_row": torch.full_like(rows, user_id), "item_row": rows}
        batch = {k: v.to(self.device) for k, v in features(frame, self.items).items()}
        with torch.no_grad():
            log_p = torch.nn.functional.logsigmoid(self.model(batch)).cpu()  # (I, T)
        return (log_p * tasks.float()).sum(dim=1)

    def candidate_pool(self, user: int | Sequence[int], context: str = "") -> Candidates:
        """Stages 1-5 up to re-ranking: the fused, filtered, de-duplicated candidate pool.

        Args:
            user: a known user id, or a new user's history as a list of item ids (oldest first).
            context: a free-text query ("a scary film for tonight"), a page name from
                ``config.scenarios`` ("comedy" or, strictly, "page:comedy"), or ``""`` (no
                context: the history's scenario mix).
        """
        if not isinstance(context, str):
            raise TypeError(f"context must be a string (query or page name), got {type(context)}")
        scenarios = self.config.scenarios
        page = context.strip().lower()
        if page.startswith("page:"):  # an explicit page must name a scenario
            page = page[5:].strip()
            if page not in scenarios:
                raise ValueError(
                    f"unknown page {page!r}: expected one of {list(scenarios)}; fix the name, or "
                    "pass the text without 'page:' to use it as a free-text query"
                )
        fusion, times = self.fusion, {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            times[stage] = (now - clock) * 1000
            clock = now

        user_id, history = self.user_history(user)
        query = None
        if page and page not in scenarios:
            query = self.encoder.encode([context]).float()[0]  # (D,)
        lap("feature extraction")
        probs = self._scenario_probs(page, query, history)
        scenario = scenarios[int(probs.argmax())]
        lap("scenario classification")
        tasks = self.mapper.mask(torch.tensor([scenarios.index(scenario)]))[0]  # (T,)
        lap("task mapping")
        relevance = self._relevance(user_id, tasks)
        lap("multi-task scoring")
        _no_nan(relevance, "the MMoE's relevance scores")
        _no_nan(probs, "the scenario probabilities")
        fused = _zscore(relevance) + fusion["scenario"] * probs.log()[self.items["item_scenarios"]]
        if query is not None:
            _no_nan(query, "the query's text embedding")
            fused = fused + fusion["query"] * _zscore(self.embeddings @ query)
        _no_nan(fused, "the fused scores")
        pool = unseen_distinct(fused, self.title_ids, history)[: fusion["pool"]]
        lap("fusion + filter + dedup")
        return Candidates(
            rows=pool, scores=fused[pool], history=history,
            scenario=scenario, scenario_probs=probs,
            tasks=[t for t, on in zip(self.config.tasks, tasks.tolist()) if on], timings_ms=times,
        )  # fmt: skip

    def recommend(
        self, user: int | Sequence[int], context: str = "", k: int = 10, *,
        trade_off: float | None = None,
    ) -> Recommendation:  # fmt: skip
        """Top-``k`` unseen, de-duplicated, MMR re-ranked items with explanations.

        Args:
            user: a known user id, or a new user's history as a list of item ids (oldest first).
            context: a free-text query, a page name from ``config.scenarios``, or ``""``.
            k: list length, 1..``fusion["pool"]``.
            trade_off: MMR's relevance weight in [0, 1] (default ``fusion["trade_off"]``).
        """
        fusion = self.fusion
        k = check_int(k, "k")
        if not 1 <= k <= fusion["pool"]:
            raise ValueError(
                f"k must be an int in 1..{fusion['pool']} (the candidate pool, at most the "
                f"{len(self.titles)}-item catalogue), got {k!r}; ask for fewer items or raise "
                "config['fusion']['pool']"
            )
        if trade_off is not None:
            trade_off = check_float(trade_off, "trade_off", min=0.0, max=1.0)
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
        explanations = explain(self.titles, self.embeddings, picked, pool.history,
                               tau=fusion["tau"])  # fmt: skip
        times = {**pool.timings_ms, "MMR re-ranking": (middle - start) * 1000,
                 "explanation": (time.perf_counter() - middle) * 1000}  # fmt: skip
        return Recommendation(
            item_ids=self.item_ids[picked].tolist(),
            titles=[self.titles[r] for r in picked.tolist()],
            scores=pool.scores[positions].tolist(),
            explanations=explanations,
            scenario=pool.scenario,
            scenario_probs={s: round(float(p), 3)
                            for s, p in zip(self.config.scenarios, pool.scenario_probs)},
            tasks=pool.tasks,
            timings_ms=times,
        )  # fmt: skip

    def rerank(self, pool: Candidates, k: int, trade_off: float) -> list[int]:
        """Positions in ``pool`` of the MMR top-``k`` (item text cosine as the similarity)."""
        return mmr(pool.scores, self.similarity[pool.rows][:, pool.rows], k, trade_off)

    def attention_weights(self, item_rows: Tensor, history: Tensor) -> Tensor:
        """(K, L) attention of each recommended item over the recent history (softmax(cos / τ))."""
        return attention_weights(self.embeddings, item_rows, history, tau=self.fusion["tau"])


def _no_nan(scores: Tensor, name: str) -> None:
    """Raise a clear error when ``scores`` hold NaN (they would silently empty every list)."""
    nan = int(torch.isnan(scores).sum())
    if nan:
        raise ValueError(
            f"{name} contain {nan} NaN values of {scores.numel()}, so no item can be ranked; "
            "the recommender's weights are damaged or training diverged: re-fit it (or load an "
            "intact save)"
        )
