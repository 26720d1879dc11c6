"""SmolLM2 writing item codes: new tokens, padding invariance, exact trie decoding, clear errors.

Each test builds its own model: CodeLM adds tokens to the tokenizer and LoRA to the LM in place.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from mtrec.models.generative.code_lm import TARGETS, CodeLM
from mtrec.models.generative.codes import ItemCodebook, UnknownItemError

# 12 items, codes of 3 levels (2 x 3 x 2 = 12 codes: every code used)
CODES = {
    item: (f"c0_{a}", f"c1_{b}", f"c2_{c}")
    for item, (a, b, c) in enumerate(itertools.product(range(2), range(3), range(2)), start=1)
}
HISTORIES = [[1, 5, 9], [2], [12, 3, 7, 8, 11, 4, 6, 10, 2]]


@pytest.fixture
def model():
    from mtrec.models.llm import add_lora, load_language_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lm, tokenizer = load_language_model(device="cpu")
    lm = add_lora(lm, targets=TARGETS)
    try:
        yield CodeLM(lm, tokenizer, ItemCodebook.from_codes(CODES), history=4).eval()
    finally:
        torch.set_num_threads(threads)


def code_log_prob(model: CodeLM, history: list[int], item: int) -> float:
    """The reference: one unpadded teacher-forced pass over prompt + the item's code."""
    batch = model.encode([history], [item])
    with torch.no_grad():
        return -float(model.loss(batch)) * model.code_length  # loss = mean over the levels


def test_code_tokens_join_the_vocabulary_and_the_prompt(model):
    tokens = model.codebook.tokens()
    ids = model.tokenizer.convert_tokens_to_ids(tokens)
    assert ids == list(range(model.vocab, model.vocab + len(tokens)))
    batch = model.encode([[1, 5]], [12])
    text = model.tokenizer.decode(batch["input_ids"][0])
    assert text == "Films watched:c0_0c1_0c2_0c0_0c1_2c2_0 Next film:c0_1c1_2"
    assert batch["target"].tolist() == [[1, 2, 1]]  # 12 = (c0_1, c1_2, c2_1) within each level
    only_last = model.encode([list(range(1, 13))])["input_ids"][0]
    assert model.tokenizer.decode(only_last).count("c0_") == 4  # the last `history` items


def test_left_padding_changes_no_loss(model):
    targets = [10, 4, 1]
    batch = model.encode(HISTORIES, targets)
    assert batch["attention_mask"][:, -1].all() and not batch["attention_mask"][1, 0]
    with torch.no_grad():
        together = float(model.loss(batch))
    alone = [-code_log_prob(model, h, t) / model.code_length for h, t in zip(HISTORIES, targets)]
    assert together == pytest.approx(sum(alone) / len(alone), abs=1e-4)


def test_beam_search_equals_scoring_every_code_when_no_beam_is_cut(model):
    """With more beams than prefixes the search is exhaustive: it must find the exact top k."""
    history = HISTORIES[2][:4]  # items 12, 3, 7, 8 are seen, so never written
    got = model.top_items([history], k=5, beams=100)[0]
    unseen = [i for i in CODES if i not in history]
    want = sorted(((code_log_prob(model, history, i), i) for i in unseen), reverse=True)[:5]
    assert [item for item, _ in got] == [item for _, item in want]
    assert [v for _, v in got] == pytest.approx([v for v, _ in want], abs=1e-3)
    assert not {item for item, _ in got} & set(history)


def test_narrow_beams_write_valid_unseen_items_and_scores_rank_them(model):
    found = model.top_items(HISTORIES, k=3, beams=1)
    for history, rows in zip(HISTORIES, found):
        assert len(rows) <= 3 and all(item in CODES and item not in history for item, _ in rows)
        assert [v for _, v in rows] == sorted((v for _, v in rows), reverse=True)
    one_by_one = model.top_items(HISTORIES, k=3, beams=1, users_per_chunk=1)
    assert [[i for i, _ in r] for r in one_by_one] == [[i for i, _ in r] for r in found]
    scores = model.scores(HISTORIES, num_items=12, beams=1, k=3)
    assert scores.shape == (3, 13) and torch.isinf(scores[:, 0]).all()
    assert (torch.isfinite(scores).sum(1) == torch.tensor([len(r) for r in found])).all()


def test_a_few_lora_steps_learn_what_follows_an_item(model):
    from mtrec.data import TensorBatcher
    from mtrec.train import fit

    histories, targets = [[1], [2], [3], [4]] * 2, [7, 8, 9, 10] * 2
    fit(model, TensorBatcher(model.encode(histories, targets), 8), epochs=12, lr=3e-3,
        progress=False, device="cpu")  # fmt: skip
    top = model.top_items([[1], [2], [3], [4]], k=1, beams=4)
    assert [rows[0][0] for rows in top] == [7, 8, 9, 10]


def test_bad_inputs_get_clear_errors(model):
    with pytest.raises(UnknownItemError, match=r"history items \[99\] are not in the codebook"):
        model.encode([[1, 99]])
    with pytest.raises(ValueError, match="one target per history, got 1 targets for 2"):
        model.encode([[1], [2]], [3])
    with pytest.raises(KeyError, match=r"loss needs batch\['target'\]"):
        model.loss(model.encode([[1]]))
    with pytest.raises(ValueError, match="exclude needs one list per history"):
        model.top_items([[1], [2]], exclude=[[1]])
    with pytest.raises(ValueError, match="k"):
        model.top_items([[1]], k=0)
    from mtrec.models.llm import load_language_model

    fresh, _ = load_language_model(device="cpu")
    with pytest.raises(ValueError, match="tokenizer has 49159 tokens .* fresh tokenizer"):
        CodeLM(fresh, model.tokenizer, model.codebook)  # its code tokens are already added
    _, tokenizer = load_language_model(device="cpu")
    crossed = ItemCodebook.from_codes({1: ("x_0", "x_1"), 2: ("x_1", "x_0")})
    with pytest.raises(ValueError, match="appears at two levels"):
        CodeLM(fresh, tokenizer, crossed)
    assert len(tokenizer) == model.vocab  # refused before anything was added


def test_examples_draw_targets_from_the_window_with_a_history():
    from mtrec.experiments.generative_lm import WINDOW, examples

    sequences = {1: [(i, 4) for i in range(1, 80)], 2: [(5, 3), (6, 1)]}
    histories, targets = examples(sequences, positions=3, seed=0)
    assert len(targets) == 4  # user 2 has one step with an earlier item
    for history, target in zip(histories, targets):
        assert history and target == history[-1] + 1
        assert target >= 80 - WINDOW or history == [5]
    assert examples(sequences, positions=3, seed=0) == (histories, targets)
