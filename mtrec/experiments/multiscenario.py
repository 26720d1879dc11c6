"""The multi-scenario benchmark: every multi-scenario model and the baselines, 5 seeds, two datasets.

Run ``python -m mtrec.experiments.multiscenario`` (``--help`` for options). Protocols (also in
``datasets/README.md``, section "Multi-scenario benchmark"):

* ``ml-100k-age``: the task :func:`mtrec.data.tasks.ml100k_by_age` (MovieLens-100k, 3 scenarios
  by user age: <25, 25–34, ≥35, Scenario-Wise Rec's ML-1M groups; task ``like`` = rating > 3;
  sparse user, item, gender, occupation, zip code, first genre (embedding 16) and
  min-max-scaled age; random 8:1:1 split, seed 0); batch 4096, Adam 1e-3, at most 10 epochs,
  early stopping on validation AUC (patience 2).
* ``clothing-departments``: the task :func:`mtrec.data.tasks.clothing_departments` (Women's
  Clothing reviews, 6 departments, tasks recommended / like / helpful, item, class, age and a
  16-d TF-IDF SVD of the title; random 8:1:1 split, seed 0); batch 1024, Adam 1e-2, at most 4
  epochs, early stopping on mean validation AUC (patience 1).

The split is fixed; each seed changes initialisation and batch order, so the seeds pair up
across models and :func:`mtrec.eval.significance.compare_to_baseline` can test each model
against Shared-Bottom (``sb+scenario``: shared bottom, scenario embedding, per-scenario towers).
Writes quality rows (mean ± std; scenario = name or ``all``), the per-seed values (for the
tests) and a cost table (parameters, train s/epoch, inference µs/row on this CPU, measured after
the quality runs in one process on one thread, the models interleaved).
"""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.tasks import ClickTask, clothing_departments, ml100k_by_age
from mtrec.eval.click import mean_auc, predict
from mtrec.eval.metrics import breakdown
from mtrec.models import (
    HAMUR,
    M2M,
    STAR,
    AdaSparse,
    AdaSparseConfig,
    HAMURConfig,
    M2MConfig,
    PEPNet,
    PEPNetConfig,
    SARNet,
    SARNetConfig,
    ScenarioMoE,
    ScenarioMoEConfig,
    SharedBottom,
    SharedBottomConfig,
    STARConfig,
)
from mtrec.reporting.multiscenario import BASELINE, COST_CSV, SEED_COLUMNS, SEEDS_CSV
from mtrec.reporting.store import quality_rows, record_quality, upsert
from mtrec.train import count_parameters, fit
from mtrec.utils import env_info, git_commit, set_seed

log = logging.getLogger(__name__)
Tensors = dict[str, torch.Tensor]
PREDICT_BATCH = 4096  # rows per inference batch


@dataclass(frozen=True)
class Prepared:
    """A task and its training protocol: tensors per split and how to train on them.

    The first seven fields are the task's (:class:`~mtrec.data.tasks.ClickTask`: name, features,
    task and scenario names, the three splits); the last four are the benchmark's protocol.
    """

    name: str  # the dataset column of the results
    features: tuple  # declared features
    tasks: tuple[str, ...]  # T task names, label column order
    scenarios: tuple[str, ...]  # S scenario names, id order
    train: Tensors
    valid: Tensors
    test: Tensors
    batch_size: int
    lr: float
    max_epochs: int
    patience: int

    @classmethod
    def from_task(
        cls, task: ClickTask, *, batch_size: int, lr: float, max_epochs: int, patience: int
    ) -> Prepared:
        """``task`` with the training protocol (batch size, Adam lr, epoch cap, patience)."""
        return cls(task.name, task.features, task.task_names, task.scenario_names, task.train,
                   task.valid, task.test, batch_size=batch_size, lr=lr, max_epochs=max_epochs,
                   patience=patience)  # fmt: skip


def prepare_ml100k_age(max_epochs: int = 10) -> Prepared:
    """ML-100k by age group (:func:`mtrec.data.tasks.ml100k_by_age`, protocol above)."""
    return Prepared.from_task(ml100k_by_age(), batch_size=4096, lr=1e-3, max_epochs=max_epochs,
                              patience=2)  # fmt: skip


def prepare_clothing(max_epochs: int = 4) -> Prepared:
    """Clothing departments (:func:`mtrec.data.tasks.clothing_departments`, protocol above)."""
    return Prepared.from_task(clothing_departments(), batch_size=1024, lr=1e-2,
                              max_epochs=max_epochs, patience=1)  # fmt: skip


DATASETS: dict[str, Callable[[], Prepared]] = {
    "ml-100k-age": prepare_ml100k_age,
    "clothing-departments": prepare_clothing,
}

