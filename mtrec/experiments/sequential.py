"""Next-item recommendation on MovieLens-100k: two baselines, SASRec and a next-items
encoder-decoder, over several seeds (notebook 03).

Protocol (also written in notebook 03):

* ``mtrec.data.leave_last_out``: each user's ratings in time order (ties by item id); the last
  one is the test target, the second-to-last the validation target, the rest is history. A model
  reads the most recent :data:`MAX_LEN` items and scores all 1,682 movies; movies the user already
  rated are excluded; HR@10 and NDCG@10 (:func:`mtrec.eval.next_item.evaluate_next_item`).
* Baselines (deterministic, one run): popularity, and co-occurrence with its window and number of
  voting recent items picked on validation NDCG@10.
* SASRec (D = :data:`D_MODEL`, dropout :data:`DROPOUT`, full-softmax loss, trained on every
  training transition: each user's sequence cut into windows of :data:`MAX_LEN`) and the next-items encoder-decoder
  (1 encoder + 1 decoder layer, k = 3 next items, 2 random cuts per user per epoch): Adam lr
  :data:`SASREC_LR` / :data:`LR` (SASRec's settings picked on validation by
  :mod:`mtrec.experiments.tuning`), batches of :data:`BATCH_SIZE`, early stopping on validation NDCG@10 with patience
  :data:`PATIENCE` (long enough that one noisy epoch does not end training) and at most
  :data:`SASREC_EPOCHS` / :data:`GEN_EPOCHS` epochs (caps that early stopping reaches first; each
  run records whether it did). The test targets are read once, with the best validation state.
* Seeds :data:`SEEDS`; tables report mean ± sample std over seeds. A difference between two
  models counts only when it exceeds the larger of their seed stds (:func:`verdict`). The
  baselines use no seed: they are run once, with seed :data:`BASELINE_SEED`, and their rows
  count one seed (no std).

Run ``MTREC_WRITE_RESULTS=1 mtrec run sequential`` (the experiment runner,
:mod:`mtrec.experiments.runner`) to write the rows (dataset ``ml-100k``, task ``next-item``) into
``benchmarks/results/quality.csv``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mtrec.data import TensorBatcher
from mtrec.data.sequences import SequenceData
from mtrec.data.tasks.movielens import ml100k_next_item
from mtrec.eval.next_item import evaluate_next_item
from mtrec.eval.significance import beyond_seed_noise
from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment
from mtrec.models.cf.popularity import Popularity
from mtrec.models.sequential.cooccurrence import CoOccurrence
from mtrec.models.sequential.next_items import NextItems, NextItemsConfig, NextItemsSampler
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig
from mtrec.reporting.store import QUALITY_CSV
from mtrec.train import History, fit
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2, 3, 4)
BASELINE_SEED = 0  # the seed whose rows carry the (seedless) baselines
MAX_LEN = 50  # L: most recent items a model reads
# SASRec's D, lr, dropout and heads were picked on validation (``mtrec run tuning``)
D_MODEL = 64  # D of both trained models
SASREC_LR = 1e-3  # SASRec's Adam learning rate
DROPOUT = 0.1  # SASRec's dropout
HEADS = 1  # SASRec's attention heads
LR = 5e-3  # the encoder-decoder's Adam learning rate
BATCH_SIZE = 64  # users (SASRec) or cuts (encoder-decoder) per step
PATIENCE = 5  # epochs without a better validation NDCG@10 before stopping
SASREC_EPOCHS = 120  # cap on SASRec epochs (early stopping ends every seed before it)
GEN_EPOCHS = 60  # cap on encoder-decoder epochs
NEXT_K = 3  # items the encoder-decoder emits
CUTS_PER_USER = 2  # encoder-decoder training samples per user per epoch
CUTOFF = 10  # HR@10, NDCG@10
METRICS = (f"hr@{CUTOFF}", f"ndcg@{CUTOFF}")
CO_GRID = {"window": (1, 3), "recent": (1, 3)}  # co-occurrence settings tried on validation
BASELINES = ("popularity", "co-occurrence")
TRAINED = ("SASRec", "next-items enc-dec")


@dataclass
class Trained:
    """One trained model and what its training saw."""

    model: nn.Module
    history: History
    epochs_cap: int
    device: torch.device

    @property
    def stopped_early(self) -> bool:
        """True when validation stopped training before the epoch cap."""
        return len(self.history.epochs) < self.epochs_cap


def movielens_sequences(max_len: int = MAX_LEN) -> SequenceData:
    """ML-100k leave-last-out split as padded (U, L) tensors (943 users, 1,682 items).

    The task is :func:`mtrec.data.tasks.movielens.ml100k_next_item`.
    """
    return ml100k_next_item(max_len=max_len)


def evaluate(
    seq: SequenceData,
    score_fn: Callable[[Tensor], Tensor],
    part: str = "test",
    *,
    device: torch.device | None = None,
) -> dict[str, float]:
    """HR@10 and NDCG@10 of ``score_fn`` on the ``part`` ("valid" or "test") targets.

    ``device``: where the histories go (the model's device; None = CPU).
    """
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    history, target, seen = (getattr(seq, f"{part}_{k}") for k in ("history", "target", "seen"))
    history = history.to(device or "cpu")
    return evaluate_next_item(score_fn, history, target, seen, k=CUTOFF)


def valid_ndcg(seq: SequenceData, device: torch.device) -> Callable[[nn.Module], float]:
    """The early-stopping score: validation NDCG@10 of a model."""
    return lambda model: evaluate(seq, model.scores, "valid", device=device)[METRICS[1]]


def baselines(seq: SequenceData) -> tuple[dict[str, dict[str, float]], pd.Series]:
    """Test metrics of popularity and co-occurrence, and co-occurrence's validation grid.

    Returns:
        ``{name: {"hr@10", "ndcg@10"}}`` and the validation NDCG@10 per (window, recent).
    """
    popularity = Popularity(seq.num_items).fit(np.concatenate(seq.train_sequences))
    grid = {
        (w, r): CoOccurrence(seq.num_items, window=w, recent=r).fit(seq.train_sequences)
        for w in CO_GRID["window"]
        for r in CO_GRID["recent"]
    }
    valid = pd.Series(
        {key: evaluate(seq, m.scores, "valid")[METRICS[1]] for key, m in grid.items()}
    )
    valid.index.names = ["window", "recent"]
    best = valid.idxmax()  # selection on validation only
    results = {"popularity": evaluate(seq, popularity.scores),
               "co-occurrence": evaluate(seq, grid[best].scores)}  # fmt: skip
    return results, valid


def train_sasrec(
    seq: SequenceData, seed: int, *, epochs: int = SASREC_EPOCHS, device: str | None = None,
    d_model: int = D_MODEL, lr: float = SASREC_LR, dropout: float = DROPOUT, heads: int = HEADS,
) -> Trained:  # fmt: skip
    """SASRec (full-softmax loss) fitted on every training transition
    (:meth:`~mtrec.data.sequences.SequenceData.train_windows`) with early stopping on validation
    NDCG@10.

    ``device``: None = CUDA when present, else CPU (:func:`mtrec.utils.get_device`).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    set_seed(seed)
    model = SASRec(SASRecConfig(num_items=seq.num_items, max_len=seq.train_inputs.shape[1],
                                d_model=d_model, dropout=dropout, num_heads=heads))  # fmt: skip
    batches = TensorBatcher(seq.train_windows(), BATCH_SIZE, shuffle=True, seed=seed, device=device)
    history = fit(model, batches, valid_fn=valid_ndcg(seq, device), epochs=epochs, lr=lr,
                  patience=PATIENCE, device=device, seed=seed, progress=False)  # fmt: skip
    return Trained(model.eval(), history, epochs, device)


def train_next_items(
    seq: SequenceData, seed: int, *, epochs: int = GEN_EPOCHS, device: str | None = None
) -> Trained:
    """The next-items encoder-decoder fitted with early stopping on validation NDCG@10."""
    device = get_device(device) if not isinstance(device, torch.device) else device
    set_seed(seed)
    length = seq.train_inputs.shape[1]
    config = NextItemsConfig(num_items=seq.num_items, history_len=length, k=NEXT_K,
                             d_model=D_MODEL, num_encoder_layers=1, num_decoder_layers=1,
                             d_ff=2 * D_MODEL)  # fmt: skip
    model = NextItems(config)
    sampler = NextItemsSampler(seq.train_sequences, history_len=length, k=NEXT_K,
                               cuts_per_user=CUTS_PER_USER, batch_size=BATCH_SIZE, seed=seed)  # fmt: skip
    history = fit(model, sampler, valid_fn=valid_ndcg(seq, device), epochs=epochs, lr=LR,
                  patience=PATIENCE, device=device, seed=seed, progress=False)  # fmt: skip
    return Trained(model.eval(), history, epochs, device)


TRAINERS = {"SASRec": train_sasrec, "next-items enc-dec": train_next_items}


def run(
    seq: SequenceData,
    seeds: Sequence[int] = SEEDS,
    *,
    epochs: dict[str, int] | None = None,
    device: str | None = None,
    with_baselines: bool = True,
) -> pd.DataFrame:
    """Baselines once, each trained model per seed: one row per (model, seed).

    Columns: model, seed, hr@10, ndcg@10, best_epoch, epochs (run), stopped_early, seconds.
    ``epochs`` overrides the caps per model name (a short live run uses small ones);
    ``with_baselines=False`` leaves the baselines out (their rows carry seed
    :data:`BASELINE_SEED`).
    """
    rows = []
    tested, _ = baselines(seq) if with_baselines else ({}, None)
    for name, metrics in tested.items():
        rows.append({"model": name, "seed": BASELINE_SEED, **metrics, "best_epoch": np.nan,
                     "epochs": 0, "stopped_early": True, "seconds": 0.0})  # fmt: skip
    for name, train in TRAINERS.items():
        for seed in seeds:
            start = time.perf_counter()
            kwargs = {} if epochs is None or name not in epochs else {"epochs": epochs[name]}
            trained = train(seq, seed, device=device, **kwargs)
            metrics = evaluate(seq, trained.model.scores, device=trained.device)
            rows.append({"model": name, "seed": seed, **metrics,
                         "best_epoch": trained.history.best_epoch,
                         "epochs": len(trained.history.epochs),
                         "stopped_early": trained.stopped_early,
                         "seconds": time.perf_counter() - start})  # fmt: skip
            log.info("%s seed %d: %s (%d epochs)", name, seed, metrics, rows[-1]["epochs"])
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and sample std (ddof=1) of each metric over seeds, and the seed count.

    ``results`` is :func:`run`'s per-seed frame or :func:`recorded`'s (already aggregated) table.
    """
    if "seed" not in results:
        return results.set_index("model")
    groups = results.groupby("model", sort=False)
    table = pd.DataFrame({"seeds": groups.size()})
    for metric in METRICS:
        table[metric] = groups[metric].mean()
        table[f"{metric} std"] = groups[metric].std(ddof=1)
    return table


def verdict(table: pd.DataFrame, a: str, b: str, metric: str = METRICS[0]) -> str:
    """Compare models ``a`` and ``b`` of :func:`summary`'s table on ``metric``.

    The difference of means counts only when it exceeds the larger seed std of the two
    (a deterministic baseline has no std); otherwise the answer is "no difference".
    """
    for name in (a, b):
        if name not in table.index:
            raise KeyError(f"model {name!r} is not in the table; it has {list(table.index)}")
    diff = table.loc[a, metric] - table.loc[b, metric]
    sign, noise = beyond_seed_noise(
        diff, table.loc[a, f"{metric} std"], table.loc[b, f"{metric} std"]
    )
    if sign == 0:
        return f"{a} vs {b}: no difference ({metric} {diff:+.4f}, seed std {noise:.4f})"
    winner = a if diff > 0 else b
    return f"{a} vs {b}: {winner} is better ({metric} {diff:+.4f} > seed std {noise:.4f})"


def tidy_rows(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`run`'s per-run frame as the runner's rows: model, seed, metric, value; the trained
    models add ``epochs`` (run) and ``at_cap`` (1.0 when the epoch cap, not early stopping,
    ended training)."""
    rows = results.melt(id_vars=["model", "seed"], value_vars=list(METRICS), var_name="metric",
                        value_name="value")  # fmt: skip
    trained = results[results.model.isin(TRAINED)].assign(
        epochs=lambda f: f.epochs.astype(float), at_cap=lambda f: (~f.stopped_early).astype(float)
    )
    ended = trained.melt(id_vars=["model", "seed"], value_vars=["epochs", "at_cap"],
                         var_name="metric", value_name="value")  # fmt: skip
    return pd.concat([rows, ended], ignore_index=True)


@functools.cache
def _sequences() -> SequenceData:
    """The split of :func:`movielens_sequences`, built once per process."""
    return movielens_sequences()


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """One seed of the published table: each trained model, plus the baselines on seed 0.

    Returns the runner's rows (model, metric, value) for HR@10 and NDCG@10 on test.
    """
    torch.set_num_threads(1)  # small models: one intra-op thread is fastest on a shared CPU
    results = run(_sequences(), [seed], with_baselines=seed == BASELINE_SEED)
    capped = results[~results.stopped_early]
    if len(capped):
        log.warning("runs that reached their epoch cap: %s", capped[["model", "seed"]].values)
    return tidy_rows(results).drop(columns="seed")


def per_seed_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The runner's per-seed rows back as :func:`run`'s frame (model, seed, hr@10, ndcg@10)."""
    wide = per_seed.pivot_table(index=["model", "seed"], columns="metric", values="value",
                                sort=False).reset_index()  # fmt: skip
    return wide[["model", "seed", *METRICS]].rename_axis(columns=None)


def print_verdicts(per_seed: pd.DataFrame, args: argparse.Namespace) -> None:
    """After the rows are recorded: SASRec against each other model (:func:`verdict`)."""
    table = summary(per_seed_table(per_seed))
    for other in ("popularity", "co-occurrence", "next-items enc-dec"):
        if "SASRec" in table.index and other in table.index:
            print(verdict(table, "SASRec", other))


EXPERIMENT = Experiment(
    name="sequential",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="ml-100k",
    task="next-item",
    description=__doc__.splitlines()[0],
    finish=print_verdicts,
)


def recorded(path=QUALITY_CSV) -> pd.DataFrame:
    """The recorded rows as a summary table: model, hr@10, ndcg@10, their stds, seeds, and for
    the trained models ``epochs`` (mean over seeds) and ``at_cap`` (share of seeds that reached
    the epoch cap); NaN for the baselines, which are not trained."""
    rows = runner.recorded(EXPERIMENT, BASELINES + TRAINED, path=path)
    table = rows[rows.metric.isin(METRICS)]
    wide = table.pivot(index="model", columns="metric", values=["value", "std"])
    out = pd.DataFrame({"seeds": table.groupby("model").seeds.max().astype(int)})
    for metric in METRICS:
        out[metric] = wide[("value", metric)]
        out[f"{metric} std"] = wide[("std", metric)]
    ended = rows[rows.metric.isin(["epochs", "at_cap"])].pivot(index="model", columns="metric",
                                                               values="value")  # fmt: skip
    for metric in ("epochs", "at_cap"):
        out[metric] = ended[metric] if metric in ended else np.nan
    return out.reindex([m for m in BASELINES + TRAINED if m in out.index])


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run sequential [--seeds 0 1 2 3 4] [--jobs N]`` (see :func:`runner.main`)."""
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
