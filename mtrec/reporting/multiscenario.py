"""The multi-scenario benchmark tables: per-scenario AUC / LogLoss with significance, and cost.

Inputs (written by ``python -m mtrec.experiments.multiscenario``):

* ``benchmarks/results/quality.csv``: mean ± std over seeds per (dataset, model, scenario, task,
  metric); the scenario is a scenario name or ``all`` (every test row pooled);
* ``benchmarks/results/multiscenario_seeds.csv``: the value of every seed, for the paired t-test
  against the baseline (:func:`mtrec.eval.significance.compare_to_baseline`);
* ``benchmarks/results/multiscenario_cost.csv``: parameters, train s/epoch, inference µs/row.

Marks: ▲ / ▼ = significantly better / worse than the baseline (paired t-test over seeds,
p < 0.05); ▲▲ / ▼▼ = still significant after Holm's correction over the whole table. No mark:
the difference is within seed noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mtrec.data.loaders import CLOTHING_SCENARIOS
from mtrec.data.scenarios import ML_AGE_SCENARIOS
from mtrec.eval.significance import compare_to_baseline
from mtrec.reporting.render import format_mean_std, markdown_table
from mtrec.reporting.store import RESULTS_DIR, load_quality

SEEDS_CSV = RESULTS_DIR / "multiscenario_seeds.csv"
COST_CSV = RESULTS_DIR / "multiscenario_cost.csv"
SEED_COLUMNS = ["dataset", "model", "scenario", "task", "metric", "seed", "value", "split"]
DATASETS = ("ml-100k-age", "clothing-departments")
SCENARIO_ORDER = {"ml-100k-age": list(ML_AGE_SCENARIOS), "clothing-departments": CLOTHING_SCENARIOS}
BASELINE = "sb+scenario"  # Shared-Bottom: shared bottom, scenario embedding, scenario towers
MODEL_ORDER = ("one_for_all", "per_scenario", BASELINE, "star", "scenario_moe", "pepnet", "m2m",
               "adasparse", "sarnet", "hamur")  # fmt: skip
LEGEND = (
    "Mean ± std over {seeds} seeds (test split). ▲/▼: better/worse than `{baseline}` by a paired "
    "t-test over seeds (p < 0.05); ▲▲/▼▼: still so after Holm's correction over the table; no "
    "mark: within seed noise."
)


def load_seeds() -> pd.DataFrame:
    """The per-seed values (empty frame with the schema when absent)."""
    return pd.read_csv(SEEDS_CSV) if SEEDS_CSV.exists() else pd.DataFrame(columns=SEED_COLUMNS)


def load_cost() -> pd.DataFrame:
    """The cost table (empty when absent)."""
    return pd.read_csv(COST_CSV) if COST_CSV.exists() else pd.DataFrame()


def _order(models: Sequence[str]) -> list[str]:
    known = [m for m in MODEL_ORDER if m in set(models)]
    return known + sorted(set(models) - set(known))


def _mark(row: pd.Series | None) -> str:
    if row is None or not row["significant"]:
        return ""
    arrow = "▲" if row["better"] else "▼"
    return " " + arrow * (2 if row["significant_holm"] else 1)


def significance(per_seed: pd.DataFrame | None = None, baseline: str = BASELINE) -> pd.DataFrame:
    """Every model against ``baseline`` per (dataset, task, metric) table and scenario cell."""
    per_seed = load_seeds() if per_seed is None else per_seed
    if per_seed.empty:
        return pd.DataFrame()
    frames = [compare_to_baseline(g, baseline) for _, g in per_seed.groupby("dataset")
              if baseline in set(g.model)]  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def scenario_table(quality: pd.DataFrame, tests: pd.DataFrame, *, dataset: str, task: str,
                   metric: str, baseline: str = BASELINE) -> pd.DataFrame:  # fmt: skip
    """One table: a row per model, a column per scenario (``all`` first), marked cells."""
    rows = quality[(quality.dataset == dataset) & (quality.task == task)
                   & (quality.metric == metric)]  # fmt: skip
    known = [s for s in SCENARIO_ORDER.get(dataset, []) if s in set(rows.scenario)]
    scenarios = ["all", *known, *sorted(set(rows.scenario) - {"all", *known})]
    if not tests.empty:
        tests = tests[(tests.dataset == dataset) & (tests.task == task) & (tests.metric == metric)]
        tests = tests.set_index(["model", "scenario"])
    out = []
    for model in _order(rows.model.unique()):
        cells = {"model": model if model != baseline else f"{model} (baseline)"}
        for scenario in scenarios:
            hit = rows[(rows.model == model) & (rows.scenario == scenario)]
            if hit.empty:
                cells[scenario] = ""
                continue
            key = (model, scenario)
            test = tests.loc[key] if not tests.empty and key in tests.index else None
            cells[scenario] = format_mean_std(hit.value.item(), hit["std"].item()) + _mark(test)
        out.append(cells)
    return pd.DataFrame(out, columns=["model", *scenarios])


def cost_table(cost: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Parameters, train s/epoch and inference µs/row of each model on one dataset."""
    rows = cost[cost.dataset == dataset].set_index("model")
    rows = rows.loc[_order(rows.index)]
    return pd.DataFrame({
        "model": rows.index,
        "parameters": [f"{int(p):,}" for p in rows.parameters],
        "train s/epoch": rows.train_s_per_epoch.round(2).to_numpy(),
        "inference µs/row": rows.infer_us_per_row.round(1).to_numpy(),
    })  # fmt: skip


