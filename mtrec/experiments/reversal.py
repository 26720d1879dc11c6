"""A toy task that tells a correct Transformer from a wrong formula: reverse 6 tokens (notebook 03).

A formula quoted in many course notes writes the encoder as ``LN(X + MHA(X)) + LN(X + PE)`` and
the decoder as ``LN(Y + MHA(Y)) + LN(Y + Encoder(X))``: no feed-forward sublayer, no causal mask,
no cross-attention (:func:`mtrec.nn.transformer.stated_encoder` / ``stated_decoder``).
:class:`StatedSeq2Seq` wraps it in a tiny model; :func:`compare` trains it and the correct
:class:`mtrec.nn.encoder_decoder.EncoderDecoder` with the same steps on sequence reversal and
scores both: teacher-forced token accuracy (the answer is fed in) and greedy exact match (the
model must generate). Reversal needs output t to read source token L-1-t, which only
cross-attention can do.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor, nn

from mtrec.nn.attention import MultiHeadAttention
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from mtrec.nn.transformer import SinusoidalPositionalEncoding, stated_decoder, stated_encoder
from mtrec.utils import set_seed

VOCAB = 12  # token ids: 0 = padding, 1 = start, 2..11 = the 10 content tokens
LENGTH = 6  # tokens per sequence
BATCH_SIZE = 64  # sequences per training step
LR = 5e-3  # Adam learning rate
STEPS = 120  # training steps (the correct model reverses almost every sequence by then)
TEST_SIZE = 500  # held-out sequences, drawn from their own generator
TEST_SEED = 123  # seed of the held-out sequences (never used for training)
COLUMNS = ["teacher-forced token accuracy", "greedy exact match"]


class StatedSeq2Seq(nn.Module):
    """Embeddings + the stated encoder and decoder + an output layer."""

    def __init__(self, vocab: int = VOCAB, d: int = 32, heads: int = 2, length: int = LENGTH):
        super().__init__()
        self.embed, self.out = nn.Embedding(vocab, d), nn.Linear(d, vocab)
        self.pe = SinusoidalPositionalEncoding(d).encoding(length)  # (L, D), a constant
        self.enc_attn, self.dec_attn = MultiHeadAttention(d, heads), MultiHeadAttention(d, heads)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """src, tgt_in (B, L) token ids → (B, L, vocab) logits."""
        x, y = self.embed(src), self.embed(tgt_in)  # (B, L, D)
        encoded = stated_encoder(x, self.enc_attn, self.norms[0], self.norms[1], self.pe)
        return self.out(stated_decoder(y, encoded, self.dec_attn, self.norms[2], self.norms[3]))


def reverse_batch(
    n: int, generator: torch.Generator, length: int = LENGTH
) -> tuple[Tensor, Tensor]:
    """``n`` random sources (n, length) of content tokens and their reversals."""
    src = torch.randint(2, VOCAB, (n, length), generator=generator)
    return src, src.flip(1)


def shift(tgt: Tensor) -> Tensor:
    """Decoder input (B, L): the start token, then the target without its last token."""
    return torch.cat([torch.ones_like(tgt[:, :1]), tgt[:, :-1]], dim=1)


def train_toy(model: nn.Module, *, steps: int = STEPS, seed: int = 0) -> nn.Module:
    """Cross-entropy with teacher forcing on fresh random batches; returns the model in eval."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(steps):
        src, tgt = reverse_batch(BATCH_SIZE, g)
        logits = model(src, shift(tgt))  # (B, L, vocab)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def toy_scores(model: nn.Module, src: Tensor, tgt: Tensor) -> tuple[float, float]:
    """(teacher-forced token accuracy, greedy exact-match rate) on ``src`` → ``tgt``."""
    teacher = (model(src, shift(tgt)).argmax(-1) == tgt).float().mean().item()
    out = torch.ones_like(tgt[:, :1])  # the start token
    for t in range(tgt.shape[1]):  # greedy: feed back what was generated (pad the rest)
        y = torch.cat([out, torch.zeros_like(tgt[:, : tgt.shape[1] - out.shape[1]])], dim=1)
        out = torch.cat([out, model(src, y)[:, t].argmax(-1, keepdim=True)], dim=1)
    return teacher, (out[:, 1:] == tgt).all(dim=1).float().mean().item()


def compare(
    *, seed: int = 0, steps: int = STEPS
) -> tuple[pd.DataFrame, StatedSeq2Seq, EncoderDecoder, tuple[Tensor, Tensor]]:
    """Train the stated model and the Transformer with the same steps; score both on held-out data.

    Returns:
        The score table (rows "stated formula", "Transformer"), both models and the test pair.
    """
    set_seed(seed)
    test = reverse_batch(TEST_SIZE, torch.Generator().manual_seed(TEST_SEED))
    stated = train_toy(StatedSeq2Seq(), steps=steps, seed=seed)
    correct = train_toy(
        EncoderDecoder(EncoderDecoderConfig.tiny(max_len=8)), steps=steps, seed=seed
    )
    table = pd.DataFrame([toy_scores(stated, *test), toy_scores(correct, *test)],
                         index=["stated formula", "Transformer"], columns=COLUMNS)  # fmt: skip
    return table, stated, correct, test


@torch.no_grad()
def first_position_change(model: nn.Module, src: Tensor, tgt: Tensor) -> float:
    """How much output position 0 moves when only the *last* decoder input token changes.

    A causal decoder gives 0: position 0 may not read later positions.
    """
    y_in = shift(tgt[:1])  # (1, L)
    changed = y_in.clone()
    changed[0, -1] = (changed[0, -1] - 1) % (VOCAB - 2) + 2  # another content token
    moved = model(src[:1], y_in)[0, 0] - model(src[:1], changed)[0, 0]  # (vocab,)
    return moved.abs().max().item()
