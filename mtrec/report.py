"""Benchmark report: ``benchmarks/README.md``, its PNG plots and the README tables, from the CSVs.

Every number comes from ``benchmarks/results/throughput.csv`` and ``goals.csv`` (written by
``mtrec bench``) and ``quality.csv`` (written by the notebooks); nothing is typed by hand. Where a
device has no rows the tables say "not measured"; a model the benchmark expected but could not
import says "not available". ``make report`` (``mtrec bench --report-only``) re-renders all of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.results import load_quality, load_throughput, markdown_table, quality_markdown
from mtrec.utils import REPO_ROOT

log = logging.getLogger(__name__)
NOT_MEASURED = "not measured"
NOT_AVAILABLE = "not available"
# The models `mtrec bench` measures (a name absent from the CSV is reported as not available).
EXPECTED_MODELS = (
    "attention-mtrec L200 D64 H2",
    "attention-mtrec L512 D256 H8",
    "encoder-decoder",
    "sasrec",
    "mmoe",
    "ple",
    "star",
    "distilled-student",
    "distill-teacher",
    "text-encoder-mtrec",
)


def _fmt(value: float, digits: int = 3) -> str:
    """Three significant digits, thousands without exponent: 12300, 45.6, 0.0123."""
    if value is None or pd.isna(value):
        return ""
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _models(frame: pd.DataFrame) -> pd.DataFrame:
    """Model rows only (no ceilings)."""
    return frame[frame.phase != "ceiling"]


def ceilings_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Matmul GFLOP/s and copy GB/s per device (the denominators of every fraction)."""
    rows = []
    for device in ("cpu", "cuda"):
        sub = frame[(frame.device == device) & (frame.phase == "ceiling")]
        if sub.empty:
            rows.append(
                {
                    "device": device,
                    "device name": NOT_MEASURED,
                    "matmul": NOT_MEASURED,
                    "matmul GFLOP/s": NOT_MEASURED,
                    "copy GB/s": NOT_MEASURED,
                }
            )
            continue
        for name, part in sub.groupby("device_name"):
            mm = part[part.model == "ceiling/matmul"]
            cp = part[part.model == "ceiling/copy"]
            gb = (2 * cp.batch_size * cp.samples_per_s / 1e9).max() if len(cp) else np.nan
            rows.append(
                {
                    "device": device,
                    "device name": name,
                    "matmul": (
                        f"{int(mm.batch_size.iloc[0])}² {mm.precision.iloc[0]}" if len(mm) else ""
                    ),
                    "matmul GFLOP/s": _fmt(mm.gflops_per_s.max()) if len(mm) else NOT_MEASURED,
                    "copy GB/s": _fmt(gb) if len(cp) else NOT_MEASURED,
                }
            )
    return pd.DataFrame(rows)


def speedup_table(frame: pd.DataFrame, expected: Sequence[str] = EXPECTED_MODELS) -> pd.DataFrame:
    """Per model and phase: best CPU and GPU samples/s (with batch, precision) and GPU/CPU."""
    models = _models(frame[~frame.compiled.astype(str).str.lower().eq("true")])
    names = list(dict.fromkeys([*expected, *models.model]))
    rows = []
    for name in names:
        part = models[models.model == name]
        if part.empty:
            rows.append(
                {
                    "model": name,
                    "phase": "",
                    "CPU samples/s": NOT_AVAILABLE,
                    "GPU samples/s": NOT_AVAILABLE,
                    "GPU / CPU": NOT_AVAILABLE,
                }
            )
            continue
        for phase, by_phase in part.groupby("phase", sort=False):
            best = {}
            for device in ("cpu", "cuda"):
                sub = by_phase[by_phase.device == device]
                best[device] = sub.loc[sub.samples_per_s.idxmax()] if len(sub) else None
            cpu, gpu = best["cpu"], best["cuda"]
            rows.append(
                {
                    "model": name,
                    "phase": phase,
                    "CPU samples/s": (
                        f"{_fmt(cpu.samples_per_s)} (B={int(cpu.batch_size)})"
                        if cpu is not None
                        else NOT_MEASURED
                    ),
                    "GPU samples/s": (
                        f"{_fmt(gpu.samples_per_s)} (B={int(gpu.batch_size)}, {gpu.precision})"
                        if gpu is not None
                        else NOT_MEASURED
                    ),
                    "GPU / CPU": (
                        f"{gpu.samples_per_s / cpu.samples_per_s:.1f}×"
                        if cpu is not None and gpu is not None
                        else NOT_MEASURED
                    ),
                }
            )
    return pd.DataFrame(rows)


