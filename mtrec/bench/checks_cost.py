"""What forgiving inputs cost on the training path: train epochs with and without the checks.

Every model checks its inputs (ids in range, no NaN, 0/1 labels, known scenarios) and says what
is wrong. Batches of a :class:`mtrec.data.TensorBatcher` are checked once over the batcher's whole
data (:func:`mtrec.checks.checked_once`), so a training step pays nothing after the first. Three
epochs are timed in alternation on the same model and rows:

* ``checked once`` — the batches of a batcher whose whole-data checks ran (in the warm-up
  epoch), as every training epoch after the first sees them;
* ``unchecked`` — the same batches with every value check skipped (the floor);
* ``checked per batch`` — the same batches as plain dicts, every step scanning its own rows
  (what a direct call costs, and what training cost before batches carried their origin).

The one-time whole-data scan is timed too (a new batcher's first batch, minus a checked one's)
and reported in the detail. Each model is timed in three fresh passes and the median counts.
Goal: ``checked once`` / ``unchecked`` − 1 <= :data:`CHECK_TARGET` for MMoE and STAR (STAR reads
all three kinds of checked input: features, scenario ids and labels).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.bench.baselines import mtrec_train_epoch
from mtrec.bench.built import TASKS
from mtrec.bench.cases import MULTITASK_BATCH, multitask_model
from mtrec.bench.goals import goal_row, median_pass
from mtrec.bench.inputs import click_batch, click_features, move
from mtrec.bench.measure import Context
from mtrec.bench.scenario_cases import star_built
from mtrec.bench.timing import SEED, Timing, time_interleaved
from mtrec.checks import CheckedData
from mtrec.data import TensorBatcher

CHECK_TARGET = 0.02  # the checks may cost at most 2% of a training epoch
CHECK_PASSES = 3  # fresh timings of each model, in turn; the median counts
ARMS = ("checked once", "unchecked", "checked per batch")

Rows = list[dict[str, Any]]


class _Unchecked(CheckedData):
    """Origin of batches whose value checks are all skipped (the floor of the comparison)."""

    def once(self, key: Hashable, check: Callable[[Mapping[str, Tensor]], object]) -> None:
        return None


def _as_plain_dicts(batches: TensorBatcher) -> Iterator[dict[str, Tensor]]:
    """The batcher's batches without their origin: every step checks its own rows."""
    for batch in batches:
        yield dict(batch)


def _model_and_rows(kind: str, rows: int) -> tuple[nn.Module, dict[str, Tensor]]:
    if kind == "star":
        built = star_built(rows)
        return built.model, built.batch
    features = click_features()
    return multitask_model(kind, features), click_batch(features, rows, num_tasks=len(TASKS))


def _epochs(
    kind: str, rows: int, device: torch.device
) -> tuple[dict[str, Callable[[], int]], float]:
    """The three epochs of :mod:`this comparison <mtrec.bench.checks_cost>` for one model, and
    the one-time whole-data scan in ms (the median over a few new batchers)."""
    model, data = _model_and_rows(kind, rows)
    data = move(data, device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    checked = TensorBatcher(data, MULTITASK_BATCH, shuffle=True, seed=SEED)
    unchecked = TensorBatcher(data, MULTITASK_BATCH, shuffle=True, seed=SEED)
    unchecked.checked = _Unchecked(unchecked.tensors)
    scans = []
    for _ in range(5):
        first = next(iter(TensorBatcher(data, MULTITASK_BATCH)))  # a new batcher: not checked
        again = next(iter(TensorBatcher(data, MULTITASK_BATCH)))
        again.origin = first.origin
        with torch.no_grad():
            start = time.perf_counter()
            model.loss(first)  # the whole-data scan, then one batch
            middle = time.perf_counter()
            model.loss(again)  # the same batch, its origin checked
            scans.append(2 * middle - start - time.perf_counter())
    epochs = {
        "checked once": lambda: mtrec_train_epoch(model, checked, optimizer),
        "unchecked": lambda: mtrec_train_epoch(model, unchecked, optimizer),
        "checked per batch": lambda: mtrec_train_epoch(
            model, _as_plain_dicts(unchecked), optimizer
        ),
    }
    return epochs, 1e3 * max(float(np.median(scans)), 0.0)


def check_cost(ctx: Context) -> tuple[Rows, Rows]:
    """Goal rows: the training-time cost of the input checks for MMoE and STAR.

    Each model is timed in :data:`CHECK_PASSES` fresh passes (a new model, new batchers, taken in
    turn with the other model's), and the median pass counts: a cost of a few percent is the
    size of the run-to-run noise, which the passes in the detail show.
    """
    device, quick = ctx.device, ctx.settings.quick
    rows = MULTITASK_BATCH * (4 if quick else 8)
    kinds = ("mmoe", "star")
    passes: dict[str, list[tuple[dict[str, Timing], float]]] = {kind: [] for kind in kinds}
    for _ in range(CHECK_PASSES):  # round-robin over the models
        for kind in kinds:
            epochs, scan_ms = _epochs(kind, rows, device)
            timings = time_interleaved(
                epochs,
                device=device,
                batch_size=rows,
                warmup=1,
                repeats=7 if quick else 15,
                min_repeats=3,
                budget_s=3.0 if quick else 12.0,
            )
            passes[kind].append((timings, scan_ms))
    goals = []
    for kind in kinds:
        costs = [t["checked once"].ms_p50 / t["unchecked"].ms_p50 - 1 for t, _ in passes[kind]]
        middle, note = median_pass(costs, CHECK_TARGET, lower_is_better=True)
        timings, scan_ms = passes[kind][middle]
        once, floor, per_batch = (timings[arm].ms_p50 for arm in ARMS)
        detail = (
            f"epoch of {rows} rows, batch {MULTITASK_BATCH}, {note}, each the medians of "
            f"{len(timings['unchecked'].times_ms)} epochs in alternation; in the median pass: "
            f"checked once {once:.1f} ms, unchecked {floor:.1f} ms, checked per batch "
            f"{per_batch:.1f} ms ({100 * (per_batch / floor - 1):+.1f}%); the one-time "
            f"whole-data scan {scan_ms:.2f} ms"
        )
        goal = f"{kind} train epoch: input-check cost (checked once / unchecked - 1)"
        goals.append(  # the unrounded median: goal_row rounds it once, as the note lists it
            goal_row(goal, "checks", device, costs[middle], CHECK_TARGET, detail,
                     lower_is_better=True)
        )  # fmt: skip
    return [], goals
