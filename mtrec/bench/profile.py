"""Where a CPU training step spends its time: profiles and layouts behind notebook 10, section 4.

* :func:`profile_train_step`: one profiled training step of a benchmark case; the share of self
  CPU time in matmul-type kernels and the three largest other operators.
* :func:`profile_cases`: the benchmark's models at the (small) batch sizes notebook 10 profiles.
* :func:`bottleneck`: a one-line verdict from the fraction of the matmul ceiling and the profile.
* :func:`star_layouts`: STAR's layer timed two ways on the same parameters, rows grouped by
  scenario (one ``bmm`` over the scenarios present, :class:`mtrec.nn.scenario.StarLinear`)
  against a weight matrix gathered per row (one ``(D_in, D_out)`` matrix per row, then ``bmm``).

The profiler's own log lines (Kineto's ``USDT`` trace lines, ``gpuGetDeviceCount failed`` on a
machine without a GPU) are silenced once in ``mtrec/__init__`` (``KINETO_LOG_LEVEL``).
"""

from __future__ import annotations

import re

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from mtrec.bench.built import Case
from mtrec.bench.cases import (
    attention_built,
    encoder_decoder_case,
    multitask_case,
    sasrec_case,
    student_case,
    teacher_case,
)
from mtrec.bench.measure import make_steps
from mtrec.bench.scenario_cases import star_case
from mtrec.bench.timing import time_interleaved
from mtrec.checks import check_int
from mtrec.nn.scenario import StarLinear
from mtrec.utils import set_seed

# aten operators that are matrix products (their time is compute-bound when shapes are large)
MATMUL_OPS = re.compile(r"aten::(mm|bmm|addmm|linear|einsum|matmul|_scaled_dot_product|baddbmm)")
GOAL_BATCH = 4096  # the batch of the MLP models' FLOP-bound goals: their steps are cheap to profile
CEILING_SHARE = 0.5  # "within 2x of the matmul ceiling": at least half of it


def profile_train_step(case: Case, batch_size: int, *, seed: int = 0, top: int = 3) -> dict:
    """Profile one CPU training step of ``case`` at ``batch_size`` (after one untimed step).

    Returns:
        ``{"matmul share": float in [0, 1], "top other ops": "op share, ..."}``: the share of
        the step's self CPU time (aten operators) spent in matmul-type kernels, and the ``top``
        largest other operators with their shares.
    """
    check_int(batch_size, "batch_size", min=1)
    set_seed(seed)
    step = make_steps(case.build(batch_size), torch.device("cpu"), "fp32")["train"]
    step()  # warm-up: allocations and Adam's state happen outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    ops = pd.DataFrame(
        [{"op": e.key, "ms": e.self_cpu_time_total / 1e3} for e in prof.key_averages()]
    )
    ops = ops[ops.op.str.startswith("aten::")].sort_values("ms", ascending=False)
    total = ops.ms.sum()
    matmul = ops.op.str.match(MATMUL_OPS)
    others = ops[~matmul].head(top)
    shares = ", ".join(
        f"{op.removeprefix('aten::')} {ms / total:.0%}" for op, ms in zip(others.op, others.ms)
    )
    return {"matmul share": float(ops[matmul].ms.sum() / total), "top other ops": shares}


def profile_cases() -> dict[str, tuple[Case, int]]:
    """Model name (as in ``throughput.csv``) → (its benchmark case, the batch size to profile)."""
    cases = {
        "mmoe": (multitask_case("mmoe"), GOAL_BATCH),
        "ple": (multitask_case("ple"), GOAL_BATCH),
        "star": (star_case(), GOAL_BATCH),
        "distilled-student": (student_case(), GOAL_BATCH),
        "distill-teacher": (teacher_case(), 64),  # MMoE (512, 256) over 384-d text: costly
        "sasrec": (sasrec_case(), 32),  # 200-long sequences
        "encoder-decoder": (encoder_decoder_case(), 4),  # 64 + 16 tokens, two 2-layer stacks
    }
    for length, d_model, heads in ((200, 64, 2), (512, 256, 8)):

        def build(batch_size, shape=(length, d_model, heads)):
            return attention_built("mtrec", batch_size, *shape)

        cases[f"attention-mtrec L{length} D{d_model} H{heads}"] = (
            Case("attention", build, (2,), (2,)),
            2,
        )
    return cases


def bottleneck(ceiling_fraction: float, matmul_share: float | None, top_other: str = "") -> str:
    """A verdict: compute-bound, memory-bound / overhead (with its top operators), or skinny matmuls."""
    if ceiling_fraction >= CEILING_SHARE:
        return "compute-bound: within 2× of the ceiling"
    if matmul_share is None or pd.isna(matmul_share):
        return "not profiled"
    if matmul_share < 0.5:
        return "memory-bound / overhead: " + top_other
    verdict = "matmuls below the square-matmul rate (small or skinny shapes)"
    return f"{verdict}; the rest: {top_other}" if top_other else verdict


def _time_layouts(layer: StarLinear, x: torch.Tensor, ids: torch.Tensor, *, repeats: int,
                  budget_s: float) -> dict:  # fmt: skip
    """Forward + backward of ``layer`` grouped (its own forward) and with a weight per row."""

    def per_row() -> torch.Tensor:
        weights = layer.weight * layer.weight_p[ids]  # (B, D_in, D_out): one matrix per row
        return torch.bmm(x.unsqueeze(1), weights).squeeze(1) + layer.bias + layer.bias_p[ids]

    with torch.no_grad():
        torch.testing.assert_close(per_row(), layer(x, ids))
    steps = {"grouped": lambda: layer(x, ids).sum().backward(),
             "per-row": lambda: per_row().sum().backward()}  # fmt: skip
    return time_interleaved(steps, device=torch.device("cpu"), batch_size=len(x), warmup=2,
                            repeats=repeats, budget_s=budget_s)  # fmt: skip


def star_layouts(
    *,
    scenarios: tuple[int, ...] = (2, 8, 32),
    batch_size: int = 512,
    width: int = 32,
    repeats: int = 5,
    budget_s: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """STAR's layer, forward + backward on the CPU: grouped by scenario vs a weight per row.

    Both layouts compute ``x (W ⊙ W_p) + b + b_p`` from the same parameters (checked equal) and
    are timed in alternation, so load on the machine hits both alike.

    Returns:
        One row per S: ``grouped ms``, ``per-row ms`` (p50), ``per-row / grouped`` and each
        layout's GFLOP/s (forward + backward counted as 3 × 2·B·D_in·D_out).
    """
    check_int(batch_size, "batch_size", min=1)
    rows = []
    for num in scenarios:
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():  # seeded init; the caller's random state is left alone
            torch.manual_seed(seed)
            layer = StarLinear(num, width, width)
        with torch.no_grad():
            layer.weight_p.add_(0.1 * torch.randn(layer.weight_p.shape, generator=g))
        x = torch.randn(batch_size, width, generator=g)
        ids = torch.randint(0, num, (batch_size,), generator=g)

        timing = _time_layouts(layer, x, ids, repeats=repeats, budget_s=budget_s)
        gflop = 3 * 2 * batch_size * width * width / 1e9
        grouped, row_ms = timing["grouped"].ms_p50, timing["per-row"].ms_p50
        rows.append({"S": num, "grouped ms": grouped, "per-row ms": row_ms,
                     "per-row / grouped": row_ms / grouped,
                     "grouped GFLOP/s": gflop / grouped * 1e3,
                     "per-row GFLOP/s": gflop / row_ms * 1e3})  # fmt: skip
    return pd.DataFrame(rows)
