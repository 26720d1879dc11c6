"""Notebook 15's experiment: a pretrained language model (SmolLM2-135M) as the recommender.

Run ``mtrec run llm`` (``--help`` for options; :mod:`mtrec.experiments.runner` runs the seeds,
resumes per seed with ``--per-seed-dir``). One seed runs:

1. zero-shot ranking on ML-100k (:mod:`mtrec.experiments.llm_ranking`): :data:`RANK_USERS`
   sampled users, each target against 99 sampled films; SmolLM2 (sum and mean log-likelihood),
   popularity, random; HR@10 and NDCG@10 (dataset ``ml-100k``, task ``next-item-100``);
2. the few-shot curve on Clothing ``recommended`` (:mod:`mtrec.experiments.llm_fewshot`): the
   untuned LM (``smollm2@0``), the LoRA-tuned LM and the feature models at n = 64, 256, 1,024
   training rows (``<model>@<n>``), and the feature models on every training row (``@all``);
   test AUC on the same 500 rows (dataset ``clothing``, task ``recommended``, metric ``auc``);
3. distillation of the LoRA LM tuned on the largest n into the course's student, with the same
   student trained on labels alone (``student+kd@<n>``, ``student@<n>``);
4. review titles written by SmolLM2 with LoRA beside notebook 08's writers
   (:mod:`mtrec.experiments.llm_titles`; dataset ``clothing-300``, task ``review_title``).

Not run on a 2-core CPU: LoRA on every training row (18,777 prompts, about an hour per seed
here); the feature models' ``@all`` rows show what that data buys them.

Costs go to ``benchmarks/results/llm_cost.csv`` (not the quality table: they depend on the
machine): per LoRA run its steps, seconds and epochs; the teacher's and the student's test rows
per second; and the training state of LoRA against full fine-tuning.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from mtrec.experiments import llm_fewshot as fewshot
from mtrec.experiments import runner
from mtrec.experiments.llm_ranking import zero_shot_rows
from mtrec.experiments.llm_titles import DATASET as TITLES_DATASET
from mtrec.experiments.llm_titles import title_rows
from mtrec.experiments.runner import Experiment
from mtrec.models.llm import load_language_model, trainable_share
from mtrec.reporting.store import QUALITY_CSV, RESULTS_DIR, stamp_machine, upsert, writing_enabled

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
RANK_USERS = 30  # users per seed in the zero-shot ranking (each: 100 candidate titles)
FEATURE_MODELS = ("shared_bottom", "mmoe", "shared_bottom+minilm")
COST_CSV = RESULTS_DIR / "llm_cost.csv"
SEEDS_CSV = RESULTS_DIR / "llm_seeds.csv"
SEED_COLUMNS = ["dataset", "task", "model", "metric", "seed", "value"]


def ranking(seed: int, num_users: int) -> pd.DataFrame:
    """Part 1: the zero-shot ranking rows of one seed."""
    model, tokenizer = load_language_model()
    rows = zero_shot_rows(model, tokenizer, num_users=num_users, seed=seed)
    return rows.assign(dataset="ml-100k", task="next-item-100")


def few_shot(seed: int, sizes: Sequence[int]) -> tuple[pd.DataFrame, list[dict]]:
    """Parts 2 and 3: AUC rows of one seed and the cost records of its LoRA runs."""
    data = fewshot.clothing_text()
    rows, costs = [], []
    tokenizer = fewshot.lm_tokenizer()
    test = fewshot.lm_inputs("test", data.test_rows, tokenizer)
    rows.append(("smollm2@0", untuned_auc()))  # no training: the same for every seed
    teacher = None
    for size in sizes:
        scorer, record = fewshot.tune_lm(size, seed)
        start = time.perf_counter()
        rows.append((f"smollm2-lora@{size}", fewshot.lm_auc(scorer, test)))
        record.update(seed=seed, size=size,
                      teacher_rows_per_s=len(data.test_rows) / (time.perf_counter() - start))  # fmt: skip
        costs.append(record)
        rows += feature_rows(size, seed)
        teacher = scorer
    rows += feature_rows(None, seed)
    if teacher is not None:
        size = sizes[-1]
        kd = fewshot.distil(teacher, tokenizer, size, seed)
        rows += [(f"student+kd@{size}", kd["student+kd"]), (f"student@{size}", kd["student"])]
        costs[-1]["student_rows_per_s"] = kd["student_rows_per_s"]
    frame = pd.DataFrame(rows, columns=["model", "value"])
    return frame.assign(dataset="clothing", task=fewshot.TASK, metric="auc"), costs


def feature_rows(size: int | None, seed: int) -> list[tuple[str, float]]:
    """``(<model>@<size>, test AUC)`` of every feature model on ``size`` rows (None: all)."""
    label = "all" if size is None else size
    return [(f"{name}@{label}", fewshot.train_feature_model(make, size, seed, minilm=minilm))
            for minilm in (False, True)
            for name, make in fewshot.feature_builders(minilm=minilm).items()]  # fmt: skip


@functools.cache
def untuned_auc() -> float:
    """Test AUC of P(Yes) from SmolLM2 before any tuning (once per process)."""
    scorer, tokenizer = fewshot.lm_scorer(lora=False)
    test = fewshot.lm_inputs("test", fewshot.clothing_text().test_rows, tokenizer)
    return fewshot.lm_auc(scorer, test)


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """The runner's unit: parts 1-3 for ``seed``."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    parts = [ranking(seed, args.users)] if args.users else []
    if args.sizes:
        rows, costs = few_shot(seed, args.sizes)
        parts.append(rows)
        _write_costs(costs)
    if args.titles:
        parts.append(title_rows(seed)[0])
    log.info("llm seed %d in %.0f s", seed, time.perf_counter() - start)
    return pd.concat(parts, ignore_index=True)


