"""Notebook 07's text tower, fine-tuned: frozen, LoRA and fully tuned MiniLM in the content model.

Run ``mtrec run text_tuning`` (``--help`` for options; the runner :mod:`mtrec.experiments.runner`
runs the seeds, one :func:`run_seed` each; 7 minutes for 3 seeds on a shared 2-core CPU, one
thread). Protocol (notebook 07's, section "Fine-tuning the language model"):

* **Data.** ML-100k, all ratings as implicit positives; each film's text "title | genres"
  (:func:`mtrec.data.tasks.kg.item_texts`) through all-MiniLM-L6-v2 (:class:`mtrec.extractors.
  text.TextEncoder`: mean pooling, L2-normalised, 384-d); the content model is
  :class:`mtrec.models.cf.content.ContentRecommender` on the frozen or tuned vectors.
* **Warm** (``top10_per_user_75_25``): per-user 75/25 split (``ml100k_topk_split``, the seed is
  the split seed). The encoder is tuned on the training part less 10 % of each user's training
  rows, whose nDCG@10 (content scores, seen films removed) picks the kept step; the profiles at
  test time use the whole training part; every unseen film is a candidate.
* **Cold** (``top10_cold_items``): ``cold_item_split`` holds out 20 % of the films with all
  their ratings (half validation, half test). The encoder is tuned on the training rows (a cold
  film has none, so its text never enters training); nDCG@10 over the cold validation films
  picks the kept step; the test ranks the cold test films only, their vectors from the tuned
  encoder applied to their text.
* **Tuning** (:func:`mtrec.train.text_tuning.tune_text_encoder` at its defaults): InfoNCE of a
  user's profile against one held-out training film, 64 users per step with in-batch negatives
  (sampling-corrected), temperature 0.1, AdamW at 3e-3 (LoRA rank 8, alpha 16, on ``query`` and
  ``value``) or 1e-4 (full); checks at steps 0, 20 and 40 (the step with the best validation
  nDCG@10 is kept, step 0 being the frozen encoder). These settings were chosen on seed 0's warm
  validation split (never a test part). The batch and the 40-step cap are cut to fit the time
  budget above: on warm users validation nDCG@10 was still rising at step 40 (on cold films it
  peaked sooner), so longer runs may widen the warm gap.
* **Seeds.** 0, 1, 2: each changes the split, the batches and the adapter initialisation; rows
  are mean ± sample std over seeds.

The runner writes quality rows (dataset ``ml-100k``; model ``content_minilm_frozen``,
``content_minilm_lora``, ``content_minilm_full``; the two tasks above; metrics nDCG, Precision,
Recall and MAP at 10) when ``MTREC_WRITE_RESULTS=1``, then :func:`finish` writes the cost table
``benchmarks/results/text_tuning_cost.csv`` (trainable parameters and their share, training
seconds and kept step, mean over the seeds run in this process: with ``--jobs`` > 1 or
``--merge`` it is left unchanged). :func:`recorded` reads both back.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mtrec.checks import arg_int
from mtrec.data import cold_item_split, load_movielens
from mtrec.data.interactions import IdIndex, interaction_matrix
from mtrec.data.tasks.kg import item_texts
from mtrec.data.tasks.movielens import ml100k_topk_split
from mtrec.eval.significance import beyond_seed_noise
from mtrec.eval.topk import evaluate_topk
from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment
from mtrec.extractors.text import TextEncoder
from mtrec.models.cf.content import ContentRecommender
from mtrec.reporting.store import QUALITY_CSV, RESULTS_DIR, stamp_machine, upsert, writing_enabled
from mtrec.train.text_tuning import TextTuningConfig, tune_text_encoder

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
WARM_TASK, COLD_TASK = "top10_per_user_75_25", "top10_cold_items"  # notebook 07's task names
METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10")
MODELS = {"content_minilm_frozen": None, "content_minilm_lora": "lora", "content_minilm_full": "full"}  # fmt: skip
VALID_FRACTION = 0.1  # share of each user's warm training rows held out to pick the step
COLD_ITEMS = 0.2  # share of the films held out with all their ratings (notebook 07)
COST_CSV = RESULTS_DIR / "text_tuning_cost.csv"
COST_COLUMNS = ["dataset", "model", "task", "trainable", "total", "trainable_share", "train_s",
                "train_s_std", "kept_step", "seeds", "threads", "cpu", "torch", "commit", "date"]  # fmt: skip
_COSTS: list[dict[str, Any]] = []  # one record per (model, task, seed) run in this process


@dataclass(frozen=True)
class TextData:
    """What every seed shares: ratings, ids, item texts, frozen vectors, the encoder."""

    ratings: pd.DataFrame  # user_id, item_id, ... (all ratings)
    index: IdIndex  # users and every catalogue item
    texts: list[str]  # (I,) "title | genres" by item column
    frozen: Tensor  # (I, D) frozen MiniLM vectors
    model: nn.Module  # the frozen Hugging Face encoder (tuning works on copies)
    tokenizer: Any


@dataclass(frozen=True)
class Protocol:
    """One task of one seed: tuning rows, the validation score, and the test."""

    tune: Tensor  # (U, I) interactions the encoder is trained on
    valid_fn: Callable[[Tensor], float]  # (I, D) vectors → validation nDCG@10
    train: Tensor  # (U, I) profiles at test time (seen films removed)
    test: Tensor  # (U, I) test interactions
    candidates: Tensor | None  # (I,) bool films ranked at test (None: all)


def load_data() -> TextData:
    """ML-100k, its item texts and the frozen MiniLM vectors (cached on disk) and encoder."""
    ml = load_movielens()
    index = IdIndex.from_frames(ml.ratings, items=ml.items.item_id)
    texts = item_texts(ml.items.set_index("item_id").loc[index.item_ids])
    encoder = TextEncoder(device="cpu")
    frozen = encoder.encode(texts).float()
    return TextData(ml.ratings, index, texts, frozen, encoder.model, encoder.tokenizer)


def _content_ndcg(train: Tensor, target: Tensor, candidates: Tensor | None = None):
    return lambda vectors: evaluate_topk(ContentRecommender(vectors).scores(train), train, target,
                                         candidates=candidates)["ndcg@10"]  # fmt: skip


def warm_protocol(data: TextData, seed: int) -> Protocol:
    """Per-user 75/25; the step is picked on 10 % of each user's training rows."""
    tune = ml100k_topk_split(data.ratings, seed=seed, valid_fraction=VALID_FRACTION)
    split = ml100k_topk_split(data.ratings, seed=seed)  # the same test rows
    fit_rows, valid, train, test = (interaction_matrix(f, data.index)
                                    for f in (tune.train, tune.valid, split.train, split.test))  # fmt: skip
    return Protocol(fit_rows, _content_ndcg(fit_rows, valid), train, test, None)


