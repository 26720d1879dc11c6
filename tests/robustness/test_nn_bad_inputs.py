"""Bad inputs to the building blocks (mtrec.nn): attention, Transformer layers, encoder-decoder,
declared-feature embeddings, batched MLPs, scenario routing, losses.

A battery case passes when the call returns a correct, finite, correctly-shaped result or raises
``ValueError`` / ``TypeError`` / ``KeyError`` whose innermost traceback frame is inside the
``mtrec`` package, with a non-empty message (:func:`assert_clear_error`). Inputs are drawn by
hypothesis over shapes (empty batches and sequences included), ids (negative, past the
vocabulary, fractional floats), NaN / inf values and wrong dtypes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtrec.data.schema import DenseFeature, SequenceFeature, SparseFeature
from mtrec.nn.attention import MultiHeadAttention, scaled_dot_product_attention
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from mtrec.nn.layers import MLP, BatchedMLP, FeatureEmbedding, SmallBatchNorm1d
from mtrec.nn.losses import check_labels, masked_bce
from mtrec.nn.scenario import ScenarioRouter, StarLinear, check_scenario_ids
from mtrec.nn.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
)
from tests.robustness.conftest import CLEAR, result_or_clear_error
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_thread")]
# a clear error here is a ValueError / TypeError / KeyError (anything else propagates and fails)
assert_clear_error = partial(any_clear_error, accept=CLEAR)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
D, H = 8, 2  # width and heads of the attention blocks under test


def finite(x: Any) -> bool:
    """Every tensor in ``x`` (a tensor or a tuple of them) holds no NaN (``-inf`` scores allowed)."""
    items = x if isinstance(x, (tuple, list)) else (x,)
    tensors = [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return all(not bool(torch.isnan(t).any()) for t in tensors)


def clear_or_ok(fn: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Any:
    """A battery case: a finite (and ``check``-correct) result, or a clear mtrec error."""
    result = result_or_clear_error(fn, accept=CLEAR)
    if isinstance(result, Exception):
        return result
    assert finite(result), f"NaN in the result: {result!r}"
    if check is not None:
        assert check(result), f"wrong result: {result!r}"
    return result


def floats(shape: tuple[int, ...], seed: int, poison: str) -> torch.Tensor:
    """Random normal floats; ``poison`` "nan" / "inf" puts one bad value in (when non-empty)."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if x.numel() and poison != "none":
        x.view(-1)[seed % x.numel()] = float("nan") if poison == "nan" else float("inf")
    return x


POISON = st.sampled_from(["none", "none", "nan", "inf"])
SEEDS = st.integers(0, 2**16)


@PROPERTY
@given(
    b=st.integers(0, 3),
    lq=st.integers(0, 4),
    lk=st.integers(0, 4),
    cross=st.booleans(),
    causal=st.booleans(),
    weights=st.booleans(),
    padded=st.booleans(),
    poison=POISON,
    seed=SEEDS,
)
def test_attention_battery(b, lq, lk, cross, causal, weights, padded, poison, seed):
    mha = MultiHeadAttention(D, H).eval()
    q = floats((b, lq, D), seed, poison)
    kv = floats((b, lk, D), seed + 1, "none") if cross else q
    pad = None
    if padded:
        pad = torch.rand(b, kv.shape[1], generator=torch.Generator().manual_seed(seed)) < 0.5
    call = lambda: mha(q, kv, kv, key_padding_mask=pad, is_causal=causal, need_weights=weights)  # noqa: E731
    if poison != "none" and q.numel():
        assert_clear_error(call, match="nan" if poison == "nan" else "infinite")
        return
    out, w = clear_or_ok(call)
    assert out.shape == (b, lq, D)
    assert (w is None) != weights and (w is None or w.shape == (b, H, lq, kv.shape[1]))


