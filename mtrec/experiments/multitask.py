"""Notebook 06's experiment: multi-task models against single-task ones on three datasets.

Run ``mtrec run multitask`` (``--help`` for options; the runner :mod:`mtrec.experiments.runner`
runs the seeds, one :func:`run_seed` each). Protocol (also written in notebook 06):

* **Data.** Clothing (:func:`mtrec.data.tasks.clothing_departments`: 23,472 reviews; tasks
  recommended, like, helpful; features item, class, age and a 16-d TF-IDF SVD of the review
  title), ML-100k (:func:`mtrec.data.tasks.ml100k_impressions`: the first :data:`ML_ROWS`
  impressions of ``movielens_multitask``: ratings plus as many sampled unrated films; tasks
  watch, like) and Adult
  (:func:`mtrec.data.tasks.adult_income`: :data:`ADULT_ROWS` sampled rows; tasks income > 50K,
  never married, with marital status and relationship removed from the inputs). Each dataset is
  split once, randomly (seed 0, 80/10/10); category encoders, scalers, the title TF-IDF and SVD
  are fitted on the training part. (Until the Clothing task was shared, this experiment fitted
  the title TF-IDF and SVD on every title, test titles included, and fed 16 standardised
  ``title0..title15`` columns and a train-standardised age; see :mod:`mtrec.data.tasks.clothing`.)
* **Models.** Single-task Shared-Bottom per task, Shared-Bottom, MMoE (4 experts), PLE (1 level,
  2 specific + 2 shared experts) and, on ML-100k, ESMM. Adam lr :data:`LR`, batches of
  :data:`BATCH_SIZE`, at most ``epochs`` epochs with early stopping on the mean validation AUC
  (patience 3); test AUC per task. Task balancing: the same MMoE on Clothing with uncertainty
  weighting (Kendall et al., CVPR 2018) and GradNorm (Chen et al., ICML 2018, α = 1.5).
* **Seeds.** Each seed changes initialisation and batch order (same split); rows are mean ±
  sample std over seeds. The command's defaults (:data:`SEEDS`, :data:`EPOCHS`) are the
  published rows; the notebook's live run is smaller.

The runner writes quality rows (model = ``single_task``, ``shared_bottom``, ``mmoe``, ``ple``,
``esmm``, ``mmoe+uncertainty``, ``mmoe+gradnorm``; task = the task; metric ``auc``) when
``MTREC_WRITE_RESULTS=1``; :func:`recorded` reads them back.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtrec.checks import check_int
from mtrec.data import TensorBatcher
from mtrec.data.tasks import ClickTask, adult_income, clothing_departments, ml100k_impressions
from mtrec.data.tasks.adult import ADULT_ROWS
from mtrec.data.tasks.adult import TASKS as ADULT_TASKS
from mtrec.data.tasks.clothing import TASKS as CLOTHING_TASKS
from mtrec.data.tasks.movielens import IMPRESSION_ROWS
from mtrec.eval.click import evaluate
from mtrec.eval.metrics import auc
from mtrec.eval.significance import beyond_seed_noise
from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment
from mtrec.models.multitask.esmm import ESMM, ESMMConfig
from mtrec.models.multitask.mmoe import MMoE
from mtrec.models.multitask.ple import PLE, PLEConfig
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.of_record import multitask_mmoe_config
from mtrec.reporting.store import QUALITY_CSV
from mtrec.train import fit
from mtrec.train.weighting import GradNorm, UncertaintyWeighting
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2, 3, 4)  # the command's seeds (the published rows)
EPOCHS = 10  # the command's epoch cap (early stopping on validation usually stops sooner)
BATCH_SIZE = 1024
LR = 1e-2  # Adam learning rate
ML_ROWS = IMPRESSION_ROWS  # ML-100k impressions used (of 200k: 100k ratings + 100k negatives)
MODELS = ("single_task", "shared_bottom", "mmoe", "ple", "esmm")
# the task names of each dataset (the rows' task column; checked against the tasks when run)
TASKS = {"clothing": CLOTHING_TASKS, "ml-100k": ("watch", "like"), "adult": ADULT_TASKS}


def multitask_data(
    *, ml_rows: int = ML_ROWS, adult_rows: int = ADULT_ROWS, seed: int = 0
) -> dict[str, ClickTask]:
    """The three datasets as tasks: name (the results' dataset column) → task.

    ``seed`` draws the ML-100k negatives and the Adult sample; every split is seed 0.
    """
    return {
        "clothing": clothing_departments(),
        "ml-100k": ml100k_impressions(rows=ml_rows, seed=seed),
        "adult": adult_income(rows=adult_rows, seed=seed),
    }


def task_aucs(model: nn.Module, part: Mapping[str, torch.Tensor]) -> list[float]:
    """AUC of each task over all rows of ``part`` (:func:`mtrec.eval.click.evaluate`)."""
    tasks = [str(t) for t in range(part["labels"].shape[1])]
    table = evaluate(model, [part], task_names=tasks, metrics={"auc": auc})
    return table[table.scenario == "all"]["value"].tolist()


def builders(features: tuple, num_tasks: int) -> dict[str, Callable[[], nn.Module]]:
    """Model name → constructor, at the sizes of notebook 06 (ESMM is added for ML-100k)."""
    return {
        "shared_bottom": lambda: SharedBottom(SharedBottomConfig(
            features, num_tasks=num_tasks, bottom_hidden=(64, 32), tower_hidden=(16,))),
        "mmoe": lambda: MMoE(multitask_mmoe_config(features, num_tasks)),
        "ple": lambda: PLE(PLEConfig(
            features, num_tasks=num_tasks, num_levels=1, num_specific=2, num_shared=2,
            expert_hidden=(64, 32), tower_hidden=(16,))),
    }  # fmt: skip


def train(make: Callable[[], nn.Module], data: ClickTask, *, epochs: int, seed: int = 0,
          columns: Sequence[int] | None = None, weighting: Callable | None = None,
          device: torch.device | str | None = None) -> tuple[nn.Module, list[float]]:  # fmt: skip
    """Fit ``make()`` on the task ``columns`` of ``data``; return (model, test AUC per task)."""
    epochs = check_int(epochs, "epochs", min=1)
    tr, va, te = data.train, data.valid, data.test
    columns = list(range(tr["labels"].shape[1])) if columns is None else list(columns)

    def pick(part: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**part, "labels": part["labels"][:, columns]}

    set_seed(seed)
    model = make()
    fit(model, TensorBatcher(pick(tr), BATCH_SIZE, shuffle=True, seed=seed), epochs=epochs,
        lr=LR, valid_fn=lambda m: float(np.mean(task_aucs(m, pick(va)))),
        weighting=weighting(model) if weighting else None, seed=seed, device=device,
        progress=False)  # fmt: skip
    return model, task_aucs(model, pick(te))


def run(data: Mapping[str, ClickTask], *, seeds: Sequence[int], epochs: int,
        device: torch.device | str | None = None) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Every model on every dataset and seed.

    Returns:
        Tidy test AUCs (dataset, model, task, seed, auc) and the trained multi-task models,
        keyed (dataset, model, seed).
    """
    results, trained = [], {}
    for name, click_task in data.items():
        features, tasks = click_task.features, click_task.task_names
        for seed in seeds:
            for t, task in enumerate(tasks):  # single-task baselines
                _, (value,) = train(builders(features, 1)["shared_bottom"], click_task,
                                    epochs=epochs, seed=seed, columns=[t], device=device)  # fmt: skip
                results.append((name, "single_task", task, seed, value))
            models = dict(builders(features, len(tasks)))
            if name == "ml-100k":
                models["esmm"] = lambda f=features: ESMM(ESMMConfig(f, tower_hidden=(64, 32)))
            for model_name, make in models.items():
                model, values = train(make, click_task, epochs=epochs, seed=seed, device=device)
                trained[name, model_name, seed] = model
                results += [(name, model_name, task, seed, v) for task, v in zip(tasks, values)]
    return pd.DataFrame(results, columns=["dataset", "model", "task", "seed", "auc"]), trained


WEIGHTINGS = {  # "fixed" (equal weights, the plain sum) is the MMoE of run()
    "uncertainty": lambda model, num_tasks: UncertaintyWeighting(num_tasks),
    "gradnorm": lambda model, num_tasks: GradNorm(num_tasks, model.shared_parameters(), alpha=1.5),
}


def run_balancing(data: ClickTask, *, seeds: Sequence[int], epochs: int,
                  device: torch.device | str | None = None) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """MMoE on ``data`` under each of :data:`WEIGHTINGS`.

    Returns:
        Tidy test AUCs (weighting, task, seed, auc) and, per weighting, each seed's final
        task weights.
    """
    balance, final_weights, tasks = [], {}, data.task_names
    for kind, make_weighting in WEIGHTINGS.items():
        for seed in seeds:
            holder = {}

            def weighting(model, make_weighting=make_weighting, holder=holder):
                holder["w"] = make_weighting(model, len(tasks))
                return holder["w"]

            _, values = train(builders(data.features, len(tasks))["mmoe"], data, epochs=epochs,
                              seed=seed, weighting=weighting, device=device)  # fmt: skip
            balance += [(kind, task, seed, v) for task, v in zip(tasks, values)]
            final_weights.setdefault(kind, []).append(holder["w"].weights.cpu().numpy())
    return pd.DataFrame(balance, columns=["weighting", "task", "seed", "auc"]), final_weights


def seed_rows(data: Mapping[str, ClickTask], seed: int, *, epochs: int,
              device: torch.device | str | None = None) -> pd.DataFrame:  # fmt: skip
    """One seed's tidy rows: :func:`run` on every dataset, :func:`run_balancing` on Clothing.

    Columns dataset, model, task, metric (``auc``), value; the balancing rows are named
    ``mmoe+<weighting>`` on ``clothing``.
    """
    frame, _ = run(data, seeds=[seed], epochs=epochs, device=device)
    balance, _ = run_balancing(data["clothing"], seeds=[seed], epochs=epochs, device=device)
    balance = balance.assign(dataset="clothing", model="mmoe+" + balance.weighting)
    rows = pd.concat([frame, balance[frame.columns]], ignore_index=True)
    return rows.rename(columns={"auc": "value"}).assign(metric="auc")[
        ["dataset", "model", "task", "metric", "value"]
    ]


@functools.cache
def _data() -> dict[str, ClickTask]:
    """:func:`multitask_data` once per process (every seed uses the same split)."""
    data = multitask_data()
    for name, task in data.items():
        if task.task_names != TASKS[name]:
            raise ValueError(
                f"{name}: the task declares tasks {task.task_names}, the experiment expects "
                f"{TASKS[name]}; update multitask.TASKS to match the task"
            )
    return data


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """The runner's unit: every model and weighting on every dataset for ``seed``."""
    torch.set_num_threads(1)  # small MLPs: one intra-op thread is fastest on a shared CPU
    start = time.perf_counter()
    rows = seed_rows(_data(), seed, epochs=args.epochs)
    log.info("multitask seed %d: %d AUCs in %.0f s", seed, len(rows), time.perf_counter() - start)
    return rows


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help=f"epoch cap, early stopping on validation (default {EPOCHS})")  # fmt: skip


