"""Measuring a case: its train and inference steps, one row per batch size and phase.

A train step is ``zero_grad → loss (fwd) → backward → Adam step``; inference is ``predict`` under
``torch.inference_mode``. The batch is a :class:`~mtrec.checks.CheckedBatch`, as in training from
a :class:`~mtrec.data.TensorBatcher`: its value checks run on the first (warm-up) step only. On
CUDA both run in fp32 and in bf16 autocast. Side-by-side comparisons time several builds in
alternation (:func:`compare_builds`) so that load on a shared machine hits every side alike;
``torch.compile``-d steps are timed only that way, beside their eager twin
(:mod:`mtrec.bench.compile_speed`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from mtrec.bench.built import Built, Case
from mtrec.bench.flops import counted_flops
from mtrec.bench.inputs import move
from mtrec.bench.timing import SEED, Settings, Timing, time_interleaved, time_steps
from mtrec.checks import CheckedBatch, CheckedData
from mtrec.utils import env_info, git_commit, set_seed

log = logging.getLogger(__name__)


def make_steps(
    built: Built,
    device: torch.device,
    precision: str,
    compiled: bool = False,
    *,
    fused_optimizer: bool = False,
) -> dict[str, Callable[[], Any]]:
    """The train and inference step closures of ``built`` on ``device`` at ``precision``.

    The train step updates with ``torch.optim.Adam`` as every mtrec trainer does;
    ``fused_optimizer=True`` uses its fused kernel instead (faster, not bit-identical: the
    what-if of :mod:`mtrec.bench.levers`).
    """
    model = built.model.to(device)
    batch = move(built.batch, device)
    if isinstance(batch, dict):  # checked once, on the warm-up step, as training checks a batcher
        batch = CheckedBatch(batch, CheckedData(batch))
    loss_fn = built.loss or model.loss
    predict_fn = built.predict or model.predict
    if compiled:
        loss_fn, predict_fn = torch.compile(loss_fn), torch.compile(predict_fn)
    if precision == "bf16":
        autocast: Callable[[], Any] = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    fused = True if fused_optimizer else None  # None: torch's default kernel
    optimizer = (
        torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused) if built.optimizer else None
    )

    def train() -> None:
        model.train()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(batch)
        loss = loss.float()
        (loss.sum() if loss.ndim else loss).backward()
        if optimizer is not None:
            optimizer.step()
        else:
            model.zero_grad(set_to_none=True)

    def inference() -> None:
        model.eval()
        with torch.inference_mode(), autocast():
            predict_fn(batch)

    steps = {"train": train, "inference": inference}
    return {phase: steps[phase] for phase in built.phases}


def _fraction(gflops: float | None, ceiling: float | None) -> float:
    if gflops is None or not ceiling:
        return float("nan")
    return gflops / ceiling


def environment(device: torch.device, note: str) -> dict[str, Any]:
    """The device, machine and software columns of every row measured on ``device``."""
    info = env_info()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{info['cpu']} ({torch.get_num_threads()} threads)"
    if note:
        name = f"{name} [{note}]"
    return {
        "device": device.type,
        "device_name": name,
        "cpu": info["cpu"],
        "cpu_cores": info["cpu_cores"],
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
    }


def row(
    env: dict,
    *,
    model: str,
    precision: str,
    batch_size: int,
    phase: str,
    timing: Timing,
    compiled: bool = False,
    gflops: float | None = None,
    ceiling: float | None = None,
    samples_per_s: float | None = None,
) -> dict[str, Any]:
    """One throughput row: ``env``'s columns, the case, its timing, FLOP/s and ceiling fraction."""
    return {
        **env,
        "model": model,
        "precision": precision,
        "batch_size": batch_size,
        "phase": phase,
        "samples_per_s": timing.samples_per_s if samples_per_s is None else samples_per_s,
        "ms_p50": timing.ms_p50,
        "ms_p90": timing.ms_p90,
        "peak_mem_mb": timing.peak_mem_mb,
        "compiled": bool(compiled),
        "gflops_per_s": float("nan") if gflops is None else gflops,
        "ceiling_fraction": _fraction(gflops, ceiling),
    }


def timing_rows(
    env: dict, timings: dict[str, Timing], *, batch_size: int, phase: str
) -> list[dict[str, Any]]:
    """fp32 rows, one per named timing, of steps timed outside a :class:`Case` (epochs, encoders)."""
    return [
        row(env, model=name, precision="fp32", batch_size=batch_size, phase=phase, timing=timing)
        for name, timing in timings.items()
    ]


