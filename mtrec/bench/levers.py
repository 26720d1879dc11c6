"""What would close the gap to the matmul ceiling, measured: the levers that trade exact results
for speed, behind notebook 10, section 4.

mtrec keeps every committed result reproducible to the bit, so a faster kernel that computes the
same function with different rounding is not used. :func:`gap_levers` measures what two such
kernels would buy a multi-task model's CPU training step, beside the ceiling's matmul:

* **fused Adam** (``torch.optim.Adam(fused=True)``): one pass over each weight instead of a
  handful of elementwise operators; its parameters drift from the plain optimiser's in the last
  bits after the first step (measured: the largest difference after three steps).
* **the gates' softmax padded to one AVX-512 register**: PyTorch's CPU softmax vectorises a row
  only when it fills a SIMD register (8 floats with AVX2, 16 with AVX-512). On an AVX-512 CPU a
  gate over 8 experts is narrower and runs a scalar path, row by row, tens of nanoseconds per row.
  Padded to 16 with ``-inf`` (exact zeros after ``exp``) it runs down whole registers, and its
  values are then bit-identical to those of the AVX2 kernel (a test pins this), but not to the
  scalar path's, with which every committed result was computed. Its saving is estimated from
  the gate logits' shapes (read from a profile of one step), timed both ways, forward and
  backward, pad and copy included.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pandas as pd
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from mtrec.bench.cases import multitask_case
from mtrec.bench.flops import counted_flops
from mtrec.bench.goals import time_beside_matmul
from mtrec.bench.measure import make_steps
from mtrec.bench.timing import SEED, time_interleaved
from mtrec.checks import check_choice, check_int
from mtrec.utils import set_seed

BITS_STEPS = 3  # train steps from the same start before the parameters are compared
SIMD_FLOATS = 16  # fp32 lanes of an AVX-512 register


def padded_softmax(x: torch.Tensor) -> torch.Tensor:
    """``torch.softmax(x, -1)`` over rows padded with ``-inf`` to a multiple of 16 (then cut back).

    A ``-inf`` logit is an exact 0 after ``exp``: the maximum, the sum and each probability are
    those of the row, summed in the order the AVX2 kernel sums up to 16 lanes.
    """
    width = x.shape[-1]
    padded = F.pad(x, (0, -width % SIMD_FLOATS), value=float("-inf"))
    return torch.softmax(padded, -1)[..., :width].contiguous()


def _softmax_shapes(step) -> list[tuple[int, ...]]:
    """Input shapes of every ``aten::_softmax`` in one call of ``step`` (a profiled step)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    return [tuple(e.input_shapes[0]) for e in prof.events() if e.name == "aten::_softmax"]


def softmax_layouts(shape: tuple[int, ...], *, repeats: int = 10, seed: int = SEED) -> dict:
    """A softmax over the last dimension of ``shape``, forward + backward, timed two ways.

    ``last dim``: ``torch.softmax(x, -1)``, as the gates compute it. ``padded``:
    :func:`padded_softmax`, the rows padded to one AVX-512 register and cut back (two copies).

    Returns:
        ``{"last dim ms", "padded ms", "max |diff|"}``: p50 times and the largest difference
        between the two outputs.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).requires_grad_()
    upstream = torch.randn(shape, generator=g)

    def last() -> torch.Tensor:
        return torch.softmax(x, -1)

    with torch.no_grad():
        diff = float((last() - padded_softmax(x)).abs().max())
    steps = {"last": lambda: last().backward(upstream),
             "padded": lambda: padded_softmax(x).backward(upstream)}  # fmt: skip
    timing = time_interleaved(steps, device=torch.device("cpu"), batch_size=shape[0], warmup=2,
                              repeats=repeats, budget_s=1.0)  # fmt: skip
    return {"last dim ms": timing["last"].ms_p50, "padded ms": timing["padded"].ms_p50,
            "max |diff|": diff}  # fmt: skip


def gap_levers(kind: str = "mmoe", batch_size: int = 4096, *, repeats: int = 8) -> pd.DataFrame:
    """A multi-task model's CPU train step: as mtrec runs it, and with the inexact levers pulled.

    The plain step and the step with fused Adam are timed beside the ceiling's matmul as the goal
    rows are (:func:`mtrec.bench.goals.time_beside_matmul`); the softmax lever is subtracted from
    the fused step, as measured by :func:`softmax_layouts` on the gates' shapes.

    Returns:
        One row per lever (``as it is``, ``fused Adam``, ``+ softmax padded to 16 lanes``):
        ``step ms``, ``of ceiling`` (the step's counted FLOP/s over the matmul's, both medians),
        ``same bits`` (every value as mtrec computes it, levers so far included), ``its own max
        |diff|`` (fused Adam: the parameters after three steps; the softmax: the gate weights),
        ``measured`` (``timed``, or ``estimated`` from the softmax's own timings).
    """
    check_choice(kind, "kind", ("mmoe", "ple"))
    check_int(batch_size, "batch_size", min=1)
    cpu = torch.device("cpu")
    set_seed(SEED)
    built = multitask_case(kind).build(batch_size)
    twin = replace(built, model=copy.deepcopy(built.model))  # same start, fused optimiser
    plain = make_steps(built, cpu, "fp32")["train"]
    fused = make_steps(twin, cpu, "fp32", fused_optimizer=True)["train"]
    for _ in range(BITS_STEPS):
        plain(), fused()
    params = zip(built.model.state_dict().values(), twin.model.state_dict().values())
    adam_diff = max(float((a - b).abs().max()) for a, b in params)

    flops = counted_flops(plain)  # one more plain step: the parameters were compared above
    timings, matmul_gflops = time_beside_matmul({"plain": plain, "fused": fused}, device=cpu,
                                                batch_size=batch_size, warmup=1,
                                                repeats=repeats, budget_s=20.0)  # fmt: skip

    shapes = _softmax_shapes(plain)
    layouts = [softmax_layouts(shape) for shape in shapes]
    saved = sum(t["last dim ms"] - t["padded ms"] for t in layouts)
    softmax_diff = max((t["max |diff|"] for t in layouts), default=0.0)

    def row(lever: str, ms: float, same: bool, diff: float, measured: str) -> dict:
        return {"lever": lever, "step ms": ms, "of ceiling": flops / ms / 1e6 / matmul_gflops,
                "same bits": same, "its own max |diff|": diff, "measured": measured}  # fmt: skip

    fused_ms = timings["fused"].ms_p50
    return pd.DataFrame([
        row("as it is", timings["plain"].ms_p50, True, 0.0, "timed"),
        row("fused Adam", fused_ms, adam_diff == 0, adam_diff, "timed"),
        row("+ softmax padded to 16 lanes", fused_ms - saved,
            adam_diff == 0 and softmax_diff == 0, softmax_diff, "estimated"),
    ]).set_index("lever")  # fmt: skip
