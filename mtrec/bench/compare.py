"""Side-by-side comparisons, each timed in one run and ending in goal rows.

mtrec's MMoE and PLE against a typical open-source implementation (experts in a Python loop, a
per-sample ``DataLoader``), STAR's and the ScenarioRouter's cost against the number of scenarios,
MultiHeadAttention against ``torch.nn.MultiheadAttention`` (and its fused kernels),
TextEncoder (fp32 and its int8 fast path) against ``SentenceTransformer.encode`` and its cache
(:mod:`mtrec.bench.text_speed`), the distilled student against its teacher, and both served by
onnxruntime against torch eager (:mod:`mtrec.bench.serve_speed`). :data:`COMPARISONS` maps each
model group of ``mtrec bench --models`` to its comparison.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from mtrec.bench.baselines import PerSampleDataset, mtrec_train_epoch, naive_train_epoch
from mtrec.bench.built import TASKS, Built
from mtrec.bench.cases import (
    ATTENTION_SHAPES,
    MULTITASK_BATCH,
    attention_built,
    attention_name,
    multitask_model,
    naive_multitask_model,
    student_case,
    teacher_case,
)
from mtrec.bench.checks_cost import check_cost
from mtrec.bench.data_path import sequence_data_path
from mtrec.bench.goals import (
    ROUTING_TARGET,
    STAR_BATCH,
    STAR_SCENARIOS,
    compare_goal,
    goal_row,
    median_ratio_pass,
    ratio_goal,
)
from mtrec.bench.inputs import click_batch, click_features, move, moving
from mtrec.bench.measure import Context, compare_builds, timing_rows
from mtrec.bench.scenario_cases import every_tower_built, router_built, star_built
from mtrec.bench.serve_speed import compare_serving
from mtrec.bench.text_speed import compare_text
from mtrec.bench.timing import SEED, Timing, time_interleaved
from mtrec.data import TensorBatcher
from mtrec.utils import synchronize

Rows = list[dict[str, Any]]

# ----------------------------------------------------------------------------- attention
FUSED_ATTENTION_OPS = ("flash_attention", "efficient_attention", "cudnn_attention")


def fused_attention_kernels(device: torch.device) -> list[str]:
    """The fused scaled-dot-product kernels mtrec's MultiHeadAttention dispatches to (profiled,
    B=32 L=512 D=256 H=8, bf16 autocast on CUDA, fp32 on CPU)."""
    built = attention_built("mtrec", 8, 512, 256, 8)
    built.model.to(device)
    batch = move(built.batch, device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    # Kineto's own stderr lines (USDT profiler_start/stop, "gpuGetDeviceCount failed" on a machine
    # without a GPU) are not the benchmark's output: level 6 keeps them quiet (a user's value wins)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            built.predict(batch)
        synchronize(device)
    names = {e.key for e in prof.key_averages()}
    return sorted(n for n in names if any(op in n for op in FUSED_ATTENTION_OPS))


def fused_attention_goal(device: torch.device) -> dict[str, Any]:
    """On GPU the fast path dispatches to a fused (flash / memory-efficient) kernel (recorded on
    CPU too, where PyTorch has a fused flash kernel of its own)."""
    kernels = fused_attention_kernels(device)
    return goal_row(
        "MultiHeadAttention dispatches to a fused kernel (bf16)",
        "attention",
        device,
        float(bool(kernels)),
        1.0,
        ", ".join(kernels) or "no fused kernel seen",
    )


def compare_attention(ctx: Context) -> tuple[Rows, Rows]:
    """mtrec MultiHeadAttention vs torch.nn.MultiheadAttention, fwd+bwd, at both block shapes."""
    rows, goals = [], []
    for batch, length, d_model, heads in ATTENTION_SHAPES:
        names = {impl: attention_name(impl, length, d_model, heads) for impl in ("mtrec", "torch")}
        builders = {
            name: functools.partial(attention_built, impl, batch, length, d_model, heads)
            for impl, name in names.items()
        }
        new, goal = compare_goal(
            f"MultiHeadAttention / torch MHA, B={batch} L={length} D={d_model} H={heads}",
            "attention",
            builders,
            ours=names["mtrec"],
            theirs=names["torch"],
            target=1.0,
            detail="fwd+bwd samples/s {ours:.1f} vs {theirs:.1f}",
            phase="train",
            batch_size=batch,
            ctx=ctx,
        )
        rows += new
        goals.append(goal)
    goals.append(fused_attention_goal(ctx.device))
    return rows, goals


# ----------------------------------------------------------------------------- multi-task
MULTITASK_PASSES = 3  # fresh alternations of the two epochs; the goal counts the median pass
MULTITASK_TARGET = 2.0  # mtrec's train samples/s over the typical implementation's


def compare_multitask(kind: str, ctx: Context) -> tuple[Rows, Rows]:
    """Train samples/s of mtrec's MMoE/PLE vs the loop version with a per-sample DataLoader.

    The two epochs alternate in :data:`MULTITASK_PASSES` fresh passes (the models train on from
    one pass to the next); the goal and the throughput rows come from the median pass, and the
    detail lists every pass's ratio.
    """
    device, quick = ctx.device, ctx.settings.quick
    model = multitask_model(kind, click_features())
    features = click_features()
    naive = naive_multitask_model(kind, features)
    n_rows = MULTITASK_BATCH * (4 if quick else 8)
    data = click_batch(features, n_rows, num_tasks=len(TASKS))
    batches = TensorBatcher(move(data, device), MULTITASK_BATCH, shuffle=True, seed=SEED)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data), batch_size=MULTITASK_BATCH, shuffle=True
    )
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    naive_opt = torch.optim.Adam(naive.parameters(), lr=1e-3)
    naive.to(device)
    ours_name, theirs_name = (
        f"{kind} (epoch, data incl.)",
        f"{kind}-typical-loop (epoch, data incl.)",
    )
    epochs = {
        ours_name: lambda: mtrec_train_epoch(model, batches, opt),
        theirs_name: lambda: naive_train_epoch(naive, moving(loader, device), naive_opt),
    }
    alternate = functools.partial(time_interleaved, epochs, device=device, batch_size=n_rows,
                                  warmup=1, repeats=5 if quick else 7, min_repeats=2,
                                  budget_s=4.0 if quick else 15.0)  # fmt: skip
    passes = [alternate() for _ in range(MULTITASK_PASSES)]
    timings, note = median_ratio_pass(passes, ours_name, theirs_name, MULTITASK_TARGET)
    per_batch = {
        name: Timing(
            [t * MULTITASK_BATCH / n_rows for t in epoch.times_ms],
            epoch.peak_mem_mb,
            MULTITASK_BATCH,
        )
        for name, epoch in timings.items()
    }
    rows = timing_rows(ctx.env, per_batch, batch_size=MULTITASK_BATCH, phase="train")
    ours, theirs = timings[ours_name].samples_per_s, timings[theirs_name].samples_per_s
    detail = (
        "train samples/s {ours:.0f} vs {theirs:.0f} "
        f"(epochs of {n_rows} rows, data loading incl.); {note}"
    )
    goal = f"{kind.upper()} train / typical implementation, batch {MULTITASK_BATCH}"
    return rows, [ratio_goal(goal, "multitask", device, ours, theirs, MULTITASK_TARGET, detail)]


# ----------------------------------------------------------------------------- scenarios


def star_scenario_cost(ctx: Context) -> tuple[Rows, Rows]:
    """The routing cost as the number of scenarios S grows (batch 1024), for STAR and the
    ScenarioRouter, next to the every-row-through-every-tower anti-pattern.

    Goal ("flat, not linear"): forward + backward time at S=128 over S=2 <= 2.5, where
    linear growth would be 64x (the every-tower reference is measured beside it). Rows are
    grouped by scenario, so the per-row work does not grow with S; what does grow is the
    parameter count: at S=128 a 1024-row batch holds every scenario, so all S weight matrices
    are read, differentiated (and for STAR multiplied, W * W_s) and, in a full train step,
    updated by Adam. Those train-step times are reported in the detail.
    """
    counts = STAR_SCENARIOS[::3] if ctx.settings.quick else STAR_SCENARIOS
    lo, hi = min(counts), max(counts)
    rows, goals = [], []

    def time_all(build: Callable[..., Built], label: str, *, optimizer: bool, which=counts):
        def built(s: int) -> Built:
            return replace(build(STAR_BATCH, num_scenarios=s), optimizer=optimizer)

        new = compare_builds(
            {f"{label} S={s}": functools.partial(built, s) for s in which},
            phase="train",
            batch_size=STAR_BATCH,
            ctx=ctx,
        )
        rows.extend(new.values())
        return {s: new[f"{label} S={s}"]["ms_p50"] for s in which}

    for name, build in (("star", star_built), ("router", router_built)):
        goal = f"{'STAR' if name == 'star' else 'ScenarioRouter'} fwd+bwd time, S={hi} / S={lo}"
        routed = time_all(build, f"{name} fwd+bwd", optimizer=False)
        step = time_all(build, name, optimizer=True)
        reference = ""
        if name == "router":
            every = time_all(every_tower_built, "every-tower fwd+bwd", optimizer=False,
                             which=(lo, hi))  # fmt: skip
            reference = (
                f"; every row through every tower: S={lo}: {every[lo]:.1f} ms, "
                f"S={hi}: {every[hi]:.1f} ms (x{every[hi] / every[lo]:.1f})"
            )
        detail = (
            "fwd+bwd "
            + ", ".join(f"S={s}: {t:.1f} ms" for s, t in routed.items())
            + f"; train step with Adam S={lo}: {step[lo]:.1f} ms, S={hi}: {step[hi]:.1f} ms "
            f"(x{step[hi] / step[lo]:.2f}: Adam's work grows with the S-fold parameters)"
            + reference
        )
        measured = routed[hi] / routed[lo]
        goals.append(
            goal_row(
                goal, "routing", ctx.device, measured, ROUTING_TARGET, detail, lower_is_better=True
            )
        )
    return rows, goals


# ----------------------------------------------------------------------------- distillation
DISTILL_BATCH = 1024


def compare_distill(ctx: Context) -> tuple[Rows, Rows]:
    """Inference samples/s of the distilled student vs its teacher at batch 1024."""
    student, teacher = student_case(), teacher_case()
    rows, goal = compare_goal(
        f"distilled student / teacher inference, batch {DISTILL_BATCH}",
        "distill",
        {case.name: functools.partial(case.build, DISTILL_BATCH) for case in (student, teacher)},
        ours=student.name,
        theirs=teacher.name,
        target=10.0,
        detail="samples/s {ours:.0f} vs {theirs:.0f}",
        phase="inference",
        batch_size=DISTILL_BATCH,
        ctx=ctx,
    )
    return rows, [goal]


# the comparison run for each model group of `mtrec bench --models`
COMPARISONS: dict[str, Callable[[Context], tuple[Rows, Rows]]] = {
    "attention": compare_attention,
    "mmoe": functools.partial(compare_multitask, "mmoe"),
    "ple": functools.partial(compare_multitask, "ple"),
    "star": star_scenario_cost,
    "text": compare_text,
    "distill": compare_distill,
    "serve": compare_serving,
    "checks": check_cost,
    "sasrec": sequence_data_path,
}
