"""Exercise 1: scaled dot-product attention, checked against torch's fused kernel.

The student writes ``attention(q, k, v, mask=None) -> (output, weights)`` with
q (B, H, L_q, D), k and v (B, H, L_k, D), mask broadcastable to (B, H, L_q, L_k) with True where
a query may attend; output (B, H, L_q, D), weights (B, H, L_q, L_k) (each row sums to 1).
Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases


def reference_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √D, masked) v and the weights; output checked against torch's kernel."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L_q, L_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(output, weights @ v, atol=1e-5, rtol=1e-4)
    return output, weights


def _attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, *, scale: float, dim: int = -1
) -> tuple[Tensor, Tensor]:
    """Attention with a chosen scale and softmax axis (to reproduce known mistakes)."""
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    return weights @ v, weights


def _no_scale(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    return _attend(q, k, v, mask, scale=1.0)


def _scale_by_d(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    return _attend(q, k, v, mask, scale=1 / q.shape[-1])


def _softmax_wrong_axis(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    return _attend(q, k, v, mask, scale=1 / math.sqrt(q.shape[-1]), dim=-2)


def _mask_ignored(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    return reference_attention(q, k, v)


def _mask_inverted(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    inverted = None if mask is None else ~mask
    return _attend(q, k, v, inverted, scale=1 / math.sqrt(q.shape[-1]))


DIAGNOSES = (
    (_no_scale, "you forgot to divide the scores by sqrt(D) (D = q.shape[-1])"),
    (_scale_by_d, "you divided by D; the scale is 1 / sqrt(D)"),
    (
        _softmax_wrong_axis,
        "the softmax runs over the keys: use dim=-1 (each query's row sums to 1)",
    ),
    (_mask_ignored, "the mask was ignored: set masked scores to -inf before the softmax"),
    (_mask_inverted, "the mask is inverted: True means 'may attend', so fill where ~mask"),
)


def cases() -> list[Case]:
    """The hidden cases (seeded, so every student sees the same ones)."""
    g = torch.Generator().manual_seed(0)

    def qkv(b: int, h: int, lq: int, lk: int, d: int, scale: float = 1.0) -> dict[str, Tensor]:
        return {
            "q": torch.randn(b, h, lq, d, generator=g) * scale,
            "k": torch.randn(b, h, lk, d, generator=g) * scale,
            "v": torch.randn(b, h, lk, d, generator=g),
        }

    causal = torch.ones(6, 6, dtype=torch.bool).tril()  # (L, L): query i sees keys 0..i
    padding = torch.tensor([[True] * 7 + [False] * 2, [True] * 4 + [False] * 5])  # (B, L_k)
    specs = [
        ("one head, no mask, B=1 L=4 D=8", qkv(1, 1, 4, 4, 8), None,
         "scores = q @ k.transpose(-2, -1); scale; softmax over the last axis; weights @ v"),
        ("4 heads, D=16, no mask", qkv(2, 4, 5, 5, 16), None,
         "use the last two axes only (@ and transpose(-2, -1)) so batch and head axes pass through"),
        ("causal mask (L, L)", qkv(2, 2, 6, 6, 8), causal,
         "masked_fill(~mask, float('-inf')) on the scores before softmax; the mask broadcasts"),
        ("padding mask (B, 1, 1, L_k), L_q=3 != L_k=9", qkv(2, 2, 3, 9, 4),
         padding[:, None, None, :], "queries and keys may have different lengths: weights are "
         "(B, H, L_q, L_k); v has L_k rows"),
        ("large scores (numerical stability)", qkv(1, 2, 5, 5, 32, scale=30.0), None,
         "use torch.softmax (it subtracts the row max); exp() of raw scores overflows"),
    ]  # fmt: skip
    out = []
    for name, tensors, mask, hint in specs:
        kwargs = {**tensors, "mask": mask}
        out.append(Case(name, kwargs, reference_attention(**kwargs), hint, DIAGNOSES, atol=1e-4))
    return out


def check_attention(student: Callable[..., tuple[Tensor, Tensor]]) -> bool:
    """Check ``student(q, k, v, mask=None) -> (output, weights)``; print feedback; True if right."""
    return run_cases("scaled dot-product attention", student, cases())
