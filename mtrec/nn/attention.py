"""Scaled dot-product attention written as the formula, and a multi-head attention module.

Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin, "Attention Is All You
Need", NeurIPS 2017: ``Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V`` and
``MultiHead(Q, K, V) = Concat(head_1, …, head_h) W^O`` with ``head_i = Attention(Q W_i^Q, K W_i^K,
V W_i^V)``.

Mask convention (everywhere in mtrec): a **boolean** mask with ``True = may attend``, broadcastable
to (B, H, Lq, Lk). Padding masks are the exception, as in torch: ``key_padding_mask`` (B, Lk) has
``True = padding``. A query row whose keys are all masked returns zeros (never NaN), on both the
teaching path and the fast path, and passes zero gradient.

Value checks: a NaN or infinite query, key or value raises ``ValueError`` at the first block a
caller hands it to (:func:`check_block_input`), so a NaN never comes out silently. Inside
:func:`trusted_values` (the models wrap their stacks in it: their inputs are embeddings of ids
they have checked) and while ``torch.export``/``torch.compile`` traces, the check is skipped,
so a stack of layers reads its data once, not once per layer.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_finite, check_int, check_probability, check_tensor, is_tracing

__all__ = [
    "MultiHeadAttention",
    "causal_mask",
    "check_block_input",
    "scaled_dot_product_attention",
    "trusted_values",
]


class _Trust(threading.local):
    depth = 0  # > 0 inside trusted_values() on this thread


_TRUST = _Trust()


@contextlib.contextmanager
def trusted_values() -> Iterator[None]:
    """Inside this block, attention and Transformer blocks skip their NaN / inf input checks.

    For callers that checked their data once already (a stack of layers, a model whose inputs
    are embeddings of checked ids); shapes, dtypes and masks are still checked.
    """
    _TRUST.depth += 1
    try:
        yield
    finally:
        _TRUST.depth -= 1


def check_block_input(x: Tensor, name: str) -> None:
    """Raise ValueError when float input ``x`` holds NaN / inf (unless trusted or tracing)."""
    if _TRUST.depth == 0 and not is_tracing():
        check_finite(x, name, fix="find where the NaN / inf first appears in the inputs")


def causal_mask(len_q: int, len_k: int | None = None, *, device: torch.device | None = None):
    """(Lq, Lk) bool, True on and below the diagonal: position i attends to keys 0..i."""
    len_k = len_q if len_k is None else len_k
    return torch.ones(len_q, len_k, dtype=torch.bool, device=device).tril()


def _check_mask(mask: Tensor, target: tuple[int, ...], name: str) -> None:
    """A bool mask broadcastable to ``target`` (B, H, Lq, Lk), else a ValueError that says so."""
    if mask.dtype != torch.bool:
        raise ValueError(
            f"{name} must be a bool tensor (True = attend), got dtype {mask.dtype}; "
            f"convert with mask.bool() (and invert a float -inf mask with mask == 0)"
        )
    ok = mask.ndim <= 4 and all(m in (1, t) for m, t in zip(reversed(mask.shape), reversed(target)))
    if not ok:
        raise ValueError(
            f"{name} must broadcast to (B, H, Lq, Lk) = {target}, got shape {tuple(mask.shape)}"
        )


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(q kᵀ / sqrt(d_k)) v``, written out step by step (the teaching path).

    Args:
        q: (..., Lq, D) queries.
        k: (..., Lk, D) keys.
        v: (..., Lk, Dv) values.
        mask: bool, True = attend, broadcastable to (..., Lq, Lk). Rows with no key left give 0.
        dropout_p: dropout on the attention weights (applied whenever > 0, as in torch).
        return_weights: also return the (..., Lq, Lk) attention weights.

    Returns:
        (..., Lq, Dv) output, and the weights when ``return_weights``.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"expected q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv); got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        target = (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
        _check_mask(mask, target, "mask")
        scores = scores.masked_fill(~mask, float("-inf"))
        has_key = mask.any(dim=-1, keepdim=True)  # (..., Lq, 1)
        scores = scores.masked_fill(~has_key, 0.0)  # an all -inf row would softmax to NaN
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~has_key, 0.0)  # ...so it attends to nothing instead
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = weights @ v  # (..., Lq, Dv)
    return (out, weights) if return_weights else out


class MultiHeadAttention(nn.Module):
    """H heads of scaled dot-product attention over batch-first (B, L, D) inputs.

    Parameters have the same names and layout as :class:`torch.nn.MultiheadAttention`
    (``in_proj_weight`` (3D, D), ``in_proj_bias`` (3D,), ``out_proj``), so weights copy across with
    ``load_state_dict``. Self-attention (query is key is value) runs one fused in-projection.
    Without ``need_weights`` it calls :func:`torch.nn.functional.scaled_dot_product_attention`
    (fused/flash kernels on GPU); with it, the formula above, returning per-head weights.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        check_int(d_model, "d_model", min=1)
        check_int(num_heads, "num_heads", min=1)
        check_probability(dropout, "dropout")
        if d_model <= 0 or num_heads <= 0 or d_model % num_heads:
            raise ValueError(
                f"d_model must be a positive multiple of num_heads, got d_model={d_model}, "
                f"num_heads={num_heads} (d_model % num_heads = {d_model % max(num_heads, 1)})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.num_heads, self.dropout = d_model, num_heads, dropout
        self.head_dim = d_model // num_heads  # D/H
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model)) if bias else None
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: Tensor) -> Tensor:
        """(B, L, D) → (B, H, L, D/H), a view."""
        b, length, _ = x.shape
        return x.view(b, length, self.num_heads, self.head_dim).transpose(1, 2)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        w, bias, d = self.in_proj_weight, self.in_proj_bias, self.d_model
        b_q, b_k, b_v = (None, None, None) if bias is None else bias.split(d)
        if query is key and key is value:  # self-attention: one (B, L, 3D) matmul
            b, length, _ = query.shape
            qkv = F.linear(query, w, bias).view(b, length, 3, self.num_heads, self.head_dim)
            return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, H, L, D/H)
        q = self._split(F.linear(query, w[:d], b_q))
        if key is value:  # cross-attention over one memory: one (B, Lk, 2D) matmul
            b, length, _ = key.shape
            kv = F.linear(key, w[d:], None if bias is None else bias[d:])
            kv = kv.view(b, length, 2, self.num_heads, self.head_dim)  # B or L may be 0
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
            return q, k, v
        return (
            q,
            self._split(F.linear(key, w[d : 2 * d], b_k)),
            self._split(F.linear(value, w[2 * d :], b_v)),
        )

    def _validate(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        d = self.d_model
        for name, x in (("query", query), ("key", key), ("value", value)):
            if check_tensor(x, name).ndim != 3 or x.shape[-1] != d:
                raise ValueError(
                    f"{name} must be batch-first (B, L, d_model={d}), got shape {tuple(x.shape)}"
                )
            if not x.is_floating_point() or x.dtype != self.in_proj_weight.dtype:
                raise ValueError(
                    f"{name} must have dtype {self.in_proj_weight.dtype} like the weights, got "
                    f"{x.dtype}; cast the input or the module (.to(dtype))"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
            raise ValueError(
                f"expected query (B, Lq, D), key and value (B, Lk, D) with one B and Lk, got "
                f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
            )

    def combined_mask(
        self,
        batch: int,
        len_q: int,
        len_k: int,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        device: torch.device | None = None,
    ) -> Tensor | None:
        """One bool (True = attend) mask broadcastable to (B, H, Lq, Lk), or None if no mask."""
        target = (batch, self.num_heads, len_q, len_k)
        mask = None
        if key_padding_mask is not None:
            check_tensor(key_padding_mask, "key_padding_mask")
            if key_padding_mask.dtype != torch.bool or key_padding_mask.shape != (batch, len_k):
                raise ValueError(
                    f"key_padding_mask must be bool (B, Lk) = {(batch, len_k)} with True = padding, "
                    f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
                )
            mask = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, Lk)
        if attn_mask is not None:
            _check_mask(check_tensor(attn_mask, "attn_mask"), target, "attn_mask")
            mask = attn_mask if mask is None else mask & attn_mask
        if is_causal:
            causal = causal_mask(len_q, len_k, device=device)
            mask = causal if mask is None else mask & causal
        return mask

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: (B, Lq, D).
            key: (B, Lk, D).
            value: (B, Lk, D).
            key_padding_mask: (B, Lk) bool, True = padding (ignored key).
            attn_mask: bool, True = attend, broadcastable to (B, H, Lq, Lk).
            is_causal: also apply the causal mask (query i sees keys 0..i).
            need_weights: return the (B, H, Lq, Lk) per-head weights (uses the formula path).

        Returns:
            (B, Lq, D) output and the weights (or None).
        """
        self._validate(query, key, value)
        check_block_input(query, "query")
        if key is not query:
            check_block_input(key, "key")
        if value is not key and value is not query:
            check_block_input(value, "value")
        b, len_q, len_k = query.shape[0], query.shape[1], key.shape[1]
        only_causal = is_causal and key_padding_mask is None and attn_mask is None
        mask = self.combined_mask(
            b,
            len_q,
            len_k,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            is_causal=is_causal and not (only_causal and not need_weights),
            device=query.device,
        )
        q, k, v = self._project(query, key, value)  # 3 × (B, H, L, D/H)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, p, return_weights=True)
        elif mask is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=only_causal)
        else:
            has_key = mask.any(dim=-1, keepdim=True)  # (B|1, H|1, Lq, 1)
            # Kernels differ on rows with no key (NaN on some); let such rows see every key, then
            # zero them, so the output is 0 and no NaN reaches the gradients.
            safe = mask | ~has_key
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=p)
            out = out.masked_fill(~has_key, 0.0)  # (B, H, Lq, D/H)
        out = out.transpose(1, 2).reshape(b, len_q, self.d_model)  # (B, Lq, D)
        return self.out_proj(out), weights