@PROPERTY
@given(
    q_shape=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    width=st.sampled_from([D, D + 1, 4]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.long]),
    mask_kind=st.sampled_from(["none", "float", "bool-wrong", "bool"]),
)
def test_attention_bad_shapes_and_masks(q_shape, width, dtype, mask_kind):
    mha = MultiHeadAttention(D, H)
    x = torch.zeros(*q_shape, width).to(dtype)
    mask = {
        "none": None,
        "float": torch.zeros(q_shape[-1], q_shape[-1]),
        "bool-wrong": torch.ones(q_shape[-1] + 1, 2, dtype=torch.bool),
        "bool": torch.ones(q_shape[-1], q_shape[-1], dtype=torch.bool),
    }[mask_kind]
    ok = (
        len(q_shape) == 2
        and width == D
        and dtype == torch.float32
        and mask_kind in ("none", "bool")
    )
    if ok:
        out, _ = clear_or_ok(lambda: mha(x, x, x, attn_mask=mask))
        assert out.shape == x.shape
    else:
        assert_clear_error(lambda: mha(x, x, x, attn_mask=mask))


@PROPERTY
@given(lq=st.integers(0, 4), lk=st.integers(0, 4), dq=st.sampled_from([4, 5]), seed=SEEDS)
def test_scaled_dot_product_battery(lq, lk, dq, seed):
    q, k, v = (
        floats((2, lq, dq), seed, "none"),
        floats((2, lk, 4), seed, "none"),
        floats((2, lk, 3), seed, "none"),
    )
    if dq != 4:
        assert_clear_error(lambda: scaled_dot_product_attention(q, k, v))
        return
    out = clear_or_ok(lambda: scaled_dot_product_attention(q, k, v))
    assert out.shape == (2, lq, 3)


@PROPERTY
@given(
    b=st.integers(0, 3),
    lt=st.integers(0, 4),
    ls=st.integers(0, 4),
    norm_first=st.booleans(),
    poison=POISON,
    where=st.sampled_from(["x", "memory"]),
    seed=SEEDS,
)
def test_transformer_layers_battery(b, lt, ls, norm_first, poison, where, seed):
    enc_layer = EncoderLayer(D, H, 16, 0.0, norm_first=norm_first)
    dec_layer = DecoderLayer(D, H, 16, 0.0, norm_first=norm_first)
    encoder, decoder = (
        Encoder(2, D, H, d_ff=16, dropout=0.0),
        Decoder(2, D, H, d_ff=16, dropout=0.0),
    )
    y = floats((b, lt, D), seed, poison if where == "x" else "none")
    memory = floats((b, ls, D), seed + 1, poison if where == "memory" else "none")
    bad = poison != "none" and (y.numel() if where == "x" else memory.numel())
    calls = [lambda: decoder(y, memory), lambda: dec_layer(y, memory)]
    if where == "x":
        calls += [lambda: encoder(y, is_causal=True), lambda: enc_layer(y)]
    for call in calls:
        if bad:
            assert_clear_error(call)
        else:
            assert clear_or_ok(call).shape == (b, lt, D)


@PROPERTY
@given(length=st.integers(0, 12), learned=st.booleans())
def test_positional_encoding_lengths(length, learned):
    pe = (LearnedPositionalEncoding if learned else SinusoidalPositionalEncoding)(D, 8)
    x = torch.zeros(2, length, D)
    if length > 8:
        assert_clear_error(lambda: pe(x), match="max_len")
    else:
        assert clear_or_ok(lambda: pe(x)).shape == x.shape


@PROPERTY
@given(
    d_model=st.sampled_from([8, 0, -4, 2.5, 6]),
    num_heads=st.sampled_from([2, 0, -1, 1.5, 4]),
    dropout=st.sampled_from([0.0, 0.5, -0.1, 1.0, float("nan")]),
)
def test_attention_constructor_battery(d_model, num_heads, dropout):
    ok = (
        isinstance(d_model, int)
        and isinstance(num_heads, int)
        and d_model > 0
        and num_heads > 0
        and d_model % num_heads == 0
        and 0 <= dropout < 1
    )
    if ok:
        assert MultiHeadAttention(d_model, num_heads, dropout).d_model == d_model
    else:
        assert_clear_error(lambda: MultiHeadAttention(d_model, num_heads, dropout))


