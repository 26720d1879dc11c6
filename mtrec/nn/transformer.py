"""Positional encodings, Transformer encoder/decoder layers and an encoder-decoder with decoding.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (post-LN); Xiong et al., "On Layer
Normalization in the Transformer Architecture", ICML 2020 (pre-LN, ``norm_first=True``).
Layer parameter names match :class:`torch.nn.TransformerEncoderLayer` / ``DecoderLayer``, so
weights copy across with ``load_state_dict``. All inputs are batch-first; padding masks are
(B, L) bool with True = padding.

The correct layers, per sublayer ``f`` (self-attention; cross-attention in the decoder; FFN)::

    post-LN: x = LayerNorm(x + f(x))      pre-LN: x = x + f(LayerNorm(x))

with the positional encoding *added to the embeddings once* at the input, a causal mask on the
decoder's self-attention, and cross-attention from decoder queries to the encoder memory.
:func:`stated_encoder` / :func:`stated_decoder` implement a commonly quoted but wrong form for
comparison (see their docstrings).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int
from mtrec.nn.attention import MultiHeadAttention, check_block_input, trusted_values

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderLayer",
    "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "stated_decoder",
    "stated_encoder",
]


class SinusoidalPositionalEncoding(nn.Module):
    """PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(·); forward adds it to (B, L, D)."""

    def __init__(self, d_model: int, max_len: int = 512) -> None:
        super().__init__()
        check_int(d_model, "d_model", min=1)
        check_int(max_len, "max_len", min=1)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (L, 1)
        freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(1e4) / d_model)
        )
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)  # (max_len, D)

    def encoding(self, length: int) -> Tensor:
        """(L, D) encodings of positions 0..L-1."""
        if length > self.pe.shape[0]:
            raise ValueError(
                f"sequence length {length} exceeds max_len {self.pe.shape[0]}; keep the last "
                f"{self.pe.shape[0]} positions or build the model with a larger max_len"
            )
        return self.pe[:length]

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) → (B, L, D) with the encoding added."""
        return x + self.encoding(x.shape[1]).to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned (max_len, D) table added to (B, L, D) (BERT, GPT, SASRec)."""

    def __init__(self, d_model: int, max_len: int = 512) -> None:
        super().__init__()
        check_int(d_model, "d_model", min=1)
        check_int(max_len, "max_len", min=1)
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def encoding(self, length: int) -> Tensor:
        """(L, D) encodings of positions 0..L-1."""
        if length > self.table.num_embeddings:
            raise ValueError(
                f"sequence length {length} exceeds max_len {self.table.num_embeddings}; keep the "
                "last max_len positions or build the model with a larger max_len"
            )
        return self.table.weight[:length]

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) → (B, L, D) with the encoding added."""
        return x + self.encoding(x.shape[1])


def _activation(name: str):
    if name not in ("relu", "gelu"):
        raise ValueError(f"activation must be 'relu' or 'gelu', got {name!r}")
    # ReLU in place on the first linear's fresh output: same values, one buffer fewer per layer
    return F.relu_ if name == "relu" else F.gelu


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward, each in a residual with LayerNorm (pre- or post-LN)."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int = 256,
        dropout: float = 0.1,
        *,
        activation: str = "relu",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        check_int(d_ff, "d_ff", min=1)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(dropout) for _ in range(3))
        self.activation, self.norm_first = _activation(activation), norm_first

    def _sa(self, x: Tensor, padding_mask: Tensor | None, attn_mask: Tensor | None, causal: bool):
        out, _ = self.self_attn(
            x, x, x, key_padding_mask=padding_mask, attn_mask=attn_mask, is_causal=causal
        )
        return self.dropout1(out)

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        x: Tensor,
        *,
        padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """(B, L, D) → (B, L, D); padding_mask (B, L) True = pad; attn_mask True = attend."""
        check_block_input(x, "x")
        with trusted_values():  # checked once here, not again inside the sublayers
            if self.norm_first:
                x = x + self._sa(self.norm1(x), padding_mask, attn_mask, is_causal)
                return x + self._ff(self.norm2(x))
            x = self.norm1(x + self._sa(x, padding_mask, attn_mask, is_causal))
            return self.norm2(x + self._ff(x))


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the memory, feed-forward; pre- or post-LN."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int = 256,
        dropout: float = 0.1,
        *,
        activation: str = "relu",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        check_int(d_ff, "d_ff", min=1)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.multihead_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (
            nn.LayerNorm(d_model, eps=layer_norm_eps) for _ in range(3)
        )
        self.dropout, self.dropout1, self.dropout2, self.dropout3 = (
            nn.Dropout(dropout) for _ in range(4)
        )
        self.activation, self.norm_first = _activation(activation), norm_first

    def _sa(self, y: Tensor, padding_mask: Tensor | None, causal: bool) -> Tensor:
        out, _ = self.self_attn(y, y, y, key_padding_mask=padding_mask, is_causal=causal)
        return self.dropout1(out)

    def _ca(self, y: Tensor, memory: Tensor, memory_padding_mask: Tensor | None) -> Tensor:
        out, _ = self.multihead_attn(y, memory, memory, key_padding_mask=memory_padding_mask)
        return self.dropout2(out)

    def _ff(self, y: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(y)))))

    def forward(
        self,
        y: Tensor,
        memory: Tensor,
        *,
        padding_mask: Tensor | None = None,
        memory_padding_mask: Tensor | None = None,
        is_causal: bool = True,
    ) -> Tensor:
        """y (B, Lt, D), memory (B, Ls, D) → (B, Lt, D); masks (B, L) with True = pad."""
        check_block_input(y, "y")
        check_block_input(memory, "memory")
        with trusted_values():  # checked once here, not again inside the sublayers
            if self.norm_first:
                y = y + self._sa(self.norm1(y), padding_mask, is_causal)
                y = y + self._ca(self.norm2(y), memory, memory_padding_mask)
                return y + self._ff(self.norm3(y))
            y = self.norm1(y + self._sa(y, padding_mask, is_causal))
            y = self.norm2(y + self._ca(y, memory, memory_padding_mask))
            return self.norm3(y + self._ff(y))


