"""Tables and documents from the results files: markdown tables, ``benchmarks/README.md``, README.

Every number comes from ``benchmarks/results/throughput.csv`` and ``goals.csv`` (written by
``mtrec bench``) and ``quality.csv`` (written by the notebooks); nothing is typed by hand. Where a
device has no rows the tables say "not measured"; a model the benchmark expected but could not
measure says "not available". ``make report`` (``mtrec bench --report-only``) re-renders all of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.reporting.protocols import COMPILE_PROTOCOL, PROTOCOL, QUALITY_PROTOCOL
from mtrec.reporting.store import (
    load_quality,
    model_rows,
)

log = logging.getLogger(__name__)
NOT_MEASURED = "not measured"
NOT_AVAILABLE = "not available"


def format_mean_std(value: float, std: float, digits: int = 4) -> str:
    """``0.7312 ± 0.0041``; the ``±`` part is dropped when std is missing (one seed)."""
    if pd.isna(std):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {std:.{digits}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-markdown table of ``frame`` (no dependency on ``tabulate``)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def quality_markdown(frame: pd.DataFrame | None = None, *, overall_only: bool = False) -> str:
    """The quality table as markdown, grouped by dataset (value shown as mean ± std).

    Args:
        frame: quality rows (default: the committed ``quality.csv``).
        overall_only: keep only rows over all scenarios (the README's compact view; the
            per-scenario rows stay in ``benchmarks/README.md``).
    """
    frame = load_quality() if frame is None else frame
    if overall_only and not frame.empty:
        frame = frame[frame.scenario == "all"]
    if frame.empty:
        return "_No quality results recorded yet: run `make tour`._"
    shown = frame.assign(result=[format_mean_std(v, s) for v, s in zip(frame.value, frame["std"])])
    shown = shown[["dataset", "model", "scenario", "task", "metric", "result", "seeds", "split"]]
    return markdown_table(shown)


def _fmt(value: float, digits: int = 3) -> str:
    """Three significant digits, thousands without exponent: 12300, 45.6, 0.0123."""
    if value is None or pd.isna(value):
        return ""
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


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


def speedup_table(frame: pd.DataFrame, expected: Sequence[str] = ()) -> pd.DataFrame:
    """Per model and phase: best CPU and GPU samples/s (with batch, precision) and GPU/CPU.

    ``expected`` names come first, in order, and say "not available" when they have no rows
    (``mtrec bench`` passes its model names); measured models not among them follow.
    """
    models = model_rows(frame[~frame.compiled.astype(str).str.lower().eq("true")])
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
    models = model_rows(frame).dropna(subset=["gflops_per_s"])
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
    shown = model_rows(frame).copy()
    for col in ("samples_per_s", "ms_p50", "ms_p90", "peak_mem_mb", "gflops_per_s"):
        shown[col] = shown[col].map(_fmt)
    shown["ceiling_fraction"] = shown.ceiling_fraction.map(
        lambda v: f"{v:.0%}" if pd.notna(v) else ""
    )
    cols = [
        "model", "device", "precision", "compiled", "batch_size", "phase", "samples_per_s",
        "ms_p50", "ms_p90", "peak_mem_mb", "gflops_per_s", "ceiling_fraction",
    ]  # fmt: skip
    return shown[cols]


# goal rows that ask whether a tool pays off here (compiled / eager >= 1) rather than hold mtrec
# to a target: recorded with the goals, shown and counted apart (compile_table)
QUESTION_KINDS = ("compile",)
COMPILE_GOAL = re.compile(r"^(?P<model>\S+) train: torch\.compile / eager, batch (?P<batch>\d+)$")
COMPILE_DETAIL = re.compile(r"samples/s (?P<compiled>\d+) compiled vs (?P<eager>\d+) eager")


def split_goals(goals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mtrec's goals with their targets, the rows of :data:`QUESTION_KINDS`)."""
    if goals.empty:
        return goals, goals
    asks = goals.kind.isin(QUESTION_KINDS)
    return goals[~asks], goals[asks]


def compile_table(goals: pd.DataFrame) -> pd.DataFrame:
    """Each train step timed compiled and eager in alternation (``mtrec bench --compile``).

    Columns: model, batch, device, eager and compiled samples/s, compile / eager, pays off.
    """
    rows = split_goals(goals)[1]
    rows = rows[rows.kind == "compile"] if not rows.empty else rows
    columns = ["model", "batch", "device", "eager samples/s", "compiled samples/s",
               "compile / eager", "pays off"]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(columns=columns)
    names = rows.goal.str.extract(COMPILE_GOAL)
    speeds = rows.detail.str.extract(COMPILE_DETAIL).astype("int64")
    return pd.DataFrame({
        "model": names.model, "batch": names.batch.astype(int), "device": rows.device,
        "eager samples/s": speeds.eager, "compiled samples/s": speeds.compiled,
        "compile / eager": rows.measured.astype(float), "pays off": rows.met,
    })[columns].reset_index(drop=True)  # fmt: skip


