"""The one Clothing pipeline: fitted on train only, shapes and dtypes, determinism, scenario ids."""

import functools
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from mtrec.data import CLOTHING_SCENARIOS, clothing_multitask, random_split
from mtrec.data.schema import OOV
from mtrec.data.tasks import ClothingFeatures, clothing_departments, clothing_leave_one_out
from mtrec.data.tasks.clothing import TASKS, TITLE_DIM

KEYS = {"item_id", "class_name", "age", "title", "labels", "scenario_ids"}


@functools.cache
def _split():
    return random_split(clothing_multitask(), seed=0)


@functools.cache
def _departments():
    return clothing_departments()


def test_every_transform_is_fitted_on_the_training_rows_only():
    split = _split()
    pipeline = ClothingFeatures().fit(split.train)
    words = re.compile(r"(?u)\b\w\w+\b")  # the TF-IDF's tokens
    train_words = {w for t in split.train.title.str.lower() for w in words.findall(t)}
    test_only = {w for t in split.test.title.str.lower() for w in words.findall(t)} - train_words
    assert test_only and not test_only & set(pipeline.vocabulary)  # test titles add no word
    # the leak this prevents: fitted on every title, the vocabulary gains test-only words
    leaky = TfidfVectorizer(min_df=3).fit(pd.concat([split.train.title, split.test.title]))
    assert set(leaky.vocabulary_) - set(pipeline.vocabulary)
    new_items = set(split.test.item_id) - set(split.train.item_id)
    assert new_items  # the split has items reviewed only in test
    batch = pipeline.transform(split.test, CLOTHING_SCENARIOS)
    unseen = torch.tensor(split.test.item_id.isin(new_items).to_numpy())
    assert (batch["item_id"][unseen] == OOV).all() and (batch["item_id"][~unseen] != OOV).all()


def test_a_title_of_unseen_words_maps_to_zero():
    pipeline = ClothingFeatures().fit(_split().train)
    assert torch.equal(pipeline.title(pd.Series(["zzqx qqzv"])), torch.zeros(1, TITLE_DIM))


def test_splits_have_the_declared_keys_shapes_and_dtypes():
    task = _departments()
    assert task.name == "clothing-departments" and task.task_names == TASKS
    assert task.scenario_names == tuple(CLOTHING_SCENARIOS) and task.num_tasks == 3
    assert [f.name for f in task.features] == ["item_id", "class_name", "age", "title"]
    sizes = [len(p["labels"]) for p in (task.train, task.valid, task.test)]
    assert sizes == [18778, 2347, 2347]
    for part, n in zip((task.train, task.valid, task.test), sizes):
        assert set(part) == KEYS
        assert part["item_id"].dtype == part["class_name"].dtype == torch.int64
        assert part["scenario_ids"].dtype == torch.int64 and part["scenario_ids"].shape == (n,)
        assert part["age"].shape == (n,) and part["age"].dtype == torch.float32
        assert part["title"].shape == (n, TITLE_DIM) and part["title"].dtype == torch.float32
        assert part["labels"].shape == (n, 3) and set(part["labels"].unique().tolist()) == {0, 1}
        for feature in task.features[:2]:
            assert (
                0 <= int(part[feature.name].min()) and part[feature.name].max() < feature.vocab_size
            )
        assert part["scenario_ids"].min() >= 0 and part["scenario_ids"].max() < task.num_scenarios


def test_dense_inputs_are_of_order_one_and_scenario_ids_follow_the_departments():
    task, split = _departments(), _split()
    assert (
        abs(float(task.train["age"].mean())) < 0.05 and 0.9 < float(task.train["age"].std()) < 1.1
    )
    assert 0.3 < float(task.train["title"].std()) < 0.7
    assert np.array_equal(task.test["scenario_ids"].numpy(), split.test.scenario_id.to_numpy())


def test_the_task_is_deterministic():
    again = clothing_departments()
    for name in ("train", "valid", "test"):
        one, two = getattr(_departments(), name), getattr(again, name)
        assert all(torch.equal(one[k], two[k]) for k in KEYS)


def test_leave_one_out_puts_the_held_out_department_last():
    task, base = clothing_leave_one_out("Intimate"), _departments()
    assert task.scenario_names[-1] == "Intimate" and len(task.scenario_names) == 6
    assert set(task.scenario_names) == set(CLOTHING_SCENARIOS)
    names = np.array(task.scenario_names)[task.test["scenario_ids"].numpy()]
    assert list(names) == list(np.array(CLOTHING_SCENARIOS)[base.test["scenario_ids"].numpy()])
    assert torch.equal(task.test["title"], base.test["title"])  # same rows, same features


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="expected one of .*received 'Shoes'"):
        clothing_leave_one_out("Shoes")
    with pytest.raises(RuntimeError, match="not fitted"):
        ClothingFeatures().transform(_split().test, CLOTHING_SCENARIOS)
    pipeline = ClothingFeatures().fit(_split().train)
    with pytest.raises(ValueError, match=r"departments \['Trend'\] have no scenario id"):
        pipeline.transform(_split().test, CLOTHING_SCENARIOS[:-1])
