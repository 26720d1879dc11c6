"""Splits are seeded, disjoint and follow their written protocol."""

import numpy as np
import pandas as pd
import pytest

from mtrec import data


@pytest.fixture(scope="module")
def ratings():
    return data.load_movielens().ratings


def _pairs(frame):
    return set(zip(frame.user_id, frame.item_id, frame.timestamp))


def test_random_split_is_seeded_and_disjoint():
    frame = pd.DataFrame({"x": np.arange(1000)})
    a = data.random_split(frame, seed=3)
    b = data.random_split(frame, seed=3)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert a.sizes() == {"train": 800, "valid": 100, "test": 100}
    parts = [set(p.x) for p in (a.train, a.valid, a.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    with pytest.raises(ValueError):
        data.random_split(frame, (0.5, 0.6, 0.1))


def test_leave_last_out_takes_the_latest_two(ratings):
    split = data.leave_last_out(ratings)
    assert len(split.valid) == len(split.test) == 943
    last_train = split.train.groupby("user_id").timestamp.max()
    valid_time = split.valid.set_index("user_id").timestamp
    test_time = split.test.set_index("user_id").timestamp
    assert (last_train <= valid_time.loc[last_train.index]).all()
    assert (valid_time <= test_time.loc[valid_time.index]).all()
    assert len(split.train) + 2 * 943 == len(ratings)


def test_per_user_split_is_stratified_75_25(ratings):
    split = data.per_user_split(ratings, seed=0)
    assert not (_pairs(split.train) & _pairs(split.test))
    per_user = split.test.groupby("user_id").size() / ratings.groupby("user_id").size()
    assert per_user.between(0.2, 0.3).all()
    assert set(split.train.user_id) == set(split.test.user_id) == set(ratings.user_id)
    other = data.per_user_split(ratings, seed=1)
    assert _pairs(other.test) != _pairs(split.test)


def test_per_user_split_with_validation(ratings):
    split = data.per_user_split(ratings, valid_fraction=0.1, seed=0)
    assert len(split.train) + len(split.valid) + len(split.test) == len(ratings)
    assert not (_pairs(split.train) & _pairs(split.valid))


def test_cold_item_split_holds_items_out_entirely(ratings):
    split = data.cold_item_split(ratings, seed=0)
    train_items = set(split.train.item_id)
    assert not (train_items & set(split.test.item_id))
    assert not (train_items & set(split.valid.item_id))
    assert not (set(split.valid.item_id) & set(split.test.item_id))