def flops_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Achieved GFLOP/s and fraction of the measured matmul ceiling, best batch per model."""
    models = _models(frame).dropna(subset=["gflops_per_s"])
    rows = []
    for (model, device, phase, precision), part in models.groupby(
        ["model", "device", "phase", "precision"], sort=True
    ):
        best = part.loc[part.gflops_per_s.idxmax()]
        fraction = best.ceiling_fraction
        rows.append(
            {
                "model": model,
                "device": device,
                "precision": precision,
                "phase": phase,
                "batch": int(best.batch_size),
                "GFLOP/s": _fmt(best.gflops_per_s),
                "of matmul ceiling": f"{fraction:.0%}" if pd.notna(fraction) else "",
                "within 2× of ceiling": (
                    ("yes" if fraction >= 0.5 else "no") if pd.notna(fraction) else ""
                ),
            }
        )
    return pd.DataFrame(rows)


def full_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every measured row, rounded for reading."""
    shown = _models(frame).copy()
    for col in ("samples_per_s", "ms_p50", "ms_p90", "peak_mem_mb", "gflops_per_s"):
        shown[col] = shown[col].map(_fmt)
    shown["ceiling_fraction"] = shown.ceiling_fraction.map(
        lambda v: f"{v:.0%}" if pd.notna(v) else ""
    )
    cols = [
        "model",
        "device",
        "precision",
        "compiled",
        "batch_size",
        "phase",
        "samples_per_s",
        "ms_p50",
        "ms_p90",
        "peak_mem_mb",
        "gflops_per_s",
        "ceiling_fraction",
    ]
    return shown[cols]


def goals_table(goals: pd.DataFrame) -> pd.DataFrame:
    """Goal, device, measured ratio, target, met (yes / no / not available), how it was measured."""
    if goals.empty:
        return goals
    shown = goals.copy()
    shown["measured"] = shown.measured.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    cols = ["goal", "issue", "device", "measured", "target", "met", "detail"]
    table = shown[cols]
    if "cuda" not in set(goals.device):
        gpu = table.drop_duplicates("goal").assign(
            device="cuda", measured="", met=NOT_MEASURED, detail="no GPU in the recorded runs"
        )
        table = pd.concat([table, gpu], ignore_index=True)
    return table


# ----------------------------------------------------------------------------- plots


