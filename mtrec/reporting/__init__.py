"""Results store, tables and plots: the committed CSVs and everything generated from them.

:mod:`~mtrec.reporting.store` reads and writes ``benchmarks/results/*.csv``;
:mod:`~mtrec.reporting.render` turns them into markdown tables, ``benchmarks/README.md`` and the
README sections; :mod:`~mtrec.reporting.plots` draws the PNGs; :mod:`~mtrec.reporting.multiscenario` renders the
multi-scenario benchmark; :mod:`~mtrec.reporting.write` writes them all (``make report``). Notebooks record and show results
through the names re-exported here. Reporting never imports the benchmark harness: ``mtrec bench``
passes its model names in.
"""

from mtrec.reporting.plots import plot_goals, plot_throughput, seed_bars
from mtrec.reporting.render import (
    NOT_AVAILABLE,
    NOT_MEASURED,
    benchmark_markdown,
    ceilings_table,
    compile_table,
    flops_table,
    format_mean_std,
    full_table,
    goals_table,
    markdown_table,
    quality_markdown,
    replace_between,
    speedup_table,
    split_goals,
    throughput_markdown,
)
from mtrec.reporting.store import (
    GOAL_COLUMNS,
    GOAL_KEY,
    GOALS_CSV,
    QUALITY_COLUMNS,
    QUALITY_CSV,
    QUALITY_KEY,
    RESULTS_DIR,
    THROUGHPUT_COLUMNS,
    THROUGHPUT_CSV,
    THROUGHPUT_KEY,
    load_goals,
    load_quality,
    load_throughput,
    machine_name,
    model_rows,
    quality_rows,
    record_goals,
    record_quality,
    record_throughput,
    upsert,
    writing_enabled,
)
from mtrec.reporting.write import write_report

__all__ = [
    "GOALS_CSV", "GOAL_COLUMNS", "GOAL_KEY", "NOT_AVAILABLE", "NOT_MEASURED", "QUALITY_COLUMNS",
    "QUALITY_CSV", "QUALITY_KEY", "RESULTS_DIR", "THROUGHPUT_COLUMNS", "THROUGHPUT_CSV",
    "THROUGHPUT_KEY", "benchmark_markdown", "ceilings_table", "compile_table", "flops_table",
    "format_mean_std", "full_table", "goals_table", "load_goals", "load_quality",
    "load_throughput", "machine_name", "markdown_table", "model_rows", "plot_goals",
    "plot_throughput", "quality_markdown", "quality_rows", "record_goals", "record_quality",
    "record_throughput", "replace_between", "seed_bars", "speedup_table", "split_goals",
    "throughput_markdown", "upsert", "write_report", "writing_enabled",
]  # fmt: skip
