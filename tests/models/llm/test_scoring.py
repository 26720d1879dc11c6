"""Zero-shot candidate scoring: equal to one full pass per candidate, and plausible."""

from __future__ import annotations

import warnings

import pytest
import torch

from mtrec.models.llm import candidate_log_likelihood, history_prompt

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPT = "The capital of France is"
# one to five tokens each, so batches of 2 mix lengths and pad on the right
CANDIDATES = [" Paris", " banana", " the city of Paris", " Lyon", " a large and old city"]


def test_scores_equal_one_full_pass_per_candidate(lm, naive):
    model, tokenizer = lm
    expected = naive(model, tokenizer, PROMPT, CANDIDATES)  # (C,)
    for batch_size in (1, 2, 32):
        got = candidate_log_likelihood(model, tokenizer, PROMPT, CANDIDATES, batch_size=batch_size)
        assert got.shape == (len(CANDIDATES),) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    lengths = torch.tensor([len(tokenizer(c, add_special_tokens=False)["input_ids"])
                            for c in CANDIDATES])  # fmt: skip
    mean = candidate_log_likelihood(model, tokenizer, PROMPT, CANDIDATES, reduce="mean")
    torch.testing.assert_close(mean, expected / lengths, atol=1e-4, rtol=0)


def test_the_model_prefers_a_plausible_continuation(lm):
    model, tokenizer = lm
    paris, banana = candidate_log_likelihood(model, tokenizer, PROMPT, [" Paris", " banana"])
    assert paris > banana + 5  # measured: -0.26 against -17.2


def test_a_long_prompt_is_cut_from_the_left_with_one_warning(lm, naive):
    model, tokenizer = lm
    prompt = history_prompt([f"Movie number {i}" for i in range(10)])
    prompt_ids = tokenizer(prompt)["input_ids"]
    longest = max(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in CANDIDATES)
    limit = 24
    dropped = len(prompt_ids) - (limit - longest)
    with pytest.warns(UserWarning, match=f"its first {dropped} were dropped") as caught:
        got = candidate_log_likelihood(model, tokenizer, prompt, CANDIDATES, max_length=limit)
    assert len([w for w in caught if issubclass(w.category, UserWarning)]) == 1
    kept = tokenizer.decode(prompt_ids[dropped:])
    assert tokenizer(kept)["input_ids"] == prompt_ids[dropped:]  # the kept ids round-trip
    torch.testing.assert_close(got, naive(model, tokenizer, kept, CANDIDATES), atol=1e-4, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a prompt that fits: no warning
        candidate_log_likelihood(model, tokenizer, PROMPT, CANDIDATES, max_length=limit)


def test_scoring_restores_the_training_mode(lm):
    model, tokenizer = lm
    model.train()
    try:
        candidate_log_likelihood(model, tokenizer, PROMPT, [" Paris"])
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize(
    ("prompt", "candidates", "kwargs", "error", "words"),
    [
        (PROMPT, [], {}, ValueError, "candidates is empty"),
        (PROMPT, [" Paris", ""], {}, ValueError, "candidates[1] is an empty string"),
        (PROMPT, [" Paris", "   "], {}, ValueError, "candidates[1] is an empty string"),
        (PROMPT, [" Paris", 3], {}, TypeError, "candidates[1] must be a str"),
        (PROMPT, [None], {}, TypeError, "candidates[0] must be a str"),
        (PROMPT, " Paris", {}, TypeError, "wrap a single string in a list"),
        (PROMPT, {" Paris"}, {}, TypeError, "sequence of strings"),
        ("", [" Paris"], {}, ValueError, "prompt must be a non-empty str"),
        (None, [" Paris"], {}, ValueError, "prompt must be a non-empty str"),
        (PROMPT, [" Paris"], {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        (PROMPT, [" Paris"], {"reduce": "max"}, ValueError, "reduce must be one of"),
        (PROMPT, [" a large and old city"], {"max_length": 5}, ValueError, "no room"),
        (PROMPT, [" Paris"], {"max_length": 1.5}, TypeError, "max_length must be an int"),
    ],
)
def test_bad_inputs_raise_clear_errors(lm, prompt, candidates, kwargs, error, words):
    model, tokenizer = lm
    with pytest.raises(error) as caught:
        candidate_log_likelihood(model, tokenizer, prompt, candidates, **kwargs)
    assert words in str(caught.value)


def test_history_prompt_keeps_the_most_recent_titles():
    prompt = history_prompt(["A (1990)", " B (1991) ", "C (1992)"], max_items=2)
    assert prompt == "A user watched, in order: B (1991); C (1992). The next movie they watch is:"
    with pytest.raises(ValueError, match="titles is empty"):
        history_prompt([])
    with pytest.raises(ValueError, match="max_items must be >= 1"):
        history_prompt(["A"], max_items=0)
    with pytest.raises(TypeError, match="titles\\[0\\] must be a str"):
        history_prompt([1])
