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

Saved as ``config.json`` (the :class:`RecommenderConfig`, the fitted sizes, titles and fusion
weights, and the sha256 of the tensors file) + ``tensors.safetensors`` (no pickle anywhere).
:meth:`Recommender.load` checks the whole config (every key, known and present) and the sha256
before building anything: a damaged file raises ``ValueError`` naming it and the fix. Saves made
before the checksum existed load with a logged note (their tensors cannot be verified).
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtrec.checks import check_float, check_int
from mtrec.data.batching import TensorBatcher
from mtrec.models.multitask.mmoe import MMoE
from mtrec.routing import RuleTaskMapper, ScenarioClassifier
from mtrec.serving.build import (
    RecommenderConfig,
    features,
    history_tensors,
    item_profiles,
    mmoe_config,
    scenario_ids,
    text_projection,
    training_rows,
    user_tensors,
)
from mtrec.serving.rerank import attention_weights, explain, mmr
from mtrec.train import fit as fit_model
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # of config.json; 1 (mtrec 0.2.0) had MovieLens scenarios and tasks built in
# config.json's keys besides "version": required (with their JSON type) and optional ones
REQUIRED_META = {"titles": list, "fusion": dict, "router_classes": list, "num_users": int,
                 "num_items": int, "occupations": int}  # fmt: skip
OPTIONAL_META = {"seed", "epochs", "device", "encoder", "tensors_sha256"}
FORMAT_KEYS = {1: {"task_table", "text_dim"}, 2: {"recommender"}}  # per format version
FUSION_KEYS = ("query", "scenario", "pool", "trade_off", "tau")
REQUIRED_TENSORS = ("item_ids", "item_scenarios", "item_embeddings", "item_text",
                    "history_users", "history_indptr", "history_rows", "user_gender",
                    "user_occupation", "user_age")  # fmt: skip


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


def _prefixed(prefix: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}{k}": v.detach().cpu() for k, v in state.items()}