def flops_per_sample(
    built: Built, phase: str, step: Callable[[], Any], batch_size: int
) -> float | None:
    """Config-counted FLOPs (transformers; train = 3× forward) or the flop counter's, per sample."""
    if phase == "inference" and built.inference_flops_per_sample is not None:
        return built.inference_flops_per_sample
    if built.flops_per_sample is not None:
        return built.flops_per_sample * (3 if phase == "train" else 1)
    if not built.count_flops:
        return None
    try:
        counted = counted_flops(step)
    except (RuntimeError, AttributeError) as err:  # torch's counter fails on a few graphs (M2M)
        log.warning("FLOPs not counted (torch.utils.flop_counter failed: %s)", err)
        return None
    return counted / batch_size if counted else None


def measure_case(
    case: Case,
    *,
    device: torch.device,
    precision: str,
    batch_sizes: Sequence[int],
    env: dict,
    ceiling: float | None,
    settings: Settings,
) -> list[dict[str, Any]]:
    """Rows for one model on one device and precision, over its batch sizes and phases."""
    rows = []
    per_sample: dict[str, float | None] = {}  # FLOPs are linear in the batch: count them once
    for batch_size in batch_sizes:
        set_seed(SEED)
        try:
            built = case.build(batch_size)
            steps = make_steps(built, device, precision)
        except torch.cuda.OutOfMemoryError:  # also raised by torch >= 2.5's alias
            log.warning("%s at batch %d does not fit on %s; skipped", case.name, batch_size, device)
            break
        for phase, step in steps.items():
            if phase == "train" and batch_size < case.train_min_batch:
                continue
            try:
                timing = time_steps(
                    step,
                    device=device,
                    batch_size=batch_size,
                    warmup=settings.warmup,
                    repeats=settings.repeats,
                    budget_s=settings.case_budget_s,
                )
            except torch.cuda.OutOfMemoryError:  # also raised by torch >= 2.5's alias
                log.warning("%s %s at batch %d: out of memory", case.name, phase, batch_size)
                continue
            if phase not in per_sample:
                per_sample[phase] = flops_per_sample(built, phase, step, batch_size)
            flops = per_sample.get(phase)
            gflops = flops * batch_size / (timing.ms_p50 / 1e3) / 1e9 if flops else None
            rows.append(
                row(
                    env,
                    model=case.name,
                    precision=precision,
                    batch_size=batch_size,
                    phase=phase,
                    timing=timing,
                    gflops=gflops,
                    ceiling=ceiling,
                )
            )
            log.info(
                "%s %s %s B=%d: %.0f samples/s",
                case.name,
                phase,
                precision,
                batch_size,
                timing.samples_per_s,
            )
        del built, steps
    return rows


@dataclass(frozen=True)
class Context:
    """One device's run: its row columns, how hard to measure, and its matmul ceiling (GFLOP/s)."""

    device: torch.device
    env: dict[str, Any]
    settings: Settings
    ceiling: float | None = None


def compare_builds(
    builders: dict[str, Callable[[], Built]],
    *,
    phase: str,
    batch_size: int,
    ctx: Context,
    compiled: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """One row per named model, all timed in alternation at ``batch_size`` and ``phase``.

    The builds named in ``compiled`` run under ``torch.compile`` (compiled on their warm-up
    steps; their rows say ``compiled`` and count no FLOPs).
    """
    set_seed(SEED)
    builts = {name: build() for name, build in builders.items()}
    steps = {
        name: make_steps(b, ctx.device, "fp32", name in compiled)[phase]
        for name, b in builts.items()
    }
    timings = time_interleaved(
        steps,
        device=ctx.device,
        batch_size=batch_size,
        warmup=ctx.settings.warmup,
        repeats=ctx.settings.repeats,
        budget_s=ctx.settings.case_budget_s * len(steps),
    )
    rows = {}
    for name, timing in timings.items():
        eager = name not in compiled  # the FLOP counter does not see into a compiled graph
        flops = flops_per_sample(builts[name], phase, steps[name], batch_size) if eager else None
        gflops = flops * batch_size / (timing.ms_p50 / 1e3) / 1e9 if flops else None
        rows[name] = row(
            ctx.env,
            model=name,
            precision="fp32",
            batch_size=batch_size,
            phase=phase,
            timing=timing,
            compiled=name in compiled,
            gflops=gflops,
            ceiling=ctx.ceiling,
        )
    return rows
