"""Inline check of notebook 04: a sentence vector by mean pooling over real tokens (Sentence-BERT).

The learner writes ``mean_pool(token_states, attention_mask) -> (B, D)``: token_states (B, L, D)
from the transformer, attention_mask (B, L) with 1 for tokens and 0 for padding; average the
token vectors over the real tokens only, then L2-normalise each row (all-MiniLM-L6-v2's recipe,
so dot products are cosine similarities). The reference is
:func:`mtrec.extractors.text.mean_pool` followed by ``F.normalize``. Reference: Reimers and
Gurevych, "Sentence-BERT", EMNLP 2019.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases
from mtrec.extractors.text import mean_pool


def reference_mean_pool(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, D) unit-length mean of the real tokens' vectors."""
    return F.normalize(mean_pool(token_states, attention_mask), dim=-1)


def _padding_counted(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    return F.normalize(token_states.mean(dim=1), dim=-1)


def _not_normalised(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    return mean_pool(token_states, attention_mask)


def _first_token(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    return F.normalize(token_states[:, 0], dim=-1)


def _max_pooled(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    masked = token_states.masked_fill(attention_mask.unsqueeze(-1) == 0, -float("inf"))
    return F.normalize(masked.max(dim=1).values, dim=-1)


DIAGNOSES = (
    (_padding_counted, "padding tokens were averaged in: weight each token by attention_mask and "
     "divide by the number of real tokens"),
    (_not_normalised, "the mean is right; now divide each row by its L2 norm (F.normalize)"),
    (_first_token, "you took the first ([CLS]) token; MiniLM's sentence vector averages all real "
     "tokens"),
    (_max_pooled, "that is max pooling; this model uses the mean over real tokens"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(4)

    def make(mask: list[list[int]], d: int) -> dict[str, Tensor]:
        m = torch.tensor(mask)
        return {"token_states": torch.randn(*m.shape, d, generator=g), "attention_mask": m}

    specs = [
        ("one sentence, no padding", make([[1, 1, 1]], 4),
         "average over the L axis (dim=1), then F.normalize(..., dim=-1)"),
        ("two sentences, one padded", make([[1, 1, 1, 1], [1, 1, 0, 0]], 6),
         "multiply by attention_mask.unsqueeze(-1) before summing; divide by mask.sum(1)"),
        ("a one-token sentence in a padded batch", make([[1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], 8),
         "a row with one real token pools to that token's vector, normalised"),
    ]  # fmt: skip
    return [Case(name, kw, reference_mean_pool(**kw), hint, DIAGNOSES) for name, kw, hint in specs]


def check_mean_pooling(student: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``student(token_states, attention_mask) -> (B, D)`` unit-length mean-pooled vectors."""
    return run_cases("mean pooling", student, cases())