def cold_protocol(data: TextData, seed: int) -> Protocol:
    """Held-out films; the step is picked on the cold validation films, the test ranks the rest."""
    split = cold_item_split(data.ratings, item_fraction=COLD_ITEMS, seed=seed)
    train, valid, test = (interaction_matrix(f, data.index) for f in (split.train, split.valid, split.test))  # fmt: skip
    valid_items, test_items = valid.sum(dim=0) > 0, test.sum(dim=0) > 0
    return Protocol(train, _content_ndcg(train, valid, valid_items), train, test, test_items)


def seed_rows(seed: int, data: TextData, config: TextTuningConfig | None = None
              ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
    """Both tasks for ``seed``: tidy rows (model, task, metric, value) and cost records.

    ``config``: the tuning settings (default :class:`TextTuningConfig`); mode and seed are set
    per run.
    """
    config, rows, costs = config or TextTuningConfig(), [], []
    total = sum(p.numel() for p in data.model.parameters())
    for task, make in ((WARM_TASK, warm_protocol), (COLD_TASK, cold_protocol)):
        protocol = make(data, seed)
        for name, mode in MODELS.items():
            cost = {"model": name, "task": task, "seed": seed, "trainable": 0, "total": total,
                    "train_s": 0.0, "kept_step": 0}  # fmt: skip
            vectors = data.frozen
            if mode is not None:
                tuned = tune_text_encoder(
                    data.model, data.tokenizer, data.texts, protocol.tune,
                    config=dataclasses.replace(config, mode=mode, seed=seed),
                    valid_fn=protocol.valid_fn,
                )  # fmt: skip
                vectors = tuned.vectors
                cost.update(trainable=tuned.trainable, total=tuned.total, train_s=tuned.seconds,
                            kept_step=tuned.step)  # fmt: skip
            scores = ContentRecommender(vectors).scores(protocol.train)
            values = evaluate_topk(scores, protocol.train, protocol.test,
                                   candidates=protocol.candidates)  # fmt: skip
            rows += [(name, task, metric, values[metric]) for metric in METRICS]
            costs.append(cost)
            log.info("seed %d %s %s: nDCG@10 %.4f, %.0f s", seed, task, name, values["ndcg@10"],
                     cost["train_s"])  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "task", "metric", "value"]), costs


