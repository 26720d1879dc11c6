"""A causal language model that learns to complete prompts: fine-tuning and writing.

Fine-tuning on (prompt, completion) pairs is the plain language-model objective restricted to
the completion: the prompt's tokens are context only (label -100), so the loss is

    L = − Σ_t log P(c_t | prompt, c_<t),   t over the completion's tokens and its end token.

:class:`PromptCompletion` has ``loss(batch)`` for :func:`mtrec.train.fit` (LoRA or not);
:func:`write` decodes greedily with a minimum length (no empty output) and a repetition penalty
(CTRL's: a token already in the context has its logit divided by the penalty when positive,
multiplied when negative; Keskar et al., 2019), one batch of left-padded prompts at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mtrec.checks import check_float, check_int
from mtrec.models.llm.yesno import encode_prompts
from mtrec.utils import set_seed

__all__ = ["PromptCompletion", "encode_pairs", "write"]

IGNORE = -100  # label of a token that is context, not target


def encode_pairs(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], *,
                 max_length: int = 128) -> dict[str, Tensor]:  # fmt: skip
    """Prompt + completion + end token per row, right-padded, with labels on the completion.

    Returns ``input_ids``, ``attention_mask`` and ``labels`` (N, L) int64; a row longer than
    ``max_length`` is refused (a cut completion would teach the model to stop mid-sentence).
    """
    max_length = check_int(max_length, "max_length", min=2)
    if len(prompts) != len(completions):
        raise ValueError(
            f"got {len(prompts)} prompts and {len(completions)} completions; pass one "
            "completion per prompt"
        )
    if not prompts:
        raise ValueError("prompts is empty; pass at least one (prompt, completion) pair")
    end = tokenizer.eos_token_id
    rows, targets = [], []
    for i, (prompt, completion) in enumerate(zip(prompts, completions)):
        if not str(completion).strip():
            raise ValueError(f"completions[{i}] is empty; drop the row or give it text")
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = [*tokenizer(completion, add_special_tokens=False)["input_ids"], end]
        if len(p) + len(c) > max_length:
            raise ValueError(
                f"row {i} is {len(p) + len(c)} tokens (prompt {len(p)}, completion {len(c)}), "
                f"over max_length={max_length}; raise max_length or shorten the prompt"
            )
        rows.append(p + c)
        targets.append([IGNORE] * len(p) + c)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), end, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (row, target) in enumerate(zip(rows, targets)):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.tensor(target)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class PromptCompletion(nn.Module):
    """Wraps a causal LM so :func:`mtrec.train.fit` trains it on :func:`encode_pairs` batches."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean cross-entropy of the completion tokens (padding columns trimmed first)."""
        width = int(batch["attention_mask"].sum(1).max())  # right padding: keep the used columns
        return self.model(input_ids=batch["input_ids"][:, :width],
                          attention_mask=batch["attention_mask"][:, :width],
                          labels=batch["labels"][:, :width]).loss  # fmt: skip


@torch.no_grad()
def write(model: nn.Module, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 16,
          min_new_tokens: int = 2, repetition_penalty: float = 1.3, top_p: float | None = None,
          seed: int = 0, batch_size: int = 32) -> list[str]:  # fmt: skip
    """Completions of ``prompts`` (each up to the end token), stripped of spaces: greedy, or
    nucleus sampling with ``top_p`` (seeded by ``seed``).

    Args:
        model: a causal LM (a ``PeftModel`` works too).
        tokenizer: its tokenizer.
        prompts: N prompts.
        max_new_tokens: the most tokens written per prompt.
        min_new_tokens: the end token is forbidden before this many (no empty completions).
        repetition_penalty: >= 1; 1 = off.
        top_p: None = greedy; else sample from the smallest set of tokens holding this much
            probability, in (0, 1].
        seed: seeds the sampling.
        batch_size: prompts per ``generate`` call.
    """
    max_new_tokens = check_int(max_new_tokens, "max_new_tokens", min=1)
    min_new_tokens = check_int(min_new_tokens, "min_new_tokens", min=0)
    if min_new_tokens > max_new_tokens:
        raise ValueError(
            f"min_new_tokens={min_new_tokens} exceeds max_new_tokens={max_new_tokens}; lower it"
        )
    penalty = check_float(repetition_penalty, "repetition_penalty", min=1.0)
    batch_size = check_int(batch_size, "batch_size", min=1)
    sampling = {} if top_p is None else {"do_sample": True, "top_k": 0,
                                         "top_p": check_float(top_p, "top_p", min=1e-6, max=1.0)}  # fmt: skip
    set_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            inputs = encode_prompts(tokenizer, list(prompts[start : start + batch_size]))
            inputs = {k: v.to(device) for k, v in inputs.items()}
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                 min_new_tokens=min_new_tokens, num_beams=1,
                                 **({"do_sample": False} | sampling), repetition_penalty=penalty, pad_token_id=tokenizer.eos_token_id,
                                 eos_token_id=tokenizer.eos_token_id)  # fmt: skip
            new = ids[:, inputs["input_ids"].shape[1] :]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        model.train(was_training)
    return out
