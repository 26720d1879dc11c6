"""Bad input to the end-to-end Recommender: requests, saved pipelines, NaN scores.

A case passes when it returns a correct result (k unseen, distinct items with finite scores and
explanations) or raises an exception raised from mtrec's own code with a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from mtrec.serving.recommender import Recommender
from mtrec.serving.rerank import explain
from tests.robustness.conftest import assert_clear_error

FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_result(rec: Recommender, result, user, k: int) -> None:
    """A correct list: k distinct, unseen items, finite scores, explanations without NaN."""
    _, history = rec.user_history(user)
    seen = set(rec.item_ids[history].tolist())
    assert len(result.item_ids) == len(set(result.item_ids)) == k
    assert not seen & set(result.item_ids)
    assert np.isfinite(result.scores).all()
    assert len(result.explanations) == k
    assert not any("nan" in text.lower().split("(")[-1] for text in result.explanations)
    assert result.scenario in rec.config.scenarios


# --------------------------------------------------------------------------- requests

users_st = st.one_of(
    st.integers(-3, 2000),
    st.sampled_from([6, 10, 308, 1, True, None, 6.0, "6", np.int64(6)]),
    st.lists(st.integers(-2, 1700), max_size=4),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=2),
)
contexts_st = st.one_of(
    st.sampled_from(
        [
            "",
            "   ",
            "comedy",
            " COMEDY ",
            "page:drama",
            "page:nope",
            "\ud800",
            "a quiet french film",
            None,
            3,
        ]
    ),
    st.text(max_size=20),
)
ks_st = st.one_of(
    st.integers(-3, 120),
    st.sampled_from([True, 2.0, 2.5, float("nan"), "3", None, np.int64(3)]),
)
trade_offs_st = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([-1, 0, 1, "a"])
)


@FEW
@given(user=users_st, context=contexts_st, k=ks_st, trade_off=trade_offs_st)
def test_recommend_property(recommender, user, context, k, trade_off):
    try:
        result = recommender.recommend(user, context, k, trade_off=trade_off)
    except Exception:
        assert_clear_error(recommender.recommend, user, context, k, trade_off=trade_off)
        return
    check_result(recommender, result, user, int(k))


@pytest.mark.parametrize(
    ("user", "k", "words"),
    [
        (99999, 3, "unknown user id 99999"),
        (-1, 3, "unknown user id -1"),
        (True, 3, "user must be an int id"),
        (1.0, 3, "user must be an int id"),
        ("1", 3, "user must be an int id"),
        ([1.5, 2], 3, "must be an int"),
        ([1, 99999], 3, "unknown item ids"),
        ("USER", 0, "k must be an int in 1..100"),
        ("USER", -2, "k must be an int in 1..100"),
        ("USER", 101, "k must be an int in 1..100"),
        ("USER", 2.5, "k must be an int"),
        ("USER", 3.0, "pass 3 (an int)"),
        ("USER", "3", "k must be an int"),
        ("USER", None, "k must be an int"),
        ("USER", True, "k must be an int"),
    ],
)
def test_bad_requests(recommender, user, k, words):
    user = min(recommender.history) if user == "USER" else user
    assert words in str(assert_clear_error(recommender.recommend, user, "", k))


@pytest.mark.parametrize("trade_off", [float("nan"), -0.1, 1.5, "a", float("inf")])
def test_bad_trade_off(recommender, user, trade_off):
    error = assert_clear_error(recommender.recommend, user, "", 3, trade_off=trade_off)
    assert "trade_off" in str(error)


@pytest.mark.parametrize("context", ["", "   ", "\ud800", "comedy", "a quiet french film"])
def test_awkward_contexts_give_correct_lists(recommender, user, context):
    check_result(recommender, recommender.recommend(user, context, k=3), user, 3)


def test_numpy_ids_work(recommender, user):
    a = recommender.recommend(np.int64(user), "", k=np.int64(3))
    assert a.item_ids == recommender.recommend(user, "", k=3).item_ids
    history = np.array([50, 181, 172])
    b = recommender.recommend(history, "", k=3)
    assert b.item_ids == recommender.recommend([50, 181, 172], "", k=3).item_ids


def test_free_text_with_a_read_only_embedding_cache(saved, recommender, user, tmp_path,
                                                    monkeypatch):  # fmt: skip
    """The query's embedding cannot be stored (safetensors raises): the list is still made."""
    import safetensors.torch
    from safetensors import SafetensorError

    from mtrec.extractors.text import TextEncoder

    query = "a quiet french film, never seen before"
    expected = recommender.recommend(user, query, k=3).item_ids

    def refuse(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Permission denied)")

    encoder = TextEncoder(cache_dir=tmp_path / "ro", device="cpu")
    encoder._model, encoder._tokenizer = recommender.encoder.model, recommender.encoder.tokenizer
    loaded = Recommender.load(saved, encoder=encoder)
    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    result = loaded.recommend(user, query, k=3)
    check_result(loaded, result, user, 3)
    assert result.item_ids == expected