class Encoder(nn.Module):
    """A stack of EncoderLayers; pre-LN stacks end with a final LayerNorm."""

    def __init__(self, num_layers: int, d_model: int, num_heads: int, **layer_kwargs) -> None:
        super().__init__()
        check_int(num_layers, "num_layers", min=0)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, **layer_kwargs) for _ in range(num_layers)
        )
        norm_first = layer_kwargs.get("norm_first", True)
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(
        self, x: Tensor, *, padding_mask: Tensor | None = None, is_causal: bool = False
    ) -> Tensor:
        """(B, L, D) → (B, L, D)."""
        check_block_input(x, "x")
        with trusted_values():  # checked once here, not once per layer
            for layer in self.layers:
                x = layer(x, padding_mask=padding_mask, is_causal=is_causal)
        return self.norm(x)


class Decoder(nn.Module):
    """A stack of DecoderLayers; pre-LN stacks end with a final LayerNorm."""

    def __init__(self, num_layers: int, d_model: int, num_heads: int, **layer_kwargs) -> None:
        super().__init__()
        check_int(num_layers, "num_layers", min=0)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, **layer_kwargs) for _ in range(num_layers)
        )
        norm_first = layer_kwargs.get("norm_first", True)
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(
        self,
        y: Tensor,
        memory: Tensor,
        *,
        padding_mask: Tensor | None = None,
        memory_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """y (B, Lt, D), memory (B, Ls, D) → (B, Lt, D), causal over y."""
        check_block_input(y, "y")
        check_block_input(memory, "memory")
        with trusted_values():  # checked once here, not once per layer
            for layer in self.layers:
                y = layer(
                    y, memory, padding_mask=padding_mask, memory_padding_mask=memory_padding_mask
                )
        return self.norm(y)


def stated_encoder(
    x: Tensor,
    attn: MultiHeadAttention,
    norm1: nn.LayerNorm,
    norm2: nn.LayerNorm,
    positional: Tensor,
) -> Tensor:
    """The stated (wrong) ``Encoder(X) = LayerNorm(X + MHA(X,X,X)) + LayerNorm(X + PE)``.

    Wrong because: no feed-forward sublayer; the positional encoding is a separate residual branch
    *added after* attention, so attention itself is order-blind (permuting X permutes the first
    branch only); and the two normalised branches are summed, so the output is not normalised.
    x (B, L, D), positional (L, D) → (B, L, D).
    """
    return norm1(x + attn(x, x, x)[0]) + norm2(x + positional)


def stated_decoder(
    y: Tensor, encoded: Tensor, attn: MultiHeadAttention, norm1: nn.LayerNorm, norm2: nn.LayerNorm
) -> Tensor:
    """The stated (wrong) ``Decoder(Y) = LayerNorm(Y + MHA(Y,Y,Y)) + LayerNorm(Y + Encoder(X))``.

    Wrong because: no causal mask (position t reads the future targets it must predict, so
    teacher-forced training leaks the answer); no cross-attention (``Y + Encoder(X)`` adds
    position t of the source to position t of the target, so it needs Ls == Lt and output t can
    only see source token t, never e.g. the mirrored token a reversal needs); no feed-forward.
    y (B, L, D), encoded (B, L, D) → (B, L, D).
    """
    if encoded.shape != y.shape:
        raise ValueError(
            f"the stated decoder adds Encoder(X) to Y elementwise, so it needs equal shapes; got "
            f"Y {tuple(y.shape)} and Encoder(X) {tuple(encoded.shape)}"
        )
    return norm1(y + attn(y, y, y)[0]) + norm2(y + encoded)
