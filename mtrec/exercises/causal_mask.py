"""Self-check: the attention mask of a left-padded, causal (next-item) sequence model.

The student writes ``causal_padding_mask(lengths, max_len) -> mask``: ``lengths`` (B,) holds each
user's number of real items, histories are left-padded to ``max_len`` = L (newest item last), and
``mask`` (B, L, L) is True where query position i may attend to key position j: j is not padding
and j <= i (a position sees itself and the past, never the future). A padded query row is all
False. This is the mask SASRec (Kang & McAuley, ICDM 2018) and a Transformer decoder (Vaswani et
al., NeurIPS 2017) use; ``mtrec.nn.attention`` takes it with the same convention (True = may
attend).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases
from mtrec.nn.attention import causal_mask


def reference_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, L, L) bool: causal and not a padding key (checked against mtrec.nn.attention)."""
    positions = torch.arange(max_len)  # (L,)
    causal = positions[None, :] <= positions[:, None]  # (L, L): key j <= query i
    torch.testing.assert_close(causal, causal_mask(max_len))
    real = positions[None, :] >= max_len - lengths[:, None]  # (B, L): left padding
    return causal[None] & real[:, None, :]  # (B, L, L)


def _future_visible(lengths: Tensor, max_len: int) -> Tensor:
    return reference_mask(lengths, max_len).transpose(1, 2)


def _no_self(lengths: Tensor, max_len: int) -> Tensor:
    eye = torch.eye(max_len, dtype=torch.bool)
    return reference_mask(lengths, max_len) & ~eye


def _padding_ignored(lengths: Tensor, max_len: int) -> Tensor:
    return causal_mask(max_len)[None].expand(len(lengths), -1, -1).clone()


def _right_padding(lengths: Tensor, max_len: int) -> Tensor:
    positions = torch.arange(max_len)
    real = positions[None, :] < lengths[:, None]
    return causal_mask(max_len)[None] & real[:, None, :]


def _inverted(lengths: Tensor, max_len: int) -> Tensor:
    return ~reference_mask(lengths, max_len)


DIAGNOSES = (
    (_future_visible, "your mask lets a position see the future: keep keys j <= i (tril)"),
    (_no_self, "a position may attend to itself: use j <= i, not j < i"),
    (_padding_ignored, "padding keys are not masked: histories are left-padded, so the first "
     "L - length positions of each row are padding"),
    (_right_padding, "you padded on the right; histories are left-padded (newest item last)"),
    (_inverted, "the mask is inverted: True means 'may attend'"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (fixed lengths, so every student sees the same ones)."""
    specs = [
        ("one full history, L=4", [4], 4, "key j is visible from query i when j <= i"),
        ("two users, L=5, lengths (5, 3)", [5, 3], 5,
         "the first L - length positions of a row are padding: mask them as keys"),
        ("three users, L=6, lengths (1, 4, 6)", [1, 4, 6], 6,
         "combine the (L, L) causal part and the (B, L) padding part by broadcasting"),
        ("an empty history, L=3, lengths (0, 2)", [0, 2], 3,
         "a user with no items has no key to attend to: the whole (L, L) block is False"),
    ]  # fmt: skip
    out = []
    for name, lengths, max_len, hint in specs:
        kwargs = {"lengths": torch.tensor(lengths), "max_len": max_len}
        out.append(Case(name, kwargs, reference_mask(**kwargs), hint, DIAGNOSES))
    return out


def check_causal_mask(student: Callable[..., Tensor]) -> bool:
    """Check ``student(lengths, max_len) -> (B, L, L) bool``; print feedback; True if right."""
    return run_cases("causal + padding attention mask", student, cases())
