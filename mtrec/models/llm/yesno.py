"""A causal language model as a yes/no classifier: P(" Yes") against P(" No") after a prompt.

The recipe of TALLRec (Bao, Zhang, Zhang, Wang, Feng and He, "TALLRec: An Effective and
Efficient Tuning Framework to Align Large Language Model with Recommendation", RecSys 2023):
write the case as an instruction ending in a question ("... Will they like it?"), read the
model's next-token logits for the two answer words, and fine-tune with LoRA so the answer
becomes the label. Here the two logits are compared directly, ``logit(" Yes") − logit(" No")``,
which is the log-odds of "Yes" when the answer is restricted to the two words; training is binary
cross-entropy on that log-odds (TALLRec's next-token loss on the answer, restricted to the two
answers: the rest of the vocabulary gets no gradient, which it does not need).

Prompts are tokenized once (:func:`encode_prompts`), left-padded so every prompt's last token is
in the last column, with position ids that ignore the padding. :class:`YesNoScorer` has
``forward(batch) → (B, 1)`` logits and ``loss(batch)``, so :func:`mtrec.train.fit` trains it
(with bf16 autocast on a GPU) and :class:`mtrec.train.distill.Distiller` can use it as a teacher.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int, check_nonempty

__all__ = ["ANSWERS", "YesNoScorer", "encode_prompts", "yes_probability"]

ANSWERS = (" Yes", " No")  # the answer words, each one token (a space starts a word's token)
INPUT_KEYS = ("input_ids", "attention_mask")


def encode_prompts(tokenizer: Any, prompts: Sequence[str], *, max_length: int = 256) -> dict:
    """Token ids of ``prompts``, left-padded to the longest: ``input_ids``, ``attention_mask``.

    A prompt longer than ``max_length`` tokens keeps its last ``max_length`` tokens (the
    question is at the end); one warning says how many prompts were cut and by how much.

    Args:
        tokenizer: the language model's tokenizer (its ``pad_token_id``, else ``eos_token_id``,
            fills the padding; the attention mask hides it).
        prompts: N non-empty strings.
        max_length: the most tokens kept per prompt (>= 1).

    Returns:
        ``{"input_ids": (N, L) int64, "attention_mask": (N, L) int64}``, L <= ``max_length``.
    """
    max_length = check_int(max_length, "max_length", min=1)
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError(
            f"prompts must be a sequence of strings, got {type(prompts).__name__}; wrap a single "
            "prompt in a list: [prompt]"
        )
    check_nonempty(prompts, "prompts", fix="pass at least one prompt")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompts[{i}] must be a non-empty str, got {prompt!r}")
    rows = [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    over = [len(row) - max_length for row in rows if len(row) > max_length]
    if over:
        warnings.warn(
            f"{len(over)} of {len(rows)} prompts are longer than max_length={max_length} tokens; "
            f"their first tokens were dropped (at most {max(over)}, {sum(over)} in all); raise "
            "max_length or shorten the prompts",
            UserWarning,
            stacklevel=2,
        )
        rows = [row[-max_length:] for row in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (N, L)
    mask = torch.zeros(len(rows), width, dtype=torch.long)  # (N, L): 1 = a real token
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return {"input_ids": ids, "attention_mask": mask}


class YesNoScorer(nn.Module):
    """``logit(" Yes") − logit(" No")`` at the prompt's end: a (B, 1) click-like logit.

    Args:
        model: a causal LM (plain or LoRA-wrapped, e.g. :func:`~mtrec.models.llm.add_lora`).
        tokenizer: its tokenizer; each of ``answers`` must be exactly one token.
        answers: the positive and the negative answer, as they follow the prompt.
        task_names: the one task the logit predicts (for evaluation and distillation).

    Batch keys: ``input_ids`` and ``attention_mask`` from :func:`encode_prompts` (B, L), and for
    :meth:`loss` ``labels`` (B, 1) in {0, 1}.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, *, answers: tuple[str, str] = ANSWERS,
                 task_names: tuple[str, ...] = ("yes",)) -> None:  # fmt: skip
        super().__init__()
        if len(task_names) != 1:
            raise ValueError(f"a yes/no scorer predicts one task, got task_names={task_names}")
        ids = []
        for answer in answers:
            tokens = tokenizer(answer, add_special_tokens=False)["input_ids"]
            if len(tokens) != 1:
                raise ValueError(
                    f"answer {answer!r} is {len(tokens)} tokens for this tokenizer; the scorer "
                    "reads one next-token logit per answer: pick answers of one token each, "
                    "e.g. ' Yes' and ' No' (with the leading space)"
                )
            ids.append(tokens[0])
        if ids[0] == ids[1]:
            raise ValueError(f"answers {answers} are the same token; give two different answers")
        self.model = model
        self.answer_ids = tuple(ids)
        self.task_names = tuple(task_names)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, 1) float32 log-odds of the positive answer."""
        ids, mask = _inputs(batch)
        first = int(mask.any(0).long().argmax())  # the first column a prompt uses (host sync)
        ids, mask = ids[:, first:], mask[:, first:]  # drop columns that are padding in every row
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding: count real tokens only
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            logits_to_keep=1).logits[:, -1]  # fmt: skip  # (B, V)
        yes, no = self.answer_ids
        return (logits[:, yes] - logits[:, no]).float()[:, None]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Binary cross-entropy of the log-odds against ``labels`` (B, 1)."""
        if "labels" not in batch:
            raise KeyError("loss needs batch['labels'] (B, 1) in {0, 1}; the batch has none")
        logits = self(batch)
        labels = batch["labels"].float().reshape(logits.shape)
        if bool(((labels != 0) & (labels != 1)).any()):
            raise ValueError("labels must be 0 or 1 (is the answer 'Yes'?); got other values")
        return F.binary_cross_entropy_with_logits(logits, labels)


def _inputs(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    missing = [k for k in INPUT_KEYS if k not in batch]
    if missing:
        raise KeyError(
            f"the batch lacks {missing}; build the inputs with encode_prompts(tokenizer, prompts)"
        )
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if ids.ndim != 2 or ids.shape != mask.shape or ids.is_floating_point():
        raise ValueError(
            f"input_ids must be (B, L) integers with an attention_mask of the same shape, got "
            f"{tuple(ids.shape)} {ids.dtype} and {tuple(mask.shape)}; use encode_prompts"
        )
    if not bool(mask[:, -1].all()):
        raise ValueError(
            "every prompt must end in the last column (left padding); encode_prompts pads left"
        )
    return ids, mask


@torch.no_grad()
def yes_probability(scorer: YesNoScorer, inputs: dict[str, Tensor], *,
                    batch_size: int = 64) -> Tensor:  # fmt: skip
    """(N,) P(" Yes" | prompt, answer ∈ {Yes, No}) for prompts from :func:`encode_prompts`.

    Runs in eval mode (restored afterwards), ``batch_size`` prompts at a time, under bf16
    autocast on a GPU. Returns float32 on the CPU.
    """
    batch_size = check_int(batch_size, "batch_size", min=1)
    ids, mask = _inputs(inputs)
    device = next(scorer.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    was_training = scorer.training
    scorer.eval()
    out = []
    try:
        for start in range(0, len(ids), batch_size):
            part = {"input_ids": ids[start : start + batch_size].to(device),
                    "attention_mask": mask[start : start + batch_size].to(device)}  # fmt: skip
            with autocast:
                out.append(torch.sigmoid(scorer(part)).squeeze(1).float().cpu())
    finally:
        scorer.train(was_training)
    return torch.cat(out)