# --------------------------------------------------------------------------- NaN scores


def test_nan_weights_name_nan_scores(saved, recommender, user):
    broken = Recommender.load(saved, encoder=recommender.encoder)
    with torch.no_grad():
        next(broken.model.parameters()).fill_(float("nan"))
    error = assert_clear_error(broken.recommend, user, "", 3)
    assert "NaN" in str(error) and "unseen, distinct items" not in str(error)


def test_nan_query_embedding_is_named(saved, recommender, user):
    class NanEncoder:
        def encode(self, texts):
            return torch.full((len(texts), recommender.embeddings.shape[1]), float("nan"))

    broken = Recommender.load(saved, encoder=recommender.encoder)
    broken.encoder = NanEncoder()
    assert "NaN" in str(assert_clear_error(broken.recommend, user, "a quiet french film", 3))


def test_explanations_refuse_nan_embeddings(recommender):
    embeddings = recommender.embeddings.clone()
    embeddings[:5] = float("nan")
    rows, history = torch.tensor([0, 1]), torch.tensor([2, 3, 4])
    error = assert_clear_error(explain, recommender.titles, embeddings, rows, history, tau=0.05)
    assert "NaN" in str(error)


# --------------------------------------------------------------------------- saved pipelines


def test_save_records_the_tensors_sha256(saved):
    meta = json.loads((saved / "config.json").read_text())
    assert meta["tensors_sha256"] == _sha256(saved / "tensors.safetensors")


def test_round_trip_is_identical(saved, recommender, user):
    loaded = Recommender.load(saved, encoder=recommender.encoder)
    for context in ("", "comedy", "a scary film"):
        a, b = recommender.recommend(user, context, k=5), loaded.recommend(user, context, k=5)
        assert a.item_ids == b.item_ids  # the router's scaler is saved in float32: allclose
        assert np.allclose(a.scores, b.scores, rtol=0, atol=1e-5)


