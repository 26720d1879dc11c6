"""The side-by-side comparisons: the attention fast path is profiled for fused kernels."""

import torch

from mtrec import bench


def test_the_attention_fast_path_is_profiled_for_fused_kernels():
    kernels = bench.fused_attention_kernels(torch.device("cpu"))
    assert all(any(op in k for op in bench.FUSED_ATTENTION_OPS) for k in kernels)
    goal = bench.fused_attention_goal(torch.device("cpu"))
    assert goal["met"] == ("yes" if kernels else "no")
