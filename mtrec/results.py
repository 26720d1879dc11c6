"""The committed results files and the tables generated from them.

``benchmarks/results/quality.csv`` and ``benchmarks/results/throughput.csv`` are the only source of
every number in README and ``benchmarks/README.md``; tables are rendered here, never typed.
Notebooks record rows with :func:`record_quality` only when ``MTREC_WRITE_RESULTS=1`` (set by
``make notebooks`` / ``make tour``), so a test run never rewrites the committed tables.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtrec.utils import REPO_ROOT, git_commit

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
QUALITY_CSV = RESULTS_DIR / "quality.csv"
THROUGHPUT_CSV = RESULTS_DIR / "throughput.csv"

QUALITY_COLUMNS = [
    "dataset", "model", "scenario", "task", "metric", "value", "std", "seeds", "split", "commit",
]  # fmt: skip
QUALITY_KEY = ["dataset", "model", "scenario", "task", "metric", "split"]
THROUGHPUT_COLUMNS = [
    "model", "device", "device_name", "precision", "batch_size", "phase", "samples_per_s",
    "ms_p50", "ms_p90", "peak_mem_mb", "compiled", "gflops_per_s", "ceiling_fraction",
    "cpu", "cpu_cores", "torch", "cuda", "commit", "date",
]  # fmt: skip
THROUGHPUT_KEY = ["model", "device", "device_name", "precision", "batch_size", "phase", "compiled"]


def writing_enabled() -> bool:
    """True when notebooks should write their rows (``MTREC_WRITE_RESULTS=1``)."""
    return os.environ.get("MTREC_WRITE_RESULTS") == "1"


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upsert(path: Path, rows: pd.DataFrame, columns: list[str], key: list[str]) -> pd.DataFrame:
    """Insert ``rows`` into the CSV at ``path``, replacing rows with the same ``key``."""
    missing = sorted(set(columns) - set(rows.columns))
    if missing:
        raise ValueError(f"result rows lack columns {missing}; expected all of {columns}")
    rows = rows[columns]
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
    for col in columns:
        if col not in old.columns:
            old[col] = np.nan
    old = old[columns]
    if len(old):
        keys_new = rows[key].astype(str).agg("|".join, axis=1)
        keys_old = old[key].astype(str).agg("|".join, axis=1)
        old = old[~keys_old.isin(set(keys_new))]
    merged = pd.concat([old, rows], ignore_index=True) if len(old) else rows.reset_index(drop=True)
    merged = merged.sort_values(key, kind="stable").reset_index(drop=True)
    _atomic_write_csv(merged, path)
    return merged


def quality_rows(
    *,
    dataset: str,
    model: str,
    metrics: Mapping[str, Iterable[float]],
    scenario: str = "all",
    task: str = "all",
    split: str = "test",
) -> pd.DataFrame:
    """Build tidy quality rows: one per metric, mean and sample std over per-seed values."""
    records: list[dict[str, Any]] = []
    for metric, values in metrics.items():
        values = np.asarray(list(values), dtype=float)
        if values.size == 0:
            raise ValueError(f"metric {metric!r} has no values; pass one value per seed")
        records.append(
            {
                "dataset": dataset,
                "model": model,
                "scenario": scenario,
                "task": task,
                "metric": metric,
                "value": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                "seeds": int(values.size),
                "split": split,
                "commit": git_commit(),
            }
        )
    return pd.DataFrame.from_records(records, columns=QUALITY_COLUMNS)


def record_quality(rows: pd.DataFrame, *, path: Path = QUALITY_CSV) -> bool:
    """Upsert quality rows when writing is enabled; return whether anything was written."""
    if not writing_enabled():
        return False
    upsert(path, rows, QUALITY_COLUMNS, QUALITY_KEY)
    return True


def record_throughput(rows: pd.DataFrame, *, path: Path = THROUGHPUT_CSV) -> None:
    """Upsert throughput rows (``mtrec bench`` always writes; it is an explicit command)."""
    rows = rows.copy()
    rows["date"] = rows.get("date", date.today().isoformat())
    upsert(path, rows, THROUGHPUT_COLUMNS, THROUGHPUT_KEY)


def load_quality(path: Path = QUALITY_CSV) -> pd.DataFrame:
    """The committed quality table (empty frame with the schema when absent)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=QUALITY_COLUMNS)


def load_throughput(path: Path = THROUGHPUT_CSV) -> pd.DataFrame:
    """The committed throughput table (empty frame with the schema when absent)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=THROUGHPUT_COLUMNS)


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
