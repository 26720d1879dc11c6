"""The Adult task: sample, split, encoders and scalers fitted on train only, shapes, determinism."""

import functools

import pytest
import torch

from mtrec.data import load_adult, random_split
from mtrec.data.schema import OOV
from mtrec.data.tasks import adult_income
from mtrec.data.tasks.adult import DENSE, SPARSE, TASKS


@functools.cache
def _task():
    return adult_income(rows=4000, seed=1)


def test_splits_have_the_declared_keys_shapes_and_dtypes():
    task = _task()
    assert task.task_names == TASKS and task.scenario_names == ("all",)
    assert [f.name for f in task.features] == [*SPARSE, *DENSE]
    sizes = [len(p["labels"]) for p in (task.train, task.valid, task.test)]
    assert sizes == [3200, 400, 400]
    for part, n in zip((task.train, task.valid, task.test), sizes):
        assert set(part) == {*SPARSE, *DENSE, "labels", "scenario_ids"}
        assert all(part[c].dtype == torch.int64 and part[c].shape == (n,) for c in SPARSE)
        assert all(part[c].dtype == torch.float32 and part[c].shape == (n,) for c in DENSE)
        assert part["labels"].shape == (n, 2) and torch.equal(
            part["scenario_ids"], torch.zeros(n).long()
        )
        for feature in task.features[: len(SPARSE)]:
            assert part[feature.name].max() < feature.vocab_size


def test_scalers_and_encoders_are_fitted_on_the_training_rows_only():
    task = _task()
    for c in DENSE:  # standardised with the training mean and std
        assert (
            abs(float(task.train[c].mean())) < 1e-4 and abs(float(task.train[c].std()) - 1) < 1e-3
        )
    split = random_split(load_adult().sample(4000, random_state=1), seed=0)
    unseen = ~split.test.native_country.isin(split.train.native_country.dropna())
    assert torch.equal(task.test["native_country"] == OOV, torch.tensor(unseen.to_numpy()))


def test_the_task_is_deterministic_and_the_seed_draws_the_sample():
    again = adult_income(rows=4000, seed=1)
    assert all(torch.equal(_task().test[k], again.test[k]) for k in again.test)
    other = adult_income(rows=4000, seed=2)
    assert not torch.equal(_task().test["age"], other.test["age"])


def test_bad_row_counts_say_what_was_expected():
    with pytest.raises(ValueError, match="at most the 48,842 rows"):
        adult_income(rows=10**6)