def verdicts(tests: pd.DataFrame, *, metric: str = "auc", holm: bool = False) -> pd.DataFrame:
    """Which model beats (or loses to) the baseline where: the significant cells only."""
    if tests.empty:
        return tests
    flag = "significant_holm" if holm else "significant"
    hits = tests[(tests.metric == metric) & tests[flag]]
    hits = hits.assign(verdict=["beats" if b else "loses to" for b in hits.better])
    columns = ["dataset", "task", "scenario", "model", "verdict", "diff", "p_value", "p_holm"]
    return (
        hits[columns].sort_values(["dataset", "task", "scenario", "model"]).reset_index(drop=True)
    )


def multiscenario_markdown(quality: pd.DataFrame | None = None,
                           per_seed: pd.DataFrame | None = None,
                           cost: pd.DataFrame | None = None, *, baseline: str = BASELINE,
                           metrics: Sequence[str] = ("auc", "logloss")) -> str:  # fmt: skip
    """Every dataset's per-scenario tables (one per task and metric) and its cost table."""
    quality = load_quality() if quality is None else quality
    per_seed = load_seeds() if per_seed is None else per_seed
    cost = load_cost() if cost is None else cost
    quality = quality[quality.dataset.isin(DATASETS) & quality.metric.isin(metrics)]
    if quality.empty:
        return "_No multi-scenario results yet: run `python -m mtrec.experiments.multiscenario`._"
    tests = significance(per_seed, baseline)
    parts = []
    for dataset in [d for d in DATASETS if d in set(quality.dataset)]:
        rows = quality[quality.dataset == dataset]
        seeds = int(rows.seeds.max())
        parts.append(f"#### {dataset}\n\n" + LEGEND.format(seeds=seeds, baseline=baseline))
        for task in dict.fromkeys(rows.task):
            for metric in metrics:
                table = scenario_table(rows, tests, dataset=dataset, task=task, metric=metric,
                                       baseline=baseline)  # fmt: skip
                parts.append(f"**{task} · {metric}**\n\n" + markdown_table(table))
        if not cost.empty and dataset in set(cost.dataset):
            parts.append(
                "**cost (this CPU, 1 thread)**\n\n" + markdown_table(cost_table(cost, dataset))
            )
    return "\n\n".join(parts)
