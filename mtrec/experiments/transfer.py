"""Leave one Clothing department out, then adapt STAR to it from n labelled rows (notebook 12).

Protocol (also written in notebook 12 and ``datasets/README.md``):

* Data and features: the task :func:`mtrec.data.tasks.clothing_leave_one_out` (notebook 05's
  Women's Clothing reviews, scenario = department, tasks recommended / like / helpful, one seeded
  80/10/10 random split; features item, class, age and a 16-d TF-IDF SVD of the review title,
  fitted on the training part's inputs, never on labels), the held-out department last.
* One department (default Jackets) is held out. The base STAR (hidden (64, 32), Adam lr 1e-2,
  batches of 1024, at most 2 epochs, early stopping on mean validation AUC: notebook 05's
  settings) learns the other five departments' training rows, selected on their validation rows.
* The held-out department's *training* rows are shuffled per seed: the first
  :data:`VALID_POOL` are a fixed validation pool, the next n are the labelled rows (nested: the
  16 rows are inside the 64), n in :data:`SIZES` (sizes above the rows that exist are skipped;
  "all" = every non-pool row). Its validation + test rows, never trained or selected on, are the
  test set. The oracle is a STAR trained on the five departments and all n rows of the sixth.
* Adaptation (and from-scratch training on the n rows): Adam lr 1e-2, batches of 32, at most 30
  epochs, early stopping on the pool's mean AUC (patience 5); an adapted model whose pool AUC
  never beats its un-adapted start is returned as the start (selection on validation only).
* Seeds 0..4 (model initialisation and the draw of pool and rows); mean ± std over seeds.

Run ``MTREC_WRITE_RESULTS=1 mtrec run transfer [--held-out Jackets]`` (the experiment runner,
:mod:`mtrec.experiments.runner`) to write the rows (model ``star-<strategy>``, scenario the held-out
department, task ``<task>@n=<n>``) into ``benchmarks/results/quality.csv``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.data import CLOTHING_SCENARIOS, Batch, TensorBatcher, clothing_multitask, random_split
from mtrec.data.tasks import ClickTask, clothing_leave_one_out
from mtrec.eval.click import mean_auc
from mtrec.eval.metrics import auc
from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment
from mtrec.extractors.text import TextEncoder
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.reporting.store import QUALITY_CSV
from mtrec.train import fit
from mtrec.train.transfer import add_scenario, nearest_scenario, prepare_adaptation
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

TASKS = ("recommended", "like", "helpful")
SIZES: tuple[int | None, ...] = (0, 16, 64, 256, 1024, None)  # None = every non-pool row
SIZE_LABELS = ("0", "16", "64", "256", "1024", "all")  # the ``n`` of SIZES in the rows
SEEDS = (0, 1, 2, 3, 4)
VALID_POOL = 200  # held-out rows kept for early stopping / selection
ZERO_SHOT = ("shared", "mean", "nearest")  # add_scenario inits, used as they are (n = 0)
ADAPTED = {  # strategy → (init of the new scenario, mtrec.train.transfer strategy)
    "finetune-all": ("nearest", "all"),
    "finetune-new": ("shared", "new"),
    "finetune-new-nearest": ("nearest", "new"),
    "adapter": ("nearest", "adapter"),
}


@dataclass
class TransferData:
    """The leave-one-out task: known scenarios are ids 0..S-1, the held-out one is id S."""

    features: tuple  # declared STAR input features
    names: list[str]  # the S known departments, in id order
    held_out: str  # the new department
    train: Batch  # known departments' training rows
    valid: Batch  # known departments' validation rows
    pool: Batch  # the held-out department's training rows (validation pool + labelled rows)
    test: Batch  # the held-out department's validation + test rows
    profiles: Tensor  # (S, 384) mean MiniLM embedding of each known department's item texts
    profile: Tensor  # (384,) the same for the held-out department


def _take(batch: Batch, index: Tensor) -> Batch:
    return {k: v[index] for k, v in batch.items()}


def _cat(a: Batch, b: Batch) -> Batch:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def department_profiles(
    names: Sequence[str], encoder: TextEncoder | None = None, *, split_seed: int = 0
) -> Tensor:
    """(S, 384) unit MiniLM profile of each department in ``names``, from its training rows.

    Each training row's item text is its class name ("Outerwear", "Knits", ...); a department's
    profile is the mean embedding over its rows, normalised (no label is read).
    """
    train = random_split(clothing_multitask(), seed=split_seed).train
    encoder = encoder or TextEncoder(max_length=32)
    classes = sorted(train.class_name.dropna().unique())
    table = pd.DataFrame(encoder.encode(classes).numpy(), index=classes)  # (C, 384)
    vectors = []
    for name in names:
        rows = train.class_name[train.scenario == name].dropna()
        vectors.append(F.normalize(torch.tensor(table.loc[rows].to_numpy().mean(0)), dim=0))
    return torch.stack(vectors)


def transfer_data(task: ClickTask, profiles: Tensor) -> TransferData:
    """Cut a leave-one-out task (held-out department = last scenario id) into the transfer parts.

    Args:
        task: :func:`~mtrec.data.tasks.clothing_leave_one_out`.
        profiles: (S + 1, D) profiles of ``task.scenario_names``, in the same order.
    """
    *names, held_out = task.scenario_names
    if profiles.ndim != 2 or len(profiles) != len(task.scenario_names):
        raise ValueError(
            f"profiles must be one row per scenario of the task, expected shape "
            f"({len(task.scenario_names)}, D), received {tuple(profiles.shape)}; pass "
            "department_profiles(task.scenario_names)"
        )
    new = len(names)  # the held-out department's id
    known = lambda part: _take(part, part["scenario_ids"] != new)  # noqa: E731
    held = lambda part: _take(part, part["scenario_ids"] == new)  # noqa: E731
    return TransferData(task.features, names, held_out, known(task.train), known(task.valid),
                        held(task.train), _cat(held(task.valid), held(task.test)),
                        profiles[:-1], profiles[-1])  # fmt: skip


def clothing_transfer_data(
    held_out: str = "Jackets", *, encoder: TextEncoder | None = None, split_seed: int = 0
) -> TransferData:
    """The leave-``held_out``-out task's tensors and its departments' MiniLM profiles.

    Raises:
        ValueError: ``held_out`` is not a department (from the task).
    """
    task = clothing_leave_one_out(held_out, split_seed=split_seed)
    return transfer_data(task, department_profiles(task.scenario_names, encoder,
                                                   split_seed=split_seed))  # fmt: skip


def nearest_name(data: TransferData) -> str:
    """The known department whose profile is nearest the held-out one's ("nearest" init)."""
    return data.names[nearest_scenario(data.profile, data.profiles)]


