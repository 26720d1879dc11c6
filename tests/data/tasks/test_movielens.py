"""The MovieLens tasks: train-only fitting, shapes, determinism, one demographic coding."""

import dataclasses
import functools

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data import ML_SCENARIOS, leave_last_out, load_movielens, per_user_split, random_split
from mtrec.data.scenarios import ML_AGE_SCENARIOS
from mtrec.data.schema import OOV
from mtrec.data.sequences import build_sequences
from mtrec.data.tasks import (
    ml100k_by_age,
    ml100k_impressions,
    ml100k_next_item,
    ml100k_topk_split,
    user_demographics,
)
from mtrec.data.tasks.movielens import AGE_CENTRE, AGE_SCALE, GENDER_CODES

IMPRESSION_SPARSE = ("user_id", "item_id", "occupation", "gender")
AGE_SPARSE = ("user_id", "item_id", "gender", "occupation", "zip_code", "genre")


@functools.cache
def _impressions():
    return ml100k_impressions(rows=4000, seed=1)


@functools.cache
def _by_age():
    return ml100k_by_age()


def _parts(task):
    return (task.train, task.valid, task.test)


def test_impressions_have_the_declared_keys_shapes_and_dtypes():
    task = _impressions()
    assert task.task_names == ("watch", "like")
    assert task.scenario_names == tuple(ML_SCENARIOS)
    assert [f.name for f in task.features] == [*IMPRESSION_SPARSE, "age", "year"]
    assert [len(p["labels"]) for p in _parts(task)] == [3200, 400, 400]
    for part in _parts(task):
        n = len(part["labels"])
        assert set(part) == {*IMPRESSION_SPARSE, "age", "year", "labels", "scenario_ids"}
        assert all(
            part[c].dtype == torch.int64 and part[c].shape == (n,) for c in IMPRESSION_SPARSE
        )
        assert part["age"].dtype == part["year"].dtype == torch.float32
        assert part["labels"].shape == (n, 2) and part["labels"].dtype == torch.float32
        assert int(part["scenario_ids"].max()) < task.num_scenarios
        assert all(bool(torch.isfinite(part[c]).all()) for c in ("age", "year"))


def test_impressions_fit_encoders_and_scalers_on_train_only():
    from mtrec.data import movielens_multitask

    task = _impressions()
    frame = movielens_multitask(seed=1).head(4000)
    split = random_split(frame, seed=0)
    users = task.features[0]
    assert users.vocab_size == split.train.user_id.nunique() + 1
    unseen = ~split.test.user_id.isin(split.train.user_id).to_numpy()
    assert unseen.any()  # 4000 rows leave some test users out of train: they must map to OOV
    assert bool((task.test["user_id"][torch.from_numpy(unseen)] == OOV).all())
    age = task.train["age"].double()
    assert abs(float(age.mean())) < 1e-5 and abs(float(age.std()) - 1) < 1e-4
    test_age = (split.test.age - split.train.age.mean()) / (split.train.age.std() + 1e-6)
    assert torch.equal(task.test["age"], torch.tensor(test_age.to_numpy(), dtype=torch.float32))


def test_impressions_are_deterministic_and_seeded():
    again = ml100k_impressions(rows=4000, seed=1)
    for mine, theirs in zip(_parts(_impressions()), _parts(again)):
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    other = ml100k_impressions(rows=4000, seed=2)
    assert not torch.equal(other.train["item_id"], again.train["item_id"])


def test_by_age_task_keys_scenarios_and_train_only_encoders():
    task = _by_age()
    assert task.task_names == ("like",) and task.scenario_names == tuple(ML_AGE_SCENARIOS)
    assert [f.name for f in task.features] == [*AGE_SPARSE, "age"]
    assert all(f.embed_dim == 16 for f in task.features[:-1])
    for part in _parts(task):
        assert set(part) == {*AGE_SPARSE, "age", "labels", "scenario_ids"}
        assert float(part["age"].min()) >= 0 and float(part["age"].max()) <= 1
        assert part["labels"].shape[1] == 1
    train_items = int(task.train["item_id"].max())
    assert task.features[1].vocab_size == train_items + 1  # ids 1..n from train values only


def test_user_demographics_constants():
    ml = load_movielens()
    demo, vocab = user_demographics(ml.users)
    assert AGE_CENTRE == round(ml.users.age.mean()) and AGE_SCALE == 12
    occupations = sorted(ml.users.occupation.unique())
    assert vocab == len(occupations) + 1
    user = ml.users.iloc[5]
    uid = int(user.user_id)
    assert int(demo["gender"][uid]) == GENDER_CODES[user.gender]
    assert int(demo["occupation"][uid]) == occupations.index(user.occupation) + 1
    assert float(demo["age"][uid]) == pytest.approx((user.age - AGE_CENTRE) / AGE_SCALE)
    assert demo["gender"].dtype == demo["occupation"].dtype == torch.int64
    assert demo["age"].dtype == torch.float32 and int(demo["gender"][0]) == 0


def test_user_demographics_unknowns_and_bad_ids():
    users = pd.DataFrame(
        {"user_id": [1, 3], "gender": ["F", None], "occupation": ["writer", None], "age": [34, 46]}
    )
    demo, vocab = user_demographics(users)
    assert demo["gender"].tolist() == [0, 2, 0, 0] and demo["occupation"].tolist() == [0, 1, 0, 0]
    assert vocab == 2 and demo["age"].tolist() == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="distinct"):
        user_demographics(users.assign(user_id=[1, 1]))
    with pytest.raises(TypeError, match="integer"):
        user_demographics(users.assign(user_id=[1.0, 2.0]))
    with pytest.raises(TypeError, match="DataFrame"):
        user_demographics(users.to_dict())


def test_serving_build_and_allocation_code_users_alike():
    from mtrec.experiments.allocation_study import movielens_tables
    from mtrec.serving.build import user_tensors

    ml = load_movielens()
    built, vocab = user_tensors(ml.users)
    tables = movielens_tables(ml.users, ml.items, torch.zeros(len(ml.items), 2))
    assert vocab == int(tables.user["occupation"].max()) + 1
    for key in ("gender", "occupation", "age"):
        assert torch.equal(built[f"user_{key}"], tables.user[key]), key


def test_next_item_equals_build_sequences_of_leave_last_out():
    ratings = load_movielens().ratings
    expected = build_sequences(leave_last_out(ratings), max_len=20, num_items=1700)
    got = ml100k_next_item(max_len=20, num_items=1700)
    for field in dataclasses.fields(expected):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and torch.equal(a, b), field.name
        elif isinstance(a, list):
            assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
        else:
            assert np.array_equal(a, b), field.name
    assert got.train_inputs.shape == (943, 20) and got.num_items == 1700


def test_topk_split_is_the_75_25_per_user_split():
    ratings = load_movielens().ratings
    got = ml100k_topk_split(ratings, seed=3)
    expected = per_user_split(ratings, test_fraction=0.25, seed=3)
    assert got.train.equals(expected.train) and got.test.equals(expected.test)
    assert len(got.valid) == 0
    assert 0.24 < len(got.test) / len(ratings) < 0.26
