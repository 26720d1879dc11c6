"""Bad inputs at the data layer (schema, batching, splits, sequences, interactions, KG, synthetic).

Each case passes when the call returns a correct result or raises ``ValueError`` / ``TypeError``
/ ``KeyError`` (or mtrec's documented "not fitted" ``RuntimeError``) whose innermost traceback
frame is inside the ``mtrec`` package, with a non-empty message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mtrec.data import TensorBatcher
from mtrec.data.batching import frame_to_tensors
from mtrec.data.interactions import IdIndex, interaction_matrix
from mtrec.data.kg import build_kg, check_triples, corrupt, split_triples, triple_batches
from mtrec.data.scenarios import age_scenario_ids
from mtrec.data.schema import (
    CategoryEncoder,
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    TextFeature,
)
from mtrec.data.sequences import build_sequences, left_pad
from mtrec.data.splits import cold_item_split, leave_last_out, per_user_split, random_split
from mtrec.data.synthetic import random_batch
from tests.robustness.conftest import CLEAR_OR_UNFITTED, result_or_clear_error
from tests.robustness.conftest import REPLAYABLE as PROPERTY
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("seeded")]
# a clear error here is a ValueError / TypeError / KeyError, or mtrec's "call fit first" RuntimeError
assert_clear_error = partial(any_clear_error, accept=CLEAR_OR_UNFITTED)


def clear_or_ok(fn: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Any:
    """A battery case: a (``check``-correct) result, or a clear mtrec error."""
    result = result_or_clear_error(fn, accept=CLEAR_OR_UNFITTED)
    if isinstance(result, Exception):
        return result
    if check is not None:
        assert check(result), f"wrong result: {result!r}"
    return result


# --------------------------------------------------------------------------------------------
# reproducers (item 8, data side)
# --------------------------------------------------------------------------------------------
def test_frame_to_tensors_refuses_nan_ids_naming_the_column():
    frame = pd.DataFrame({"user": [1.0, np.nan, 3.0], "x": [0.1, 0.2, 0.3]})
    exc = assert_clear_error(lambda: frame_to_tensors(frame, {"user": torch.long}))
    assert "'user'" in str(exc) and "NaN" in str(exc) and "fillna" in str(exc)


def test_frame_to_tensors_refuses_fractional_ids_and_keeps_integral_floats():
    frame = pd.DataFrame({"user": [1.0, 2.0, 3.0], "item": [1.7, 2.0, 3.0], "x": [0.5, 1.0, 2.0]})
    out = frame_to_tensors(frame, {"user": torch.long, "x": torch.float32})
    assert out["user"].tolist() == [1, 2, 3] and out["user"].dtype == torch.long
    assert out["x"].dtype == torch.float32
    exc = assert_clear_error(lambda: frame_to_tensors(frame, {"item": torch.long}))
    assert "'item'" in str(exc) and "1.7" in str(exc)


def test_frame_to_tensors_float_columns_may_hold_nan():
    frame = pd.DataFrame({"x": [0.5, np.nan]})
    assert torch.isnan(frame_to_tensors(frame, {"x": torch.float32})["x"][1])


def test_feature_declarations_refuse_fractional_sizes():
    assert_clear_error(lambda: SparseFeature("user", 2.5), match="int")
    assert_clear_error(lambda: DenseFeature("x", dim=0), match=">= 1")
    assert_clear_error(lambda: SequenceFeature("h", 10, max_len=1.5), match="int")
    assert_clear_error(lambda: SparseFeature(3, 10), match="name")
    assert SparseFeature("user", np.int64(10)).vocab_size == 10


def test_batcher_refuses_non_tensors_and_scalars():
    assert_clear_error(lambda: TensorBatcher({"x": np.zeros(3)}, 2), match="torch.Tensor")
    assert_clear_error(lambda: TensorBatcher({"x": torch.tensor(1.0)}, 2), match="0-D")
    assert_clear_error(lambda: TensorBatcher({"x": torch.zeros(3)}, 1.5), match="int")
    assert list(TensorBatcher({"x": torch.zeros(0)}, 2)) == []


def test_id_index_and_sequences_on_empty_or_nan():
    assert_clear_error(lambda: IdIndex.from_frames(), match="at least one frame")
    nan_frame = pd.DataFrame({"user_id": [1, 2], "item_id": [3.0, np.nan]})
    assert_clear_error(lambda: IdIndex.from_frames(nan_frame), match="missing")
    empty = pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []})
    assert_clear_error(lambda: build_sequences(leave_last_out(empty)), match="empty")
    assert_clear_error(lambda: left_pad([np.array([1, 2])], 0), match=">= 1")


# --------------------------------------------------------------------------------------------
# property battery
# --------------------------------------------------------------------------------------------
id_values = st.sampled_from([0, 1, 2, 7, -1, 1.5, float("nan"), 3.0])


@st.composite
def frames(draw):
    n = draw(st.integers(0, 6))
    kind = draw(st.sampled_from(["int", "float", "object", "bool"]))
    if kind == "int":
        col = draw(st.lists(st.integers(-3, 9), min_size=n, max_size=n))
    elif kind == "float":
        col = draw(st.lists(id_values, min_size=n, max_size=n))
    elif kind == "object":
        col = draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))
    else:
        col = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    dtype = draw(st.sampled_from([torch.long, torch.int32, torch.float32, torch.bool, "long"]))
    return pd.DataFrame({"c": pd.Series(col, dtype=object if kind == "object" else None)}), dtype


@PROPERTY
@given(args=frames(), missing=st.booleans())
def test_property_frame_to_tensors(args, missing):
    frame, dtype = args
    columns = {"missing" if missing else "c": dtype}

    def run():
        out = frame_to_tensors(frame, columns)["c"]
        if not (dtype.is_floating_point or dtype == torch.bool):  # ids: exact, never truncated
            assert np.array_equal(out.numpy(), frame["c"].to_numpy().astype(np.int64))
        assert len(out) == len(frame)
        return out

    clear_or_ok(run)


@st.composite
def batcher_inputs(draw):
    n = draw(st.integers(0, 9))
    other = draw(st.sampled_from([n, n, n + 1]))
    tensors = {"a": torch.arange(n), "b": torch.zeros(other, 2)}
    if draw(st.booleans()):
        tensors["c"] = draw(st.sampled_from([np.zeros(n), torch.tensor(1.0), [1] * n]))
    batch_size = draw(st.sampled_from([1, 2, 4, 100, 0, -1, 2.5]))
    groups = draw(st.sampled_from([None, "ok", "float", "short"]))
    group_ids = {
        None: None,
        "ok": torch.arange(n) % 2,
        "float": torch.zeros(n),
        "short": torch.zeros(max(n - 1, 0), dtype=torch.long),
    }[groups]
    return tensors, batch_size, draw(st.booleans()), draw(st.booleans()), group_ids


@PROPERTY
@given(args=batcher_inputs())
def test_property_tensor_batcher(args):
    tensors, batch_size, shuffle, drop_last, group_ids = args

    def run():
        batcher = TensorBatcher(
            tensors, batch_size, shuffle=shuffle, drop_last=drop_last, group_ids=group_ids
        )
        rows = sorted(int(i) for b in batcher for i in b["a"])
        n = len(tensors["a"])
        assert len(rows) == len(set(rows)) and set(rows) <= set(range(n))
        if not drop_last:
            assert rows == list(range(n))  # every row exactly once
        return rows

    clear_or_ok(run)


@PROPERTY
@given(
    cls=st.sampled_from([SparseFeature, DenseFeature, SequenceFeature, TextFeature]),
    name=st.sampled_from(["f", "", 3, None]),
    size=st.sampled_from([1, 2, 10, 0, -1, 2.5, "4", np.int64(5)]),
)
def test_property_feature_declarations(cls, name, size):
    clear_or_ok(lambda: cls(name, size), lambda f: f.name == name)


@PROPERTY
@given(
    fit_values=st.lists(st.sampled_from(["a", "b", None, 1, float("nan")]), max_size=6),
    values=st.one_of(st.lists(st.sampled_from(["a", "z", None]), max_size=4), st.just("ab")),
    fitted=st.booleans(),
)
def test_property_category_encoder(fit_values, values, fitted):
    def run():
        encoder = CategoryEncoder()
        if fitted:
            encoder.fit(fit_values)
        ids = encoder.transform(values)
        assert ids.dtype == np.int64 and (ids >= 0).all() and (ids < encoder.vocab_size).all()
        return ids

    clear_or_ok(run)


@st.composite
def ratings_frames(draw):
    n = draw(st.integers(0, 15))
    users = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    items = draw(
        st.lists(
            st.sampled_from([1, 2, 3, 4, 5, 6, 0, -1, 2.5, float("nan")]), min_size=n, max_size=n
        )
    )
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": list(range(n))})
    if draw(st.booleans()):
        frame = frame.drop(columns=[draw(st.sampled_from(["user_id", "item_id", "timestamp"]))])
    return frame


@PROPERTY
@given(
    frame=ratings_frames(),
    fractions=st.sampled_from(
        [
            (0.8, 0.1, 0.1),
            (0.5, 0.5),
            (1.0, 0.0, 0.0),
            (0.5, 0.6, -0.1),
            (float("nan"), 0.5, 0.5),
            "abc",
        ]
    ),
    fraction=st.sampled_from([0.25, 0.0, 1.0, float("nan"), -0.5, "x"]),
    min_interactions=st.sampled_from([3, 2, 1, 0, 2.5]),
)
def test_property_splits(frame, fractions, fraction, min_interactions):
    def disjoint(split):
        parts = [split.train, split.valid, split.test]
        assert sum(len(p) for p in parts) <= len(frame)
        return True

    clear_or_ok(lambda: random_split(frame, fractions), disjoint)
    clear_or_ok(lambda: leave_last_out(frame, min_interactions=min_interactions), disjoint)
    clear_or_ok(lambda: per_user_split(frame, test_fraction=fraction), disjoint)
    clear_or_ok(lambda: cold_item_split(frame, item_fraction=fraction), disjoint)


@PROPERTY
@given(
    frame=ratings_frames(),
    max_len=st.sampled_from([1, 3, 0, 2.5]),
    num_items=st.sampled_from([None, 6, 2, 0]),
)
def test_property_build_sequences(frame, max_len, num_items):
    def run():
        split = leave_last_out(frame, min_interactions=3)
        seq = build_sequences(split, max_len=max_len, num_items=num_items)
        assert seq.valid_history.shape[1] == max_len
        assert bool(seq.valid_seen[:, 0].all())
        assert int(seq.test_target.min()) >= 1
        return seq

    clear_or_ok(run)


@PROPERTY
@given(
    frame=ratings_frames(),
    lookup=st.lists(st.sampled_from([1, 2, 99, -1, 1.5, float("nan"), "a"]), max_size=4),
    value_col=st.sampled_from([None, "timestamp", "rating", "missing"]),
)
def test_property_id_index_and_interaction_matrix(frame, lookup, value_col):
    index = clear_or_ok(lambda: IdIndex.from_frames(frame))
    if not isinstance(index, IdIndex):
        return
    clear_or_ok(
        lambda: index.rows(np.array(lookup)),
        lambda r: (r >= 0).all() and (r < index.num_users).all(),
    )
    clear_or_ok(lambda: index.columns(np.array(lookup)))
    with_rating = frame.assign(rating=np.where(np.arange(len(frame)) % 3, 4.0, np.nan))
    clear_or_ok(
        lambda: interaction_matrix(with_rating, index, value_col=value_col),
        lambda mat: (
            mat.shape == (index.num_users, index.num_items) and bool(torch.isfinite(mat).all())
        ),
    )


def _raw_kg():
    links = pd.DataFrame({"item_id": [1, 2, 3], "entity": ["m.a", "m.b", "m.c"]})
    triples = pd.DataFrame(
        {
            "head": ["m.a", "m.b", "m.c", "m.a", "m.d"],
            "relation": ["r1", "r1", "r2", "r2", "r1"],
            "tail": ["m.b", "m.c", "m.a", "m.d", "m.e"],
        }
    )
    return links, triples


@PROPERTY
@given(
    rows=st.integers(0, 5),
    bad=st.sampled_from([None, -1, 99, 1.5, float("nan")]),
    fractions=st.sampled_from([(0.2, 0.2), (0.0, 0.5), (0.6, 0.6), (float("nan"), 0.1)]),
    negatives=st.sampled_from([1, 3, 0, 2.5]),
    batch_size=st.sampled_from([2, 0, 1.5]),
)
def test_property_kg_triples(rows, bad, fractions, negatives, batch_size):
    kg = build_kg(*_raw_kg())
    triples = kg.triples[:rows].clone()
    if bad is not None and rows:
        triples = triples.double() if isinstance(bad, float) else triples
        triples[0, 2] = bad
    valid, test = fractions
    clear_or_ok(
        lambda: split_triples(triples, valid_fraction=valid, test_fraction=test),
        lambda s: len(s.train) + len(s.valid) + len(s.test) == rows,
    )
    heads, tails = triples[:, 0] if rows else torch.zeros(0), triples[:, 2] if rows else None
    clear_or_ok(
        lambda: corrupt(heads, tails, num_negatives=negatives, num_entities=kg.num_entities),
        lambda pair: pair[0].shape == (len(heads), negatives),
    )
    batch = {"heads": triples[:, 0], "relations": triples[:, 1], "tails": triples[:, 2]}
    clear_or_ok(lambda: check_triples(batch, kg.num_entities, kg.num_relations))
    clear_or_ok(lambda: list(triple_batches(triples, batch_size)))
    clear_or_ok(
        lambda: kg.item_entity_ids([1, 2, bad if bad is not None else 9]),
        lambda ids: ids.shape == (3,) and int(ids[0]) >= 1,
    )


@PROPERTY
@given(
    ages=st.lists(st.sampled_from([10, 25, 40, -5, float("nan"), 300]), max_size=5),
)
def test_property_age_scenarios(ages):
    clear_or_ok(
        lambda: age_scenario_ids(np.array(ages, dtype=float)),
        lambda ids: ids.shape == (len(ages),) and set(ids.tolist()) <= {0, 1, 2},
    )


@PROPERTY
@given(
    batch_size=st.sampled_from([0, 1, 5, -1, 2.5]),
    num_tasks=st.sampled_from([1, 2, 0, 1.5]),
    num_scenarios=st.sampled_from([1, 3, 0]),
)
def test_property_random_batch(batch_size, num_tasks, num_scenarios):
    features = [SparseFeature("user", 5), DenseFeature("x", 2)]
    clear_or_ok(
        lambda: random_batch(
            features, batch_size, num_tasks=num_tasks, num_scenarios=num_scenarios
        ),
        lambda b: (
            b["labels"].shape == (batch_size, num_tasks)
            and bool(((b["user"] >= 1) & (b["user"] < 5)).all())
        ),
    )
