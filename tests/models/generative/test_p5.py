import numpy as np
import pandas as pd
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from mtrec.data import TensorBatcher
from mtrec.models.generative.codes import ItemCodebook, PrefixTrie, build_tokenizer
from mtrec.models.generative.p5 import P5, P5Config
from mtrec.models.generative.prompts import (
    ItemText,
    explanation,
    make_prompt,
    recommend_next,
    score_next,
    training_examples,
    vocabulary,
)
from mtrec.train import fit

ITEMS = pd.DataFrame(
    {
        "item_id": list(range(1, 13)),
        "title": [f"film{i} (199{i % 10})" for i in range(1, 13)],
        "genres": ["Drama|Comedy" if i % 2 else "Action" for i in range(1, 13)],
    }
)


def _model(code_length: int = 1, pretrained: str | None = None, **kw) -> P5:
    torch.manual_seed(0)
    config = P5Config(**{**P5Config.tiny().__dict__, "code_length": code_length,
                         "pretrained": pretrained, **kw})  # fmt: skip
    codebook = ItemCodebook(ITEMS.item_id, code_length=code_length, seed=0)
    text = ItemText.from_movielens(ITEMS)
    return P5(config, build_tokenizer(vocabulary(codebook, text)), codebook)


def _sequences() -> dict[int, list[tuple[int, int]]]:
    # deterministic cycles: after item i comes item i + 1 (mod 12)
    return {u: [((u + t) % 12 + 1, 1 + (u + t) % 5) for t in range(8)] for u in range(24)}


def test_codes_are_random_not_consecutive():
    codebook = ItemCodebook(range(1, 201), seed=0)
    ranks = [int(codebook.codes[i][0].split("_")[1]) for i in range(1, 201)]
    assert sorted(ranks) == list(range(200)) and ranks != list(range(200))
    assert abs(np.corrcoef(ranks, range(200))[0, 1]) < 0.3
    two = ItemCodebook(range(1, 201), code_length=2, seed=0)
    assert len(set(two.codes.values())) == 200 and len(two.tokens()) < 60


def test_trie_excludes_banned_items_and_dead_prefixes():
    trie = PrefixTrie({1: (5, 7), 2: (5, 8), 3: (6, 7)})
    assert trie.allowed((), trie.banned_counts([])) == [5, 6]
    assert trie.allowed((), trie.banned_counts([3])) == [5]
    assert trie.allowed((5,), trie.banned_counts([1])) == [8]


@pytest.mark.slow
def test_shapes_and_loss_decreases():
    model = _model()
    sequences = dict(list(_sequences().items())[:12])
    batch = training_examples(model, sequences, ItemText.from_movielens(ITEMS), seed=0)
    assert batch["input_ids"].shape[1] == model.config.max_source_len
    assert set(batch["task_ids"].tolist()) == {0, 1, 2, 3}
    tensors = {k: v for k, v in batch.items() if k != "task_ids"}
    first = model.loss(tensors).item()
    history = fit(
        model, TensorBatcher(tensors, 128, shuffle=True), epochs=30, lr=1e-2, progress=False
    )
    assert history.frame().train_loss.iloc[-1] < 0.5 * first


@pytest.mark.parametrize("code_length", [1, 2])
def test_constrained_decoding_gives_valid_unseen_items(code_length):
    model = _model(code_length)
    histories = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]]
    prompts = [make_prompt(model, "next", h)[0] for h in histories]
    items, _ = model.generate_items(prompts, histories, k=5)
    for row, history in zip(items, histories):
        assert len(row) == 5 and len(set(row)) == 5
        assert all(i in model.codebook.codes and i not in history for i in row)
    picked, _ = model.generate_items(prompts, histories, k=1, candidates=[[11, 12], [2, 3]])
    assert picked[0][0] in (11, 12) and picked[1][0] in (2, 3)


def test_explanations_and_ratings():
    model = _model()
    text = ItemText.from_movielens(ITEMS)
    assert explanation(model, text, 2).endswith(": film2 (1992) , a action movie")
    items, texts = model.generate_items([make_prompt(model, "explain", [1])[0]], [[1]], k=2,
                                        explain=True)  # fmt: skip
    assert texts[0][0].split()[0] == model.codebook.text(items[0][0])
    ratings = model.predict_ratings([make_prompt(model, "rating", [1], item=2)[0]])
    assert ratings.shape == (1,) and 1 <= float(ratings[0]) <= 5


