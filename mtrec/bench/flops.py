"""FLOP counts (from a Transformer's config, or torch's flop counter) and the device ceilings.

Ceilings, measured in the same run as the models: a large matmul (fp32 on CPU, bf16 on GPU; row
``ceiling/matmul``, ``gflops_per_s``) and a large device copy (row ``ceiling/copy``:
``batch_size`` = bytes per copy, ``samples_per_s`` = copies/s; GB/s = 2 · bytes · copies/s, read
plus write). For transformer models ``gflops_per_s`` is counted from the config
(:func:`transformer_flops`) and ``ceiling_fraction`` = achieved / matmul ceiling; other models use
the FLOPs that ``torch.utils.flop_counter`` counts for one step (:func:`counted_flops`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from mtrec.bench.timing import SEED, time_steps


def transformer_flops(
    *,
    d_model: int,
    d_ff: int,
    src_len: int,
    enc_layers: int,
    tgt_len: int = 0,
    dec_layers: int = 0,
    out_dim: int = 0,
    train: bool = False,
) -> float:
    """FLOPs of one sample through a Transformer, counted from its configuration.

    Per token and layer: Q, K, V, O projections ``8 D²``, feed-forward ``4 D D_ff``, attention
    scores and weighted sum ``4 L D`` (full L×L, as the kernels compute it even when masked). A
    decoder layer adds cross-attention (``4 D²`` on target tokens for Q and O, ``4 D²`` per source
    token for K and V, ``4 L_src D`` per target token). ``out_dim`` adds an output projection
    ``2 D out_dim`` per output token (encoder tokens when there is no decoder). Training counts
    3× the forward pass (backward ≈ 2× forward). Embedding lookups, norms and softmax are ignored.
    """
    d, f = d_model, d_ff
    enc = src_len * enc_layers * (8 * d * d + 4 * d * f + 4 * src_len * d)
    dec_per_layer = tgt_len * (
        8 * d * d + 4 * tgt_len * d + 4 * d * d + 4 * src_len * d + 4 * d * f
    )
    dec = dec_layers * (dec_per_layer + src_len * 4 * d * d)
    out_tokens = tgt_len if dec_layers else src_len
    forward = enc + dec + out_tokens * 2 * d * out_dim
    return float(forward * (3 if train else 1))


def counted_flops(step: Callable[[], Any]) -> float:
    """FLOPs that ``torch.utils.flop_counter`` sees in one call of ``step``."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def ceiling_matmul(
    device: torch.device, *, n: int | None = None, quick: bool = False
) -> tuple[Callable[[], torch.Tensor], float, int]:
    """The ceiling's n×n matmul (fp32 on CPU, bf16 on GPU) as a step: (step, its FLOPs, n)."""
    cuda = device.type == "cuda"
    n = n or (8192 if cuda else (1024 if quick else 2048))
    dtype = torch.bfloat16 if cuda else torch.float32
    g = torch.Generator(device="cpu").manual_seed(SEED)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return (lambda: torch.mm(a, b)), 2.0 * n**3, n


def matmul_ceiling(device: torch.device, *, n: int | None = None, quick: bool = False) -> dict:
    """Achieved FLOP/s of an n×n matmul: fp32 on CPU, bf16 on GPU (the best the device does)."""
    cuda = device.type == "cuda"
    step, flops, n = ceiling_matmul(device, n=n, quick=quick)
    timing = time_steps(
        step,
        device=device,
        batch_size=1,
        warmup=2,
        repeats=10 if cuda else 5,
        budget_s=2.0,
    )
    best_ms = min(timing.times_ms)  # a ceiling: the best step, not the median
    return {
        "model": "ceiling/matmul",
        "precision": "bf16" if cuda else "fp32",
        "batch_size": n,
        "phase": "ceiling",
        "timing": timing,
        "gflops_per_s": flops / (best_ms / 1e3) / 1e9,
    }


def copy_ceiling(device: torch.device, *, quick: bool = False) -> dict:
    """Achieved bandwidth of a large device-to-device copy (``dst.copy_(src)``)."""
    cuda = device.type == "cuda"
    numel = 2**28 if cuda else 2**24 if quick else 2**26  # 1 GiB / 64 MiB / 256 MiB of fp32
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    timing = time_steps(
        lambda: dst.copy_(src), device=device, batch_size=1, warmup=2, repeats=10, budget_s=2.0
    )
    nbytes = numel * 4
    return {
        "model": "ceiling/copy",
        "precision": "fp32",
        "batch_size": nbytes,
        "phase": "ceiling",
        "timing": timing,
        "gb_per_s": 2 * nbytes / (min(timing.times_ms) / 1e3) / 1e9,
    }
