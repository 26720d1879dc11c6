"""The recommender's config and the tensors it is built from, on small hand-made frames."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data import ML_SCENARIOS
from mtrec.data.tasks.movielens import AGE_CENTRE, AGE_SCALE
from mtrec.models.multitask.mmoe import MMoE
from mtrec.serving.build import (
    RecommenderConfig,
    features,
    history_tensors,
    item_profiles,
    mmoe_config,
    scenario_ids,
    text_projection,
    training_rows,
    user_tensors,
)

ITEMS = pd.DataFrame({
    "item_id": [10, 20, 30, 40],
    "title": ["A (1990)", "B (1991)", "C (1992)", "D (1993)"],
    "genres": ["Comedy", "Horror|Thriller", "Action", "Drama|Comedy"],
    "scenario": ["comedy", "thriller", "action", "drama"],
})  # fmt: skip
USERS = pd.DataFrame({"user_id": [1, 3], "gender": ["F", "M"], "occupation": ["artist", "none"],
                      "age": [35, 47]})  # fmt: skip
RATINGS = pd.DataFrame({"user_id": [1, 1, 3, 3, 3], "item_id": [20, 10, 10, 30, 40],
                        "rating": [5, 2, 4, 1, 3], "timestamp": [2, 1, 5, 6, 7]})  # fmt: skip
SMALL = RecommenderConfig(scenarios=("comedy", "thriller", "action", "drama"), tasks=("watch",))


def ordered() -> pd.DataFrame:
    return RATINGS.sort_values(["user_id", "timestamp", "item_id"], kind="stable")


def test_movielens_config_is_the_former_constants():
    config = RecommenderConfig.movielens()
    assert config.scenarios == tuple(ML_SCENARIOS)
    assert config.tasks == ("watch", "like") and config.text_dim == 32
    assert config.task_table == {s: ("watch",) if s == "family" else ("watch", "like")
                                 for s in ML_SCENARIOS}  # fmt: skip
    assert RecommenderConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert SMALL.task_table == {s: ("watch",) for s in SMALL.scenarios}  # None: every task


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scenarios": ("Comedy", "drama")}, "lower-case names"),
        ({"scenarios": ("drama", "drama")}, "distinct"),
        ({"tasks": ("watch", "click")}, r"tasks must be distinct names from \['watch', 'like'\]"),
        ({"task_table": {"comedy": ("watch",)}}, "scenarios without a row"),
        ({"text_dim": 0}, "text_dim must be an int >= 1"),
    ],
)
def test_bad_configs_are_clear_errors(overrides, message):
    base = {"scenarios": ("comedy", "drama"), "tasks": ("watch", "like")}
    with pytest.raises(ValueError, match=message):
        RecommenderConfig(**{**base, **overrides})


def test_item_profiles_and_scenario_ids():
    assert item_profiles(ITEMS)[1] == "B (1991) | Horror, Thriller"
    assert scenario_ids(ITEMS, SMALL).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"missing from the config \['drama'\]"):
        scenario_ids(ITEMS, RecommenderConfig(scenarios=("comedy", "thriller", "action"),
                                              tasks=("watch",)))  # fmt: skip
    with pytest.raises(ValueError, match=r"without items .* \['family'\]"):
        scenario_ids(ITEMS, RecommenderConfig(scenarios=(*SMALL.scenarios, "family"),
                                              tasks=("watch",)))  # fmt: skip


def test_text_projection_has_unit_std_and_checks_its_width():
    torch.manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(40, 12), dim=1)
    text = text_projection(embeddings, 5)
    assert text.shape == (40, 5) and text.dtype == torch.float32
    torch.testing.assert_close(text.std(), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"text_dim must be in 1\.\.12"):
        text_projection(embeddings, 13)


def test_user_and_history_tensors():
    demo, occupations = user_tensors(USERS)
    assert demo["user_gender"].tolist() == [0, 2, 0, 1]  # indexed by user id, 0 = unknown
    assert occupations == 3 and demo["user_occupation"][[1, 3]].min() >= 1  # 0 is OOV
    ages = (torch.tensor([35.0, 47.0]) - AGE_CENTRE) / AGE_SCALE  # the shared ML coding
    torch.testing.assert_close(demo["user_age"][[1, 3]], ages)
    history = history_tensors(ordered(), ITEMS)
    assert history["history_users"].tolist() == [1, 3]
    assert history["history_indptr"].tolist() == [0, 2, 5]
    assert history["history_rows"].tolist() == [0, 1, 0, 2, 3]  # oldest first, as item rows


def test_training_rows_label_the_configured_tasks():
    rows = training_rows(ordered(), ITEMS, ("like", "watch"), seed=0)
    n = len(RATINGS)
    assert rows["labels"].shape[1] == 2 and len(rows["user_row"]) == len(rows["labels"])
    assert rows["labels"][:n, 1].tolist() == [1.0] * n  # every rating is a watch
    assert rows["labels"][:n, 0].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]  # rating >= 4
    assert rows["labels"][n:].sum() == 0  # sampled negatives
    rated = set(zip(RATINGS.user_id, RATINGS.item_id.map(dict(zip(ITEMS.item_id, range(4))))))
    negatives = zip(rows["user_row"][n:].tolist(), rows["item_row"][n:].tolist())
    assert not rated & set(negatives)  # no negative the user rated
    again = training_rows(ordered(), ITEMS, ("like", "watch"), seed=0)
    assert all(torch.equal(rows[k], again[k]) for k in rows)  # seeded


def test_features_feed_the_mmoe():
    demo, occupations = user_tensors(USERS)
    state = {**demo, "item_scenarios": scenario_ids(ITEMS, SMALL), "item_text": torch.randn(4, 3)}
    config = RecommenderConfig(scenarios=SMALL.scenarios, tasks=("watch", "like"), text_dim=3)
    rows = training_rows(ordered(), ITEMS, config.tasks, seed=0)
    batch = features(rows, state)
    assert batch["item_id"].min() >= 1 and batch["scenario"].min() >= 1  # 0 stays OOV
    assert batch["item_text"].shape == (len(rows["item_row"]), 3)
    model = MMoE(mmoe_config(config, num_users=4, num_items=5, occupations=occupations))
    assert model(batch).shape == (len(rows["item_row"]), 2)
    assert torch.isfinite(model.loss(batch)).all()
    assert np.isclose(float(batch["age"][0]), (35 - AGE_CENTRE) / AGE_SCALE)  # user 1, age 35
