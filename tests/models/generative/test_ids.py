import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.models.generative.codes import ItemCodebook, PrefixTrie, build_tokenizer
from mtrec.models.generative.ids import (
    CODE_LENGTH,
    SCHEMES,
    collision_level,
    first_appearance_order,
    item_codebook,
    residual_kmeans,
)
from mtrec.models.generative.p5 import P5, P5Config
from mtrec.models.generative.prompts import ItemText, score_next, vocabulary

ITEMS = list(range(1, 61))
SEQUENCES = [[3, 4, 5, 6], [5, 6, 7], [1, 2, 3, 8, 9]]


def _vectors(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 8)) * 3
    return centres[np.arange(n) % 4] + rng.normal(size=(n, 8))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_gives_unique_codes_of_one_length(scheme):
    book = item_codebook(scheme, ITEMS, sequences=SEQUENCES, vectors=_vectors(), levels=(4, 3))
    assert set(book.codes) == set(ITEMS)
    assert len(set(book.codes.values())) == len(ITEMS)
    assert {len(c) for c in book.codes.values()} == {CODE_LENGTH}
    assert all(tok.startswith(f"c{d}_") for c in book.codes.values() for d, tok in enumerate(c))


def test_sequential_numbers_items_by_first_appearance_and_the_control_shuffles_them():
    ranks = first_appearance_order(ITEMS, SEQUENCES)
    assert [ranks[ITEMS.index(i)] for i in (3, 4, 5, 6, 7, 1, 2, 8, 9, 10)] == list(range(10))
    seq = item_codebook("sequential", ITEMS, sequences=SEQUENCES)
    shuffled = item_codebook("random", ITEMS, seed=1)  # the control: same codes, shuffled
    assert set(seq.codes.values()) == set(shuffled.codes.values())  # same code set
    assert seq.codes[4][:2] == seq.codes[3][:2]  # consecutive items share a prefix
    assert seq.codes != shuffled.codes


def test_residual_kmeans_error_decreases_with_levels():
    codes, errors = residual_kmeans(_vectors(200), (8, 8, 8), seed=0)
    assert codes.shape == (200, 3)
    assert errors[0] > errors[1] > errors[2] > 0
    assert errors[0] < (_vectors(200) - _vectors(200).mean(0)).__pow__(2).sum(1).mean()


def test_collision_level_numbers_items_in_a_cell_by_distance():
    prefixes = np.array([[0, 1], [0, 1], [2, 0], [0, 1]])
    out = collision_level(prefixes, np.array([0.5, 0.1, 9.0, 0.3]))
    assert out.tolist() == [2, 0, 0, 1]


def test_semantic_codes_put_similar_items_under_one_prefix():
    book = item_codebook("semantic", ITEMS, vectors=_vectors(), levels=(4, 2))
    first = {}
    for item in ITEMS:  # items from the same centre (item % 4) share the first token
        first.setdefault((item - 1) % 4, set()).add(book.codes[item][0])
    assert all(len(tokens) == 1 for tokens in first.values())


def test_bad_scheme_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown item-ID scheme"):
        item_codebook("alphabetical", ITEMS)
    with pytest.raises(ValueError, match="needs sequences"):
        item_codebook("sequential", ITEMS)
    with pytest.raises(ValueError, match="one row per item"):
        item_codebook("semantic", ITEMS, vectors=_vectors(10))
    with pytest.raises(ValueError, match="share a code"):
        ItemCodebook.from_codes({1: ("a",), 2: ("a",)})


def _model(scheme: str = "semantic") -> P5:
    torch.manual_seed(0)
    frame = pd.DataFrame({"item_id": ITEMS, "title": [f"t{i}" for i in ITEMS], "genres": "Drama"})
    book = item_codebook(scheme, ITEMS, sequences=SEQUENCES, vectors=_vectors(), levels=(4, 3))
    config = P5Config(**{**P5Config.tiny().__dict__, "code_length": CODE_LENGTH})
    return P5(config, build_tokenizer(vocabulary(book, ItemText.from_movielens(frame))), book)


def test_trie_decoding_emits_only_valid_unseen_items_for_multi_token_codes():
    model = _model()
    history = [[1, 2, 3], [10, 20]]
    items, _ = model.generate_items(["task next : x", "task next : y"], history, k=8)
    for row, seen in zip(items, history):
        assert len(row) == len(set(row)) == 8
        assert all(i in model.codebook.codes and i not in seen for i in row)


def test_full_ranking_of_multi_token_codes_sums_the_code_log_probs():
    model = _model()
    scores, _ = score_next(model, [[1, 2, 3], [4]])
    assert scores.shape == (2, 61) and torch.isinf(scores[0, [0, 1, 2, 3]]).all()
    probs = scores[0, 4:].exp()  # each level normalised over its tokens: item probs sum to <= 1
    assert 0.0 < float(probs.sum()) <= 1.0 + 1e-5
    best = int(scores[1].argmax())
    greedy, _ = model.generate_items(["task next : given the history " + model.codebook.text(4)],
                                     [[4]], k=1)  # fmt: skip
    assert best in model.codebook.codes and greedy[0][0] in model.codebook.codes


def test_p5_refuses_a_codebook_of_another_length():
    book = item_codebook("random", ITEMS)
    with pytest.raises(ValueError, match="tokens per item"):
        P5(P5Config.tiny(), build_tokenizer(book.tokens()), book)
    assert isinstance(PrefixTrie({1: (1, 2)}).allowed((), PrefixTrie({}).banned_counts([])), list)