def train_star(
    data: TransferData, train: Batch, valid: Batch, *, seed: int, num_scenarios: int, small=False
) -> STAR:
    """A fresh STAR (notebook 05's size) fitted on ``train``, selected on ``valid``.

    ``small``: the few-row schedule (batches of 32, at most 30 epochs, patience 5) instead of
    notebook 05's (batches of 1024, at most 2 epochs).
    """
    set_seed(seed)
    model = STAR(STARConfig(data.features, num_scenarios=num_scenarios, num_tasks=len(TASKS),
                            hidden=(64, 32)))  # fmt: skip
    batches = TensorBatcher(train, 32 if small else 1024, shuffle=True, seed=seed)
    fit(model, batches, epochs=30 if small else 2, patience=5 if small else 3, lr=1e-2,
        valid_fn=lambda m: mean_auc(m, valid), seed=seed, progress=False)  # fmt: skip
    return model


def new_scenario(base: STAR, data: TransferData, init: str) -> tuple[STAR, int]:
    """A copy of ``base`` with the held-out department added (the zero-shot model) and its id."""
    model = copy.deepcopy(base)
    new = add_scenario(model, name=data.held_out, names=data.names, init=init,
                       profile=data.profile, profiles=data.profiles)  # fmt: skip
    return model, new