def plot_throughput(frame: pd.DataFrame, path: Path) -> bool:
    """samples/s against batch size per model (CPU solid, GPU dashed), log-log, train | inference."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; %s not drawn", path.name)
        return False
    models = _models(frame)
    models = models[models.groupby("model").batch_size.transform("nunique") > 1]
    if models.empty:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = dict(zip(sorted(models.model.unique()), plt.cm.tab10.colors))
    for ax, phase in zip(axes, ("train", "inference")):
        part = models[models.phase == phase]
        for (model, device, precision), line in part.groupby(["model", "device", "precision"]):
            line = line.sort_values("batch_size")
            style = "-" if device == "cpu" else ("--" if precision == "fp32" else ":")
            ax.plot(
                line.batch_size,
                line.samples_per_s,
                style,
                marker="o",
                ms=3,
                color=colours[model],
                label=f"{model} ({device} {precision})",
            )
        ax.set(xscale="log", yscale="log", xlabel="batch size", title=phase)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("samples / s")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_goals(goals: pd.DataFrame, path: Path) -> bool:
    """Measured / target per goal (1.0 = just met), as horizontal bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    goals = goals.dropna(subset=["measured"])
    if goals.empty:
        return False
    targets = goals.target.str.extract(r"([<>]=)\s*([\d.]+)")
    lower = targets[0].eq("<=")
    value = goals.measured.astype(float)
    target = targets[1].astype(float)
    score = np.where(lower, target / value, value / target)  # > 1 means met
    labels = [f"{g} ({d})" for g, d in zip(goals.goal, goals.device)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(goals) + 1.2))
    colours = ["tab:green" if s >= 1 else "tab:red" for s in score]
    ax.barh(labels, score, color=colours)
    ax.axvline(1.0, color="black", lw=1)
    ax.set(xscale="log", xlabel="measured / goal (right of the line: met)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- documents


def _machine_lines(frame: pd.DataFrame) -> list[str]:
    lines = []
    cols = ["device", "device_name", "cpu", "cpu_cores", "torch", "cuda", "commit", "date"]
    for row in frame[cols].drop_duplicates(["device", "device_name"]).itertuples(index=False):
        lines.append(
            f"- **{row.device}**: {row.device_name}; CPU {row.cpu}, {row.cpu_cores} cores; "
            f"torch {row.torch}, CUDA {row.cuda}; commit {row.commit}; {row.date}"
        )
    if not (frame.device == "cuda").any():
        lines.append("- **cuda**: not measured (no GPU in the recorded runs; GPU columns say so)")
    return lines


PROTOCOL = """\
How every number is taken (`mtrec/bench.py`): synthetic inputs of each model's real shapes and
dtypes (ids in range, random floats, never zeros), fixed seeds, untimed warm-up steps, every timed
step followed by `synchronize` (CUDA only; a no-op on CPU), the median (p50) and p90 of the
per-step times; samples/s = batch / p50. A train step is zero_grad → loss → backward → Adam step;
inference is `predict` under `inference_mode`; on GPU both in fp32 and bf16 autocast. Peak memory
is `torch.cuda.max_memory_allocated` on GPU and the process RSS on CPU (everything the process
holds, so an upper bound). GFLOP/s are counted from the config for transformer models and by
`torch.utils.flop_counter` for the others; the fraction divides by the matmul ceiling measured in
the same run. Rows named `(epoch, data incl.)` time whole epochs including data loading."""


QUALITY_PROTOCOL = """\
Written by the notebooks (`make tour` sets `MTREC_WRITE_RESULTS=1`), one row per dataset, model,
scenario, task and metric: mean ± sample std over the seeds shown, on the test split, after model
selection on validation only. Each notebook states its protocol next to its table."""


def benchmark_markdown(
    frame: pd.DataFrame,
    goals: pd.DataFrame,
    plots: Sequence[str],
    quality: pd.DataFrame | None = None,
) -> str:
    """The text of ``benchmarks/README.md`` (with every quality row when ``quality`` is given)."""
    parts = [
        "# Benchmarks",
        "",
        "_Generated by `mtrec bench` / `make report` from `results/throughput.csv` and "
        "`results/goals.csv`; do not edit by hand._",
        "",
        PROTOCOL,
        "",
        "## Machines",
        *(_machine_lines(frame) if not frame.empty else ["- no measurements recorded yet"]),
    ]
    if frame.device_name.astype(str).str.contains("shared").any():
        parts += [
            "",
            "CPU rows marked `[shared ...]` were measured on a 2-core machine shared "
            "with other jobs: they are pessimistic and noisy.",
        ]
    parts += ["", "## Ceilings", "", markdown_table(ceilings_table(frame))]
    parts += ["", "## Goals", "", "Ratios measured side by side in one run.", ""]
    parts.append(markdown_table(goals_table(goals)) if not goals.empty else "_no goals measured_")
    if "goals.png" in plots:
        parts += ["", "![measured / goal](goals.png)"]
    parts += [
        "",
        "## CPU vs GPU (best batch size per device)",
        "",
        markdown_table(speedup_table(frame)),
    ]
    if "throughput.png" in plots:
        parts += ["", "![samples/s against batch size](throughput.png)"]
    flops = flops_table(frame)
    if not flops.empty:
        parts += [
            "",
            "## Achieved FLOP/s against the matmul ceiling",
            "",
            "Issue 8's CPU goal: train throughput within 2× of what the FLOP count and the "
            "measured matmul ceiling allow (≥ 50%). Notebook 10 explains the bottleneck "
            "where it is not.",
            "",
            markdown_table(flops),
        ]
    parts += ["", "## All throughput rows", "", markdown_table(full_table(frame))]
    if quality is not None:
        parts += ["", "## Quality (every row, per scenario too)", "", QUALITY_PROTOCOL, ""]
        parts.append(quality_markdown(quality))
    return "\n".join([*parts, ""])


def throughput_markdown(frame: pd.DataFrame, goals: pd.DataFrame) -> str:
    """The compact README table: best samples/s per main model and phase, CPU vs GPU, and the goals
    (comparison baselines such as the typical-loop MMoE appear only in ``benchmarks/README.md``)."""
    if frame.empty:
        return "_No throughput measured yet: run `mtrec bench --quick`._"
    table = speedup_table(frame)
    text = markdown_table(table[table.model.isin(EXPECTED_MODELS)])
    if not goals.empty:
        met = goals.met.value_counts()
        text += (
            f"\n\nGoals: {met.get('yes', 0)} met, {met.get('no', 0)} not met, "
            f"{met.get(NOT_AVAILABLE, 0)} not available "
            "(see [`benchmarks/README.md`](benchmarks/README.md))."
        )
    if frame.device_name.astype(str).str.contains("shared").any():
        text += " CPU figures come from a shared, loaded 2-core machine."
    return text


def replace_between(text: str, name: str, body: str) -> str:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (kept)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        raise ValueError(f"markers {start} … {end} not found; add them where the table belongs")
    return pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text, count=1)


