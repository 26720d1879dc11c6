"""Bad inputs to mtrec.models.llm: candidate scoring, history prompts and LoRA arguments.

A case passes when a good input gives a correct result ((C,) finite log-probabilities, at most 0
when summed) and a bad one raises ``ValueError`` / ``TypeError`` from mtrec's own code with a
message (:func:`assert_clear_error`). Scoring uses the real SmolLM2 weights (``mtrec data fetch
smollm2``); LoRA uses a tiny random Llama of the same layer names.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from mtrec.models.llm import add_lora, candidate_log_likelihood, history_prompt
from tests.robustness.conftest import CLEAR, REPLAYABLE
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = pytest.mark.usefixtures("one_thread")
assert_clear_error = partial(any_clear_error, accept=CLEAR)
ITEMS = st.one_of(st.text(max_size=8), st.just(""), st.just("  "), st.integers(), st.none())
WORDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).filter(str.strip)
STRINGS = st.lists(WORDS, min_size=1, max_size=4)  # good candidates or titles
ANY_STRINGS = st.one_of(STRINGS, st.lists(ITEMS, max_size=4), ITEMS)  # good or bad
BROKEN = st.sampled_from(
    [None, None, None, 0, 1, 2, 3]
)  # which argument a case breaks (None: none)


@pytest.fixture(scope="module")
def smollm2():
    from mtrec.models.llm import load_language_model

    return load_language_model(device="cpu")


def _tokens(tokenizer: Any, text: str) -> list[int]:
    """A control character alone (e.g. ``"\\x16"``) makes no token: refused clearly too."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _good_strings(values: Any) -> bool:
    return (
        isinstance(values, list)
        and bool(values)
        and all(isinstance(v, str) and v.strip() for v in values)
    )


@REPLAYABLE
@given(data=st.data(), broken=BROKEN)
def test_scoring_battery(smollm2, data, broken):
    """Good arguments, or good ones but one (prompt, candidates, batch_size, reduce) drawn anew."""
    model, tokenizer = smollm2
    prompt = data.draw(WORDS if broken != 0 else st.one_of(st.text(max_size=12), st.none()))
    candidates = data.draw(STRINGS if broken != 1 else ANY_STRINGS)
    batch_size = data.draw(st.integers(1, 3) if broken != 2 else st.integers(-1, 3))
    reduce = data.draw(st.sampled_from(["sum", "mean"] if broken != 3 else ["sum", "max", ""]))
    call = partial(candidate_log_likelihood, model, tokenizer, prompt, candidates,
                   batch_size=batch_size, reduce=reduce)  # fmt: skip
    good = (
        _good_strings([prompt])
        and _good_strings(candidates)
        and all(_tokens(tokenizer, text) for text in [prompt, *candidates])
        and batch_size >= 1
        and reduce in ("sum", "mean")
    )
    event("good input" if good else "bad input")
    if not good:
        assert_clear_error(call)
        return
    scores = call()
    assert scores.shape == (len(candidates),) and bool(torch.isfinite(scores).all())
    assert bool((scores <= 0).all())  # log-probabilities (a sum or a mean of them)


@REPLAYABLE
@given(data=st.data(), broken=BROKEN)
def test_history_prompt_battery(data, broken):
    titles = data.draw(STRINGS if broken not in (0, 1) else ANY_STRINGS)
    max_items = data.draw(st.integers(1, 30) if broken not in (2, 3) else st.integers(-2, 1))
    call = partial(history_prompt, titles, max_items=max_items)
    good = _good_strings(titles) and max_items >= 1
    event("good input" if good else "bad input")
    if not good:
        assert_clear_error(call)
        return
    prompt = call()
    assert prompt.endswith("The next movie they watch is:")
    assert titles[-1].strip() in prompt


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    return LlamaForCausalLM(config)


@REPLAYABLE
@given(data=st.data(), broken=BROKEN)
def test_lora_battery(tiny_llama, data, broken):
    """Good arguments, or good ones but one (rank, alpha, dropout, targets) drawn anew."""
    import copy

    bad_numbers = st.one_of(st.floats(-2, 4), st.just(float("nan")), st.text(max_size=2),
                            st.none(), st.integers(-2, 0))  # fmt: skip
    rank = data.draw(
        st.integers(1, 4) if broken != 0 else st.one_of(st.integers(1, 4), bad_numbers)
    )
    alpha = data.draw(st.floats(0.5, 32) if broken != 1 else bad_numbers)
    dropout = data.draw(
        st.floats(0, 0.9) if broken != 2 else st.one_of(st.floats(-1, 2), st.none())
    )
    good_targets = st.lists(st.sampled_from(["q_proj", "v_proj", "lm_head"]), min_size=1,
                            max_size=3, unique=True)  # fmt: skip
    bad_targets = st.one_of(st.lists(st.sampled_from(["q_proj", "query", ""]), max_size=2),
                            st.just("q_proj"), st.none())  # fmt: skip
    targets = data.draw(good_targets if broken != 3 else bad_targets)
    call = partial(add_lora, copy.deepcopy(tiny_llama), rank=rank, alpha=alpha,
                   dropout=dropout, targets=targets)  # fmt: skip
    good = (
        isinstance(rank, int)
        and rank >= 1
        and isinstance(alpha, (int, float))
        and alpha > 0
        and isinstance(dropout, float)
        and 0 <= dropout < 1
        and isinstance(targets, list)
        and bool(targets)
        and set(targets) <= {"q_proj", "v_proj", "lm_head"}
    )
    event("good input" if good else "bad input")
    if not good:
        assert_clear_error(call)
        return
    lora = call()
    assert any(p.requires_grad for p in lora.parameters())
    assert all(".lora_" in n for n, p in lora.named_parameters() if p.requires_grad)
