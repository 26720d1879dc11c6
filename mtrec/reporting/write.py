"""``make report``: write ``benchmarks/README.md``, its plots and the README's marked tables.

Everything is generated from the committed CSVs in ``benchmarks/results/`` (never typed by hand).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mtrec.reporting.multiscenario import multiscenario_markdown
from mtrec.reporting.plots import plot_goals, plot_throughput
from mtrec.reporting.protocols import MULTISCENARIO_PROTOCOL
from mtrec.reporting.render import (
    benchmark_markdown,
    quality_markdown,
    replace_between,
    split_goals,
    throughput_markdown,
)
from mtrec.reporting.store import RESULTS_DIR, load_goals, load_quality, load_throughput
from mtrec.utils import REPO_ROOT

log = logging.getLogger(__name__)


def load_csv(path: Path) -> pd.DataFrame | None:
    """A results CSV, or None when absent (the renderer then says what to run)."""
    return pd.read_csv(path) if path.exists() else None


def write_report(
    *,
    results_dir: Path | None = None,
    bench_dir: Path | None = None,
    readme: Path | None = None,
    models: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``benchmarks/README.md``, the PNG plots and the README tables; return the paths.

    Args:
        models: the benchmarked model names (``mtrec bench`` passes its own): listed first in the
            CPU vs GPU tables, "not available" when absent from the CSV, and the only rows of the
            README's compact table.
        results_dir: where the CSVs are (default ``benchmarks/results``).
        bench_dir: where the report and plots go (default: the parent of ``results_dir``).
        readme: the README whose marked tables are replaced; by default the repository's README,
            but only when ``results_dir`` is the default (a scratch run never edits README).
    """
    results_dir = Path(results_dir) if results_dir else RESULTS_DIR
    bench_dir = Path(bench_dir) if bench_dir else results_dir.parent
    if readme is None and results_dir.resolve() == RESULTS_DIR.resolve():
        readme = REPO_ROOT / "README.md"
    frame = load_throughput(results_dir / "throughput.csv")
    goals = load_goals(results_dir / "goals.csv")
    bench_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots = []
    if not frame.empty and plot_throughput(frame, bench_dir / "throughput.png"):
        plots.append("throughput.png")
    targets = split_goals(goals)[0]  # compile / eager rows are a table, not targets
    if not targets.empty and plot_goals(targets, bench_dir / "goals.png"):
        plots.append("goals.png")
    for name in plots:
        written[name] = bench_dir / name
    quality = load_quality(results_dir / "quality.csv")
    doc = bench_dir / "README.md"
    scenarios = multiscenario_markdown(
        quality,
        per_seed=load_csv(results_dir / "multiscenario_seeds.csv"),
        cost=load_csv(results_dir / "multiscenario_cost.csv"),
    )
    doc.write_text(
        benchmark_markdown(frame, goals, plots, quality, models=models)
        + "\n\n## The multi-scenario benchmark\n\n"
        + MULTISCENARIO_PROTOCOL
        + "\n\n"
        + scenarios
        + "\n"
    )
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
        text = replace_between(text, "throughput", throughput_markdown(frame, goals, models=models))
        readme.write_text(text)
        written["README.md"] = readme
    elif readme is not None:
        log.warning("%s not found; README tables not updated", readme)
    return written