def test_bad_input_cold_unknown_and_truncation(caplog):
    model = _model(max_source_len=16)
    model.popularity = {5: 10.0, 6: 8.0, 7: 1.0}
    prompt, info = make_prompt(model, "next", [999, *range(1, 13)])
    assert info["unknown"] == 1 and info["truncated"] > 0
    assert len(prompt.split()) + 1 <= 16
    kept = prompt.split()  # the most recent items are kept, the oldest cut
    assert model.codebook.text(12) in kept and model.codebook.text(1) not in kept
    ranked, table = recommend_next(model, [[], [998], [5, 1]], k=2)
    assert ranked[0] == [5, 6] and ranked[1] == [5, 6]
    assert table.fallback.tolist() == [True, True, False] and table.unknown.tolist() == [0, 1, 0]
    assert len(ranked[2]) == 2 and 5 not in ranked[2]
    with pytest.raises(ValueError, match="unknown task"):
        make_prompt(model, "review", [1])
    with pytest.raises(ValueError, match="code_length"):
        P5Config(code_length=9)
    with pytest.raises(KeyError, match="labels"):
        model.loss({"input_ids": torch.zeros(1, 4, dtype=torch.long),
                    "attention_mask": torch.ones(1, 4)})  # fmt: skip


def test_starts_from_a_local_pretrained_checkpoint(tmp_path):
    tiny = T5ForConditionalGeneration(T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32,
                                               num_layers=1, num_heads=2))  # fmt: skip
    tiny.save_pretrained(tmp_path)
    model = _model(pretrained=str(tmp_path))
    assert model.t5.config.d_model == 16
    assert model.t5.get_input_embeddings().weight.shape[0] == len(model.tokenizer)
    torch.testing.assert_close(
        model.t5.encoder.block[0].layer[0].SelfAttention.q.weight,
        tiny.encoder.block[0].layer[0].SelfAttention.q.weight,
    )
    items, _ = model.generate_items([make_prompt(model, "next", [1])[0]], [[1]], k=3)
    assert all(i != 1 and i in model.codebook.codes for i in items[0])


def test_score_items_is_a_full_ranking_that_agrees_with_greedy_decoding():
    model = _model()
    histories = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [999]]  # the last: a cold user (unknown id)
    prompts = [make_prompt(model, "next", h)[0] for h in histories]
    scores = model.scores(prompts[:2], histories[:2])  # (2, 13): column = item id
    assert scores.shape == (2, 13) and torch.isinf(scores[:, 0]).all()
    for row, history in zip(scores, histories):
        assert (
            torch.isinf(row[history]).all()
            and torch.isfinite(row[[i for i in range(1, 13) if i not in history]]).all()
        )
    greedy, _ = model.generate_items(prompts[:2], histories[:2], k=1)
    assert scores.argmax(dim=1).tolist() == [g[0] for g in greedy]
    model.popularity = {5: 10.0, 6: 8.0, 7: 1.0}
    full, info = score_next(model, histories)
    torch.testing.assert_close(full[:2], scores)
    assert info.fallback.tolist() == [False, False, True]
    assert full[2].topk(3).indices.tolist() == [5, 6, 7]  # popularity for the cold user
    two = _model(2)  # two tokens per item: the score sums both steps' log-probabilities
    two_prompts = [make_prompt(two, "next", h)[0] for h in histories[:2]]
    two_scores = two.scores(two_prompts, histories[:2])
    greedy_two, _ = two.generate_items(two_prompts, histories[:2], k=1)
    assert torch.isfinite(two_scores[0, 4:]).all() and torch.isinf(two_scores[0, :4]).all()
    assert two_scores.argmax(dim=1).tolist() == [g[0] for g in greedy_two]


def test_item_embeddings_start_from_collaborative_vectors():
    model = _model()
    vectors = torch.randn(13, 8)  # (N+1, k), k < d_model = 32: zero-padded
    model.init_item_embeddings(vectors)
    weight = model.t5.shared.weight
    tokens = [model.code_ids[i][0] for i in (3, 7)]
    cosine = torch.nn.functional.cosine_similarity
    torch.testing.assert_close(cosine(weight[tokens[0]], weight[tokens[1]], dim=0),
                               cosine(vectors[3], vectors[7], dim=0))  # fmt: skip
    assert weight[tokens[0], 8:].abs().max() == 0
    assert model.t5.lm_head.weight.data_ptr() == weight.data_ptr()  # tied: scores use them too
    with pytest.raises(ValueError, match=r"\(N\+1, k\)"):
        model.init_item_embeddings(torch.randn(5, 8))
    with pytest.raises(ValueError, match="code_length=1"):
        _model(2).init_item_embeddings(vectors)
