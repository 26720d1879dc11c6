"""One runner for every experiment: seeds in, per-seed tidy rows, mean ± std rows out.

An experiment is a declaration (:class:`Experiment`): its name, a function that runs ONE seed
and returns tidy rows, and what its rows are called in ``benchmarks/results/quality.csv``. The
runner does the rest, the same way for all of them:

* runs the seeds in order, printing progress and the total time;
* with ``--per-seed-dir DIR`` writes each seed's rows to ``DIR/<name>_seed<k>.csv`` as soon as
  the seed ends, and skips a seed whose file is already there (a long run resumes where it
  stopped); ``--merge DIR`` records the rows collected there;
* records one quality row per (dataset, model, scenario, task, metric): the mean and sample std
  over seeds (:func:`mtrec.reporting.store.quality_rows`), when ``MTREC_WRITE_RESULTS=1``;
* reads the recorded rows back for a notebook (:func:`recorded`).

``mtrec run <name>`` and ``python -m mtrec.experiments.<name>`` both end in :func:`main`.

A seed's rows are a DataFrame with the columns ``model``, ``metric`` and ``value``, and
optionally ``dataset``, ``scenario`` and ``task`` (the experiment's defaults fill them).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtrec.checks import arg_int, arg_path
from mtrec.reporting.store import QUALITY_CSV, load_quality, quality_rows, record_quality

log = logging.getLogger(__name__)

KEY = ["dataset", "model", "scenario", "task", "metric"]  # one quality row per key


@dataclass(frozen=True)
class Experiment:
    """What to run and what its rows are called; :func:`main` runs it."""

    name: str  # the module name under mtrec.experiments, and the per-seed file prefix
    run_seed: Callable[[int, argparse.Namespace], pd.DataFrame]  # one seed → tidy rows
    seeds: tuple[int, ...]  # the seeds of the published rows (at least 3)
    dataset: str  # default ``dataset`` column of the rows
    task: str = "all"  # default ``task`` column
    scenario: str = "all"  # default ``scenario`` column
    description: str = ""  # one line for --help
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None  # extra options
    # after the rows are recorded: extra outputs of the run (a per-seed table, a cost table)
    finish: Callable[[pd.DataFrame, argparse.Namespace], None] | None = None

    def __post_init__(self) -> None:
        if len(self.seeds) < 3:
            raise ValueError(
                f"experiment {self.name!r} declares seeds {self.seeds}; a published table "
                "needs at least 3 seeds (mean ± std)"
            )


def tidy(experiment: Experiment, rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``rows`` with the experiment's default columns filled in and the seed added."""
    missing = [c for c in ("model", "metric", "value") if c not in rows]
    if missing:
        raise ValueError(
            f"experiment {experiment.name!r}: a seed's rows need the columns model, metric and "
            f"value; they lack {missing} (got {list(rows.columns)})"
        )
    out = rows.copy()
    for column, default in (("dataset", experiment.dataset), ("scenario", experiment.scenario),
                            ("task", experiment.task)):  # fmt: skip
        if column not in out:
            out[column] = default
    if not np.isfinite(out["value"].to_numpy(dtype=float)).all():
        bad = out[~np.isfinite(out["value"].to_numpy(dtype=float))]
        raise ValueError(
            f"experiment {experiment.name!r}, seed {seed}: {len(bad)} metric values are NaN or "
            f"infinite, e.g. {bad[KEY].head(3).to_dict('records')}; a mean over seeds would hide "
            "them, so nothing is recorded: fix the run (or leave the metric out of its rows)"
        )
    out["seed"] = seed
    return out[[*KEY, "value", "seed"]]


def seed_file(folder: Path, experiment: Experiment, seed: int) -> Path:
    return Path(folder) / f"{experiment.name}_seed{seed}.csv"


def _one_seed(experiment: Experiment, seed: int, args: argparse.Namespace,
              threads: int | None) -> pd.DataFrame:  # fmt: skip
    """One seed's tidy rows (in this process or a worker with ``threads`` intra-op threads)."""
    if threads is not None:
        torch.set_num_threads(threads)
    return tidy(experiment, experiment.run_seed(seed, args), seed)


def _save(rows: pd.DataFrame, path: Path | None) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    rows.to_csv(partial, index=False)
    partial.replace(path)  # atomic: a killed run leaves no half-written seed


