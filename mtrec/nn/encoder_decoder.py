"""A Transformer encoder-decoder with greedy and beam decoding (tokens in, logits out).

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. Built from the layers of
:mod:`mtrec.nn.transformer`; token 0 is padding and ``bos_id`` starts every output sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_ids, check_int, check_probability, check_tensor
from mtrec.nn.attention import trusted_values
from mtrec.nn.transformer import (
    Decoder,
    Encoder,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
)


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
        for name in ("src_vocab", "tgt_vocab", "d_model", "num_heads", "d_ff", "max_len", "bos_id",
                     "num_encoder_layers", "num_decoder_layers"):  # fmt: skip
            check_int(getattr(self, name), f"EncoderDecoderConfig.{name}", min=1)
        check_probability(self.dropout, "EncoderDecoderConfig.dropout")
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
        tables = [self.src_embed] if c.share_embeddings else [self.tgt_embed, self.src_embed]
        # A list, not a set: a set's order follows memory addresses, so the two tables could
        # draw their initial values in either order from one run to the next.
        for table in tables:  # std D^-1/2, so scaled rows have norm ~1
            nn.init.normal_(table.weight, std=c.d_model**-0.5)
            nn.init.zeros_(table.weight[0])

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, Ls) token ids → memory (B, Ls, D) and its padding mask (B, Ls)."""
        if check_tensor(src, "src").ndim != 2 or src.dtype != torch.long:
            raise ValueError(
                f"src must be (B, Ls) int64 token ids, got {src.dtype} {tuple(src.shape)}"
            )
        check_ids(src, "src", self.config.src_vocab)
        pad = src == 0
        x = self.drop(self.src_pos(self.src_embed(src) * self.scale))
        with trusted_values():  # embeddings of checked ids: no NaN check per layer
            return self.encoder(x, padding_mask=pad), pad

    def decode(self, tgt_in: Tensor, memory: Tensor, memory_pad: Tensor) -> Tensor:
        """tgt_in (B, Lt) (starting with bos) → logits (B, Lt, V)."""
        if (
            check_tensor(tgt_in, "tgt_in").ndim != 2
            or tgt_in.dtype != torch.long
            or len(tgt_in) != len(memory)
        ):
            raise ValueError(
                f"tgt_in must be (B, Lt) int64 token ids with B = {len(memory)} like the source, "
                f"got {tgt_in.dtype} {tuple(tgt_in.shape)}"
            )
        check_ids(tgt_in, "tgt_in", self.config.tgt_vocab)
        y = self.drop(self.tgt_pos(self.tgt_embed(tgt_in) * self.scale))
        with trusted_values():  # embeddings of checked ids; memory comes from encode()
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
        """Cross-entropy over target tokens. Keys: "src" (B, Ls), "tgt" (B, Lt); 0 = pad (skipped).

        A batch whose targets are all padding (or empty) raises ValueError: the mean over no
        token would be NaN.
        """
        for key in ("src", "tgt"):
            if key not in batch:
                raise KeyError(f"batch needs {key!r} (B, L) token ids; it has {sorted(batch)}")
        src, tgt = batch["src"], batch["tgt"]
        check_ids(check_tensor(tgt, "tgt", ndim=2), "tgt", self.config.tgt_vocab)
        if not bool((tgt != 0).any()):
            raise ValueError(
                f"every target token is padding (0) in this batch of shape {tuple(tgt.shape)}: "
                "the mean loss over no token is undefined; drop rows without a target"
            )
        logits = self(src, self.shift_right(tgt))  # (B, Lt, V)
        return F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=0)

    def _check_decoding(
        self,
        src: Tensor,
        length: int,
        allowed: Tensor | None,
        no_repeat: bool,
        beam_size: int = 1,
    ) -> None:
        """Refuse a request that would leave a step (or a beam) with no token to emit.

        Such a step would emit padding or a forbidden token. Beam search also needs at least
        ``beam_size`` distinct allowed outputs, else the extra beams are dead ends.
        """
        check_int(length, "length", min=0)
        check_int(beam_size, "beam_size", min=1)
        v = self.config.tgt_vocab
        if allowed is not None:
            if check_tensor(allowed, "allowed").dtype != torch.bool or allowed.shape not in (
                (v,),
                (len(src), v),
            ):
                raise ValueError(
                    f"allowed must be a bool ({v},) or (B, {v}) = ({len(src)}, {v}) mask (True = "
                    f"may be emitted), got {allowed.dtype} {tuple(allowed.shape)}"
                )
            choices = allowed[..., 1:].sum(dim=-1).reshape(-1)  # tokens other than padding
        else:
            choices = torch.tensor([v - 1])
        need = length if no_repeat else min(length, 1)
        if choices.numel() and int(choices.min()) < need:
            row = int(choices.argmin())
            raise ValueError(
                f"decoding {length} tokens{' without repeats' if no_repeat else ''} needs "
                f"{need} allowed tokens (besides padding 0) per row, but row {row} allows "
                f"{int(choices[row])}; allow more tokens or ask for length <= {int(choices[row])}"
            )
        fewest, outputs = int(choices.min()) if choices.numel() else v - 1, 1
        for step in range(length):  # distinct outputs: n^length, or n!/(n-length)! without repeats
            outputs *= fewest - step if no_repeat else fewest
            if outputs >= beam_size:
                break
        if outputs < beam_size and choices.numel():
            raise ValueError(
                f"beam_size={beam_size} but only {outputs} distinct outputs of length {length} "
                "are possible with these allowed tokens; use beam_size <= "
                f"{max(outputs, 1)} or allow more tokens"
            )

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
        self._check_decoding(src, length, allowed, no_repeat)
        memory, pad = self.encode(src)
        out = torch.full((len(src), 1), self.config.bos_id, dtype=torch.long, device=src.device)
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
        self._check_decoding(src, length, allowed, no_repeat, beam_size)
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
