"""Loaders return the documented schema on the real, cached data."""

import numpy as np
import pytest

from mtrec import data


def test_movielens_schema_and_counts():
    ml = data.load_movielens()
    assert ml.ratings.shape == (100_000, 4)
    assert list(ml.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ml.ratings.user_id.nunique() == 943 and ml.ratings.item_id.nunique() == 1682
    assert ml.ratings.rating.between(1, 5).all()
    assert set(ml.items.scenario) == set(data.ML_SCENARIOS)
    assert ml.items.loc[ml.items.item_id == 1, "title"].item() == "Toy Story (1995)"
    assert ml.items.loc[ml.items.item_id == 1, "scenario"].item() == "family"


def test_movielens_multitask_definition():
    frame = data.movielens_multitask(seed=0)
    assert len(frame) == 200_000
    assert frame.watch.mean() == 0.5
    assert (frame.like <= frame.watch).all()  # like ⊆ watch, so CTCVR = watch × like
    assert frame.loc[frame.watch == 0, "rating"].isna().all()
    rated = set(zip(*data.load_movielens().ratings[["user_id", "item_id"]].to_numpy().T))
    negatives = frame.loc[frame.watch == 0, ["user_id", "item_id"]].to_numpy()
    assert not any((u, i) in rated for u, i in negatives[:5000])


def test_clothing_multitask_definition():
    frame = data.clothing_multitask()
    assert len(frame) == 23_472  # 14 reviews lack a department
    assert sorted(frame.scenario.unique()) == data.CLOTHING_SCENARIOS
    assert set(frame.scenario_id.unique()) == set(range(6))
    assert ((frame.rating >= 4) == frame.like.astype(bool)).all()
    assert {"recommended", "like", "helpful", "text"} <= set(frame.columns)


def test_adult_tasks():
    frame = data.load_adult()
    assert len(frame) == 48_842
    assert 0.2 < frame.income_50k.mean() < 0.3
    assert 0.3 < frame.never_married.mean() < 0.35


def test_mnist_and_audio_and_kg():
    images, labels = data.load_mnist5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert set(labels.tolist()) == set(range(10))
    sounds = data.load_asterisk_sounds()
    assert len(sounds) == 568 and sounds.transcript.notna().mean() > 0.9
    _links, triples = data.load_ml100k_kg()
    assert list(triples.columns) == ["head", "relation", "tail"] and len(triples) > 90_000


def test_require_columns_names_what_is_missing():
    frame = data.load_movielens().ratings.drop(columns=["timestamp"])
    with pytest.raises(ValueError, match=r"missing columns \['timestamp'\]"):
        data.leave_last_out(frame)