V = 12  # vocabulary of the encoder-decoder under test


@PROPERTY
@given(
    b=st.integers(0, 3),
    ls=st.integers(0, 5),
    lt=st.integers(0, 5),
    low=st.integers(-2, 1),
    high=st.integers(2, V + 2),
    as_float=st.booleans(),
    seed=SEEDS,
)
def test_encoder_decoder_battery(b, ls, lt, low, high, as_float, seed):
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(low, high, (b, ls), generator=g)
    tgt = torch.randint(low, high, (b, lt), generator=g)
    if as_float:
        src = src.float() + 0.5
    in_range = src.numel() == 0 or (int(src.min()) >= 0 and int(src.max()) < V)
    tgt_ok = tgt.numel() == 0 or (int(tgt.min()) >= 0 and int(tgt.max()) < V)
    good_src = not as_float and in_range
    loss_ok = good_src and tgt_ok and bool((tgt != 0).any())
    if loss_ok:
        loss = clear_or_ok(lambda: model.loss({"src": src, "tgt": tgt}))
        assert loss.ndim == 0 and bool(torch.isfinite(loss))
    else:
        assert_clear_error(lambda: model.loss({"src": src, "tgt": tgt}))
    if good_src:
        out = clear_or_ok(lambda: model.greedy_decode(src, 3, no_repeat=True))
        assert out.shape == (b, 3) and not bool((out == 0).any())
        seqs, scores = clear_or_ok(lambda: model.beam_search(src, 2, beam_size=2))
        assert seqs.shape == (b, 2, 2) and scores.shape == (b, 2)
    else:
        assert_clear_error(lambda: model.greedy_decode(src, 3))


@PROPERTY
@given(
    allowed_count=st.integers(0, 5),
    length=st.integers(0, 6),
    no_repeat=st.booleans(),
    beam=st.booleans(),
)
def test_constrained_decoding_never_emits_padding(allowed_count, length, no_repeat, beam):
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    src = torch.tensor([[2, 3, 4], [5, 6, 0]])
    allowed = torch.zeros(V, dtype=torch.bool)
    allowed[2 : 2 + allowed_count] = True
    need = length if no_repeat else min(length, 1)

    def run():
        if beam:
            return model.beam_search(
                src, length, beam_size=2, allowed=allowed, no_repeat=no_repeat
            )[0]
        return model.greedy_decode(src, length, allowed=allowed, no_repeat=no_repeat)

    outputs = 1  # distinct outputs the constraint leaves
    for step in range(length):
        outputs *= allowed_count - step if no_repeat else allowed_count
    if allowed_count < need or (beam and outputs < 2):
        assert_clear_error(run, match="allowed")
        return
    out = clear_or_ok(run)
    assert out.shape[-1] == length and bool(allowed[out].all())  # never padding, only allowed


FEATURES = (
    SparseFeature("user", 20, 4),
    SequenceFeature("history", 15, 4, max_len=5),
    DenseFeature("dense", 2),
)


