"""What the memory allocator costs a CPU training step: page faults and time, freed memory kept
or handed back to the system.

``import mtrec`` lets glibc keep freed buffers of up to 32 MiB for reuse
(:func:`mtrec.utils.keep_freed_memory`). The setting belongs to a whole process, so
:func:`freed_memory_effect` runs the same train step in two fresh Python processes, one with
glibc's defaults (``MTREC_KEEP_FREED_MEMORY=0``) and one with mtrec's setting, and reads in each
the minor page faults of the median step (``getrusage``: pages the kernel had to map and zero)
and the median step time.

``python -m mtrec.bench.allocator MODEL BATCH`` measures in the running process and prints one
JSON line (what each of the two processes runs).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import pandas as pd
import torch

from mtrec.bench.built import Case
from mtrec.bench.cases import multitask_case, sasrec_case
from mtrec.bench.measure import make_steps
from mtrec.bench.scenario_cases import star_case
from mtrec.checks import check_int
from mtrec.utils import set_seed

CASES = {"mmoe": lambda: multitask_case("mmoe"), "ple": lambda: multitask_case("ple"),
         "star": star_case, "sasrec": sasrec_case}  # fmt: skip
SETTINGS = {"glibc defaults": {"MTREC_KEEP_FREED_MEMORY": "0"}, "freed memory kept": {}}


def _case(name: str) -> Case:
    if name not in CASES:
        raise ValueError(f"model must be one of {sorted(CASES)}, got {name!r}")
    return CASES[name]()


def measure_step(name: str, batch_size: int, *, steps: int = 9, warmup: int = 3) -> dict:
    """Minor page faults per train step and the median step time (ms), in this process.

    Its own loop rather than :func:`mtrec.bench.timing.time_steps`: that one reads the process
    RSS between steps, and with those reads the first timed steps faulted up to 2,000 pages
    even with freed memory kept (measured), noise in the very count this function reports.
    """
    check_int(batch_size, "batch_size", min=1)
    check_int(steps, "steps", min=1)
    set_seed(0)
    step = make_steps(_case(name).build(batch_size), torch.device("cpu"), "fp32")["train"]
    for _ in range(warmup):
        step()
    faults, times = [], []
    for _ in range(steps):
        before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    # medians, of the faults as of the time: with freed memory kept, the heap still grows now and
    # then to make a hole for one large buffer (measured on SASRec at batch 64: 5,257 pages in one
    # step of twelve, 0 in the others); the mean of five steps then read 1,051 in half the runs
    return {"page faults per step": float(pd.Series(faults).median()),
            "ms per step": float(pd.Series(times).median())}  # fmt: skip


def freed_memory_effect(
    name: str = "mmoe", batch_size: int = 4096, *, steps: int = 9, timeout_s: float = 300
) -> pd.DataFrame:
    """One row per setting (glibc's defaults, freed memory kept): page faults and ms per step.

    Each setting runs in its own fresh process (``sys.executable -m mtrec.bench.allocator``),
    with the caller's environment plus the setting's variables.
    """
    _case(name)  # a clear error before any process starts
    rows = {}
    for setting, extra in SETTINGS.items():
        env = {k: v for k, v in os.environ.items() if k != "MTREC_KEEP_FREED_MEMORY"}
        run = subprocess.run(
            [sys.executable, "-m", "mtrec.bench.allocator", name, str(batch_size), str(steps)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if run.returncode != 0:
            raise RuntimeError(f"measuring {name} ({setting}) failed:\n{run.stderr[-2000:]}")
        rows[setting] = json.loads(run.stdout.strip().splitlines()[-1])
    return pd.DataFrame(rows).T.rename_axis("allocator")


if __name__ == "__main__":
    model, batch, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure_step(model, batch, steps=count)))