def _write_costs(costs: list[dict]) -> None:
    if not writing_enabled() or not costs:
        return
    frame = stamp_machine(pd.DataFrame(costs), dated=False)
    upsert(COST_CSV, frame, list(frame.columns), ["seed", "size"])


def training_state(*, lora: bool) -> dict[str, float]:
    """Parameters and bytes of what training keeps (weights, gradients, Adam's two moments)."""
    scorer, _ = fewshot.lm_scorer(lora=lora)
    trainable, total = trainable_share(scorer)
    weights = sum(p.numel() * p.element_size() for p in scorer.parameters())
    updated = sum(p.numel() * p.element_size() for p in scorer.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "share": trainable / total,
            "state_mb": (weights + 3 * updated) / 2**20}  # fmt: skip


def finish(per_seed: pd.DataFrame, args: argparse.Namespace) -> None:
    """After the quality rows: every seed's value, for the paired tests of notebook 15."""
    if writing_enabled():
        upsert(SEEDS_CSV, per_seed[SEED_COLUMNS], SEED_COLUMNS,
               [c for c in SEED_COLUMNS if c != "value"])  # fmt: skip
        print(f"{len(per_seed)} per-seed values written to {SEEDS_CSV}")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users",
        type=int,
        default=RANK_USERS,
        help=f"users per seed in the zero-shot ranking (0 = skip; {RANK_USERS})",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=list(fewshot.SIZES),
        help="training rows of the few-shot curve (none = skip)",
    )
    parser.add_argument(
        "--titles",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write review titles with the LM (part 4; --no-titles skips it)",
    )
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")


EXPERIMENT = Experiment(
    name="llm",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset="clothing",  # every row names its dataset: clothing or ml-100k
    description=__doc__.splitlines()[0],
    add_arguments=_add_arguments,
    finish=finish,
)


def recorded(path: Path = QUALITY_CSV) -> pd.DataFrame:
    """This experiment's rows read back: dataset, task, model, metric, value, std, seeds."""
    table = pd.read_csv(path)
    names = table.model.str.startswith(("smollm2", "student", "popularity", "random",
                                        "shared_bottom", "mmoe"))  # fmt: skip
    mine = table[names & table.task.isin(["next-item-100", fewshot.TASK])
                 & table.dataset.isin(["clothing", "ml-100k"])]  # fmt: skip
    mine = mine[(mine.task == "next-item-100") | mine.model.str.contains("@")]
    mine = pd.concat([mine, table[table.dataset == TITLES_DATASET]])
    return mine[["dataset", "task", "model", "metric", "value", "std", "seeds"]].reset_index(
        drop=True
    )


def curve(rows: pd.DataFrame) -> pd.DataFrame:
    """Clothing rows of :func:`recorded` (or per-seed rows) split into ``model`` and ``size``.

    ``"mmoe@256"`` → model ``mmoe``, size ``"256"``; sizes sort 0, 64, ..., ``all``.
    """
    out = rows[(rows.dataset == "clothing") & rows.model.str.contains("@")].copy()
    out[["model", "size"]] = out.model.str.split("@", n=1, expand=True)
    order = {s: i for i, s in enumerate(["0", *map(str, fewshot.SIZES), "all"])}
    out["size"] = pd.Categorical(
        out["size"], sorted(set(out["size"]), key=lambda s: order.get(s, 99))
    )
    return out.sort_values(["size", "model"]).reset_index(drop=True)


def read_seeds(path: Path = SEEDS_CSV) -> pd.DataFrame:
    """Every seed's value written by the last ``mtrec run llm`` (for paired tests)."""
    return pd.read_csv(path)


def paired(per_seed: pd.DataFrame, *, baseline: str = "smollm2-lora") -> pd.DataFrame:
    """Each model against the LoRA LM at the same training size: paired t-test over seeds.

    Returns :func:`mtrec.eval.significance.compare_to_baseline`'s table (Holm within a size),
    with a ``verdict``: the model "beats the LM" / "loses to the LM" when Holm-significant,
    else "no difference".
    """
    from mtrec.eval.significance import compare_to_baseline

    rows = curve(per_seed).assign(scenario="all")
    rows = rows[rows["size"].astype(str).isin([str(s) for s in fewshot.SIZES])]
    table = compare_to_baseline(rows, baseline, table=("dataset", "task", "metric", "size"))
    table["verdict"] = "no difference"
    table.loc[table.significant_holm & table.better, "verdict"] = "beats the LM"
    table.loc[table.significant_holm & ~table.better, "verdict"] = "loses to the LM"
    return table


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``mtrec run llm [--seeds 0 1 2] [--users 30] [--sizes 64 256 1024] [--no-titles]``."""
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
