"""LoRA on SmolLM2: only the adapters train, and the adapted model starts as the base model."""

from __future__ import annotations

import copy

import pytest
import torch

from mtrec.models.llm import add_lora, linear_names, trainable_share

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["The capital of France is Paris.", "Toy Story (1995) is an animated film."]


@pytest.fixture(scope="module")
def base(lm):
    """A copy of the loaded model (add_lora changes its model in place)."""
    return copy.deepcopy(lm[0])


@pytest.fixture(scope="module")
def batch(lm):
    tokenizer = lm[1]
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
    return {**encoded, "labels": labels}  # (B, L) each


def test_only_the_adapters_train_and_the_output_is_unchanged(lm, batch):
    model = copy.deepcopy(lm[0])
    with torch.no_grad():
        before = model(**batch).logits  # (B, L, V)
    total = trainable_share(model)[1]
    lora = add_lora(model, rank=8, alpha=16, targets=("q_proj", "v_proj"))
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    config = model.config
    per_layer = 8 * (config.hidden_size + config.num_attention_heads * config.head_dim)  # q_proj
    per_layer += 8 * (config.hidden_size + config.num_key_value_heads * config.head_dim)  # v_proj
    expected = config.num_hidden_layers * per_layer
    assert trainable_share(lora) == (expected, total + expected) == (460_800, 134_975_808)
    lora.eval()
    with torch.no_grad():
        torch.testing.assert_close(lora(**batch).logits, before)  # B starts at zero


def test_one_step_changes_the_adapters_and_not_the_base(base, batch):
    lora = add_lora(copy.deepcopy(base), rank=4, targets=("q_proj",))
    params = dict(lora.named_parameters())
    frozen = {n: p.detach().clone() for n, p in params.items() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in params.items() if p.requires_grad}
    optimizer = torch.optim.SGD([p for p in params.values() if p.requires_grad], lr=0.1)
    lora.train()
    loss = lora(**batch).loss
    loss.backward()
    optimizer.step()
    for name, value in frozen.items():
        assert torch.equal(params[name], value), name
    changed = {n for n, value in adapters.items() if not torch.equal(params[n], value)}
    # B was zero, so A's first gradient is zero too: the first step moves every B
    assert changed == {n for n in adapters if ".lora_B." in n}


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"rank": 0}, ValueError, "rank must be >= 1"),
        ({"rank": -2}, ValueError, "rank must be >= 1"),
        ({"rank": 2.5}, TypeError, "rank must be an int"),
        ({"rank": "8"}, TypeError, "rank must be an int"),
        ({"alpha": 0}, ValueError, "alpha must be > 0"),
        ({"alpha": -1.0}, ValueError, "alpha must be >= 0"),
        ({"dropout": 1.0}, ValueError, "dropout must be < 1.0"),
        ({"targets": ("q_proj", "query")}, ValueError, "'q_proj', 'up_proj', 'v_proj'"),
        ({"targets": "q_proj"}, TypeError, "non-empty sequence of module names"),
        ({"targets": ()}, TypeError, "non-empty sequence of module names"),
    ],
)
def test_bad_arguments_raise_clear_errors(base, kwargs, error, words):
    with pytest.raises(error) as caught:
        add_lora(base, **kwargs)
    assert words in str(caught.value)
    assert not any(".lora_" in n for n, _ in base.named_parameters())  # nothing was changed


def test_unknown_targets_list_the_linear_modules(base):
    with pytest.raises(ValueError, match=r"\['query'\] are not linear modules") as caught:
        add_lora(base, targets=("query",))
    for name in linear_names(base):
        assert name in str(caught.value)


def test_a_model_with_adapters_is_refused(base):
    lora = add_lora(copy.deepcopy(base), rank=2)
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        add_lora(lora)
