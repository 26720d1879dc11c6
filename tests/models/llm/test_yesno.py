"""The LM as a yes/no classifier: padding-invariant log-odds, training, clear errors."""

from __future__ import annotations

import pytest
import torch

from mtrec.models.llm import YesNoScorer, add_lora, encode_prompts, yes_probability
from mtrec.train import fit

PROMPTS = [
    'A 34-year-old customer reviewed an item (class Dresses) titled "Love it". Recommend? Answer:',
    'A 60-year-old customer reviewed an item (class Knits) titled "Runs small, sent back". '
    "Would they recommend it? Answer:",
    "Is the sky blue? Answer:",
]


def reference_log_odds(model, tokenizer, prompt: str) -> float:
    """One unpadded pass: logit(" Yes") − logit(" No") at the prompt's last token."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    yes, no = (tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in (" Yes", " No"))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    return float(logits[yes] - logits[no])


def test_encode_prompts_pads_left_and_masks(lm):
    _, tokenizer = lm
    inputs = encode_prompts(tokenizer, PROMPTS)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    assert inputs["input_ids"].shape == (3, max(lengths))
    assert inputs["attention_mask"].sum(1).tolist() == lengths
    assert inputs["attention_mask"][:, -1].all()  # every prompt ends in the last column


def test_scorer_equals_one_unpadded_pass_per_prompt(lm):
    model, tokenizer = lm
    scorer = YesNoScorer(model, tokenizer)
    got = scorer(encode_prompts(tokenizer, PROMPTS))  # (3, 1), padded together
    want = torch.tensor([[reference_log_odds(model, tokenizer, p)] for p in PROMPTS])
    assert got.shape == (3, 1)
    assert torch.allclose(got, want, atol=1e-3)
    probs = yes_probability(scorer, encode_prompts(tokenizer, PROMPTS), batch_size=2)
    assert torch.allclose(probs, torch.sigmoid(want[:, 0]), atol=1e-4)


def test_long_prompts_keep_their_end_with_one_warning(lm):
    _, tokenizer = lm
    with pytest.warns(UserWarning, match=r"2 of 3 prompts .* max_length=12"):
        inputs = encode_prompts(tokenizer, PROMPTS, max_length=12)
    assert inputs["input_ids"].shape[1] == 12
    tail = tokenizer(PROMPTS[1], add_special_tokens=False)["input_ids"][-12:]
    assert inputs["input_ids"][1].tolist() == tail


def test_lora_fit_learns_the_labels(lm):
    """A few LoRA steps on four prompts move P(Yes) towards their labels."""
    from mtrec.data import TensorBatcher
    from mtrec.models.llm import load_language_model

    model, tokenizer = load_language_model(device="cpu")
    scorer = YesNoScorer(add_lora(model, rank=4), tokenizer, task_names=("recommended",))
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0].replace("Love it", "Perfect"),
               PROMPTS[1].replace("Runs small", "Awful fabric")]  # fmt: skip
    data = {**encode_prompts(tokenizer, prompts), "labels": torch.tensor([[1.0], [0], [1], [0]])}
    before = yes_probability(scorer, data)
    fit(scorer, TensorBatcher(data, 4), epochs=6, lr=3e-3, progress=False)
    after = yes_probability(scorer, data)
    margin = lambda p: float(p[[0, 2]].mean() - p[[1, 3]].mean())  # noqa: E731
    assert margin(after) > margin(before) + 0.1
    assert not scorer.training  # fit leaves it in eval mode


def test_clear_errors(lm):
    model, tokenizer = lm
    with pytest.raises(ValueError, match="2 tokens|one token each"):
        YesNoScorer(model, tokenizer, answers=(" Yes please", " No"))
    with pytest.raises(ValueError, match="same token"):
        YesNoScorer(model, tokenizer, answers=(" Yes", " Yes"))
    scorer = YesNoScorer(model, tokenizer)
    with pytest.raises(KeyError, match="encode_prompts"):
        scorer({"input_ids": torch.ones(2, 3, dtype=torch.long)})
    right_padded = {"input_ids": torch.ones(2, 3, dtype=torch.long),
                    "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}  # fmt: skip
    with pytest.raises(ValueError, match="left padding"):
        scorer(right_padded)
    inputs = encode_prompts(tokenizer, PROMPTS[:2])
    with pytest.raises(ValueError, match="0 or 1"):
        scorer.loss({**inputs, "labels": torch.tensor([[1.0], [0.5]])})
    with pytest.raises(TypeError, match="wrap a single prompt"):
        encode_prompts(tokenizer, PROMPTS[0])
    with pytest.raises(ValueError, match="non-empty"):
        encode_prompts(tokenizer, ["fine", "  "])
