"""The distilled student and the MMoE scorer served by onnxruntime against torch eager, side by
side in one run (latency at batch 1, throughput at batch 1024); one of
:data:`mtrec.bench.compare.COMPARISONS`.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from typing import Any

import torch

from mtrec.bench.cases import benchmark_pair
from mtrec.bench.goals import goal_row, unavailable_goal
from mtrec.bench.measure import Context, timing_rows
from mtrec.bench.timing import time_interleaved
from mtrec.serving.export import OnnxScorer, export_onnx

Rows = list[dict[str, Any]]

SERVE_BATCHES = (1, 1024)
SERVE_TARGET = 2.0  # onnxruntime student batch-1 p50 latency: at least 2x faster than eager


def compare_serving(ctx: Context) -> tuple[Rows, Rows]:
    """The distilled student and the MMoE scorer (notebook 09 sizes): torch eager ``predict`` vs
    the exported ONNX graph in onnxruntime, at batch 1 (latency; one thread on both sides, as a
    server answering one request per core) and 1024 (throughput; all threads), on the CPU."""
    device = ctx.device
    goal = "onnxruntime / torch eager student latency p50, batch 1"
    if device.type != "cpu":
        return [], []  # onnxruntime's CPU provider: the serving path measured here is the CPU one
    teacher, student, example_batch = benchmark_pair()
    rows: Rows = []
    latency: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scorers = {}
        try:
            for name, model in (("distilled-student", student), ("distill-teacher", teacher)):
                path = export_onnx(model, f"{tmp}/{name}.onnx", example=example_batch(8))
                scorers[name] = (model, OnnxScorer(path), OnnxScorer(path, threads=1))
        except ImportError as err:
            return [], [unavailable_goal(goal, "serve", device, err, SERVE_TARGET)]
        threads = torch.get_num_threads()
        for batch_size in SERVE_BATCHES:
            batch = example_batch(batch_size)
            steps: dict[str, Callable[[], Any]] = {}
            small = batch_size == 1  # one request: one thread on both sides, as a server would
            for name, (model, scorer, single) in scorers.items():
                steps[name] = functools.partial(_eager_predict, model, batch)
                served = single if small else scorer
                steps[f"{name}-onnxruntime"] = functools.partial(served.predict, batch)
            torch.set_num_threads(1 if small else threads)
            timings = time_interleaved(
                steps, device=device, batch_size=batch_size, warmup=50 if small else 3,
                repeats=400 if small else 20, min_repeats=20 if small else 3,
                budget_s=5.0 if ctx.settings.quick else 15.0,
            )  # fmt: skip
            torch.set_num_threads(threads)
            rows += timing_rows(ctx.env, timings, batch_size=batch_size, phase="inference")
            if small:
                latency = {name: timing.ms_p50 for name, timing in timings.items()}
                p90 = {name: timing.ms_p90 for name, timing in timings.items()}
    eager, onnx = latency["distilled-student"], latency["distilled-student-onnxruntime"]
    detail = (
        f"p50 {onnx * 1e3:.0f} us vs {eager * 1e3:.0f} us (p90 "
        f"{p90['distilled-student-onnxruntime'] * 1e3:.0f} vs {p90['distilled-student'] * 1e3:.0f}"
        f" us); MMoE p50 {latency['distill-teacher-onnxruntime'] * 1e3:.0f} us vs "
        f"{latency['distill-teacher'] * 1e3:.0f} us"
    )
    return rows, [goal_row(goal, "serve", device, eager / onnx, SERVE_TARGET, detail)]


def _eager_predict(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Torch eager serving: ``predict`` under inference mode."""
    with torch.inference_mode():
        return model.predict(batch)
