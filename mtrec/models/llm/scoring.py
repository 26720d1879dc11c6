"""Zero-shot candidate scoring with a causal language model: log P(candidate | prompt).

The recipe of LLM-as-ranker studies (Hou, Zhang, Lin et al., "Large Language Models are Zero-Shot
Rankers for Recommender Systems", ECIR 2024): write the user's history as a prompt, then rank
candidate items by how likely the model finds each title as the continuation. The prompt runs
once; its key/value cache is copied into every batch of candidates, so C candidates of n tokens
cost one prompt pass plus C·(n-1) tokens, not C passes over prompt + candidate.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mtrec.checks import check_choice, check_int, check_nonempty

__all__ = ["candidate_log_likelihood", "history_prompt"]


def history_prompt(titles: Sequence[str], *, max_items: int = 20) -> str:
    """A short instruction prompt from a user's item titles, oldest first.

    Only the last ``max_items`` titles are kept. The prompt ends without a space, so score
    candidates as ``" " + title`` (the space belongs to the title's first token)::

        A user watched, in order: Toy Story (1995); Fargo (1996). The next movie they watch is:

    Args:
        titles: the user's titles in the order they were consumed (at least one).
        max_items: how many of the most recent titles to keep (>= 1).
    """
    max_items = check_int(max_items, "max_items", min=1)
    titles = _strings(titles, "titles")
    recent = [title.strip() for title in titles[-max_items:]]
    return f"A user watched, in order: {'; '.join(recent)}. The next movie they watch is:"


def _strings(values: Any, name: str) -> list[str]:
    """``values`` as a non-empty list of non-blank strings, or a clear TypeError / ValueError."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"{name} must be a sequence of strings, got {type(values).__name__}; wrap a single "
            f"string in a list: [{name[:-1]}]"
        )
    check_nonempty(values, name, fix="pass at least one string")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(value).__name__} {value!r}")
        if not value.strip():
            raise ValueError(f"{name}[{i}] is an empty string; drop it or give it text")
    return list(values)


