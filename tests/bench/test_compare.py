"""The side-by-side comparisons: the attention fast path is profiled for fused kernels, and the
typical-implementation goal counts its median pass."""

import torch

from mtrec import bench


def test_the_attention_fast_path_is_profiled_for_fused_kernels():
    kernels = bench.fused_attention_kernels(torch.device("cpu"))
    assert all(any(op in k for op in bench.FUSED_ATTENTION_OPS) for k in kernels)
    goal = bench.fused_attention_goal(torch.device("cpu"))
    assert goal["met"] == ("yes" if kernels else "no")


def test_the_typical_implementation_goal_counts_the_median_of_three_passes(monkeypatch):
    monkeypatch.setattr(bench.compare, "MULTITASK_BATCH", 64)  # epochs of 256 rows: quick
    cpu = torch.device("cpu")
    ctx = bench.Context(cpu, bench.environment(cpu, ""), bench.Settings.from_quick(True))
    rows, (goal,) = bench.compare_multitask("mmoe", ctx)
    assert goal["goal"] == "MMOE train / typical implementation, batch 64"
    passes = bench.goal_passes(goal["detail"])
    assert len(passes) == 3 and goal["measured"] == sorted(passes)[1]
    ours, theirs = (row["samples_per_s"] for row in rows)  # the median pass's two epochs
    assert round(ours / theirs, 3) == goal["measured"]
