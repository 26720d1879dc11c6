"""Next-item recommendation on MovieLens-100k: two baselines, SASRec and a next-items
encoder-decoder, over several seeds (notebook 03).

Protocol (also written in notebook 03):

* ``mtrec.data.leave_last_out``: each user's ratings in time order (ties by item id); the last
  one is the test target, the second-to-last the validation target, the rest is history. A model
  reads the most recent :data:`MAX_LEN` items and scores all 1,682 movies; movies the user already
  rated are excluded; HR@10 and NDCG@10 (:func:`mtrec.eval.next_item.evaluate_next_item`).
* Baselines (deterministic, one run): popularity, and co-occurrence with its window and number of
  voting recent items picked on validation NDCG@10.
* SASRec (D = :data:`D_MODEL`, dropout 0.1, full-softmax loss) and the next-items encoder-decoder
  (1 encoder + 1 decoder layer, k = 3 next items, 2 random cuts per user per epoch): Adam lr
  :data:`LR`, batches of :data:`BATCH_SIZE`, early stopping on validation NDCG@10 with patience
  :data:`PATIENCE` (long enough that one noisy epoch does not end training) and at most
  :data:`SASREC_EPOCHS` / :data:`GEN_EPOCHS` epochs (caps that early stopping reaches first; each
  run records whether it did). The test targets are read once, with the best validation state.
* Seeds :data:`SEEDS`; tables report mean ± sample std over seeds. A difference between two
  models counts only when it exceeds the larger of their seed stds (:func:`verdict`).

Run ``MTREC_WRITE_RESULTS=1 python -m mtrec.experiments.sequential`` to write the rows (dataset
``ml-100k``, task ``next-item``) into ``benchmarks/results/quality.csv``.
"""

from __future__ import annotations

import argparse
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
from mtrec.models.cf.popularity import Popularity
from mtrec.models.sequential.cooccurrence import CoOccurrence
from mtrec.models.sequential.next_items import NextItems, NextItemsConfig, NextItemsSampler
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig
from mtrec.reporting.store import QUALITY_CSV, load_quality, quality_rows, record_quality
from mtrec.train import History, fit
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2, 3, 4)
MAX_LEN = 50  # L: most recent items a model reads
D_MODEL = 64  # D of both trained models
LR = 5e-3  # Adam learning rate
BATCH_SIZE = 64  # users (SASRec) or cuts (encoder-decoder) per step
PATIENCE = 5  # epochs without a better validation NDCG@10 before stopping
SASREC_EPOCHS = 80  # cap on SASRec epochs (early stopping ends every seed before it)
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
    seq: SequenceData, seed: int, *, epochs: int = SASREC_EPOCHS, device: str | None = None
) -> Trained:
    """SASRec (full-softmax loss) fitted with early stopping on validation NDCG@10.

    ``device``: None = CUDA when present, else CPU (:func:`mtrec.utils.get_device`).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    set_seed(seed)
    model = SASRec(SASRecConfig(num_items=seq.num_items, max_len=seq.train_inputs.shape[1],
                                d_model=D_MODEL, dropout=0.1))  # fmt: skip
    batches = TensorBatcher(seq.train_batch(), BATCH_SIZE, shuffle=True, seed=seed, device=device)
    history = fit(model, batches, valid_fn=valid_ndcg(seq, device), epochs=epochs, lr=LR,
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
) -> pd.DataFrame:
    """Baselines once, each trained model per seed: one row per (model, seed).

    Columns: model, seed, hr@10, ndcg@10, best_epoch, epochs (run), stopped_early, seconds.
    ``epochs`` overrides the caps per model name (a short live run uses small ones).
    """
    rows = []
    tested, _ = baselines(seq)
    for name, metrics in tested.items():
        rows.append({"model": name, "seed": 0, **metrics, "best_epoch": np.nan,
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
    noise = np.nanmax([table.loc[a, f"{metric} std"], table.loc[b, f"{metric} std"], 0.0])
    if abs(diff) <= noise:
        return f"{a} vs {b}: no difference ({metric} {diff:+.4f}, seed std {noise:.4f})"
    winner = a if diff > 0 else b
    return f"{a} vs {b}: {winner} is better ({metric} {diff:+.4f} > seed std {noise:.4f})"


def record(results: pd.DataFrame) -> bool:
    """Write mean ± std rows (dataset ml-100k, task next-item) to quality.csv when enabled."""
    rows = [quality_rows(dataset="ml-100k", model=name, task="next-item", scenario="all",
                         split="test", metrics={m: group.sort_values("seed")[m] for m in METRICS})
            for name, group in results.groupby("model", sort=False)]  # fmt: skip
    return record_quality(pd.concat(rows, ignore_index=True))


def recorded(path=QUALITY_CSV) -> pd.DataFrame:
    """The rows :func:`record` wrote, as a summary table: model, hr@10, ndcg@10, stds, seeds."""
    table = load_quality(path)
    table = table[(table.dataset == "ml-100k") & (table.task == "next-item")
                  & table.model.isin(BASELINES + TRAINED) & table.metric.isin(METRICS)]  # fmt: skip
    wide = table.pivot(index="model", columns="metric", values=["value", "std"])
    out = pd.DataFrame({"seeds": table.groupby("model").seeds.max().astype(int)})
    for metric in METRICS:
        out[metric] = wide[("value", metric)]
        out[f"{metric} std"] = wide[("std", metric)]
    return out.reindex([m for m in BASELINES + TRAINED if m in out.index])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mtrec.experiments.sequential [--seeds 5]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1 (>= 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # small models: one intra-op thread is fastest on a shared CPU
    start = time.perf_counter()
    results = run(movielens_sequences(), range(args.seeds))
    print(results.round(4).to_string(index=False))
    capped = results[~results.stopped_early]
    if len(capped):
        log.warning("runs that reached their epoch cap: %s", capped[["model", "seed"]].values)
    table = summary(results)
    print(table.round(4).to_string())
    for other in ("popularity", "co-occurrence", "next-items enc-dec"):
        print(verdict(table, "SASRec", other))
    written = record(results)
    where = QUALITY_CSV if written else "nowhere (set MTREC_WRITE_RESULTS=1 to write)"
    print(f"{len(results)} runs in {time.perf_counter() - start:.0f} s; rows written to {where}")


if __name__ == "__main__":
    main()
