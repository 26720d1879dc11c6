"""Prompt templates and training examples for the P5-style model (:mod:`mtrec.models.generative.p5`).

Four tasks, two paraphrased templates each (P5 trains on several phrasings per task):
next item from a history, rating prediction, picking the liked item among candidates, and a
short personalised recommendation text. The explanation target is TEMPLATE-FILLED from the real
title and genres of the target item (no human-written explanations exist in MovieLens), so the
model learns to name the item it recommends and nothing else.

Bad input: unknown item ids in a history are dropped and counted; histories longer than the
context are cut from the OLDEST items; a user with no usable history gets the popularity ranking
(documented fallback, flagged in the returned info).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_nonempty
from mtrec.models.generative.codes import ItemCodebook, UnknownItemError
from mtrec.models.generative.p5 import P5

log = logging.getLogger(__name__)

TEMPLATES: dict[str, list[str]] = {
    "next": [
        "task next : user watched {history} ; what will the user watch next ?",
        "task next : given the history {history} , predict the next movie",
    ],
    "rating": [
        "task rating : user watched {history} ; how will the user rate {item} ?",
        "task rating : predict the star rating of {item} for a user who watched {history}",
    ],
    "choice": [
        "task choice : user watched {history} ; which of {candidates} will the user like ?",
        "task choice : pick the movie the user will like from {candidates} given {history}",
    ],
    "explain": [
        "task explain : user watched {history} ; recommend a movie and say why",
        "task explain : write a recommendation for a user who watched {history}",
    ],
}
EXPLANATION = "{code} : {title} , a {genres} movie"  # target text of the explain task


@dataclass(frozen=True)
class ItemText:
    """Title and genre words of each item (lower-cased, whitespace-split)."""

    titles: dict[int, str]
    genres: dict[int, str]

    @classmethod
    def from_movielens(cls, items: pd.DataFrame) -> ItemText:
        titles = {int(i): str(t).lower() for i, t in zip(items.item_id, items.title)}
        genres = {
            int(i): " ".join(str(g).lower().split("|")) for i, g in zip(items.item_id, items.genres)
        }
        return cls(titles, genres)

    def words(self) -> list[str]:
        return sorted(
            {w for text in [*self.titles.values(), *self.genres.values()] for w in text.split()}
        )


def vocabulary(codebook: ItemCodebook, item_text: ItemText) -> list[str]:
    """Every word the templates, targets, ratings and item codes use."""
    template_words = {w for ts in TEMPLATES.values() for t in ts for w in t.split() if "{" not in w}
    template_words |= {w for w in EXPLANATION.split() if "{" not in w}
    return (
        sorted(template_words)
        + [str(r) for r in range(1, 6)]
        + codebook.tokens()
        + item_text.words()
    )


def fit_history(
    history: Sequence[int], codebook: ItemCodebook, budget: int
) -> tuple[list[int], dict[str, int]]:
    """Drop unknown ids, then keep the most recent items whose codes fit in ``budget`` tokens.

    Returns:
        (kept items, {"unknown": dropped unknown ids, "truncated": oldest items cut}).
    """
    known = [int(i) for i in history if int(i) in codebook.codes]
    unknown = len(history) - len(known)
    if unknown:
        log.warning("ignored %d unknown item ids in a history", unknown)
    per_item = len(next(iter(codebook.codes.values())))
    keep = max(budget // per_item, 0)
    kept = known[-keep:] if keep else []
    return kept, {"unknown": unknown, "truncated": len(known) - len(kept)}


def make_prompt(
    model: P5, task: str, history: Sequence[int], *, template: int = 0, item: int | None = None,
    candidates: Sequence[int] = (),
) -> tuple[str, dict[str, int]]:  # fmt: skip
    """Fill a template; the history is cut from the oldest so the prompt fits the context."""
    if task not in TEMPLATES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TEMPLATES)}")
    cb = model.codebook
    if item is not None:
        cb.check_known([item], "item")
    cb.check_known(candidates, "candidates")
    fixed = TEMPLATES[task][template].format(
        history="", item=cb.text(item) if item is not None else "",
        candidates=" , ".join(cb.text(c) for c in candidates),
    )  # fmt: skip
    budget = model.config.max_source_len - len(fixed.split()) - 1  # 1 for </s>
    kept, info = fit_history(history, cb, budget)
    text = TEMPLATES[task][template].format(
        history=" ".join(cb.text(i) for i in kept), item=cb.text(item) if item is not None else "",
        candidates=" , ".join(cb.text(c) for c in candidates),
    )  # fmt: skip
    return " ".join(text.split()), {**info, "history": len(kept)}


def explanation(model: P5, item_text: ItemText, item: int) -> str:
    model.codebook.check_known([item], "item id")
    if item not in item_text.titles or item not in item_text.genres:
        raise UnknownItemError(
            f"item id {item} has a code but no title/genres in item_text; build ItemText from "
            "the same item table as the codebook"
        )
    return EXPLANATION.format(
        code=model.codebook.text(item), title=item_text.titles[item], genres=item_text.genres[item]
    )


def training_examples(
    model: P5, sequences: dict[int, list[tuple[int, int]]], item_text: ItemText, *,
    positions_per_user: int = 20, negatives: int = 4, task_probs: Sequence[float] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Examples of all four tasks from each user's last ``positions_per_user`` training steps.

    Args:
        sequences: user → chronological [(item_id, rating), ...] (training part only).
        task_probs: probability of each task in ``TEMPLATES`` order (default: uniform).

    Returns:
        Tensors ``input_ids``, ``attention_mask``, ``labels`` and ``task_ids`` (0..3 in
        ``TEMPLATES`` order), ready for :class:`mtrec.data.TensorBatcher`.
    """
    rng = np.random.default_rng(seed)
    probs = np.full(len(TEMPLATES), 1 / len(TEMPLATES)) if task_probs is None else task_probs
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(TEMPLATES),) or (probs < 0).any() or not np.isclose(probs.sum(), 1):
        raise ValueError(
            f"task_probs must be {len(TEMPLATES)} non-negative numbers summing to 1 (tasks "
            f"{list(TEMPLATES)}), got {list(probs)}"
        )
    items = np.array(sorted(model.codebook.codes))
    sources, targets, tasks = [], [], []
    for seq in sequences.values():
        seen = {i for i, _ in seq}
        for t in range(max(1, len(seq) - positions_per_user), len(seq)):
            history, (target, rating) = [i for i, _ in seq[:t]], seq[t]
            task = int(rng.choice(len(TEMPLATES), p=probs))
            template = int(rng.integers(2))
            if task == 0:
                prompt, _ = make_prompt(model, "next", history, template=template)
                answer = model.codebook.text(target)
            elif task == 1:
                prompt, _ = make_prompt(model, "rating", history, template=template, item=target)
                answer = str(rating)
            elif task == 2:
                negs = [int(i) for i in rng.choice(items, 3 * negatives) if i not in seen][
                    :negatives
                ]
                cands = [target, *negs]
                rng.shuffle(cands)
                prompt, _ = make_prompt(
                    model, "choice", history, template=template, candidates=cands
                )
                answer = model.codebook.text(target)
            else:
                prompt, _ = make_prompt(model, "explain", history, template=template)
                answer = explanation(model, item_text, target)
            sources.append(prompt)
            targets.append(answer)
            tasks.append(task)
    batch = model.encode(sources, model.config.max_source_len)
    batch.update(model.encode(targets, model.config.max_target_len, target=True))
    batch["task_ids"] = torch.tensor(tasks)
    return batch