def render(
    *,
    results_dir: Path | None = None,
    bench_dir: Path | None = None,
    readme: Path | None = None,
) -> dict[str, Path]:
    """Write ``benchmarks/README.md``, the PNG plots and the README tables; return the paths.

    Args:
        results_dir: where the CSVs are (default ``benchmarks/results``).
        bench_dir: where the report and plots go (default: the parent of ``results_dir``).
        readme: the README whose marked tables are replaced; by default the repository's README,
            but only when ``results_dir`` is the default (a scratch run never edits README).
    """
    default_results = REPO_ROOT / "benchmarks" / "results"
    results_dir = Path(results_dir) if results_dir else default_results
    bench_dir = Path(bench_dir) if bench_dir else results_dir.parent
    if readme is None and results_dir.resolve() == default_results.resolve():
        readme = REPO_ROOT / "README.md"
    frame = load_throughput(results_dir / "throughput.csv")
    goals_path = results_dir / "goals.csv"
    goals = pd.read_csv(goals_path) if goals_path.exists() else pd.DataFrame()
    bench_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots = []
    if not frame.empty and plot_throughput(frame, bench_dir / "throughput.png"):
        plots.append("throughput.png")
    if not goals.empty and plot_goals(goals, bench_dir / "goals.png"):
        plots.append("goals.png")
    for name in plots:
        written[name] = bench_dir / name
    quality = load_quality(results_dir / "quality.csv")
    doc = bench_dir / "README.md"
    doc.write_text(benchmark_markdown(frame, goals, plots, quality))
    written["benchmarks/README.md"] = doc
    if readme is not None and readme.exists():
        text = readme.read_text()
        overall = quality_markdown(quality, overall_only=True)
        if not quality.empty:
            overall = (
                "<details><summary>Overall rows (mean ± std over seeds, test split); per-scenario "
                "rows are in <code>benchmarks/README.md</code></summary>\n\n"
                f"{overall}\n\n</details>"
            )
        text = replace_between(text, "quality", overall)
        text = replace_between(text, "throughput", throughput_markdown(frame, goals))
        readme.write_text(text)
        written["README.md"] = readme
    elif readme is not None:
        log.warning("%s not found; README tables not updated", readme)
    return written