def test_flipped_bytes_in_tensors_are_refused(copy, recommender):
    file = copy / "tensors.safetensors"
    blob = bytearray(file.read_bytes())
    blob[len(blob) // 2] ^= 0x40  # inside the tensor data: loads fine, changes a weight
    file.write_bytes(bytes(blob))
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert isinstance(error, ValueError)
    assert "tensors.safetensors is corrupted" in str(error) and "save the recommender" in str(error)


def test_truncated_tensors_are_refused(copy, recommender):
    file = copy / "tensors.safetensors"
    file.write_bytes(file.read_bytes()[:50])
    meta = json.loads((copy / "config.json").read_text())
    meta.pop("tensors_sha256")  # an old save: no checksum, the header itself is broken
    (copy / "config.json").write_text(json.dumps(meta))
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "is corrupted and cannot be read" in str(error)


def test_old_save_without_checksum_loads_with_a_note(copy, recommender, user, caplog):
    meta = json.loads((copy / "config.json").read_text())
    meta.pop("tensors_sha256")
    (copy / "config.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="mtrec.serving.recommender"):
        loaded = Recommender.load(copy, encoder=recommender.encoder)
    assert any("no tensors_sha256" in r.getMessage() for r in caplog.records)
    expected = recommender.recommend(user, "", k=3).item_ids
    assert loaded.recommend(user, "", k=3).item_ids == expected


def _edit_config(copy: Path, edit) -> None:
    meta = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(edit(meta)))


def _without(key):
    return lambda meta: {k: v for k, v in meta.items() if k != key}


def _renamed(old, new):
    return lambda meta: {(new if k == old else k): v for k, v in meta.items()}


def _fusion(edit):
    return lambda meta: {**meta, "fusion": edit(dict(meta["fusion"]))}


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_without("titles"), "missing the keys ['titles']"),
        (_without("version"), "format version None"),
        (_renamed("fusion", "fusion_weights"), "unknown keys ['fusion_weights']"),
        (lambda m: {**m, "extra": 1}, "unknown keys ['extra']"),
        (
            _fusion(lambda f: {("pool_size" if k == "pool" else k): v for k, v in f.items()}),
            "missing ['pool'], unknown ['pool_size']",
        ),
        (_fusion(lambda f: {**f, "tau": "0.05"}), "not finite numbers ['tau']"),
        (_fusion(lambda f: {**f, "pool": 0}), "'pool' must be an int >= 1"),
        (lambda m: {**m, "num_users": "40"}, "'num_users' must be a JSON int"),
        (lambda m: {**m, "titles": "abc"}, "'titles' must be a JSON list"),
        (lambda m: {**m, "titles": m["titles"][:-1]}, "titles but"),
        (lambda m: {**m, "titles": [1] * len(m["titles"])}, "list of strings"),
        (lambda m: {**m, "version": "2"}, "format version '2'"),
        (lambda m: {**m, "version": [2]}, "format version [2]"),
        (lambda m: {**m, "recommender": {"scenarios": ["a"]}}, "invalid recommender config"),
        (lambda m: {**m, "recommender": []}, "invalid recommender config"),
        (lambda m: {**m, "router_classes": ["x"]}, "router_classes"),
        (lambda m: [], "must hold a JSON object"),
        (lambda m: None, "must hold a JSON object"),
    ],
)
def test_config_errors_name_the_file_and_keys(copy, recommender, edit, words):
    _edit_config(copy, edit)
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert words in str(error) and "config.json" in str(error)


def test_invalid_json_names_the_file(copy, recommender):
    (copy / "config.json").write_text('{"version": 2,')
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "config.json is not valid JSON" in str(error)
    (copy / "config.json").write_bytes(b"\xff\xfe\x00binary")
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "not valid JSON" in str(error)


def test_config_folder_in_the_files_place(copy, recommender):
    (copy / "config.json").unlink()
    (copy / "config.json").mkdir()
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "does not hold a saved pipeline" in str(error)


def _rewrite_tensors(copy: Path, edit) -> None:
    """Change the tensors and re-record their checksum (as a buggy writer would)."""
    state = edit(load_file(copy / "tensors.safetensors"))
    save_file(state, copy / "tensors.safetensors")
    _edit_config(copy, lambda m: {**m, "tensors_sha256": _sha256(copy / "tensors.safetensors")})


def test_missing_tensors_are_named(copy, recommender):
    _rewrite_tensors(copy, lambda s: {k: v for k, v in s.items() if k != "item_ids"})
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "lacks the tensors ['item_ids']" in str(error)


def test_nan_tensors_are_refused_at_load(copy, recommender):
    def poison(state):
        state["item_embeddings"][3, 0] = float("nan")
        return state

    _rewrite_tensors(copy, poison)
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "'item_embeddings' holds NaN" in str(error)


def test_mismatched_model_tensors_are_refused(copy, recommender):
    def shrink(state):
        key = next(k for k in state if k.startswith("model.") and state[k].ndim == 2)
        state[key] = state[key][:1].contiguous()
        return state

    _rewrite_tensors(copy, shrink)
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder)
    assert "do not fit the sizes in its config" in str(error)
