"""The real SmolLM2-135M-Instruct, loaded once per test module (``lm``).

The tests need the fetched weights (``mtrec data fetch smollm2``, which ``make test`` runs); the
first load converts them (about 25 s), later loads take about a second.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def lm():
    """``(model, tokenizer)`` on the CPU in float32, loaded with one intra-op thread."""
    from mtrec.models.llm import load_language_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_language_model(device="cpu")
    finally:
        torch.set_num_threads(threads)


def naive_log_likelihood(model, tokenizer, prompt: str, candidates: list[str]) -> torch.Tensor:
    """The reference: one full pass over prompt + candidate ids per candidate, summed."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    scores = []
    for text in candidates:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids + ids])).logits[0]  # (P + n, V)
        log_probs = logits[len(prompt_ids) - 1 : -1].float().log_softmax(-1)  # (n, V)
        scores.append(log_probs.gather(-1, torch.tensor(ids)[:, None]).sum())
    return torch.stack(scores)


@pytest.fixture
def naive():
    """:func:`naive_log_likelihood` (test modules cannot import each other)."""
    return naive_log_likelihood