EXPERIMENT = Experiment(
    name="multitask",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="clothing",  # every row names its dataset: clothing, ml-100k or adult
    description=__doc__.splitlines()[0],
    add_arguments=_add_arguments,
)


def recorded(path: Path = QUALITY_CSV) -> pd.DataFrame:
    """This experiment's rows read back from quality.csv: dataset, model, task, auc, std, seeds."""
    names = [*MODELS, *(f"mmoe+{kind}" for kind in WEIGHTINGS)]
    tasks = sorted({t for names_ in TASKS.values() for t in names_})
    rows = runner.recorded(EXPERIMENT, names, datasets=list(TASKS), tasks=tasks, path=path)
    rows = rows[(rows.metric == "auc") & (rows.scenario == "all")]
    rows = rows.rename(columns={"value": "auc"})[
        ["dataset", "model", "task", "auc", "std", "seeds"]
    ]
    return rows.sort_values(["dataset", "task", "model"]).reset_index(drop=True)


def transfer_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Each multi-task model against its single-task baseline, task by task.

    ``rows``: dataset, model, task, auc (mean), std (over seeds). Δ = model − single-task; the
    noise is the larger of the two seed stds; the verdict is "negative transfer" when Δ < −noise,
    "positive transfer" when Δ > noise, else "no difference".
    """
    single = rows[rows.model == "single_task"].set_index(["dataset", "task"])
    out = rows[rows.model.isin(MODELS[1:])].copy()
    key = pd.MultiIndex.from_frame(out[["dataset", "task"]])
    out["delta"] = out["auc"].to_numpy() - single["auc"].reindex(key).to_numpy()
    sign, out["noise"] = beyond_seed_noise(out.delta, out["std"], single["std"].reindex(key))
    out["verdict"] = np.select([sign < 0, sign > 0], ["negative transfer", "positive transfer"],
                               "no difference")  # fmt: skip
    return out[["dataset", "task", "model", "delta", "noise", "verdict"]].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run multitask [--seeds 0 1 2 3 4] [--epochs 10] [--jobs N]``."""
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
