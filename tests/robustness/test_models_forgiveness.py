"""Forgiveness, round two: inputs that used to OOM, give -inf/NaN rows or read wrong values.

Each case replays a report: P5 beam search with more beams than items, scoring with every item
excluded or with fractional item ids, the significance table with a bad ``alpha``, duplicated or
single seeds, float images in 0..255, NaN CKE side vectors and NaN per-seed metrics reaching
``quality.csv``. A clear error is raised in mtrec's own code and names the input and the fix
(:func:`tests.robustness.conftest.assert_clear_error`); valid inputs keep their exact outputs.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mtrec.eval.significance import compare_to_baseline
from mtrec.extractors.image import to_image_batch
from mtrec.models.generative.codes import ItemCodebook, build_tokenizer
from mtrec.models.generative.p5 import P5, P5Config
from mtrec.models.generative.prompts import ItemText, make_prompt, vocabulary
from mtrec.models.kg.cke import CKE, CKEConfig
from mtrec.models.ranking import top_k_unseen
from mtrec.reporting import store
from tests.robustness.conftest import CLEAR, REPLAYABLE
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_thread")]
assert_clear_error = partial(any_clear_error, accept=CLEAR)
NUM_ITEMS = 12  # the tiny P5 catalogue: items 1..12


@pytest.fixture(scope="module")
def p5() -> P5:
    items = pd.DataFrame({"item_id": range(1, NUM_ITEMS + 1), "genres": "Drama",
                          "title": [f"film{i}" for i in range(1, NUM_ITEMS + 1)]})  # fmt: skip
    torch.manual_seed(0)
    book = ItemCodebook(items.item_id, seed=0)
    text = ItemText.from_movielens(items)
    return P5(P5Config.tiny(), build_tokenizer(vocabulary(book, text)), book)


def _prompts(model: P5, histories: list[list[int]]) -> list[str]:
    return [make_prompt(model, "next", h)[0] for h in histories]


# --- 1. P5 beam search: k is bounded by the catalogue ---------------------------------------


@pytest.mark.parametrize("k", [NUM_ITEMS + 1, 10**6])
def test_p5_generate_items_refuses_more_beams_than_items(p5, k):
    error = assert_clear_error(p5.generate_items, _prompts(p5, [[1]]), [[1]], k=k)
    assert f"k={k}" in str(error) and f"k <= {NUM_ITEMS}" in str(error)
    assert "beam" in str(error)


def test_p5_generate_items_accepts_k_up_to_the_catalogue(p5):
    items, _ = p5.generate_items(_prompts(p5, [[1, 2]]), [[1, 2]], k=NUM_ITEMS)
    assert sorted(items[0]) == list(range(3, NUM_ITEMS + 1))  # the 10 unseen, no repeats
    assert_clear_error(p5.generate_items, _prompts(p5, [[1]]), [[1]], k=0)
    assert_clear_error(p5.generate_items, _prompts(p5, [[1]]), [[1]], k=2.5)


# --- 2. scoring with exclusions --------------------------------------------------------------


def test_p5_scores_with_every_item_excluded_is_refused(p5):
    histories = [[1, 2], list(range(1, NUM_ITEMS + 1))]
    error = assert_clear_error(p5.scores, _prompts(p5, histories), histories)
    assert "row 1" in str(error) and "all -inf" in str(error) and "exclude fewer" in str(error)


def test_p5_scores_with_every_item_but_one_excluded_ranks_that_item(p5):
    history = list(range(2, NUM_ITEMS + 1))
    scores = p5.scores(_prompts(p5, [history]), [history])
    assert int(scores[0].argmax()) == 1 and int(torch.isfinite(scores[0]).sum()) == 1


@pytest.mark.parametrize("bad", [2.7, float("nan"), "3"])
def test_p5_fractional_item_ids_are_refused(p5, bad):
    prompts = _prompts(p5, [[1]])
    for call in (p5.scores, partial(p5.generate_items, k=2)):
        error = assert_clear_error(call, prompts, [[1, bad]])
        assert "exclude[0]" in str(error)


def test_p5_whole_float_ids_score_like_ints(p5):
    prompts = _prompts(p5, [[1, 2]])
    torch.testing.assert_close(p5.scores(prompts, [[1.0, 2.0]]), p5.scores(prompts, [[1, 2]]),
                               rtol=0, atol=0)  # fmt: skip
    assert_clear_error(p5.scores, prompts, [[1], [2]])  # one exclude list per prompt


@REPLAYABLE
@given(
    rows=st.integers(1, 4),
    k=st.integers(1, 6),
    fraction=st.sampled_from([None, 0.5, 0.25]),
    seen_all=st.booleans(),
)
def test_property_top_k_unseen_refuses_fractional_ids_and_empty_rows(rows, k, fraction, seen_all):
    scores = torch.randn(rows, 6, generator=torch.Generator().manual_seed(rows))
    history = torch.tensor([list(range(6)) if seen_all else [0, 1]] * rows, dtype=torch.float)
    if fraction is not None:
        history[-1, 0] += fraction
    result = None
    if fraction is not None or seen_all or k > 4:
        message = str(assert_clear_error(top_k_unseen, scores, history, k))
        if fraction is not None:
            assert "integer" in message
        elif seen_all:
            assert f"row {rows - 1}" in message or "row 0" in message
            assert "no unseen item" in message and "exclude_seen=False" in message
        else:
            assert "k <= 4" in message
    else:
        result = top_k_unseen(scores, history, k)
        assert result.shape == (rows, k) and not bool((result < 2).any())


# --- 3. compare_to_baseline ------------------------------------------------------------------


def _per_seed(seeds: int = 3) -> pd.DataFrame:
    rows = [("d", "all", "y", "auc", model, seed, 0.7 + lift + 0.001 * seed)
            for seed in range(seeds) for model, lift in [("base", 0.0), ("new", 0.01)]]  # fmt: skip
    return pd.DataFrame(
        rows, columns=["dataset", "scenario", "task", "metric", "model", "seed", "value"]
    )


@REPLAYABLE
@given(
    alpha=st.one_of(
        st.floats(max_value=0.0), st.floats(min_value=1.0), st.sampled_from([5, 0, 1, -0.05])
    )
)
def test_property_compare_to_baseline_alpha_must_be_a_probability(alpha):
    error = assert_clear_error(compare_to_baseline, _per_seed(), "base", alpha=alpha)
    assert "alpha" in str(error)


def test_compare_to_baseline_keeps_valid_alpha():
    out = compare_to_baseline(_per_seed(), "base", alpha=0.1)
    assert len(out) == 1 and bool(out.significant.item())


def test_compare_to_baseline_refuses_duplicated_seeds():
    frame = _per_seed()
    twice = pd.concat([frame, frame[(frame.model == "new") & (frame.seed == 1)]])
    error = assert_clear_error(compare_to_baseline, twice, "base")
    assert "seed 1" in str(error) and "'new'" in str(error) and "2 rows" in str(error)


def test_compare_to_baseline_refuses_fewer_than_two_seeds():
    error = assert_clear_error(compare_to_baseline, _per_seed(1), "base")
    assert "at least 2 seeds" in str(error) and "got 1" in str(error)
    assert_clear_error(compare_to_baseline, _per_seed(1).iloc[:0], "base")  # no rows at all
    only_baseline = _per_seed()[lambda f: f.model == "base"]
    assert compare_to_baseline(only_baseline, "base").empty  # nothing to compare: no rows


# --- 4. image values -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_0_255_are_refused(dtype):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8)).astype(dtype)
    error = assert_clear_error(to_image_batch, pixels)
    assert "255" in str(error) and "uint8" in str(error) and "[0, 1]" in str(error)
    assert_clear_error(to_image_batch, torch.from_numpy(pixels))
    assert_clear_error(to_image_batch, list(pixels))


@REPLAYABLE
@given(high=st.floats(1.02, 1e6), low=st.floats(-1e6, -0.02))
def test_property_float_images_outside_0_1_are_refused(high, low):
    image = np.zeros((1, 8, 8), dtype=np.float32)
    image[0, 0, 0] = high
    assert "[0, 1]" in str(assert_clear_error(to_image_batch, image))
    image[0, 0, 0] = low
    assert "[0, 1]" in str(assert_clear_error(to_image_batch, image))


def test_uint8_and_unit_float_images_are_unchanged():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    expected = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    assert torch.equal(to_image_batch(pixels), expected)
    unit = torch.rand(2, 3, 8, 8)
    assert torch.equal(to_image_batch(unit), unit)
    assert torch.equal(to_image_batch(torch.ones(1, 1, 4, 4)), torch.ones(1, 3, 4, 4))


# --- 5. NaN reaching results -----------------------------------------------------------------


def test_cke_nan_side_vectors_are_refused():
    side = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    side[[2, 5], 1] = float("nan")
    error = assert_clear_error(CKE, CKEConfig.tiny(), {"kg": side})
    assert "'kg'" in str(error) and "2 of 8 rows" in str(error) and "zero" in str(error)
    assert_clear_error(CKE, CKEConfig.tiny(), {"kg": side.numpy()})  # not a tensor
    assert torch.isfinite(CKE(CKEConfig.tiny(), {"kg": side.nan_to_num()}).scores()).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_quality_rows_refuse_non_finite_seeds(bad):
    error = assert_clear_error(
        store.quality_rows, dataset="d", model="m", metrics={"auc": [0.7, bad, 0.8]}
    )
    assert "'auc'" in str(error) and "1 of 3" in str(error) and "leave" in str(error)


def test_record_quality_refuses_nan_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    path = tmp_path / "quality.csv"
    rows = store.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8], "ll": [0.5]})
    assert store.record_quality(rows, path=path)  # one seed: std NaN is allowed
    bad = rows.assign(value=[0.7, float("nan")])
    error = assert_clear_error(store.record_quality, bad, path=path)
    assert "'ll'" in str(error) and "value" in str(error)
    bad = rows.assign(std=float("nan"))
    assert "'auc'" in str(assert_clear_error(store.record_quality, bad, path=path))
    assert pd.read_csv(path).value.notna().all()  # nothing was written