def run_seeds(
    experiment: Experiment,
    seeds: Sequence[int],
    args: argparse.Namespace,
    *,
    per_seed_dir: Path | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """Run ``seeds`` (resuming from ``per_seed_dir``); return every seed's tidy rows.

    ``jobs > 1`` runs the seeds in that many worker processes with one intra-op thread each
    (spawned: no forked OpenMP state); a seed's rows do not depend on where it ran.
    """
    if jobs < 1:
        raise ValueError(f"--jobs is the number of worker processes (>= 1), got {jobs}")
    frames, start = {}, time.perf_counter()
    paths = {s: seed_file(per_seed_dir, experiment, s) if per_seed_dir else None for s in seeds}
    todo = []
    for seed in seeds:
        if paths[seed] is not None and paths[seed].exists():
            print(f"[{experiment.name}] seed {seed}: kept from {paths[seed]}", flush=True)
            frames[seed] = pd.read_csv(paths[seed])
        else:
            todo.append(seed)

    def done(seed: int, rows: pd.DataFrame, tick: float) -> None:
        _save(rows, paths[seed])
        frames[seed] = rows
        print(f"[{experiment.name}] seed {seed} ({len(frames)}/{len(seeds)}) after "
              f"{time.perf_counter() - tick:.0f} s", flush=True)  # fmt: skip

    if jobs == 1 or len(todo) <= 1:
        for seed in todo:
            tick = time.perf_counter()
            done(seed, _one_seed(experiment, seed, args, None), tick)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
            futures = {s: pool.submit(_one_seed, experiment, s, args, 1) for s in todo}
            for seed, future in futures.items():
                done(seed, future.result(), start)
    print(f"[{experiment.name}] {len(seeds)} seeds in {time.perf_counter() - start:.0f} s")
    return pd.concat([frames[s] for s in seeds], ignore_index=True)


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Quality rows: mean and sample std over seeds for each (dataset, model, …, metric)."""
    duplicated = per_seed.duplicated([*KEY, "seed"])
    if duplicated.any():
        raise ValueError(
            f"{int(duplicated.sum())} rows repeat a (model, metric, seed) of another row, e.g. "
            f"{per_seed[duplicated][[*KEY, 'seed']].head(2).to_dict('records')}; each seed must "
            "report each metric once (was a seed merged twice?)"
        )
    groups = per_seed.sort_values("seed").groupby(KEY, sort=False)
    frames = [
        quality_rows(dataset=d, model=m, scenario=s, task=t, metrics={metric: g["value"]})
        for (d, m, s, t, metric), g in groups
    ]
    return pd.concat(frames, ignore_index=True)


def record(per_seed: pd.DataFrame) -> bool:
    """Write :func:`summarise`'s rows to quality.csv when ``MTREC_WRITE_RESULTS=1``."""
    return record_quality(summarise(per_seed))


def recorded(
    experiment: Experiment,
    models: Sequence[str] | None = None,
    *,
    datasets: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    path: Path = QUALITY_CSV,
) -> pd.DataFrame:
    """The experiment's recorded rows, optionally of ``models`` only.

    By default the rows of its ``dataset`` and ``task``; an experiment whose rows span several
    datasets or tasks names them in ``datasets`` / ``tasks``.
    """
    table = load_quality(path)
    datasets = [experiment.dataset] if datasets is None else list(datasets)
    tasks = [experiment.task] if tasks is None else list(tasks)
    table = table[table.dataset.isin(datasets) & table.task.isin(tasks)]
    if models is not None:
        table = table[table.model.isin(list(models))]
    return table.reset_index(drop=True)


def merge(experiment: Experiment, folder: str | Path) -> pd.DataFrame:
    """The per-seed rows collected in ``folder`` (raises when there are none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--merge {folder}: no such folder; pass the --per-seed-dir of earlier runs"
        )
    files = sorted(folder.glob(f"{experiment.name}_seed*.csv"))
    if not files:
        raise FileNotFoundError(
            f"--merge {folder}: no {experiment.name}_seed<k>.csv in it; run with "
            f"--per-seed-dir {folder} first"
        )
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def build_parser(experiment: Experiment) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"mtrec run {experiment.name}", description=experiment.description or None
    )
    parser.add_argument("--seeds", type=arg_int(min=0), nargs="+", default=list(experiment.seeds),
                        help=f"seeds to run (default {list(experiment.seeds)})")  # fmt: skip
    parser.add_argument("--per-seed-dir", type=lambda text: Path(arg_path(text)), default=None,
                        help="write each seed's rows here as it ends; seeds already there are "
                        "kept (resume)")  # fmt: skip
    parser.add_argument(
        "--merge",
        type=lambda text: Path(arg_path(text)),
        default=None,
        help="record the per-seed rows collected in this folder, run nothing",
    )
    parser.add_argument("--jobs", type=arg_int(min=1, max=256), default=1,
                        help="worker processes, one thread each (default: %(default)s; 1 runs in this process)")  # fmt: skip
    if experiment.add_arguments is not None:
        experiment.add_arguments(parser)
    return parser


def main(experiment: Experiment, argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Parse ``argv``, run (or merge) the seeds, print the table, record the rows."""
    parser = build_parser(experiment)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.merge is not None:
        try:
            per_seed = merge(experiment, args.merge)
        except FileNotFoundError as error:
            parser.error(str(error))  # exits 2 with the usage line: nothing was recorded
    else:
        per_seed = run_seeds(
            experiment, args.seeds, args, per_seed_dir=args.per_seed_dir, jobs=args.jobs
        )
    table = summarise(per_seed)
    print(table[[*KEY, "value", "std", "seeds"]].round(4).to_string(index=False))
    written = record(per_seed)
    where = QUALITY_CSV if written else "nowhere (set MTREC_WRITE_RESULTS=1 to write)"
    print(f"{len(table)} rows written to {where}")
    if experiment.finish is not None:
        experiment.finish(per_seed, args)
    return table
