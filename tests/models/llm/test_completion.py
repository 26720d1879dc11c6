"""Prompt completion: labels only on the completion, the loss of transformers, non-empty writing."""

from __future__ import annotations

import pytest
import torch

from mtrec.models.llm.completion import IGNORE, PromptCompletion, encode_pairs, write

PROMPTS = ["A shopper rated a Dresses item (department Dresses) 5 out of 5. Review title:",
           "Review title:"]  # fmt: skip
TITLES = [" Love this dress!", " Runs small"]


def test_labels_cover_the_completion_and_its_end_token_only(lm):
    _, tokenizer = lm
    batch = encode_pairs(tokenizer, PROMPTS, TITLES)
    for i, (prompt, title) in enumerate(zip(PROMPTS, TITLES)):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(title, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        n = len(p) + len(c)
        assert batch["input_ids"][i, :n].tolist() == p + c
        assert batch["labels"][i, :n].tolist() == [IGNORE] * len(p) + c
        assert (batch["labels"][i, n:] == IGNORE).all() and batch["attention_mask"][i].sum() == n


def test_loss_is_the_mean_completion_cross_entropy(lm):
    model, tokenizer = lm
    batch = encode_pairs(tokenizer, PROMPTS[:1], TITLES[:1])
    with torch.no_grad():
        got = PromptCompletion(model).loss(batch)
        logits = model(input_ids=batch["input_ids"]).logits[0, :-1]  # predicts tokens 1..
        targets = batch["labels"][0, 1:]
        keep = targets != IGNORE
        want = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(got, want, atol=1e-4)


def test_write_gives_non_empty_completions_and_keeps_the_mode(lm):
    model, tokenizer = lm
    model.train()
    titles = write(model, tokenizer, PROMPTS, max_new_tokens=6, min_new_tokens=2, batch_size=1)
    assert len(titles) == 2 and all(t.strip() for t in titles)
    assert model.training
    model.eval()


def test_clear_errors(lm):
    model, tokenizer = lm
    with pytest.raises(ValueError, match="one completion per prompt"):
        encode_pairs(tokenizer, PROMPTS, TITLES[:1])
    with pytest.raises(ValueError, match=r"completions\[1\] is empty"):
        encode_pairs(tokenizer, PROMPTS, [" fine", "  "])
    with pytest.raises(ValueError, match="over max_length=4"):
        encode_pairs(tokenizer, PROMPTS, TITLES, max_length=4)
    with pytest.raises(ValueError, match="min_new_tokens=5 exceeds"):
        write(model, tokenizer, PROMPTS, max_new_tokens=2, min_new_tokens=5)
    with pytest.raises(ValueError, match="repetition_penalty"):
        write(model, tokenizer, PROMPTS, repetition_penalty=0.5)


def test_sampling_is_seeded_and_checked(lm):
    model, tokenizer = lm
    first = write(model, tokenizer, PROMPTS, max_new_tokens=4, top_p=0.9, seed=3)
    assert first == write(model, tokenizer, PROMPTS, max_new_tokens=4, top_p=0.9, seed=3)
    with pytest.raises(ValueError, match="top_p must be <= 1.0"):
        write(model, tokenizer, PROMPTS, top_p=1.5)