def goals_table(goals: pd.DataFrame) -> pd.DataFrame:
    """Goal, device, measured ratio, target, met (yes / no / not available), how it was measured.

    The rows of :data:`QUESTION_KINDS` are left to :func:`compile_table`.
    """
    goals = split_goals(goals)[0]
    if goals.empty:
        return goals
    shown = goals.copy()
    shown["measured"] = shown.measured.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    cols = ["goal", "kind", "device", "measured", "target", "met", "detail"]
    table = shown[cols]
    if "cuda" not in set(goals.device):
        gpu = table.drop_duplicates("goal").assign(
            device="cuda", measured="", met=NOT_MEASURED, detail="no GPU in the recorded runs"
        )
        table = pd.concat([table, gpu], ignore_index=True)
    return table


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


def benchmark_markdown(
    frame: pd.DataFrame,
    goals: pd.DataFrame,
    plots: Sequence[str],
    quality: pd.DataFrame | None = None,
    *,
    models: Sequence[str] = (),
) -> str:
    """The text of ``benchmarks/README.md`` (with every quality row when ``quality`` is given).

    ``models``: the benchmarked model names, listed first in the CPU vs GPU table (see
    :func:`speedup_table`).
    """
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
    compiled = compile_table(goals)
    if not compiled.empty:
        parts += ["", "## torch.compile against eager", "", COMPILE_PROTOCOL, ""]
        parts.append(markdown_table(compiled))
    parts += [
        "",
        "## CPU vs GPU (best batch size per device)",
        "",
        markdown_table(speedup_table(frame, models)),
    ]
    if "throughput.png" in plots:
        parts += ["", "![samples/s against batch size](throughput.png)"]
    flops = flops_table(frame)
    if not flops.empty:
        parts += [
            "",
            "## Achieved FLOP/s against the matmul ceiling",
            "",
            "The CPU goal: train throughput within 2× of what the FLOP count and the "
            "measured matmul ceiling allow (≥ 50%); STAR's target is 30% and the sequence "
            "models' 35% (the goal rows above, timed beside the matmul). Notebook 10 explains "
            "the bottleneck where a target is missed.",
            "",
            markdown_table(flops),
        ]
    parts += ["", "## All throughput rows", "", markdown_table(full_table(frame))]
    if quality is not None:
        parts += ["", "## Quality (every row, per scenario too)", "", QUALITY_PROTOCOL, ""]
        parts.append(quality_markdown(quality))
    return "\n".join([*parts, ""])


def throughput_markdown(
    frame: pd.DataFrame, goals: pd.DataFrame, *, models: Sequence[str] = ()
) -> str:
    """The compact README table: best samples/s per model and phase, CPU vs GPU, and the goals.

    Only ``models`` are shown when given (``mtrec bench`` passes its main models, so comparison
    baselines such as the typical-loop MMoE appear only in ``benchmarks/README.md``).
    """
    if frame.empty:
        return "_No throughput measured yet: run `mtrec bench --quick`._"
    table = speedup_table(frame, models)
    text = markdown_table(table[table.model.isin(models)] if models else table)
    targets, asked = split_goals(goals)
    if not targets.empty:
        met = targets.met.value_counts()
        text += (
            f"\n\nGoals: {met.get('yes', 0)} met, {met.get('no', 0)} not met, "
            f"{met.get(NOT_AVAILABLE, 0)} not available "
            "(see [`benchmarks/README.md`](benchmarks/README.md))."
        )
    compiled = compile_table(asked)
    if not compiled.empty:
        pays = compiled[compiled["pays off"] == "yes"]
        text += (
            f" torch.compile pays off in {len(pays)} of {len(compiled)} train steps timed both "
            f"ways{': ' if len(pays) else ''}"
            + ", ".join(f"{r.model} at batch {r.batch}" for r in pays.itertuples())
            + "."
        )
    cpu = frame[frame.device == "cpu"]
    if models:
        cpu = cpu[cpu.model.isin(models)]
    machines = cpu.groupby("device_name", sort=False)
    if len(machines) > 1:  # say which rows come from which machine: never compare across them
        text += " CPU rows come from several machines; compare ratios only within one:"
        for name, rows in machines:
            text += f"\n- {name}, {_commits(rows)}: {', '.join(sorted(rows.model.unique()))}"
    elif len(machines) == 1:
        ((name, rows),) = machines
        text += f" CPU rows measured on {name}, {_commits(rows)}."
    return text


def _commits(rows: pd.DataFrame) -> str:
    """ "commit abc1234" (or "commits a, b") of the rows, so a reader knows which code ran."""
    known = sorted(str(c) for c in rows["commit"].dropna().unique()) if "commit" in rows else []
    if not known:
        return "commit not recorded"
    return f"commit{'s' if len(known) > 1 else ''} {', '.join(known)}"


def replace_between(text: str, name: str, body: str) -> str:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (kept)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        raise ValueError(f"markers {start} … {end} not found; add them where the table belongs")
    return pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text, count=1)