# name → (features, S, T) → model. Widths are matched: 64 → 32 hidden units in every network.
MODELS: dict[str, Callable[[tuple, int, int], nn.Module]] = {
    "one_for_all": lambda f, s, t: SharedBottom(SharedBottomConfig(f, t, bottom_hidden=(64, 32))),
    "per_scenario": lambda f, s, t: SharedBottom(SharedBottomConfig(f, t, bottom_hidden=(64, 32))),
    BASELINE: lambda f, s, t: SharedBottom(SharedBottomConfig(
        f, t, bottom_hidden=(64, 32), num_scenarios=s, scenario_towers=True)),
    "star": lambda f, s, t: STAR(STARConfig(f, s, t, hidden=(64, 32))),
    "scenario_moe": lambda f, s, t: ScenarioMoE(ScenarioMoEConfig(f, s, t, expert_hidden=(64, 32))),
    "pepnet": lambda f, s, t: PEPNet(PEPNetConfig(f, s, t, tower_hidden=(64, 32))),
    "m2m": lambda f, s, t: M2M(M2MConfig(f, s, t, expert_dim=32, out_hidden=(32,))),
    "adasparse": lambda f, s, t: AdaSparse(AdaSparseConfig(f, s, t, hidden=(64, 32))),
    "sarnet": lambda f, s, t: SARNet(SARNetConfig(f, s, t, expert_dim=32, tower_hidden=(32,))),
    "hamur": lambda f, s, t: HAMUR(HAMURConfig(f, s, t, hidden=(64, 32))),
}  # fmt: skip


def _rows(part: Tensors, mask: torch.Tensor) -> Tensors:
    return {k: v[mask] for k, v in part.items()}


def _predict(model: nn.Module, part: Tensors) -> torch.Tensor:
    """(N, T) probabilities over a split, in batches of :data:`PREDICT_BATCH` rows."""
    return predict(model, TensorBatcher(part, PREDICT_BATCH))


def train(make: Callable[[], nn.Module], data: Prepared, train: Tensors, valid: Tensors,
          seed: int) -> nn.Module:  # fmt: skip
    """Train one model with early stopping on validation (best state restored)."""
    set_seed(seed)
    model = make()
    batches = TensorBatcher(train, data.batch_size, shuffle=True, seed=seed)
    fit(model, batches, valid_fn=lambda m: mean_auc(m, valid), epochs=data.max_epochs, lr=data.lr,
        patience=data.patience, seed=seed, device="cpu", progress=False)  # fmt: skip
    return model


def _scenario_rows(data: Prepared, k: int) -> tuple[Tensors, Tensors, Tensors]:
    """Scenario k's train, validation and test rows."""
    return tuple(_rows(p, p["scenario_ids"] == k) for p in (data.train, data.valid, data.test))


def run_model(name: str, data: Prepared, seed: int) -> pd.DataFrame:
    """Train ``name`` on ``data`` with ``seed``; tidy test metrics per scenario, task, metric."""
    return train_and_score(name, data, seed)[0]


def train_and_score(name: str, data: Prepared, seed: int) -> tuple[pd.DataFrame, nn.Module | None]:
    """:func:`run_model`'s metrics and the trained model (``None`` for ``per_scenario``: S models)."""
    make = lambda: MODELS[name](data.features, len(data.scenarios), len(data.tasks))  # noqa: E731
    sid = data.test["scenario_ids"]
    model = None
    if name == "per_scenario":  # one model per scenario, on its own rows only, stitched
        probs = torch.zeros_like(data.test["labels"])
        for k in range(len(data.scenarios)):
            train_k, valid_k, test_k = _scenario_rows(data, k)
            probs[sid == k] = _predict(train(make, data, train_k, valid_k, seed), test_k)
    else:
        model = train(make, data, data.train, data.valid, seed)
        probs = _predict(model, data.test)
    labels = data.test["labels"]
    metrics = breakdown(sid, {n: labels[:, i] for i, n in enumerate(data.tasks)},
                        {n: probs[:, i] for i, n in enumerate(data.tasks)},
                        scenario_names=list(data.scenarios))  # fmt: skip
    metrics = metrics.assign(dataset=data.name, model=name, seed=seed, split="test")
    return metrics[SEED_COLUMNS], model


