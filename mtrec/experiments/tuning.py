"""Picking SASRec's and P5's settings on validation: a small coordinate search (notebooks 03, 08).

Protocol:

* ML-100k leave-last-out (:func:`mtrec.experiments.generative.load_next_item_data`); every
  setting is scored by **validation** NDCG@10 (full ranking of each user's validation film, the
  history being the training items); test targets are never read here.
* Coordinate search, seed :data:`SEED`: start from each model's settings in :data:`SPACES`
  (first value of each row), then for each setting in turn try its values with the others held
  at the best found so far, and keep the best. Every run trains with early stopping on the same
  validation score, so each setting is compared at its own best epoch.
* P5 is searched on the collaborative codes (the scheme that ranks best in notebook 08); the
  values picked are used for every scheme.
* The picked values are the constants of :mod:`mtrec.experiments.sequential` (``D_MODEL``,
  ``SASREC_LR``,
  ``DROPOUT``, ``HEADS``) and :mod:`mtrec.experiments.generative` (``D_MODEL``, ``LR``,
  ``DROPOUT``, ``HEADS``, ``POSITIONS``); a unit test checks the two agree with this table.

``MTREC_WRITE_RESULTS=1 mtrec run tuning`` writes one row per run tried (model, the settings,
validation NDCG@10, epochs, seconds, ``picked``) to ``benchmarks/results/tuning.csv``; about
25 minutes on one thread.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from mtrec.reporting.store import RESULTS_DIR, upsert, writing_enabled

log = logging.getLogger(__name__)

SEED = 0
TUNING_CSV = RESULTS_DIR / "tuning.csv"
# model → setting → values tried (the first is the starting point)
SPACES: dict[str, dict[str, tuple]] = {
    "sasrec": {"d_model": (64, 32, 128), "lr": (5e-3, 1e-3), "dropout": (0.1, 0.3),
               "heads": (1, 2)},
    "p5": {"d_model": (32, 64), "lr": (1e-2, 3e-3), "dropout": (0.1, 0.2), "heads": (4, 2),
           "positions": (10, 20, 50)},
}  # fmt: skip
KEY = ["d_model", "lr", "dropout", "heads", "positions"]  # one run's settings (its row's key)
COLUMNS = ["model", "d_model", "lr", "dropout", "heads", "positions", "valid_ndcg@10", "epochs",
           "seconds", "picked"]  # fmt: skip


def coordinate_search(
    space: dict[str, tuple], score: Callable[[dict], tuple[float, int]]
) -> pd.DataFrame:
    """Try each setting's values in turn, the others at the best so far; keep the best.

    Args:
        space: setting → values (the first value is the starting point).
        score: settings → (validation score, higher is better; epochs run).

    Returns:
        One row per distinct settings tried: the settings, ``valid``, ``epochs``, ``seconds``
        and ``picked`` (True on the final best).
    """
    best = {name: values[0] for name, values in space.items()}
    tried: dict[tuple, dict] = {}

    def run(settings: dict) -> float:
        key = tuple(settings.items())
        if key not in tried:
            start = time.perf_counter()
            value, epochs = score(settings)
            tried[key] = {**settings, "valid": value, "epochs": epochs,
                          "seconds": time.perf_counter() - start}  # fmt: skip
            log.info("%s: valid %.4f (%d epochs)", settings, value, epochs)
        return tried[key]["valid"]

    for name, values in space.items():
        scores = {v: run({**best, name: v}) for v in values}
        best[name] = max(values, key=lambda v: scores[v])  # ties keep the earlier (simpler) value
    table = pd.DataFrame(list(tried.values()))
    table["picked"] = [all(r[k] == best[k] for k in space) for r in tried.values()]
    return table


def sasrec_score(settings: dict) -> tuple[float, int]:
    """SASRec trained as notebook 03 trains it, with ``settings``: validation NDCG@10."""
    from mtrec.experiments import sequential

    seq = sequential._sequences()
    history = sequential.train_sasrec(seq, SEED, device="cpu", **settings).history
    return history.best_score, len(history.epochs)  # the restored state's validation NDCG@10


def p5_score(data) -> Callable[[dict], tuple[float, int]]:
    """P5 (collaborative codes) trained as notebook 08 trains it, with the given settings."""
    from mtrec.experiments import generative

    def score(settings: dict) -> tuple[float, int]:
        _, history = generative.train_p5(data, "collaborative", SEED, **settings)
        return history.best_score, len(history.epochs)

    return score


def run(models: Sequence[str] = ("sasrec", "p5")) -> pd.DataFrame:
    """The search for each of ``models``: :data:`COLUMNS` rows."""
    from mtrec.experiments.generative import load_next_item_data

    frames = []
    for name in models:
        score = sasrec_score if name == "sasrec" else p5_score(load_next_item_data())
        table = coordinate_search(SPACES[name], score).assign(model=name)
        frames.append(table.rename(columns={"valid": "valid_ndcg@10"}))
    out = pd.concat(frames, ignore_index=True)
    return out.reindex(columns=COLUMNS)


def recorded(model: str, path=TUNING_CSV) -> pd.DataFrame:
    """The recorded search of ``model``: its settings, validation NDCG@10, epochs, seconds and
    ``picked``, best first."""
    table = pd.read_csv(path)
    rows = table[table.model == model].sort_values("valid_ndcg@10", ascending=False)
    columns = [*SPACES[model], "valid_ndcg@10", "epochs", "seconds", "picked"]
    return rows[columns].reset_index(drop=True)


def picked(model: str, path=TUNING_CSV) -> dict:
    """The settings recorded as picked for ``model`` ("sasrec" or "p5")."""
    table = pd.read_csv(path)
    row = table[(table.model == model) & table.picked]
    if len(row) != 1:
        raise ValueError(f"{path} has {len(row)} picked rows for {model!r}; expected 1: run "
                         "MTREC_WRITE_RESULTS=1 mtrec run tuning")  # fmt: skip
    return {k: row.iloc[0][k] for k in SPACES[model]}


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run tuning [--models sasrec p5]``."""
    parser = argparse.ArgumentParser(prog="mtrec run tuning", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tuple(SPACES), default=list(SPACES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    table = run(args.models)
    print(table.to_string(index=False))
    if writing_enabled():
        upsert(TUNING_CSV, table.assign(key=table[KEY].apply(lambda r: " ".join(map(str, r)), axis=1)),
               [*COLUMNS, "key"], ["model", "key"])  # fmt: skip
        print(f"{len(table)} rows written to {TUNING_CSV}")
    print(f"tuning done in {time.perf_counter() - start:.0f} s")
    return table


if __name__ == "__main__":
    main()