def recommend_next(
    model: P5, histories: Sequence[Sequence[int]], *, k: int = 10, template: int = 0,
    batch_size: int = 256,
) -> tuple[list[list[int]], pd.DataFrame]:  # fmt: skip
    """Top-k unseen items per user by constrained beam search; cold users get popularity.

    Returns:
        (per user k item ids, a frame with unknown / truncated / history counts and a
        ``fallback`` flag per user — True where the popularity ranking was served). A user with
        fewer than k unseen items gets only those (with a warning): never a repeat, a seen item
        or padding.
    """
    check_nonempty(histories, "histories", fix="pass one item-id list per user")
    prompts, infos = zip(*(make_prompt(model, "next", h, template=template) for h in histories))
    info = pd.DataFrame(list(infos))
    info["fallback"] = info["history"] == 0
    ranked: list[list[int]] = [[] for _ in histories]
    warm = np.flatnonzero(~info["fallback"].to_numpy())
    for start in range(0, len(warm), batch_size):
        rows = warm[start : start + batch_size]
        items, _ = model.generate_items(
            [prompts[r] for r in rows], [histories[r] for r in rows], k=k
        )
        for r, row_items in zip(rows, items):
            ranked[r] = row_items
    order = sorted(model.codebook.codes, key=lambda i: -model.popularity.get(i, 0.0))
    for r in np.flatnonzero(info["fallback"].to_numpy()):
        seen = set(histories[r])
        ranked[r] = [i for i in order if i not in seen][:k]
    if info["fallback"].any():
        log.info("served the popularity ranking to %d cold users", int(info["fallback"].sum()))
    return ranked, info


def score_next(
    model: P5, histories: Sequence[Sequence[int]], *, template: int = 0, batch_size: int = 256
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Full-ranking scores of every unseen item as each user's next item (one token per item).

    The same prompts as :func:`recommend_next`, read as one distribution over all items
    (:meth:`P5.scores`) instead of the top-k beams, so HR/NDCG@K rank every unseen item, as
    for the other models. Cold users get the popularity ranking (flagged in the info frame).

    Returns:
        ((B, N+1) scores, seen items -inf; the info frame of :func:`recommend_next`).
    """
    check_nonempty(histories, "histories", fix="pass one item-id list per user")
    prompts, infos = zip(*(make_prompt(model, "next", h, template=template) for h in histories))
    info = pd.DataFrame(list(infos))
    info["fallback"] = info["history"] == 0
    parts = [
        model.scores(prompts[s : s + batch_size], histories[s : s + batch_size])
        for s in range(0, len(prompts), batch_size)
    ]
    scores = torch.cat(parts)  # (B, N+1)
    cold = torch.tensor(info["fallback"].to_numpy())
    if cold.any():
        items = model.item_ids
        popularity = torch.full((scores.shape[1],), float("-inf"))  # (N+1,)
        counts = torch.tensor([float(model.popularity.get(int(i), 0.0)) for i in items])
        popularity[items] = counts.log1p()
        blocked = scores[cold] == float("-inf")  # seen items and non-items stay -inf
        scores[cold] = popularity.expand_as(blocked).masked_fill(blocked, float("-inf"))
        log.info("served the popularity ranking to %d cold users", int(cold.sum()))
    return scores, info