@PROPERTY
@given(
    b=st.integers(0, 4),
    fault=st.sampled_from(
        [
            "none",
            "id-high",
            "id-negative",
            "id-fraction",
            "id-float-whole",
            "seq-high",
            "dense-nan",
            "dense-inf",
            "dense-width",
            "sparse-2d",
            "missing",
            "batch-mismatch",
            "scenario-mismatch",
        ]
    ),
    seed=SEEDS,
)
def test_feature_embedding_battery(b, fault, seed):
    emb = FeatureEmbedding(FEATURES)
    g = torch.Generator().manual_seed(seed)
    batch = {
        "user": torch.randint(0, 20, (b,), generator=g),
        "history": torch.randint(0, 15, (b, 5), generator=g),
        "dense": torch.randn(b, 2, generator=g),
    }
    row = seed % b if b else 0
    if fault == "id-high" and b:
        batch["user"][row] = 20
    elif fault == "id-negative" and b:
        batch["user"][row] = -1
    elif fault == "id-fraction" and b:
        batch["user"] = batch["user"].float()
        batch["user"][row] = 1.7
    elif fault == "id-float-whole":
        batch["user"] = batch["user"].float()  # whole-number floats are fine
    elif fault == "seq-high" and b:
        batch["history"][row, 0] = 99
    elif fault in ("dense-nan", "dense-inf") and b:
        batch["dense"][row, 1] = float("nan") if fault == "dense-nan" else float("inf")
    elif fault == "dense-width":
        batch["dense"] = torch.randn(b, 3)
    elif fault == "sparse-2d":
        batch["user"] = batch["user"][:, None]
    elif fault == "missing":
        del batch["dense"]
    elif fault == "batch-mismatch":
        batch["dense"] = torch.randn(b + 1, 2)
    elif fault == "scenario-mismatch":
        batch["scenario_ids"] = torch.zeros(b + 2, dtype=torch.long)
    needs_row = fault in (
        "id-high",
        "id-negative",
        "id-fraction",
        "seq-high",
        "dense-nan",
        "dense-inf",
    )
    harmless = fault in ("none", "id-float-whole") or (needs_row and b == 0)
    if harmless:
        out = clear_or_ok(lambda: emb(batch))
        assert out.shape == (b, emb.out_dim)
    else:
        exc = assert_clear_error(lambda: emb(batch))
        if fault in ("id-high", "id-negative"):
            assert "'user'" in str(exc) and "20" in str(exc)  # names the feature and the vocabulary


@PROPERTY
@given(
    b=st.integers(0, 4),
    num=st.integers(1, 3),
    layout=st.sampled_from(["shared", "per-member", "wrong-width", "wrong-members", "1d"]),
)
def test_batched_mlp_battery(b, num, layout):
    mlp = BatchedMLP(num, 5, (4,), 2)
    x = {
        "shared": torch.randn(b, 5),
        "per-member": torch.randn(b, num, 5),
        "wrong-width": torch.randn(b, 6),
        "wrong-members": torch.randn(b, num + 1, 5),
        "1d": torch.randn(5),
    }[layout]
    if layout in ("shared", "per-member"):
        assert clear_or_ok(lambda: mlp(x)).shape == (b, num, 2)
    else:
        assert_clear_error(lambda: mlp(x))


@PROPERTY
@given(
    num=st.sampled_from([2, 0, -1, 2.5]),
    hidden=st.sampled_from([(4,), (), (-3,), (2.5,), "4"]),
    dropout=st.sampled_from([0.0, -0.1, 1.0]),
)
def test_mlp_constructor_battery(num, hidden, dropout):
    ok_hidden = isinstance(hidden, tuple) and all(isinstance(h, int) and h > 0 for h in hidden)
    ok = isinstance(num, int) and num > 0 and ok_hidden and 0 <= dropout < 1
    for build in (lambda: BatchedMLP(num, 3, hidden, 2, dropout=dropout),
                  lambda: MLP(num, hidden, 2, dropout=dropout)):  # fmt: skip
        if ok:
            assert build() is not None
        else:
            assert_clear_error(build)


@PROPERTY
@given(
    b=st.integers(0, 5),
    bad=st.sampled_from(["none", "high", "negative", "fraction", "2d"]),
    seed=SEEDS,
)
def test_scenario_routing_battery(b, bad, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 3, (b,), generator=g)
    if bad == "high" and b:
        ids[seed % b] = 3
    elif bad == "negative" and b:
        ids[seed % b] = -1
    elif bad == "fraction" and b:
        ids = ids.float()
        ids[seed % b] = 0.5
    elif bad == "2d":
        ids = ids[:, None]
    x = torch.randn(b, 4, generator=g)
    router, star = ScenarioRouter(3, 4, (5,), 2), StarLinear(3, 4, 2)
    if bad == "none" or (bad != "2d" and b == 0):
        assert clear_or_ok(lambda: router(x, ids)).shape == (b, 2)
        assert clear_or_ok(lambda: star(x, check_scenario_ids(ids, 3))).shape == (b, 2)
    else:
        exc = assert_clear_error(lambda: router(x, ids))
        if bad == "negative":
            assert "start at 0" in str(exc) and "num_scenarios > -1" not in str(exc)
        if bad == "high":
            assert "num_scenarios > 3" in str(exc)


