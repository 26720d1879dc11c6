"""The multi-scenario benchmark: every multi-scenario model and the baselines, 5 seeds, two datasets.

Run ``MTREC_WRITE_RESULTS=1 mtrec run multiscenario`` (``--help`` for options; the runner
:mod:`mtrec.experiments.runner` runs the seeds, one :func:`run_seed` each, two worker processes by
default). Protocols (also in ``datasets/README.md``, section "Multi-scenario benchmark"):

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
With ``MTREC_WRITE_RESULTS=1`` (and no ``--no-write``) writes quality rows (mean ± std; scenario
= name or ``all``; NaN metrics, e.g. the AUC of a one-class scenario, are left out), then in
:func:`finish` the per-seed values (for the tests) and a cost table (parameters, train s/epoch,
inference µs/row on this CPU, measured after the quality runs in one process on one thread, the
models interleaved; ``--cost-only`` measures only these).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtrec.checks import check_int
from mtrec.data import TensorBatcher
from mtrec.data.tasks import ClickTask, clothing_departments, ml100k_by_age
from mtrec.eval.click import mean_auc, predict
from mtrec.eval.metrics import breakdown
from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment
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
from mtrec.reporting.store import stamp_machine, upsert, writing_enabled
from mtrec.train import count_parameters, fit
from mtrec.utils import set_seed

log = logging.getLogger(__name__)
Tensors = dict[str, torch.Tensor]
PREDICT_BATCH = 4096  # rows per inference batch
SEEDS = (0, 1, 2, 3, 4)  # the command's seeds (the published rows)


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


def write_cost(cost: pd.DataFrame) -> None:
    """The cost table, stamped with the machine, torch, commit and date."""
    cost = stamp_machine(cost)
    upsert(COST_CSV, cost, list(cost.columns), ["dataset", "model"])


@functools.cache
def _prepared(dataset: str) -> Prepared:
    return DATASETS[dataset]()


def prepared(dataset: str, max_epochs: int | None = None) -> Prepared:
    """The dataset's tensors and protocol (built once per process), ``max_epochs`` overriding."""
    data = _prepared(dataset)
    if max_epochs is None:
        return data
    return dataclasses.replace(data, max_epochs=check_int(max_epochs, "--max-epochs", min=1))


def finite_rows(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``rows`` less the NaN metric values, logged (a mean over seeds needs a value each seed).

    A metric is NaN when it is undefined on the rows it scores, e.g. the AUC of a scenario whose
    test rows hold one class.
    """
    bad = ~np.isfinite(rows["value"].to_numpy(dtype=float))
    if bad.any():
        log.info("seed %d: %d of %d metric values are NaN (undefined, e.g. the AUC of a scenario "
                 "whose test rows hold one class) and are left out: %s", seed, int(bad.sum()),
                 len(rows), rows[bad][["dataset", "model", "scenario", "task", "metric"]]
                 .drop_duplicates().head(3).to_dict("records"))  # fmt: skip
    return rows[~bad].reset_index(drop=True)


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """The runner's unit: every requested dataset × model for ``seed``, on one thread."""
    torch.set_num_threads(1)  # the published per-seed values were measured on one thread
    rows = []
    for dataset in args.datasets:
        data = prepared(dataset, args.max_epochs)
        rows.append(run_benchmark(data, args.models, [seed]))
    rows = finite_rows(pd.concat(rows, ignore_index=True), seed)
    return rows[["dataset", "model", "scenario", "task", "metric", "value"]]


def measure_costs(args: argparse.Namespace) -> pd.DataFrame:
    """:func:`measure_cost` of the requested models on each dataset, one process, one thread.

    Written to the cost table when ``MTREC_WRITE_RESULTS=1``.
    """
    torch.set_num_threads(1)  # cost: one process, one thread, models interleaved
    cost = pd.concat([measure_cost(prepared(d), args.models) for d in args.datasets])
    if writing_enabled():
        write_cost(cost)
    print(cost.round(3).to_string(index=False))
    return cost


def finish(per_seed: pd.DataFrame, args: argparse.Namespace) -> None:
    """After the quality rows: every seed's value (for the t-tests) and the cost table."""
    if writing_enabled():
        seeds = per_seed.assign(split="test")[SEED_COLUMNS]
        upsert(SEEDS_CSV, seeds, SEED_COLUMNS, [c for c in SEED_COLUMNS if c != "value"])
        print(f"{len(seeds)} per-seed values written to {SEEDS_CSV}")
    measure_costs(args)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epoch cap for a quick run (default: each dataset's protocol)")  # fmt: skip
    parser.add_argument("--cost-only", action="store_true", help="only the cost table")
    parser.add_argument("--no-write", action="store_true",
                        help="write no CSV even when MTREC_WRITE_RESULTS=1")  # fmt: skip
    parser.set_defaults(jobs=2)  # seeds in 2 worker processes, one thread each


EXPERIMENT = Experiment(
    name="multiscenario",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="ml-100k-age",  # every row names its dataset: ml-100k-age or clothing-departments
    description=__doc__.splitlines()[0],
    add_arguments=_add_arguments,
    finish=finish,
)


@contextlib.contextmanager
def _writing_disabled(disabled: bool):
    """``MTREC_WRITE_RESULTS`` unset inside the block when ``disabled`` (``--no-write``)."""
    saved = os.environ.pop("MTREC_WRITE_RESULTS", None) if disabled else None
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MTREC_WRITE_RESULTS"] = saved


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run multiscenario [--seeds ...] [--jobs 2] [--datasets ...] [--models ...]``.

    Returns the quality rows, or the cost table with ``--cost-only``.
    """
    args = runner.build_parser(EXPERIMENT).parse_args(argv)
    with _writing_disabled(args.no_write):
        if args.cost_only:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
            return measure_costs(args)
        return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
