"""P5 bad inputs: each gives a clear error or a correct (shorter) result, never a bare KeyError."""

import logging

import pandas as pd
import pytest
import torch

from mtrec.models.generative.codes import ItemCodebook, UnknownItemError, build_tokenizer
from mtrec.models.generative.p5 import P5, P5Config
from mtrec.models.generative.prompts import (
    ItemText,
    explanation,
    make_prompt,
    recommend_next,
    score_next,
    vocabulary,
)

ITEMS = pd.DataFrame({"item_id": range(1, 13), "title": [f"film{i}" for i in range(1, 13)],
                      "genres": "Drama"})  # fmt: skip


def _model() -> tuple[P5, ItemText]:
    torch.manual_seed(0)
    book = ItemCodebook(ITEMS.item_id, seed=0)
    text = ItemText.from_movielens(ITEMS)
    return P5(P5Config.tiny(), build_tokenizer(vocabulary(book, text)), book), text


def test_recommend_next_with_k_above_the_unseen_items_returns_no_repeats(caplog):
    model, _ = _model()
    with caplog.at_level(logging.WARNING):
        ranked, _ = recommend_next(model, [[1, 2]], k=11)  # 10 unseen items
    assert sorted(ranked[0]) == list(range(3, 13))
    assert "fewer allowed items" in caplog.text


def test_unknown_candidate_ids_are_a_clear_error():
    model, _ = _model()
    with pytest.raises(UnknownItemError, match=r"candidates \[999\] are not in the codebook"):
        model.generate_items(["task choice : x"], [[1]], k=1, candidates=[[2, 999]])


def test_unknown_item_in_make_prompt_is_a_clear_error():
    model, _ = _model()
    with pytest.raises(ValueError, match=r"item \[999\] are not in the codebook \(12 items"):
        make_prompt(model, "rating", [1, 2], item=999)


def test_unknown_item_in_explanation_is_a_clear_error():
    model, text = _model()
    with pytest.raises(KeyError, match="not in the codebook"):
        explanation(model, text, 999)


def test_score_next_with_no_users_is_a_clear_error():
    model, _ = _model()
    with pytest.raises(ValueError, match="histories is empty"):
        score_next(model, [])


def test_constrained_decoding_with_nothing_allowed_is_a_clear_error():
    model, _ = _model()
    with pytest.raises(ValueError, match="nothing can be decoded"):
        model.generate_items(["task next : x"], [list(range(1, 13))], k=1)
