"""Measuring a case: one throughput row per batch size and phase, with FLOP/s and the ceiling."""

import pandas as pd
import torch

from mtrec import bench
from mtrec.reporting import THROUGHPUT_COLUMNS


def test_measure_case_gives_one_row_per_batch_and_phase(toy_case):
    env = bench.environment(torch.device("cpu"), "")
    rows = bench.measure_case(
        toy_case,
        device=torch.device("cpu"),
        precision="fp32",
        batch_sizes=(4, 16),
        env=env,
        ceiling=10.0,
        settings=bench.Settings(warmup=1, repeats=3),
    )
    frame = pd.DataFrame(rows)
    assert set(THROUGHPUT_COLUMNS) - {"date"} <= set(frame.columns)
    assert sorted(zip(frame.batch_size, frame.phase)) == [
        (4, "inference"),
        (4, "train"),
        (16, "inference"),
        (16, "train"),
    ]
    # FLOPs come from the flop counter: a (B, 6) x (6, 2) matmul forward, 3x that to train
    assert (frame.gflops_per_s > 0).all()
    assert (frame.ceiling_fraction == frame.gflops_per_s / 10.0).all()
