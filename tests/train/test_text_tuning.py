"""mtrec.train.text_tuning: the contrastive loss falls, LoRA trains adapters only, cold texts stay
out of training, bad inputs are refused; the untrained encoder equals the frozen TextEncoder."""

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from mtrec.extractors.text import TextEncoder, default_model_path
from mtrec.train.text_tuning import (
    ProfileSampler,
    TextTuningConfig,
    contrastive_loss,
    encode_items,
    prepare,
    tokenize,
    tune_text_encoder,
)

pytestmark = pytest.mark.usefixtures("one_thread")
# four tastes of 8 films each; user u rates 3 films of taste u % 4. The last film is cold (nobody
# rated it) and is the only text with the word "zebra".
TASTES = ["space war", "love story", "haunted house", "cowboy town"]
TEXTS = [f"{taste} {k} | film" for taste in TASTES for k in range(8)] + ["zebra documentary | film"]
COLD = len(TEXTS) - 1


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_model_path())


@pytest.fixture
def tiny_bert(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    return BertModel(config).eval()


def _interactions() -> torch.Tensor:
    """(48, 33) training matrix of the four tastes (the cold film's column stays zero)."""
    g, x = torch.Generator().manual_seed(0), torch.zeros(48, len(TEXTS))
    for user in range(48):
        x[user, 8 * (user % 4) + torch.randperm(8, generator=g)[:3]] = 1.0
    return x


@pytest.mark.parametrize(("mode", "steps", "lr"), [("full", 20, 3e-3), ("lora", 40, 1e-2)])
def test_a_few_steps_lower_the_contrastive_loss(tiny_bert, tokenizer, mode, steps, lr):
    tokens, x = tokenize(tokenizer, TEXTS), _interactions()
    sampler = ProfileSampler(x, 16, seed=3)
    batches = [sampler.sample() for _ in range(4)]  # the same held-out batches before and after

    def loss(model):
        bank = encode_items(model, tokens) * (x.sum(0) > 0)[:, None]
        with torch.no_grad():
            return sum(float(contrastive_loss(model.eval(), tokens, b, bank, temperature=0.1))
                       for b in batches) / len(batches)  # fmt: skip

    config = TextTuningConfig(mode=mode, steps=steps, users_per_batch=16, eval_every=10, lr=lr)
    tuned = tune_text_encoder(tiny_bert, tokenizer, TEXTS, x, config=config)
    assert loss(tuned.model) < 0.9 * loss(tiny_bert)
    assert tuned.step == steps and len(tuned.losses) == steps
    assert tuned.vectors.shape == (len(TEXTS), 32)


def test_lora_trains_only_the_adapters_and_full_trains_every_weight(tiny_bert, tokenizer):
    x, before = _interactions(), {k: v.clone() for k, v in tiny_bert.state_dict().items()}
    lora = tune_text_encoder(tiny_bert, tokenizer, TEXTS, x, config=TextTuningConfig.tiny("lora"))
    named = dict(lora.model.named_parameters())
    trained = [n for n, p in named.items() if p.requires_grad]
    assert trained and all(".lora_" in n for n in trained)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trained} == {"query", "value"}
    assert lora.trainable == sum(named[n].numel() for n in trained) < 0.2 * lora.total
    base = lora.model.get_base_model().state_dict()
    for name, value in before.items():  # frozen base weights did not move
        module, _, kind = name.rpartition(".")
        key = name if name in base else f"{module}.base_layer.{kind}"  # an adapted layer's base
        torch.testing.assert_close(base[key], value, rtol=0, atol=0)
    assert all(bool(named[n].abs().sum() > 0) for n in trained if "lora_B" in n)  # B left 0

    full = tune_text_encoder(tiny_bert, tokenizer, TEXTS, x, config=TextTuningConfig.tiny("full"))
    assert all(p.requires_grad for p in full.model.parameters()) and full.trainable == full.total
    moved = full.model.state_dict()["encoder.layer.0.attention.self.query.weight"]
    assert not torch.equal(moved, before["encoder.layer.0.attention.self.query.weight"])
    for name, value in tiny_bert.state_dict().items():  # the caller's model is untouched
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_cold_items_text_never_enters_training(tiny_bert, tokenizer):
    zebra = tokenizer.convert_tokens_to_ids("zebra")
    trained_ids = []

    def record(module, args):
        if torch.is_grad_enabled():  # a training forward (the bank and checks run without grad)
            trained_ids.append(args[0].flatten())

    tiny_bert.embeddings.word_embeddings.register_forward_pre_hook(record)  # kept by the copy
    config = TextTuningConfig(mode="lora", steps=12, users_per_batch=48, eval_every=4)
    tuned = tune_text_encoder(tiny_bert, tokenizer, TEXTS, _interactions(), config=config)
    assert trained_ids and zebra not in torch.cat(trained_ids).tolist()
    assert tuned.trained_items.tolist() == torch.nonzero(_interactions().sum(0)).flatten().tolist()
    cold = tuned.vectors[COLD]  # the tuned encoder applied to the cold text afterwards
    assert torch.isfinite(cold).all() and torch.linalg.norm(cold) == pytest.approx(1.0, abs=1e-5)


def test_the_sampler_holds_out_one_item_and_masks_shared_ones():
    x = _interactions()
    batch = ProfileSampler(x, 24, seed=0).sample()
    seen = x[batch["user_ids"]] > 0  # (B, I)
    assert batch["user_ids"].unique().numel() == 24
    assert seen.gather(1, batch["item_ids"][:, None]).all()  # the held-out film is the user's
    held_out = torch.nn.functional.one_hot(batch["item_ids"], len(TEXTS)).bool()
    assert torch.equal(batch["profile_weights"] > 0, seen & ~held_out)  # the rest is the profile
    expected = seen[:, batch["item_ids"]] & ~torch.eye(24, dtype=torch.bool)
    assert torch.equal(batch["false_negatives"], expected)
    assert ProfileSampler(x, 8).log_q.exp().sum() == pytest.approx(1.0)


def test_the_untrained_encoder_gives_the_frozen_textencoder_vectors():
    encoder = TextEncoder(device="cpu", cache=False)
    tuned = prepare(encoder.model, TextTuningConfig(mode="full"))
    mine = encode_items(tuned, tokenize(encoder.tokenizer, TEXTS[:5]))
    torch.testing.assert_close(mine, encoder.encode(TEXTS[:5]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"mode": "adapters"}, "mode must be one of"), ({"rank": 0}, "rank"),
     ({"steps": -1}, "steps"), ({"temperature": 0.0}, "temperature"),
     ({"targets": "query"}, "targets")],
)  # fmt: skip
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TextTuningConfig(**kwargs)


def test_bad_interactions_are_refused(tiny_bert, tokenizer):
    tiny = TextTuningConfig.tiny()
    n = len(TEXTS)
    for bad, match in [(torch.zeros(4, n), "hold no interaction"),
                       (torch.zeros(0, n), "hold no interaction"),
                       (torch.ones(4, 5), f"5 item columns but there are {n} texts"),
                       (torch.eye(n), "no user has two training interactions")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            tune_text_encoder(tiny_bert, tokenizer, TEXTS, bad, config=tiny)
    with pytest.raises(ValueError, match="are not linear layers of BertModel"):
        tune_text_encoder(tiny_bert, tokenizer, TEXTS, _interactions(),
                          config=TextTuningConfig(targets=("q_proj",)))  # fmt: skip