def run_benchmark(data: Prepared, models: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Every model × seed on one dataset: the per-seed test metrics."""
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    per_seed = []
    for name in models:
        for seed in seeds:
            start = time.perf_counter()
            per_seed.append(run_model(name, data, seed))
            log.info("%s %s seed %d: %.1f s", data.name, name, seed, time.perf_counter() - start)
    return pd.concat(per_seed, ignore_index=True)


def measure_cost(data: Prepared, models: Sequence[str], repeats: int = 3) -> pd.DataFrame:
    """Parameters, train s/epoch (median) and inference µs/row (best) of each model, in turn.

    Run in one process on the current thread setting, the models interleaved in each repeat so
    that a change of machine load hits them all alike. ``per_scenario`` counts its S models:
    an epoch trains each on its own rows, inference runs each on its own rows.
    """
    members = {}
    for name in models:
        make = lambda name=name: MODELS[name](data.features, len(data.scenarios), len(data.tasks))  # noqa: E731
        parts = ([_scenario_rows(data, k) for k in range(len(data.scenarios))]
                 if name == "per_scenario" else [(data.train, data.valid, data.test)])  # fmt: skip
        members[name] = [(make(), tr, te) for tr, _, te in parts]
    epochs = {name: [] for name in models}
    infers = {name: [] for name in models}
    for _ in range(repeats):
        for name, runs in members.items():
            epochs[name].append(sum(
                fit(m, TensorBatcher(tr, data.batch_size, shuffle=True), epochs=1, lr=data.lr,
                    device="cpu", progress=False).epochs[0]["seconds"] for m, tr, _ in runs
            ))  # fmt: skip
            start = time.perf_counter()
            for model, _, test in runs:
                _predict(model, test)
            infers[name].append((time.perf_counter() - start) / len(data.test["labels"]) * 1e6)
    return pd.DataFrame([
        {"dataset": data.name, "model": name, "train_s_per_epoch": float(np.median(epochs[name])),
         "infer_us_per_row": float(np.min(infers[name])),
         "parameters": sum(count_parameters(m) for m, _, _ in members[name])}
        for name in models
    ])  # fmt: skip


def quality_frame(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Quality rows (mean ± std over seeds) from the per-seed metrics."""
    frames = []
    for (dataset, model, scenario, task), g in per_seed.groupby(
        ["dataset", "model", "scenario", "task"], sort=False
    ):
        metrics = {m: v.sort_values("seed")["value"].dropna() for m, v in g.groupby("metric")}
        frames.append(quality_rows(dataset=dataset, model=model, scenario=scenario, task=task,
                                   metrics={m: v for m, v in metrics.items() if len(v)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def write_quality(per_seed: pd.DataFrame) -> None:
    """Quality rows (mean ± std, via ``record_quality``) and every seed's value."""
    record_quality(quality_frame(per_seed))
    upsert(SEEDS_CSV, per_seed, SEED_COLUMNS, [c for c in SEED_COLUMNS if c != "value"])


def write_cost(cost: pd.DataFrame) -> None:
    """The cost table, stamped with the machine, torch, commit and date."""
    info = env_info()
    cost = cost.assign(threads=torch.get_num_threads(), cpu=info["cpu"], torch=info["torch"],
                       commit=git_commit(), date=date.today().isoformat())  # fmt: skip
    upsert(COST_CSV, cost, list(cost.columns), ["dataset", "model"])


@functools.cache
def _prepared(dataset: str) -> Prepared:
    return DATASETS[dataset]()


def _job(dataset: str, model: str, seeds: Sequence[int], threads: int) -> pd.DataFrame:
    """One (dataset, model) pair over every seed, in a worker process."""
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_benchmark(_prepared(dataset), [model], seeds)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m mtrec.experiments.multiscenario [--seeds 5] [--jobs 2] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--cost-only", action="store_true", help="only the cost table")
    parser.add_argument("--no-write", action="store_true", help="print, write no CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.no_write:  # an explicit command: it writes its results unless told not to
        os.environ.setdefault("MTREC_WRITE_RESULTS", "1")
    started = time.perf_counter()
    if not args.cost_only:
        pairs = [(d, m) for d in args.datasets for m in args.models]
        seeds = list(range(args.seeds))
        context = multiprocessing.get_context("spawn")  # no forked OpenMP state
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            frames = list(pool.map(_job, *zip(*pairs), [seeds] * len(pairs), [1] * len(pairs)))
        per_seed = pd.concat(frames, ignore_index=True)
        if not args.no_write:
            write_quality(per_seed)
        overall = per_seed[(per_seed.scenario == "all") & (per_seed.metric == "auc")]
        print(overall.groupby(["dataset", "task", "model"])["value"].agg(["mean", "std"]).round(4))
        log.info("quality: %.0f s", time.perf_counter() - started)
    torch.set_num_threads(1)  # cost: one process, one thread, models interleaved
    cost = pd.concat([measure_cost(_prepared(d), args.models) for d in args.datasets])
    if not args.no_write:
        write_cost(cost)
    print(cost.round(3).to_string(index=False))
    print(f"multiscenario benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
