"""The committed results files: schemas, atomic upserts, and the rows notebooks and the bench write.

``benchmarks/results/quality.csv`` (written by the notebooks), ``throughput.csv`` and
``goals.csv`` (written by ``mtrec bench``) are the only source of every number in README and
``benchmarks/README.md``. Notebooks record rows with :func:`record_quality` only when
``MTREC_WRITE_RESULTS=1`` (set by ``make notebooks`` / ``make tour``), so a test run never rewrites
the committed tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtrec.utils import REPO_ROOT, git_commit

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
QUALITY_CSV = RESULTS_DIR / "quality.csv"
THROUGHPUT_CSV = RESULTS_DIR / "throughput.csv"
GOALS_CSV = RESULTS_DIR / "goals.csv"

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
GOAL_COLUMNS = ["goal", "kind", "device", "measured", "target", "met", "detail", "commit", "date"]
GOAL_KEY = ["goal", "device"]


def stamp_machine(frame: pd.DataFrame, *, dated: bool = True) -> pd.DataFrame:
    """``frame`` with where a cost was measured: threads, cpu, torch, commit (and date) columns."""
    from mtrec.utils import env_info

    info = env_info()
    stamp = {"threads": torch.get_num_threads(), "cpu": info["cpu"], "torch": info["torch"],
             "commit": git_commit()}  # fmt: skip
    return frame.assign(**stamp, **({"date": date.today().isoformat()} if dated else {}))


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


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock beside ``path`` so concurrent writers never lose each other's rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upsert(
    path: Path,
    rows: pd.DataFrame,
    columns: list[str],
    key: list[str],
    *,
    same: Callable[[pd.DataFrame], pd.Series] | None = None,
    drop: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> pd.DataFrame:
    """Insert ``rows`` into the CSV at ``path``, replacing rows with the same ``key``.

    ``same`` (optional) maps a frame to one string per row: the old rows whose string is among
    the new rows' are replaced instead (a coarser identity than ``key``; the result is still
    sorted by ``key``). ``drop`` (optional) maps the merged table to a boolean mask of rows to
    leave out. The read-modify-write runs under a file lock: two notebooks recording rows at
    once (e.g. ``make -j tour``) both land.
    """
    with _locked(path):
        return _upsert(path, rows, columns, key, same or (lambda frame: _joined(frame, key)), drop)


def _joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row: the values of ``columns`` joined by "|"."""
    return frame[columns].astype(str).agg("|".join, axis=1)


