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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.attention import MultiHeadAttention

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderDecoder",
    "EncoderDecoderConfig",
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
            raise ValueError(f"sequence length {length} exceeds max_len {self.pe.shape[0]}")
        return self.pe[:length]

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) → (B, L, D) with the encoding added."""
        return x + self.encoding(x.shape[1]).to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned (max_len, D) table added to (B, L, D) (BERT, GPT, SASRec)."""

    def __init__(self, d_model: int, max_len: int = 512) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def encoding(self, length: int) -> Tensor:
        """(L, D) encodings of positions 0..L-1."""
        if length > self.table.num_embeddings:
            raise ValueError(
                f"sequence length {length} exceeds max_len {self.table.num_embeddings}"
            )
        return self.table.weight[:length]

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) → (B, L, D) with the encoding added."""
        return x + self.encoding(x.shape[1])


def _activation(name: str):
    if name not in ("relu", "gelu"):
        raise ValueError(f"activation must be 'relu' or 'gelu', got {name!r}")
    return F.relu if name == "relu" else F.gelu


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
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, **layer_kwargs) for _ in range(num_layers)
        )
        norm_first = layer_kwargs.get("norm_first", True)
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(
        self, x: Tensor, *, padding_mask: Tensor | None = None, is_causal: bool = False
    ) -> Tensor:
        """(B, L, D) → (B, L, D)."""
        for layer in self.layers:
            x = layer(x, padding_mask=padding_mask, is_causal=is_causal)
        return self.norm(x)


class Decoder(nn.Module):
    """A stack of DecoderLayers; pre-LN stacks end with a final LayerNorm."""

    def __init__(self, num_layers: int, d_model: int, num_heads: int, **layer_kwargs) -> None:
        super().__init__()
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
        for layer in self.layers:
            y = layer(y, memory, padding_mask=padding_mask, memory_padding_mask=memory_padding_mask)
        return self.norm(y)


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """Encoder-decoder hyper-parameters. Token 0 is padding; ``bos_id`` starts every output."""

    src_vocab: int  # source tokens 0..src_vocab-1 (0 = pad)
    tgt_vocab: int  # target tokens 0..tgt_vocab-1 (0 = pad, bos_id = start)
    d_model: int = 64  # D
    num_heads: int = 2  # H
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    d_ff: int = 128  # feed-forward width
    dropout: float = 0.1
    max_len: int = 64  # longest source or target sequence
    norm_first: bool = True  # pre-LN (stable without warm-up) or post-LN (the 2017 paper)
    positional: str = "sinusoidal"  # "sinusoidal" or "learned"
    bos_id: int = 1  # decoder start token
    share_embeddings: bool = False  # one table for source, target and the output layer

    def __post_init__(self) -> None:
        if self.src_vocab < 2 or self.tgt_vocab <= self.bos_id or self.bos_id < 1:
            raise ValueError(
                f"need src_vocab >= 2 and 1 <= bos_id < tgt_vocab, got src_vocab={self.src_vocab}"
                f", tgt_vocab={self.tgt_vocab}, bos_id={self.bos_id}"
            )
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}"
            )
        if self.positional not in ("sinusoidal", "learned"):
            raise ValueError(
                f"positional must be 'sinusoidal' or 'learned', got {self.positional!r}"
            )
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError("share_embeddings needs src_vocab == tgt_vocab")

    @classmethod
    def tiny(cls, **overrides: object) -> EncoderDecoderConfig:
        """A small config for tests."""
        base = dict(src_vocab=12, tgt_vocab=12, d_model=32, num_heads=2, d_ff=64, dropout=0.0)
        base.update(num_encoder_layers=1, num_decoder_layers=1, max_len=16)
        return cls(**{**base, **overrides})


class EncoderDecoder(nn.Module):
    """Embed + position → Encoder → memory; Decoder(shifted target, memory) → (B, Lt, V) logits."""

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab, c.d_model, padding_idx=0)
        self.tgt_embed = (
            self.src_embed
            if c.share_embeddings
            else nn.Embedding(c.tgt_vocab, c.d_model, padding_idx=0)
        )
        pos = (
            SinusoidalPositionalEncoding
            if c.positional == "sinusoidal"
            else LearnedPositionalEncoding
        )
        self.src_pos, self.tgt_pos = pos(c.d_model, c.max_len), pos(c.d_model, c.max_len)
        kw = dict(d_ff=c.d_ff, dropout=c.dropout, norm_first=c.norm_first)
        self.encoder = Encoder(c.num_encoder_layers, c.d_model, c.num_heads, **kw)
        self.decoder = Decoder(c.num_decoder_layers, c.d_model, c.num_heads, **kw)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.d_model, c.tgt_vocab)
        if c.share_embeddings:
            self.out.weight = self.src_embed.weight
        self.scale = math.sqrt(c.d_model)
        for table in {self.src_embed, self.tgt_embed}:  # std D^-1/2, so scaled rows have norm ~1
            nn.init.normal_(table.weight, std=c.d_model**-0.5)
            nn.init.zeros_(table.weight[0])

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, Ls) token ids → memory (B, Ls, D) and its padding mask (B, Ls)."""
        if src.ndim != 2 or src.dtype != torch.long:
            raise ValueError(
                f"src must be (B, Ls) int64 token ids, got {src.dtype} {tuple(src.shape)}"
            )
        pad = src == 0
        x = self.drop(self.src_pos(self.src_embed(src) * self.scale))
        return self.encoder(x, padding_mask=pad), pad

    def decode(self, tgt_in: Tensor, memory: Tensor, memory_pad: Tensor) -> Tensor:
        """tgt_in (B, Lt) (starting with bos) → logits (B, Lt, V)."""
        y = self.drop(self.tgt_pos(self.tgt_embed(tgt_in) * self.scale))
        return self.out(self.decoder(y, memory, memory_padding_mask=memory_pad))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """src (B, Ls), tgt_in (B, Lt) → logits (B, Lt, V) (teacher forcing)."""
        memory, pad = self.encode(src)
        return self.decode(tgt_in, memory, pad)

    def shift_right(self, tgt: Tensor) -> Tensor:
        """(B, Lt) targets → decoder inputs ``[bos, t_0, …, t_{Lt-2}]``."""
        bos = torch.full_like(tgt[:, :1], self.config.bos_id)
        return torch.cat([bos, tgt[:, :-1]], dim=1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cross-entropy over target tokens. Keys: "src" (B, Ls), "tgt" (B, Lt); 0 = pad (skipped)."""
        src, tgt = batch["src"], batch["tgt"]
        logits = self(src, self.shift_right(tgt))  # (B, Lt, V)
        return F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=0)

    @staticmethod
    def _restrict(logits: Tensor, allowed: Tensor | None, used: Tensor | None) -> Tensor:
        logits = logits.clone()
        logits[..., 0] = float("-inf")  # never emit padding
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        if used is not None:
            logits = logits.masked_fill(used, float("-inf"))
        return logits

    @torch.no_grad()
    def greedy_decode(
        self, src: Tensor, length: int, *, allowed: Tensor | None = None, no_repeat: bool = False
    ) -> Tensor:
        """Emit ``length`` tokens, each the argmax given the previous ones.

        Args:
            src: (B, Ls) source ids.
            length: number of tokens to emit.
            allowed: optional (B, V) or (V,) bool, True = may be emitted.
            no_repeat: never emit a token twice in one output.

        Returns:
            (B, length) token ids.
        """
        memory, pad = self.encode(src)
        out = torch.full_like(src[:, :1], self.config.bos_id)  # (B, 1)
        used = torch.zeros(src.shape[0], self.config.tgt_vocab, dtype=torch.bool, device=src.device)
        for _ in range(length):
            logits = self._restrict(self.decode(out, memory, pad)[:, -1], allowed, used)
            token = logits.argmax(dim=-1)  # (B,)
            if no_repeat:
                used[torch.arange(len(token)), token] = True
            out = torch.cat([out, token[:, None]], dim=1)
        return out[:, 1:]

    @torch.no_grad()
    def beam_search(
        self,
        src: Tensor,
        length: int,
        *,
        beam_size: int = 4,
        allowed: Tensor | None = None,
        no_repeat: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Keep the ``beam_size`` best partial outputs by total log-probability at each step.

        Returns:
            (B, beam, length) token ids and (B, beam) log-probabilities, best first.
        """
        b, v, k = src.shape[0], self.config.tgt_vocab, beam_size
        memory, pad = self.encode(src)
        memory, pad = memory.repeat_interleave(k, 0), pad.repeat_interleave(k, 0)  # (B*k, ...)
        if allowed is not None and allowed.ndim == 2:
            allowed = allowed.repeat_interleave(k, 0)
        seqs = torch.full((b * k, 1), self.config.bos_id, dtype=torch.long, device=src.device)
        scores = torch.full((b, k), float("-inf"), device=src.device)
        scores[:, 0] = 0.0  # all beams start identical: keep one alive
        used = torch.zeros(b * k, v, dtype=torch.bool, device=src.device)
        for _ in range(length):
            logits = self._restrict(self.decode(seqs, memory, pad)[:, -1], allowed, used)
            logp = logits.log_softmax(-1).view(b, k, v)  # (B, k, V)
            total = (scores[..., None] + logp).view(b, k * v)
            scores, flat = total.topk(k, dim=-1)  # (B, k)
            parent = (flat // v + torch.arange(b, device=src.device)[:, None] * k).flatten()
            token = (flat % v).flatten()  # (B*k,)
            seqs = torch.cat([seqs[parent], token[:, None]], dim=1)
            used = used[parent]
            if no_repeat:
                used[torch.arange(b * k), token] = True
        return seqs[:, 1:].view(b, k, length), scores


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