def _unprefixed(prefix: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class Recommender:
    """A fitted end-to-end recommender over MovieLens-100k; build with :meth:`fit` or :meth:`load`.

    Call :meth:`recommend` with a user (a known user id, or a list of item ids for a new user)
    and a context (a free-text query, a scenario/page name, or ``""``).
    """

    def __init__(
        self, state: Mapping[str, Tensor], meta: dict[str, Any], *, config: RecommenderConfig,
        encoder: Any,
    ) -> None:  # fmt: skip
        self.config, self.meta, self.encoder = config, meta, encoder
        self.fusion = meta["fusion"]  # weights and sizes of context fusion, MMR and explanations
        self.device = get_device(meta.get("device"))
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
        for name, tensor in state.items():  # NaN weights would give NaN scores: refuse them here
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(
                    f"the recommender's tensor {name!r} holds NaN or infinite values (training "
                    "diverged, or a saved file was damaged); re-fit the recommender, or load an "
                    "intact save"
                )
        self.model = _mmoe(meta, config).to(self.device).eval()
        try:
            self.model.load_state_dict(_unprefixed("model.", state))
        except RuntimeError as error:
            raise ValueError(
                f"the saved MMoE weights do not fit the sizes in its config ({error}); the "
                "config and tensors come from different fits: save them together again"
            ) from error
        self.router = ScenarioClassifier("lm", encoder=encoder, device="cpu").load_state_dict(
            _unprefixed("router.", state), classes=meta["router_classes"]
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
        """
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
            **_prefixed("router.", router.state_dict()),
        }
        model = _mmoe(meta, config)
        rows = training_rows(ordered, items, config.tasks, seed)
        batches = TensorBatcher(features(rows, state), 1024, shuffle=True, seed=seed)
        fit_model(model, batches, epochs=epochs, lr=3e-3, seed=seed, device=device, progress=False)
        state.update(_prefixed("model.", model.state_dict()))
        return cls(state, meta, config=config, encoder=encoder)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``tensors.safetensors`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {**self.items, **_prefixed("model.", self.model.state_dict()),
                 **_prefixed("router.", self.router.state_dict())}  # fmt: skip
        tensors = directory / "tensors.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, tensors)
        saved = {"version": FORMAT_VERSION, "recommender": self.config.to_dict(), **self.meta,
                 "tensors_sha256": _sha256(tensors)}  # fmt: skip
        (directory / "config.json").write_text(json.dumps(saved, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Any) -> Recommender:
        """Rebuild a saved recommender (safetensors + JSON only; nothing is unpickled).

        Reads format 2 and format 1 (mtrec 0.2.0, whose MovieLens scenarios and tasks were
        built in: they become :meth:`RecommenderConfig.movielens` with the saved task table).
        """
        directory = Path(directory)
        files = [directory / "config.json", directory / "tensors.safetensors"]
        if not all(f.is_file() for f in files):
            raise FileNotFoundError(
                f"{directory} does not hold a saved pipeline: expected config.json and "
                f"tensors.safetensors, missing {[f.name for f in files if not f.is_file()]}; "
                "write one with Recommender.save(directory)"
            )
        meta = _read_meta(files[0])
        version = meta.pop("version", None)
        try:
            if version == 1:
                config = replace(RecommenderConfig.movielens(), task_table=meta.pop("task_table"),
                                 text_dim=meta.pop("text_dim"))  # fmt: skip
            else:
                config = RecommenderConfig.from_dict(meta.pop("recommender"))
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise ValueError(
                f"{files[0]} holds an invalid recommender config ({error}); expected the keys "
                "scenarios, tasks, task_table and text_dim of RecommenderConfig.to_dict(); save "
                "the recommender again"
            ) from error
        if not set(config.scenarios) <= set(map(str, meta["router_classes"])):
            raise ValueError(
                f"{files[0]}: router_classes {meta['router_classes']} lack some of the config's "
                f"scenarios {list(config.scenarios)}; save the recommender again"
            )
        expected = meta.pop("tensors_sha256", None)
        if expected is None:
            log.warning(
                "%s has no tensors_sha256 (saved by an older mtrec): its tensors are loaded "
                "unverified; save it again to add the checksum",
                files[0],
            )
        elif _sha256(files[1]) != expected:
            raise ValueError(
                f"{files[1]} is corrupted: its sha256 does not match the one in config.json "
                "(the file was damaged or changed after saving); save the recommender again, "
                "or re-fit it"
            )
        try:
            state = load_file(files[1])
        except Exception as error:  # safetensors' own SafetensorError on a damaged header
            raise ValueError(
                f"{files[1]} is corrupted and cannot be read ({error}); save the recommender "
                "again, or re-fit it"
            ) from error
        missing = [k for k in REQUIRED_TENSORS if k not in state]
        if missing:
            raise ValueError(
                f"{files[1]} lacks the tensors {missing}; it was not written by "
                "Recommender.save: save the recommender again, or re-fit it"
            )
        if len(meta["titles"]) != len(state["item_ids"]):
            raise ValueError(
                f"{files[0]} lists {len(meta['titles'])} titles but {files[1]} has "
                f"{len(state['item_ids'])} items; the two files come from different saves: "
                "save the recommender again"
            )
        return cls(state, meta, config=config, encoder=encoder)

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_meta(file: Path) -> dict[str, Any]:
    """``config.json`` of a saved recommender, every key checked (raises ``ValueError``)."""
    fix = "save the recommender again with Recommender.save (or restore the file)"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{file} is not valid JSON ({error}); {fix}") from error
    if not isinstance(meta, dict):
        raise ValueError(
            f"{file} must hold a JSON object of settings, got a {type(meta).__name__}; {fix}"
        )
    version = meta.get("version")
    if isinstance(version, bool) or version not in tuple(FORMAT_KEYS):
        raise ValueError(
            f"{file} has pipeline format version {version!r}, expected 1 or "
            f"{FORMAT_VERSION}; re-fit and save with this version of mtrec"
        )
    required = {**REQUIRED_META, **{k: object for k in FORMAT_KEYS[version]}}
    known = {"version", *required, *OPTIONAL_META}
    missing = sorted(set(required) - set(meta))
    unknown = sorted(set(meta) - known)
    if missing or unknown:
        raise ValueError(
            f"{file} (format {version}) is missing the keys {missing} and has unknown keys "
            f"{unknown}; expected {sorted(required)} (optional: {sorted(OPTIONAL_META)}); a "
            f"renamed key must get its name back, or {fix}"
        )
    for key, kind in REQUIRED_META.items():
        value = meta[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(
                f"{file}: {key!r} must be a JSON {kind.__name__}, got {_shown(value)}; {fix}"
            )
    fusion = meta["fusion"]
    missing = sorted(set(FUSION_KEYS) - set(fusion))
    unknown = sorted(set(fusion) - set(FUSION_KEYS))
    bad = [k for k in FUSION_KEYS if k in fusion and (isinstance(fusion[k], bool) or
           not isinstance(fusion[k], numbers.Real) or not np.isfinite(fusion[k]))]  # fmt: skip
    if missing or unknown or bad:
        raise ValueError(
            f"{file}: 'fusion' must have the numbers {list(FUSION_KEYS)}; missing {missing}, "
            f"unknown {unknown}, not finite numbers {bad}; {fix}"
        )
    if not isinstance(fusion["pool"], int) or fusion["pool"] < 1:
        raise ValueError(f"{file}: fusion 'pool' must be an int >= 1, got {fusion['pool']!r}")
    if not all(isinstance(t, str) for t in meta["titles"]):
        raise ValueError(f"{file}: 'titles' must be a list of strings; {fix}")
    return meta


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mmoe(meta: Mapping[str, Any], config: RecommenderConfig) -> MMoE:
    """A fresh scoring MMoE sized by the fitted catalogue (``meta``) and ``config``."""
    sizes = {k: meta[k] for k in ("num_users", "num_items", "occupations")}
    return MMoE(mmoe_config(config, **sizes))