def _token_ids(tokenizer: Any, texts: list[str], name: str) -> list[list[int]]:
    """Token ids of each text, no special tokens; a text that makes no token is refused."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for i, row in enumerate(ids):
        if not row:
            raise ValueError(f"{name}[{i}] = {texts[i]!r} makes no tokens; give it visible text")
    return [list(row) for row in ids]


@torch.no_grad()
def candidate_log_likelihood(
    model: nn.Module,
    tokenizer: Any,
    prompt: str,
    candidates: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    reduce: str = "sum",
) -> Tensor:
    """Log-probability of each candidate's tokens as the continuation of ``prompt``.

    Prompt and candidates are tokenized separately and their ids concatenated, so no BPE merge
    crosses the boundary and a candidate's tokens are the same after any prompt (start
    candidates with a space, as they would appear in text). Candidates are sorted by length and
    batched, right-padded with an attention mask, on a copy of the prompt's key/value cache; the
    result equals one full ``model(prompt + candidate)`` pass per candidate to float rounding
    (below 1e-4; measured 6e-5 for 100 MovieLens titles after a 227-token prompt, 10x faster).

    A prompt longer than ``max_length`` minus the longest candidate is cut from the left (its
    oldest tokens), with one warning saying how many tokens were dropped.

    Args:
        model: a causal LM (``model(input_ids, attention_mask, position_ids, past_key_values)``
            → ``.logits`` (B, L, V)), e.g. from :func:`~mtrec.models.llm.load_language_model`,
            LoRA-wrapped or not. It runs in eval mode; its mode is restored afterwards.
        tokenizer: its tokenizer.
        prompt: the context, e.g. :func:`history_prompt`.
        candidates: C non-empty strings.
        batch_size: candidates per forward pass.
        max_length: the context limit in tokens (default ``model.config.max_position_embeddings``).
        reduce: ``"sum"`` (the log-likelihood of the whole candidate; favours short candidates,
            since every token adds a negative term) or ``"mean"`` (per token: length-normalised,
            fairer between long and short titles).

    Returns:
        (C,) float32 on the CPU; higher = more likely.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty str, got {prompt!r}; e.g. history_prompt()")
    candidates = _strings(candidates, "candidates")
    batch_size = check_int(batch_size, "batch_size", min=1)
    check_choice(reduce, "reduce", ("sum", "mean"))
    limit = max_length if max_length is not None else model.config.max_position_embeddings
    limit = check_int(limit, "max_length", min=2)
    prompt_ids = tokenizer(prompt)["input_ids"]  # special tokens as the tokenizer wants them
    if not prompt_ids:
        raise ValueError(f"prompt {prompt!r} makes no tokens; give it visible text")
    cand_ids = _token_ids(tokenizer, candidates, "candidates")
    room = limit - max(len(ids) for ids in cand_ids)  # tokens the prompt may keep
    if room < 1:
        raise ValueError(
            f"the longest candidate has {limit - room} tokens, which leaves no room for the "
            f"prompt within max_length={limit}; raise max_length or shorten the candidates"
        )
    if len(prompt_ids) > room:
        warnings.warn(
            f"the prompt has {len(prompt_ids)} tokens; its first {len(prompt_ids) - room} were "
            f"dropped to fit max_length={limit} with the longest candidate ({limit - room} "
            "tokens); keep fewer history items to avoid it",
            UserWarning,
            stacklevel=3,
        )
        prompt_ids = prompt_ids[len(prompt_ids) - room :]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        prompt_t = torch.tensor([prompt_ids], device=device)  # (1, P)
        out = model(input_ids=prompt_t, use_cache=True)
        first = out.logits[0, -1].float().log_softmax(-1)  # (V,): the first candidate token
        order = sorted(range(len(cand_ids)), key=lambda i: len(cand_ids[i]))  # less padding
        scores = torch.empty(len(cand_ids))  # (C,)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            rows = [cand_ids[i] for i in index]
            scores[index] = _batch_scores(model, out.past_key_values, first, rows, reduce).cpu()
    finally:
        model.train(was_training)
    return scores


def _batch_scores(
    model: nn.Module, cache: Any, first: Tensor, rows: list[list[int]], reduce: str
) -> Tensor:
    """(b,) summed or mean log-probabilities of ``rows`` (token ids) after the cached prompt."""
    b, n = len(rows), max(len(row) for row in rows)
    device = first.device
    targets = torch.zeros(b, n, dtype=torch.long, device=device)  # (b, n), right-padded with 0
    mask = torch.zeros(b, n, dtype=torch.bool, device=device)  # (b, n) real tokens
    for j, row in enumerate(rows):
        targets[j, : len(row)] = torch.tensor(row, device=device)
        mask[j, : len(row)] = True
    log_probs = torch.zeros(b, n, device=device)  # (b, n): log P(token t | prompt, tokens < t)
    log_probs[:, 0] = first[targets[:, 0]]
    if n > 1:  # token t is predicted from position t-1: feed every token but the last
        prompt_len = cache.get_seq_length()
        kv = copy.deepcopy(cache)  # the forward pass appends to the cache: keep the prompt's
        kv.batch_repeat_interleave(b)  # (1, ...) → (b, ...) per layer
        attention = torch.cat([mask.new_ones(b, prompt_len), mask[:, :-1]], dim=1)  # (b, P+n-1)
        positions = torch.arange(prompt_len, prompt_len + n - 1, device=device).expand(b, -1)
        logits = model(
            input_ids=targets[:, :-1],
            attention_mask=attention.long(),
            position_ids=positions,
            past_key_values=kv,
            use_cache=True,
        ).logits  # (b, n-1, V)
        picked = logits.float().log_softmax(-1).gather(-1, targets[:, 1:, None])  # (b, n-1, 1)
        log_probs[:, 1:] = picked.squeeze(-1)
    total = log_probs.masked_fill(~mask, 0.0).sum(1)  # (b,)
    return total / mask.sum(1) if reduce == "mean" else total