def _upsert(
    path: Path,
    rows: pd.DataFrame,
    columns: list[str],
    key: list[str],
    same: Callable[[pd.DataFrame], pd.Series],
    drop: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> pd.DataFrame:
    missing = sorted(set(columns) - set(rows.columns))
    if missing:
        raise ValueError(f"result rows lack columns {missing}; expected all of {columns}")
    rows = rows[columns]
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
    for col in columns:
        if col not in old.columns:
            old[col] = np.nan
    old = old[columns]
    if len(old) and len(rows):
        old = old[~same(old).isin(set(same(rows)))]
    merged = pd.concat([old, rows], ignore_index=True) if len(old) else rows.reset_index(drop=True)
    if drop is not None:
        merged = merged[~drop(merged)]
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
    """Build tidy quality rows: one per metric, mean and sample std over per-seed values.

    A NaN or infinite per-seed value is refused: it would turn the mean and std into NaN. A
    metric that is undefined on a seed (e.g. AUC over one class) is left out by the caller.
    """
    records: list[dict[str, Any]] = []
    for metric, values in metrics.items():
        values = np.asarray(list(values), dtype=float)
        if values.size == 0:
            raise ValueError(f"metric {metric!r} has no values; pass one value per seed")
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise ValueError(
                f"metric {metric!r} ({dataset}, {model}, {scenario}, {task}) has {bad} of "
                f"{values.size} per-seed values NaN or infinite: {values.tolist()[:8]}; the mean "
                "and std would be NaN. Fix the run that produced them, or leave out the seeds "
                "where the metric is undefined (e.g. AUC of one class)"
            )
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
    """Upsert quality rows when writing is enabled; return whether anything was written.

    Rows with a NaN or infinite ``value``, or a NaN ``std`` over 2 or more seeds, are refused
    (even when writing is off, so a test run catches them): build rows with
    :func:`quality_rows` from finite per-seed values. One seed's std is NaN by design.
    """
    _check_quality(rows)
    if not writing_enabled():
        return False
    upsert(path, rows, QUALITY_COLUMNS, QUALITY_KEY)
    return True


def _check_quality(rows: pd.DataFrame) -> None:
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(
            f"quality rows must be a DataFrame (quality_rows), got {type(rows).__name__}"
        )
    missing = sorted(set(QUALITY_COLUMNS) - set(rows.columns))
    if missing:
        raise ValueError(f"quality rows lack columns {missing}; build them with quality_rows")
    value = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    std = pd.to_numeric(rows["std"], errors="coerce").to_numpy(dtype=float)
    seeds = pd.to_numeric(rows["seeds"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(value) | (~np.isfinite(std) & ~(seeds == 1))
    if bad.any():
        row = rows[bad].iloc[0]
        raise ValueError(
            f"{int(bad.sum())} quality row(s) have a NaN/infinite value or std, e.g. metric "
            f"{row['metric']!r} of {row['model']!r} ({row['dataset']}, {row['scenario']}, "
            f"{row['task']}): value {row['value']}, std {row['std']} over {row['seeds']} seeds; "
            "record finite per-seed values only (leave out seeds where a metric is undefined)"
        )


def record_throughput(
    rows: pd.DataFrame, *, path: Path = THROUGHPUT_CSV, relabel: bool = False
) -> None:
    """Upsert throughput rows (``mtrec bench`` always writes; it is an explicit command).

    A row replaces the row of the same measurement on the same machine and label
    (:data:`THROUGHPUT_KEY`). With ``relabel`` it also replaces that measurement's rows under
    any other label of the machine (the ``[note]`` at the end of ``device_name``), so a
    re-measurement that says something new about the machine (e.g. that its host was quiet)
    does not leave the old rows beside it. Ceiling rows (phase ``"ceiling"``) are the exception:
    they describe the host during the run whose rows stand beside them, so a partial run (e.g.
    ``--models text``) adds its own and the old label's stay while any of its rows remain.
    """
    rows = rows.copy()
    rows["date"] = rows.get("date", date.today().isoformat())
    if relabel:
        upsert(path, rows, THROUGHPUT_COLUMNS, THROUGHPUT_KEY, same=_same_machine_measurement,
               drop=_orphan_ceilings)  # fmt: skip
    else:
        upsert(path, rows, THROUGHPUT_COLUMNS, THROUGHPUT_KEY)


def machine_name(device_name: str) -> str:
    """``device_name`` without the ``[note]`` that ``mtrec bench --note`` appends to it."""
    return re.sub(r" \[.*\]$", "", str(device_name))


def _same_machine_measurement(frame: pd.DataFrame) -> pd.Series:
    """THROUGHPUT_KEY per row, with the machine's name in place of its labelled name (ceiling
    rows keep their label: see :func:`record_throughput`)."""
    name = frame["device_name"].where(frame["phase"] == "ceiling",
                                      frame["device_name"].map(machine_name))  # fmt: skip
    return _joined(frame.assign(device_name=name), THROUGHPUT_KEY)


def _orphan_ceilings(table: pd.DataFrame) -> pd.Series:
    """Ceiling rows of a (device, labelled machine) that has no other row left."""
    ceiling = table["phase"] == "ceiling"
    machines = pd.MultiIndex.from_frame(table[["device", "device_name"]])
    return ceiling & ~machines.isin(machines[~ceiling.to_numpy()])


def record_goals(goals: list[dict[str, Any]], *, path: Path = GOALS_CSV) -> pd.DataFrame:
    """Upsert goal rows (keyed by goal and device); ``mtrec bench`` always writes them."""
    return upsert(path, pd.DataFrame(goals, columns=GOAL_COLUMNS), GOAL_COLUMNS, GOAL_KEY)


def load_quality(path: Path = QUALITY_CSV) -> pd.DataFrame:
    """The committed quality table (empty frame with the schema when absent)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=QUALITY_COLUMNS)


def load_throughput(path: Path = THROUGHPUT_CSV) -> pd.DataFrame:
    """The committed throughput table (empty frame with the schema when absent)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=THROUGHPUT_COLUMNS)


def load_goals(path: Path = GOALS_CSV) -> pd.DataFrame:
    """The committed goals table (an empty frame when absent)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def model_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Throughput rows of models only (without the ``ceiling`` rows)."""
    return frame[frame.phase != "ceiling"]
