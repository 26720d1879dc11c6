"""The multi-scenario benchmark tables: per-scenario AUC / LogLoss with significance, and cost.

Inputs (written by ``python -m mtrec.experiments.multiscenario``):

* ``benchmarks/results/quality.csv``: mean ± std over seeds per (dataset, model, scenario, task,
  metric); the scenario is a scenario name or ``all`` (every test row pooled);
* ``benchmarks/results/multiscenario_seeds.csv``: the value of every seed, for the paired t-test
  against the baseline (:func:`mtrec.eval.significance.compare_to_baseline`);
* ``benchmarks/results/multiscenario_cost.csv``: parameters, train s/epoch, inference µs/row;
* ``benchmarks/published/scenario_wise_rec_ml1m*.csv``: Scenario-Wise Rec's ML-1M protocol and
  published numbers, quoted as context only (:func:`published_markdown`).

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
from mtrec.reporting.diagram import Box
from mtrec.reporting.render import format_mean_std, markdown_table
from mtrec.reporting.store import RESULTS_DIR, load_quality, load_throughput
from mtrec.utils import REPO_ROOT

SEEDS_CSV = RESULTS_DIR / "multiscenario_seeds.csv"
COST_CSV = RESULTS_DIR / "multiscenario_cost.csv"
PUBLISHED_DIR = REPO_ROOT / "benchmarks" / "published"
PUBLISHED_CSV = (
    PUBLISHED_DIR / "scenario_wise_rec_ml1m.csv"
)  # model, scenario, metric, value, source
PUBLISHED_PROTOCOL_CSV = PUBLISHED_DIR / "scenario_wise_rec_ml1m_protocol.csv"
PUBLISHED_CITATION = (
    'Scenario-Wise Rec (Li et al., "Scenario-Wise Rec: A Multi-Scenario Recommendation '
    'Benchmark", arXiv:2412.17374, 2024; github.com/Xiaopengli1/Scenario-Wise-Rec)'
)
NOT_QUOTED = "not quoted: source not reachable offline"
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
    parts.append(published_markdown())
    return "\n\n".join(parts)


def load_published() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Scenario-Wise Rec's ML-1M protocol beside mtrec's, its published numbers); empty if absent.

    The numbers file holds only values read from the paper, each with its source (paper and
    table number); it may be empty when the paper could not be read.
    """
    protocol = (pd.read_csv(PUBLISHED_PROTOCOL_CSV) if PUBLISHED_PROTOCOL_CSV.exists()
                else pd.DataFrame())  # fmt: skip
    numbers = pd.read_csv(PUBLISHED_CSV) if PUBLISHED_CSV.exists() else pd.DataFrame()
    return protocol, numbers


def published_markdown() -> str:
    """Scenario-Wise Rec's ML-1M protocol and numbers as context, or why they are not quoted."""
    protocol, numbers = load_published()
    parts = [
        f"#### Context: {PUBLISHED_CITATION}, MovieLens-1M\n\n"
        "Quoted as context only. Its numbers are **not comparable** with the ML-100k rows above: "
        "a different dataset (10x the ratings), different age cut-points (ML-1M age codes), "
        "different training (learning-rate schedule, weight decay), one seed per run of its script."
    ]
    if not protocol.empty:
        shown = protocol.rename(columns={"scenario_wise_rec_ml1m": "Scenario-Wise Rec (ML-1M)",
                                         "mtrec_ml100k_age": "mtrec (ML-100k by age)"})  # fmt: skip
        parts.append("**protocols side by side**\n\n" + markdown_table(shown))
    if numbers.empty:
        parts.append(f"**published ML-1M results**: {NOT_QUOTED}.")
    else:
        parts.append("**published ML-1M results**\n\n" + markdown_table(numbers))
    return "\n\n".join(parts)


def routing_costs(
    frame: pd.DataFrame | None = None, *, lo: int = 2, hi: int = 128, device: str = "cpu"
) -> pd.DataFrame:
    """Time at S = ``hi`` over S = ``lo`` scenarios of every routed model ``mtrec bench`` timed.

    Reads the rows the routing-cost goals write to ``throughput.csv`` (batch 1024, the S builds
    timed in alternation): ``"<model> fwd+bwd S=<s>"`` (forward + backward) and ``"<model>
    S=<s>"`` (a full train step with Adam; absent for the every-tower reference).

    Returns:
        One row per model: fwd+bwd ms at both S, their ratio, the train-step ratio, the machine.
    """
    frame = load_throughput() if frame is None else frame
    frame = frame[frame.device == device]
    names = frame.model.astype(str)

    def ms(name: str) -> float:
        hit = frame[names == name]
        return float(hit.ms_p50.iloc[-1]) if len(hit) else float("nan")

    marker = " fwd+bwd S="
    labels = dict.fromkeys(n.rsplit(marker, 1)[0] for n in names if marker in n)
    rows = []
    for label in labels:
        f_lo, f_hi = ms(f"{label}{marker}{lo}"), ms(f"{label}{marker}{hi}")
        step_lo, step_hi = ms(f"{label} S={lo}"), ms(f"{label} S={hi}")
        machine = frame[names == f"{label}{marker}{lo}"].device_name
        rows.append({"model": label, f"fwd+bwd S={lo} ms": f_lo, f"fwd+bwd S={hi} ms": f_hi,
                     "fwd+bwd ratio": f_hi / f_lo, "train step ratio": step_hi / step_lo,
                     "machine": machine.iloc[-1] if len(machine) else ""})  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- diagrams