@PROPERTY
@given(
    b=st.integers(0, 4),
    t=st.integers(1, 3),
    value=st.sampled_from([0.0, 1.0, float("nan"), 2.0, -1.0, 0.5]),
    shape=st.sampled_from(["ok", "wrong", "1d"]),
)
def test_labels_and_masked_bce_battery(b, t, value, shape):
    labels = torch.zeros(b, t)
    if b:
        labels[0, 0] = value
    if shape == "wrong":
        labels = torch.zeros(b, t + 1)
    elif shape == "1d":
        labels = labels[:, 0]
    batch = {"labels": labels}
    shape_ok = shape == "ok" or (shape == "1d" and t == 1)
    value_ok = shape == "wrong" or value in (0.0, 1.0) or value != value  # NaN = unlabelled
    if b and shape_ok and value_ok:
        checked = check_labels(batch, t)  # NaN = unlabelled is kept
        assert checked.shape == (b, t)
        losses = clear_or_ok(lambda: masked_bce(torch.zeros(b, t), checked))
        assert losses.shape == (t,) and bool(torch.isfinite(losses).all())
    else:
        assert_clear_error(lambda: check_labels(batch, t))


@pytest.mark.parametrize("b", [0, 1, 2, 5])
def test_small_batch_norm_trains_on_any_batch(b):
    """A one-row (or empty) training batch uses the running statistics; B >= 2 is unchanged."""
    torch.manual_seed(0)
    ours, ref = SmallBatchNorm1d(3), torch.nn.BatchNorm1d(3)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(b, 3)
    out = ours.train()(x)
    assert out.shape == (b, 3) and finite(out)
    if b >= 2:
        torch.testing.assert_close(out, ref.train()(x), rtol=0, atol=0)
        torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=0, atol=0)
    else:
        torch.testing.assert_close(out, ref.eval()(x), rtol=0, atol=0)
        assert int(ours.num_batches_tracked) == 0  # the running statistics are untouched


def test_all_padding_targets_raise_instead_of_nan():
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    batch = {"src": torch.tensor([[2, 3]]), "tgt": torch.zeros(1, 3, dtype=torch.long)}
    assert_clear_error(lambda: model.loss(batch), match="padding")


def test_encoder_decoder_ids_past_the_vocabulary_name_it():
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    exc = assert_clear_error(lambda: model(torch.tensor([[2, 12]]), torch.tensor([[1]])))
    assert "src" in str(exc) and "vocabulary size 12" in str(exc)
    exc = assert_clear_error(lambda: model(torch.tensor([[2, 3]]), torch.tensor([[1, -1]])))
    assert "tgt_in" in str(exc)


def test_constrained_decoding_with_nothing_allowed_raises():
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    nothing = torch.zeros(12, dtype=torch.bool)
    assert_clear_error(lambda: model.greedy_decode(torch.tensor([[2, 3]]), 2, allowed=nothing))
    assert_clear_error(lambda: model.beam_search(torch.tensor([[2, 3]]), 2, allowed=nothing))


def test_negative_scenario_id_message_does_not_suggest_num_scenarios_minus_one():
    exc = assert_clear_error(lambda: check_scenario_ids(torch.tensor([0, -1]), 3))
    assert "outside the trained range 0..2" in str(exc) and "start at 0" in str(exc)
    assert "> -1" not in str(exc)
    exc = assert_clear_error(lambda: check_scenario_ids(torch.tensor([0, 5]), 3))
    assert "num_scenarios > 5" in str(exc)


def test_empty_batch_and_empty_sequence_attention():
    mha = MultiHeadAttention(D, H)
    for shape in [(0, 5, D), (2, 0, D)]:
        out, _ = mha(torch.zeros(shape), torch.zeros(shape), torch.zeros(shape))
        assert out.shape == shape
