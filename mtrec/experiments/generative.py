"""Generative recommendation in depth (notebook 08): item-ID schemes, and review titles.

Part ``next`` — how items are named (protocol, also in notebook 08):

* ML-100k, leave-last-out (``mtrec.data.leave_last_out``); test = each user's last item, ranked
  against every item the user has not interacted with (full ranking, all 943 users);
  HR@5/10 and NDCG@5/10 (``mtrec.eval.next_item.evaluate_next_item``).
* One P5 model (:class:`mtrec.models.generative.p5.P5`, a tiny T5 trained here: d_model
  :data:`D_MODEL`, 2+2 layers, :data:`HEADS` heads, dropout :data:`DROPOUT`) per item-ID scheme
  of :mod:`mtrec.models.generative.ids` (random, sequential, collaborative, semantic: three
  tokens per item), trained on next-item prompts only (each user's last :data:`POSITIONS`
  training steps, two templates), Adam lr :data:`LR`, batches of 128, **to convergence**: early
  stopping on validation NDCG@10 (each user's validation film ranked against every unseen film,
  the history being the training items) with patience :data:`PATIENCE`, at most :data:`EPOCHS`
  epochs; the best validation state is restored. These settings were picked on validation by
  :mod:`mtrec.experiments.tuning`. Each run records ``epochs``, ``best_epoch`` and ``at_cap``
  (1.0 when the cap ended it). Scores: the log-probability
  of each unseen item's whole code (``P5.scores``), so the ranking is full, as for SASRec.
* ``sequential`` numbers items by first appearance in the users' *full* sequences (test items
  included), as P5's released data did; ``random`` assigns the very same codes by a seeded
  permutation: the control (same construction, order shuffled away). Collaborative codes: residual k-means over co-occurrence PPMI-SVD vectors
  of the training sequences; semantic codes: residual k-means over the MiniLM embedding of
  "title | genres" (notebook 07, cached); both (16, 16) + a collision level.
* Beside them, popularity and SASRec trained exactly as notebook 03 trains it
  (:func:`mtrec.experiments.sequential.train_sasrec`: every training transition, early stopping)
  on the same split, so its rows equal notebook 03's for these seeds.
* Cold items: test targets with no training interaction (few in ML-100k); their HR@10 per
  scheme is reported with the user count (``cold_hr@10``, ``cold_users``).
* Seeds 0, 1, 2 (model initialisation, codes' permutation / k-means, prompt draw); mean ± std.

Part ``titles`` — writing a review title (protocol):

* Women's Clothing reviews with a non-empty title and a class; a seeded 80/10/10 split *by
  review* (``mtrec.data.random_split``): no review's title is in two parts. The data has no user
  ids, so the input is the item's attributes and the rating: "department <d> class <c> rating
  <r>" (no "earlier titles of the user" exist).
* Model: the same text-to-text T5 (:class:`TitleWriter`, word-level tokenizer of the training
  words seen at least twice), trained on the training titles with early stopping on the
  validation loss; at least one word per title; the decoding (greedy, greedy with a repetition
  penalty, or nucleus sampling) picked on validation: the best ROUGE-L among the decodings that
  write at least ``DISTINCT_FLOOR`` distinct titles (:func:`mtrec.experiments.titles.train_writer`).
  ``title-p5-greedy`` is the same model decoded greedily.
* Baselines: *retrieval* — the most frequent training title among the reviews whose input is
  nearest by MiniLM embedding of the input text; *template* — "love this <class>" for ratings
  4–5, "nice <class>" for 3, "disappointed" for 1–2.
* Metrics on the test reviews: BLEU (sacrebleu, corpus) and ROUGE-L F1 (rouge-score, mean);
  faithfulness by code: *sentiment agreement* — a bag-of-words logistic regression trained on
  the training titles to predict rating > 3, applied to the written title, agreeing with the
  true rating > 3 (:func:`sentiment_agreement`); *class consistency* — the share of titles that
  name no clothing class other than the item's own (:func:`class_consistency`); diversity:
  the share of distinct titles, distinct-1 and distinct-2 (distinct words and word pairs over
  all of them).

Part ``lm`` — the LM-initialised generative recommender: SmolLM2-135M with the semantic-id tokens
added to its vocabulary, LoRA-tuned to write the next film's code and decoded under the trie
(protocol in :mod:`mtrec.experiments.generative_lm`); its rows sit in the next-item table as
``smollm2-semantic``.

Part ``rating`` — P5 (semantic codes) trained on rating prompts only (each user's last
:data:`RATING_POSITIONS` training steps), predicting the expected star of each user's test film, beside
the training mean and the user's mean rating; RMSE, seeds 0, 1, 2; early stopping on the
validation film's RMSE.

The title writer: Adam lr 5e-3, batches of 128, d_model 64, 2+2 layers, at most
``TITLE_EPOCHS`` epochs.

Run ``MTREC_WRITE_RESULTS=1 mtrec run generative`` to write the rows (one thread, about 35
minutes per seed, and as long again for part ``lm``; ``--part next rating titles lm`` picks
parts, ``--epochs`` the P5 cap; the runner's
``--jobs``, ``--per-seed-dir`` and ``--merge`` give the same rows). Each seed's rows carry their
part's task and dataset (:data:`PARTS`): models ``p5-<scheme>``, ``sasrec``, ``popularity``: task
``next_item_schemes``; models ``title-<writer>``: task ``review_title`` (clothing);
``p5-semantic-rating``, ``training-mean``, ``user-mean``: task ``rating_leave_last_out``;
``smollm2-semantic`` (part ``lm``): task ``next_item_schemes``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from mtrec.data import TensorBatcher
from mtrec.eval.next_item import evaluate_next_item
from mtrec.experiments import runner
from mtrec.experiments.generative_data import (
    D_MODEL,
    NextItemData,
    convergence,
    load_next_item_data,
    next_item_metrics,
    scheme_codebook,
    valid_histories,
)
from mtrec.experiments.generative_lm import run_code_lm
from mtrec.experiments.runner import Experiment
from mtrec.experiments.titles import TitleData, load_title_data, run_titles
from mtrec.models.generative.codes import build_tokenizer
from mtrec.models.generative.ids import SCHEMES
from mtrec.models.generative.p5 import P5, P5Config
from mtrec.models.generative.prompts import ItemText, score_next, training_examples, vocabulary
from mtrec.reporting.store import QUALITY_CSV, load_quality
from mtrec.train import History, fit
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
# P5's settings, picked on validation by ``mtrec run tuning`` (benchmarks/results/tuning.csv)
POSITIONS = 50  # next-item prompts per user (its last 50 training steps)
LR = 3e-3  # Adam learning rate
DROPOUT = 0.1  # T5 dropout
HEADS = 4  # attention heads
RATING_POSITIONS = 10  # rating prompts per user (the rating part was not tuned)
EPOCHS = 40  # cap on passes over the prompts; early stopping on validation ends training first
PATIENCE = 3  # epochs without a better validation score before stopping
CONVERGENCE = ("epochs", "best_epoch", "at_cap")  # how each training run ended (convergence())
SOURCE_LEN = 48  # prompt tokens: 16 history items of 3 tokens
METRICS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
NEXT_TASK = "next_item_schemes"
TITLE_TASK = "review_title"
RATING_TASK = "rating_leave_last_out"


def p5_valid_ndcg(data: NextItemData) -> Callable[[P5], float]:
    """The early-stopping score of a next-item P5: validation NDCG@10, full ranking."""
    seq, histories = data.seq, valid_histories(data)

    def score(model: P5) -> float:
        return evaluate_next_item(lambda h: score_next(model, h)[0], histories, seq.valid_target,
                                  seq.valid_seen, k=10, batch_size=128)["ndcg@10"]  # fmt: skip

    return score


def p5_valid_rmse(data: NextItemData) -> Callable[[P5], float]:
    """The early-stopping score of a rating P5: RMSE of the expected star on the validation film."""
    from mtrec.eval.metrics import rmse
    from mtrec.models.generative.prompts import make_prompt

    seq, histories = data.seq, valid_histories(data)
    truth = np.array([float(data.valid_ratings[int(u)]) for u in seq.users])

    def score(model: P5) -> float:
        prompts = [make_prompt(model, "rating", h, item=int(t))[0]
                   for h, t in zip(histories, seq.valid_target.tolist())]  # fmt: skip
        return rmse(truth, predict_ratings(model, prompts))

    return score


def predict_ratings(model: P5, prompts: Sequence[str]) -> np.ndarray:
    """Expected stars of ``prompts``, 256 at a time."""
    return torch.cat([model.predict_ratings(prompts[s : s + 256])
                      for s in range(0, len(prompts), 256)]).numpy()  # fmt: skip


def train_p5(
    data: NextItemData, scheme: str, seed: int, *, epochs: int = EPOCHS,
    positions: int = POSITIONS, d_model: int = D_MODEL, lr: float = LR, dropout: float = DROPOUT,
    heads: int = HEADS, task_probs=(1.0, 0.0, 0.0, 0.0),
) -> tuple[P5, History]:  # fmt: skip
    """A P5 over ``scheme``'s codes, trained on next-item prompts (see the module protocol) with
    early stopping on validation NDCG@10 (patience :data:`PATIENCE`, at most ``epochs``);
    ``task_probs`` (next, rating, choice, explain) = (0, 1, 0, 0) trains on rating prompts and
    stops on validation RMSE instead."""
    codebook = scheme_codebook(data, scheme, seed)
    config = P5Config(d_model=d_model, d_ff=2 * d_model, num_heads=heads, dropout=dropout,
                      code_length=codebook.code_length, max_source_len=SOURCE_LEN,
                      max_target_len=codebook.code_length + 1)  # fmt: skip
    item_text = ItemText.from_movielens(data.items)
    set_seed(seed)
    model = P5(config, build_tokenizer(vocabulary(codebook, item_text)), codebook)
    model.popularity = {int(i): float(c) for i, c in data.train_counts.items()}
    examples = training_examples(model, data.sequences, item_text, positions_per_user=positions,
                                 task_probs=task_probs, seed=seed)  # fmt: skip
    tensors = {k: v for k, v in examples.items() if k != "task_ids"}
    rating = task_probs[1] == 1.0
    valid_fn, mode = (p5_valid_rmse(data), "min") if rating else (p5_valid_ndcg(data), "max")
    history = fit(model, TensorBatcher(tensors, 128, shuffle=True, seed=seed), epochs=epochs,
                  lr=lr, valid_fn=valid_fn, mode=mode, patience=PATIENCE, progress=False,
                  seed=seed)  # fmt: skip
    return model.eval(), history


def run_next_item(
    data: NextItemData, seeds: Sequence[int] = SEEDS, schemes: Sequence[str] = SCHEMES, **train_kw
) -> pd.DataFrame:
    """Per seed and model (p5-<scheme>, sasrec, popularity): metrics and training seconds."""
    from mtrec.experiments.sequential import SASREC_EPOCHS, train_sasrec
    from mtrec.models.cf.popularity import Popularity

    rows = []
    seq = data.seq
    popularity = Popularity(seq.num_items).fit(np.concatenate(seq.train_sequences))
    cap = train_kw.get("epochs", EPOCHS)
    for seed in seeds:
        rows.append({"model": "popularity", "seed": seed, "train_s": 0.0,
                     **next_item_metrics(popularity.scores, seq.test_history, data)})  # fmt: skip
        start = time.perf_counter()
        sasrec = train_sasrec(seq, seed, device="cpu")  # notebook 03's SASRec, as it trains there
        rows.append({"model": "sasrec", "seed": seed, "train_s": time.perf_counter() - start,
                     **next_item_metrics(sasrec.model.scores, seq.test_history, data),
                     **convergence(sasrec.history, SASREC_EPOCHS)})  # fmt: skip
        for scheme in schemes:
            start = time.perf_counter()
            model, history = train_p5(data, scheme, seed, **train_kw)
            train_s = time.perf_counter() - start
            metrics = next_item_metrics(
                lambda h, m=model: score_next(m, h)[0], data.histories, data
            )
            rows.append({"model": f"p5-{scheme}", "seed": seed, "train_s": train_s, **metrics,
                         **convergence(history, cap)})  # fmt: skip
            log.info("seed %d %s hr@10 %.4f (%d epochs, %.0fs)", seed, scheme, metrics["hr@10"],
                     len(history.epochs), train_s)  # fmt: skip
    return pd.DataFrame(rows)


def run_rating(data: NextItemData, seeds: Sequence[int] = SEEDS, **train_kw) -> pd.DataFrame:
    """Rating of each user's test film: P5 (semantic codes) trained on rating prompts only,
    predicting the expected star Σ r·p(r); beside the training-mean and user-mean predictors.

    The rating prompt names the history's films but not the ratings the user gave them.
    """
    from mtrec.eval.metrics import rmse
    from mtrec.models.generative.prompts import make_prompt

    seq = data.seq
    ratings = {int(u): dict(s) for u, s in data.sequences.items()}
    truth = np.array([float(data.test_ratings[int(u)]) for u in seq.users])
    train_all = np.array([r for s in data.sequences.values() for _, r in s], dtype=float)
    user_mean = np.array([np.mean(list(ratings[int(u)].values())) for u in seq.users])
    rows = []
    cap = train_kw.get("epochs", EPOCHS)
    for seed in seeds:
        model, history = train_p5(data, "semantic", seed, task_probs=(0.0, 1.0, 0.0, 0.0),
                                  positions=RATING_POSITIONS, **train_kw)  # fmt: skip
        prompts = [make_prompt(model, "rating", h, item=int(t))[0]
                   for h, t in zip(data.histories, seq.test_target.tolist())]  # fmt: skip
        predicted = predict_ratings(model, prompts)
        rows += [{"model": "p5-semantic-rating", "seed": seed, "rmse": rmse(truth, predicted),
                  **convergence(history, cap)},
                 {"model": "training-mean", "seed": seed,
                  "rmse": rmse(truth, np.full_like(truth, train_all.mean()))},
                 {"model": "user-mean", "seed": seed, "rmse": rmse(truth, user_mean)}]  # fmt: skip
    return pd.DataFrame(rows)


PARTS = {  # part → (metrics recorded, task, dataset)
    "next": ((*METRICS, "cold_hr@10", "cold_users", *CONVERGENCE), NEXT_TASK, "ml-100k"),
    "rating": (("rmse", *CONVERGENCE), RATING_TASK, "ml-100k"),
    "titles": (("bleu", "rouge_l", "sentiment_agreement", "class_consistency", "class_mention",
                "distinct_titles", "distinct_1", "distinct_2", *CONVERGENCE), TITLE_TASK,
               "clothing"),
    "lm": ((*METRICS, "cold_hr@10", "cold_users", *CONVERGENCE), NEXT_TASK, "ml-100k"),
}  # fmt: skip


def part_rows(results: pd.DataFrame, part: str) -> pd.DataFrame:
    """A part's per-seed results (one column per metric) as tidy rows under its task and
    dataset; a metric a model has no value for (``cold_hr@10`` without cold users) has no row."""
    metrics, task, dataset = PARTS[part]
    present = [m for m in metrics if m in results]
    rows = results.melt(id_vars="model", value_vars=present, var_name="metric")
    return rows.dropna(subset=["value"]).assign(task=task, dataset=dataset)


def selected_parts(wanted: Sequence[str]) -> list[str]:
    """The parts of ``--part`` in run order (``all``: every part)."""
    return [p for p in PARTS if "all" in wanted or p in wanted]


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """One seed of every part in ``args.part``: tidy rows (model, metric, value, task, dataset)."""
    torch.set_num_threads(args.threads)  # the recorded rows were measured on one thread
    parts = selected_parts(args.part)
    data = load_next_item_data() if {"next", "rating", "lm"} & set(parts) else None
    runs = {
        "next": lambda: run_next_item(data, [seed], epochs=args.epochs),
        "rating": lambda: run_rating(data, [seed], epochs=args.epochs),
        "titles": lambda: run_titles(None, [seed]),
        "lm": lambda: run_code_lm(data, [seed]),
    }
    return pd.concat([part_rows(runs[p](), p) for p in parts], ignore_index=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--part", choices=(*PARTS, "all"), nargs="+", default=["all"],
                        help="parts to run (default all: next rating titles lm)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help=f"cap on P5 epochs, parts next and rating (default {EPOCHS})")  # fmt: skip
    # One intra-op thread: the recorded rows were measured so, and results move with the count.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


EXPERIMENT = Experiment(
    name="generative",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="ml-100k",  # every row names its part's dataset and task (PARTS)
    task=NEXT_TASK,
    description=__doc__.split("\n")[0],
    add_arguments=add_arguments,
)


def recorded(task: str = NEXT_TASK, path=QUALITY_CSV) -> pd.DataFrame:
    """The experiment's recorded rows of ``task`` as a model × metric table of "mean ± std".

    A notebook's one-seed live run records its rows under ``<model>_nbNN`` names; they are not
    the experiment's and are left out.
    """
    datasets = sorted({dataset for _, _, dataset in PARTS.values()})
    frame = runner.recorded(EXPERIMENT, datasets=datasets, tasks=[task], path=path)
    frame = frame[~frame.model.str.fullmatch(r".+_nb\d\d")]
    if frame.empty:
        return pd.DataFrame()
    text = frame.apply(lambda r: f"{r.value:.4f} ± {0.0 if pd.isna(r['std']) else r['std']:.4f}",
                       axis=1)  # fmt: skip
    table = frame.assign(text=text).pivot(index="model", columns="metric", values="text")
    return table.loc[list(dict.fromkeys(frame.model))]


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    return runner.main(EXPERIMENT, argv)


# load_quality: notebook 08 reads the recorded rows through it
__all__ = [
    "EXPERIMENT", "PARTS", "NextItemData", "TitleData", "load_next_item_data", "load_quality",
    "load_title_data", "main", "part_rows", "recorded", "run_next_item", "run_rating",
    "run_seed", "run_titles", "scheme_codebook", "train_p5",
]  # fmt: skip


if __name__ == "__main__":
    main()