def adapt(
    base: STAR, data: TransferData, rows: Batch, valid: Batch, *, strategy: str, seed: int
) -> nn.Module:
    """Add the held-out department to a copy of ``base`` and adapt it to ``rows`` (see ADAPTED)."""
    init, how = ADAPTED[strategy]
    model, new = new_scenario(base, data, init)
    adapting = prepare_adaptation(model, rows, scenario=new, strategy=how)
    start, start_score = copy.deepcopy(adapting.state_dict()), mean_auc(adapting, valid)
    history = fit(adapting, TensorBatcher(rows, 32, shuffle=True, seed=seed), epochs=30,
                  patience=5, lr=1e-2, valid_fn=lambda m: mean_auc(m, valid), seed=seed,
                  progress=False)  # fmt: skip
    if start_score >= history.best_score:  # adapting never helped on the pool: keep the start
        adapting.load_state_dict(start)
    return adapting.release().eval()


def run_seed(data: TransferData, seed: int, sizes: Sequence[int | None] = SIZES) -> pd.DataFrame:
    """Every strategy at every n for one seed: tidy rows (strategy, n, rows, seed, task, auc)."""
    start, num = time.perf_counter(), len(data.names)
    order = torch.randperm(len(data.pool["labels"]), generator=torch.Generator().manual_seed(seed))
    valid = _take(data.pool, order[:VALID_POOL])
    candidates = _take(data.pool, order[VALID_POOL:])
    available = len(candidates["labels"])
    records: list[tuple] = []

    def score(strategy: str, label: str, rows: int, model: nn.Module) -> None:
        probs = model.predict(data.test)  # (B, T)
        for t, task in enumerate(TASKS):
            value = auc(data.test["labels"][:, t], probs[:, t])
            records.append((strategy, label, rows, seed, task, value))

    base = train_star(data, data.train, data.valid, seed=seed, num_scenarios=num)
    oracle = train_star(data, _cat(data.train, candidates), _cat(data.valid, valid),
                        seed=seed, num_scenarios=num + 1)  # fmt: skip
    score("oracle", "all", available, oracle)
    for init in ZERO_SHOT:
        score(f"zeroshot-{init}", "0", 0, new_scenario(base, data, init)[0].eval())
    for n in sizes:
        if n == 0 or (n is not None and n > available):
            continue
        label, rows = ("all", available) if n is None else (str(n), n)
        train = _take(candidates, torch.arange(rows))
        scratch = train_star(data, train, valid, seed=seed, num_scenarios=num + 1, small=True)
        score("scratch", label, rows, scratch)
        for strategy in ADAPTED:
            score(strategy, label, rows, adapt(base, data, train, valid, strategy=strategy,
                                               seed=seed))  # fmt: skip
    log.info("seed %d done in %.0f s", seed, time.perf_counter() - start)
    return pd.DataFrame(records, columns=["strategy", "n", "rows", "seed", "task", "auc"])


def run(data: TransferData, seeds: Sequence[int] = SEEDS, sizes=SIZES) -> pd.DataFrame:
    """:func:`run_seed` over ``seeds``, concatenated."""
    return pd.concat([run_seed(data, seed, sizes) for seed in seeds], ignore_index=True)


def tidy_rows(results: pd.DataFrame, held_out: str) -> pd.DataFrame:
    """:func:`run`'s rows as the runner's: model ``star-<strategy>``, task ``<task>@n=<n>``, auc."""
    return pd.DataFrame({"model": "star-" + results.strategy, "scenario": held_out,
                         "task": results.task + "@n=" + results.n, "metric": "auc",
                         "value": results.auc, "seed": results.seed})  # fmt: skip


@functools.cache
def _data(held_out: str) -> TransferData:
    """:func:`clothing_transfer_data` of ``held_out``, built once per process."""
    return clothing_transfer_data(held_out)


