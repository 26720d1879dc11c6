"""The benchmark report's PNG plots: throughput against batch size, and measured / goal.

matplotlib is an optional dependency here: without it the plots are skipped (with a warning) and
the markdown report is written without them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtrec.reporting.store import model_rows

log = logging.getLogger(__name__)


def _pyplot(path: Path) -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or None (logged) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; %s not drawn", path.name)
        return None
    return plt


def plot_throughput(frame: pd.DataFrame, path: Path) -> bool:
    """samples/s against batch size per model (CPU solid, GPU dashed), log-log, train | inference."""
    plt = _pyplot(path)
    if plt is None:
        return False
    models = model_rows(frame)
    models = models[models.groupby("model").batch_size.transform("nunique") > 1]
    if models.empty:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6), sharey=True)
    palette = plt.cm.tab20.colors  # 20 colours, reused in turn beyond that
    colours = {m: palette[i % len(palette)] for i, m in enumerate(sorted(models.model.unique()))}
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
    handles, labels = axes[0].get_legend_handles_labels()
    more = axes[1].get_legend_handles_labels()  # models drawn in one phase only
    for handle, label in zip(*more):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    rows = -(-len(labels) // 4)  # a legend under both panels, four columns: no line is hidden
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_goals(goals: pd.DataFrame, path: Path) -> bool:
    """Measured / target per goal (1.0 = just met), as horizontal bars."""
    plt = _pyplot(path)
    if plt is None:
        return False
    goals = goals.dropna(subset=["measured"])
    if goals.empty:
        return False
    targets = goals.target.str.extract(r"([<>]=)\s*([\d.]+)")
    lower = targets[0].eq("<=")
    value = goals.measured.astype(float)
    target = targets[1].astype(float)
    # a cost at or below zero (an overhead lost in the timing noise) is drawn at 100x its limit
    cost = np.clip(value, target / 100, None)
    score = np.where(lower, target / cost, value / target)  # > 1 means met
    labels = [f"{g} ({d})" for g, d in zip(goals.goal, goals.device)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(goals) + 1.2))
    colours = ["tab:green" if met == "yes" else "tab:red" for met in goals.met]
    ax.barh(labels, score, color=colours)
    ax.axvline(1.0, color="black", lw=1)
    ax.set(xscale="log", xlabel="measured / goal (a limit: goal / measured); right of 1: met")
    ax.set_title("Goals (a cost at or below zero is drawn at 100)", fontsize=9)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def seed_bars(
    ax: Any, rows: pd.DataFrame, metric: str, *, title: str = "", highlight: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Mean ± std over seeds of ``metric``, one horizontal bar per model, sorted by the mean.

    Args:
        ax: a matplotlib Axes to draw on (the caller owns the figure).
        rows: quality rows (:func:`mtrec.reporting.load_quality`) of one dataset and task.
        metric: e.g. ``"hr@10"``.
        title: the axes title.
        highlight: models drawn in another colour (e.g. the baselines).

    The whisker is the std over seeds (none for a one-seed or deterministic row); each label
    says how many seeds the bar holds. Returns the table drawn (model → value, std, seeds).
    """
    if rows.empty or metric not in set(rows.metric):
        raise ValueError(
            f"no {metric!r} rows to draw; the rows have metrics {sorted(set(rows.metric))}"
        )
    part = rows[rows.metric == metric]
    if part.model.duplicated().any():
        raise ValueError(
            f"{metric!r} has several rows per model ({sorted(set(part.dataset))} × "
            f"{sorted(set(part.task))}); pass the rows of one dataset and task"
        )
    table = part.set_index("model")[["value", "std", "seeds"]].sort_values("value")
    labels = [f"{m} ({int(n)} seed{'s' if n != 1 else ''})" for m, n in table.seeds.items()]
    colours = ["tab:gray" if m in highlight else "tab:blue" for m in table.index]
    ax.barh(labels, table.value, xerr=table["std"].fillna(0.0), capsize=3, color=colours)
    ax.set(xlabel=f"{metric} (mean ± std over seeds)", title=title)
    return table