@functools.cache
def _data() -> TextData:
    """:func:`load_data` once per process."""
    return load_data()


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """The runner's unit: frozen, LoRA and full on both tasks for ``seed``, on one thread."""
    torch.set_num_threads(1)  # a shared 2-core CPU: one intra-op thread per process
    rows, costs = seed_rows(seed, _data(), TextTuningConfig(steps=args.steps))
    _COSTS.extend(costs)
    return rows


def cost_table(costs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per (model, task): parameters, trainable share, mean ± std training seconds, kept step."""
    frame = pd.DataFrame(list(costs))
    table = frame.groupby(["model", "task"], sort=False).agg(
        trainable=("trainable", "first"), total=("total", "first"), train_s=("train_s", "mean"),
        train_s_std=("train_s", "std"), kept_step=("kept_step", "mean"), seeds=("seed", "size"),
    ).reset_index()  # fmt: skip
    return table.assign(dataset="ml-100k", trainable_share=table.trainable / table.total)


def finish(per_seed: pd.DataFrame, args: argparse.Namespace) -> None:
    """After the quality rows: the cost table of the seeds run in this process."""
    if not _COSTS:
        print("no cost records (seeds merged, kept or run in workers): cost table unchanged")
        return
    cost = cost_table(_COSTS)
    print(cost[["model", "task", "trainable_share", "train_s", "kept_step"]].round(4).to_string(index=False))  # fmt: skip
    if writing_enabled():
        cost = stamp_machine(cost)
        upsert(COST_CSV, cost, COST_COLUMNS, ["dataset", "model", "task"])
        print(f"{len(cost)} cost rows written to {COST_CSV}")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    steps = TextTuningConfig().steps
    parser.add_argument("--steps", type=arg_int(min=1), default=steps,
                        help=f"tuning steps at most per run (default {steps})")  # fmt: skip


EXPERIMENT = Experiment(
    name="text_tuning",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="ml-100k",
    description=__doc__.splitlines()[0],
    add_arguments=_add_arguments,
    finish=finish,
)


def recorded(path: Path = QUALITY_CSV, cost_path: Path = COST_CSV) -> pd.DataFrame:
    """The recorded nDCG@10 (mean, std, seeds) of each model and task, with its cost columns."""
    rows = runner.recorded(EXPERIMENT, list(MODELS), tasks=[WARM_TASK, COLD_TASK], path=path)
    rows = rows[rows.metric == "ndcg@10"].rename(columns={"value": "ndcg@10"})
    cost = pd.read_csv(cost_path)[["model", "task", "trainable_share", "train_s", "kept_step"]]
    table = rows[["task", "model", "ndcg@10", "std", "seeds"]].merge(cost, on=["model", "task"])
    table["task"] = pd.Categorical(table.task, [WARM_TASK, COLD_TASK])
    table["model"] = pd.Categorical(table.model, list(MODELS))
    return (
        table.sort_values(["task", "model"])
        .astype({"task": str, "model": str})
        .reset_index(drop=True)
    )


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Each tuned model against the frozen one, task by task (``table`` from :func:`recorded`).

    Δ = tuned − frozen nDCG@10; the noise is the larger of the two seed stds; "better" when
    Δ > noise, "worse" when Δ < −noise, else "no difference".
    """
    frozen = table[table.model == "content_minilm_frozen"].set_index("task")
    out = table[table.model != "content_minilm_frozen"].copy()
    out["delta"] = out["ndcg@10"].to_numpy() - frozen["ndcg@10"].reindex(out.task).to_numpy()
    sign, out["noise"] = beyond_seed_noise(out.delta, out["std"], frozen["std"].reindex(out.task))
    out["verdict"] = np.select([sign > 0, sign < 0], ["better", "worse"], "no difference")
    return out[["task", "model", "delta", "noise", "verdict"]].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run text_tuning [--seeds 0 1 2] [--steps 40]``."""
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
