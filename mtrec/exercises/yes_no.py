"""Inline check of notebook 15: P(" Yes") when the answer must be " Yes" or " No" (TALLRec).

The learner writes ``yes_probability(last_logits, yes_id, no_id) -> (B,)``: ``last_logits``
(B, V) are a causal language model's next-token logits after each prompt; the answer is
restricted to the two tokens, so P(Yes) = exp(l_yes) / (exp(l_yes) + exp(l_no)) =
sigmoid(l_yes − l_no). The reference is what :class:`mtrec.models.llm.YesNoScorer` computes.
Reference: Bao et al., "TALLRec", RecSys 2023.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases


def reference_yes_probability(last_logits: Tensor, yes_id: int, no_id: int) -> Tensor:
    """(B,) sigmoid of the log-odds ``l_yes − l_no``."""
    return torch.sigmoid(last_logits[:, yes_id] - last_logits[:, no_id])


def _whole_vocabulary(last_logits: Tensor, yes_id: int, no_id: int) -> Tensor:
    return last_logits.softmax(-1)[:, yes_id]


def _swapped(last_logits: Tensor, yes_id: int, no_id: int) -> Tensor:
    return torch.sigmoid(last_logits[:, no_id] - last_logits[:, yes_id])


def _sigmoid_of_yes(last_logits: Tensor, yes_id: int, no_id: int) -> Tensor:
    return torch.sigmoid(last_logits[:, yes_id])


def _ratio_of_logits(last_logits: Tensor, yes_id: int, no_id: int) -> Tensor:
    yes, no = last_logits[:, yes_id], last_logits[:, no_id]
    return yes / (yes + no)


DIAGNOSES = (
    (_whole_vocabulary, "that is P(Yes) among all tokens; restrict the softmax to the two answers "
     "(it is the sigmoid of l_yes - l_no)"),
    (_swapped, "that is P(No): the log-odds of Yes are l_yes - l_no, not l_no - l_yes"),
    (_sigmoid_of_yes, "sigmoid(l_yes) ignores the No answer; use sigmoid(l_yes - l_no)"),
    (_ratio_of_logits, "logits are log-scores: exponentiate before normalising (or take "
     "sigmoid(l_yes - l_no))"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(15)
    specs = [
        ("one prompt, a 6-token vocabulary", torch.randn(1, 6, generator=g) * 3, 2, 4,
         "index the two answer columns, subtract, apply torch.sigmoid"),
        ("three prompts, ids in either order", torch.randn(3, 10, generator=g) * 3, 7, 1,
         "yes_id may be larger than no_id: use them as given"),
        ("large logits (no overflow)", torch.randn(2, 8, generator=g) * 200, 0, 5,
         "exp(200) overflows float32; sigmoid of the difference does not"),
    ]  # fmt: skip
    out = []
    for name, logits, yes, no, hint in specs:
        kwargs = {"last_logits": logits, "yes_id": yes, "no_id": no}
        out.append(Case(name, kwargs, reference_yes_probability(**kwargs), hint, DIAGNOSES))
    return out


def check_yes_probability(student: Callable[..., Tensor]) -> bool:
    """Check ``student(last_logits, yes_id, no_id) -> (B,)`` P(Yes | Yes or No)."""
    return run_cases("yes/no probability", student, cases())