# Specs (boxes, arrows, title) for mtrec.reporting.diagram.draw_diagram(*spec): green boxes
# ("specific") hold one set of parameters per scenario, red ones ("shared") serve every scenario.
Spec = tuple[dict[str, Box], list, str]


def router_spec() -> Spec:
    """ScenarioRouter: rows grouped by scenario, one batched matmul over the scenarios present."""
    boxes = {"x": Box(-1.2, 0, "rows x (B, D_in)", "input"),
             "s": Box(1.2, 0, "scenario ids (B,)", "input"),
             "group": Box(0, 1, "sort rows by scenario,\npad groups to M rows", "op", width=2.6,
                          height=0.7),
             "bmm": Box(0, 2.1, "one bmm: (S', M, D_in) @ (S', D_in, D_out)", "op", width=3.6),
             "w": Box(2.9, 2.1, "W_s of the S'\nscenarios present", "specific", width=1.8,
                      height=0.7),
             "out": Box(0, 3.1, "rows back in order (B, D_out)", "output", width=2.6)}  # fmt: skip
    arrows = [("x", "group"), ("s", "group"), ("group", "bmm"), ("w", "bmm"), ("bmm", "out")]
    return boxes, arrows, "ScenarioRouter: each row meets only its own scenario's weights"


def star_spec() -> Spec:
    """STAR: partitioned norm, star-topology layers W ⊙ W_s, an auxiliary net on the scenario."""
    boxes = {"x": Box(0, 0, "feature embeddings", "input", width=2.2),
             "pn": Box(0, 1, "partitioned norm:\nshared stats, γ·γ_s, β + β_s", "specific",
                       width=2.6, height=0.7),
             "fc": Box(0, 2.1, "star layers: x (W ⊙ W_s) + b + b_s", "specific", width=3.0),
             "w": Box(-2.9, 2.1, "W, b shared by\nevery scenario", "shared", width=1.8,
                      height=0.7),
             "sid": Box(2.9, 0, "scenario s", "input", width=1.4),
             "aux": Box(2.9, 1.0, "auxiliary net\n(scenario, x)", "model", width=1.8, height=0.7),
             "sum": Box(0, 3.1, "+", "op", width=0.6),
             "out": Box(0, 4.0, "logits", "output")}  # fmt: skip
    arrows = [("x", "pn"), ("pn", "fc"), ("w", "fc"), ("fc", "sum"), ("sid", "aux"),
              ("aux", "sum"), ("sum", "out")]  # fmt: skip
    return boxes, arrows, "STAR (Sheng et al., CIKM 2021)"


def scenario_moe_spec() -> Spec:
    """Scenario-MoE: shared experts, one softmax gate per task that reads the scenario."""
    boxes = {"x": Box(-1.3, 0, "features", "input"),
             "s": Box(1.5, 0, "scenario embedding", "input", width=2.0),
             "ep": Box(-1.3, 1, "EPNet: x ⊙ 2σ(MLP(s))", "specific", width=2.2),
             "e": Box(-1.3, 2, "E shared experts", "shared", width=2.0),
             "g": Box(1.5, 2, "gate per task:\nsoftmax(s, x)", "specific", width=1.9, height=0.7),
             "mix": Box(0.1, 3, "Σ gate · expert", "op", width=1.8),
             "out": Box(0.1, 4, "task towers → logits", "output", width=2.2)}  # fmt: skip
    arrows = [("x", "ep"), ("s", "ep"), ("ep", "e"), ("s", "g"), ("e", "mix"), ("g", "mix"),
              ("mix", "out")]  # fmt: skip
    return boxes, arrows, "Scenario-gated MoE (HMoE / PEPNet style)"


def _chain(title: str, steps: Sequence[tuple[str, str]]) -> Spec:
    """A bottom-to-top chain of boxes ``(text, kind)``, each feeding the next."""
    boxes = {f"b{i}": Box(0, 1.1 * i, text, kind, width=2.6, height=0.75)
             for i, (text, kind) in enumerate(steps)}  # fmt: skip
    return boxes, [(f"b{i}", f"b{i + 1}") for i in range(len(steps) - 1)], title


def new_model_specs() -> list[Spec]:
    """PEPNet, M2M, AdaSparse, SAR-Net and HAMUR as chains (green: depends on the scenario s)."""
    x, out = ("features", "input"), ("logits", "output")
    return [
        _chain("PEPNet", [x, ("EPNet: x ⊙ gate(s)", "specific"),
                          ("task towers, every layer\n⊙ PPNet gate(s)", "specific"), out]),
        _chain("M2M", [x, ("E shared experts", "shared"),
                       ("expert attention,\nweights W(s) by a meta net", "specific"),
                       ("meta tower W(s)", "specific"), out]),
        _chain("AdaSparse", [x, ("pruner π(s, x) ⊙ x", "specific"),
                             ("shared MLP layer,\npruner π(s, h) ⊙ h", "specific"), out]),
        _chain("SAR-Net", [x, ("x ⊙ w_s + b_s", "specific"),
                           ("shared experts +\nexperts of s only", "specific"),
                           ("gate(s) → task towers", "specific"), ("logits + bias(s)", "output")]),
        _chain("HAMUR", [x, ("backbone MLP of s", "specific"),
                         ("adapter U · H(x, s) · V\n(shared hyper-network)", "shared"),
                         ("output layer of s", "specific")]),
    ]  # fmt: skip