def seed_rows(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """One seed of the published table (every strategy at every n) as the runner's rows."""
    torch.set_num_threads(1)  # small models: one intra-op thread is fastest on a shared CPU
    rows = tidy_rows(run_seed(_data(args.held_out), seed), args.held_out)
    return rows.drop(columns="seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--held-out", default="Jackets", choices=CLOTHING_SCENARIOS,
                        help="the department left out and adapted to (default Jackets)")  # fmt: skip


def print_summary(per_seed: pd.DataFrame, args: argparse.Namespace) -> None:
    """After the rows are recorded: the strategy × n table of the recommended task."""
    task_n = per_seed.task.str.split("@n=", expand=True)
    results = pd.DataFrame({"strategy": per_seed.model.str.removeprefix("star-"),
                            "task": task_n[0], "n": task_n[1], "auc": per_seed.value,
                            "seed": per_seed.seed})  # fmt: skip
    print(summary(results).to_string())


EXPERIMENT = Experiment(
    name="transfer",
    run_seed=seed_rows,
    seeds=SEEDS,
    dataset="clothing",
    description=__doc__.splitlines()[0],
    add_arguments=add_arguments,
    finish=print_summary,
)


def recorded(held_out: str = "Jackets", path=QUALITY_CSV) -> pd.DataFrame:
    """The recorded rows, parsed back: strategy, task, n, auc, std, seeds."""
    tasks = [f"{task}@n={n}" for task in TASKS for n in SIZE_LABELS]
    table = runner.recorded(EXPERIMENT, tasks=tasks, path=path)
    table = table[(table.scenario == held_out) & table.model.str.startswith("star-")]
    task_n = table.task.str.extract(r"^(?P<task>.+)@n=(?P<n>.+)$")  # also when no rows
    return pd.DataFrame({"strategy": table.model.str.removeprefix("star-"),
                         "task": task_n["task"], "n": task_n["n"], "auc": table.value,
                         "std": table["std"], "seeds": table.seeds}).reset_index(drop=True)  # fmt: skip


def summary(results: pd.DataFrame, task: str = "recommended") -> pd.DataFrame:
    """Strategy × n table of "mean ± std" test AUC over seeds for ``task``."""
    rows = results[results.task == task]
    cells = rows.groupby(["strategy", "n"]).auc.agg(
        lambda v: f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"
    )
    table = cells.unstack("n")
    order = [n for n in SIZE_LABELS if n in table.columns]
    return table[order].fillna("")


def curves(table: pd.DataFrame, rows_all: int, task: str = "recommended") -> pd.DataFrame:
    """Learning curves: strategy, n (a number), auc, std for ``task``.

    ``table`` has strategy, task, n ("0", "16", ..., "all"), auc (mean), std: :func:`recorded`, or
    per-seed rows of :func:`run` (aggregated here). "all" becomes ``rows_all``; each adapted
    strategy starts at n = 0 from the zero-shot model of its init.
    """
    rows = table[table.task == task]
    if "seed" in rows:
        rows = rows.groupby(["strategy", "n"]).auc.agg(["mean", "std"]).reset_index()
        rows = rows.rename(columns={"mean": "auc"})
    rows = rows[["strategy", "n", "auc", "std"]].copy()
    starts = [rows[rows.strategy == f"zeroshot-{init}"].assign(strategy=name)
              for name, (init, _) in ADAPTED.items()]  # fmt: skip
    rows = pd.concat([rows, *starts], ignore_index=True)
    rows["n"] = rows.n.replace("all", str(rows_all)).astype(int)
    return rows.sort_values(["strategy", "n"]).reset_index(drop=True)


def rows_to_reach(curve: pd.DataFrame, fraction: float = 0.95) -> pd.Series:
    """Per strategy, the fewest labelled rows whose mean AUC reaches ``fraction`` × the oracle's."""
    target = fraction * float(curve[curve.strategy == "oracle"].auc.iloc[0])
    hits = curve[(curve.auc >= target) & (curve.strategy != "oracle")]
    return hits.groupby("strategy").n.min().reindex(curve.strategy.unique()).drop("oracle")


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run transfer [--held-out Jackets] [--seeds 0 1 2 3 4] [--jobs N]``."""
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
