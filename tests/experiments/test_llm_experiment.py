"""Notebook 15's experiment: leakage-free candidates, aligned prompts, rows of the right shape."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data.loaders import load_movielens
from mtrec.experiments import llm, llm_fewshot, llm_ranking


def test_ranking_cases_hold_the_target_first_and_only_unrated_negatives():
    cases, titles, popularity = llm_ranking.ranking_cases(12, seed=3)
    ratings = load_movielens().ratings
    rated = ratings.groupby("user_id").item_id.agg(set)
    last = ratings.sort_values(["timestamp", "item_id"]).groupby("user_id").item_id.last()
    assert len({c.user_id for c in cases}) == 12
    for case in cases:
        target, negatives = int(case.candidates[0]), case.candidates[1:]
        assert target == last[case.user_id]  # the user's last rating (ties: larger item id)
        assert target not in case.history  # held out of the prompt
        assert len(case.history) == len(rated[case.user_id]) - 1
        assert len(set(negatives)) == llm_ranking.NEGATIVES
        assert not set(negatives.tolist()) & rated[case.user_id]
        assert all(int(i) in titles for i in case.candidates)
    again, _, _ = llm_ranking.ranking_cases(12, seed=3)
    assert [c.candidates.tolist() for c in again] == [c.candidates.tolist() for c in cases]
    assert popularity.sum() < len(ratings)  # counted on the training rows only


def test_hit_ndcg_reads_column_zero_as_the_target_and_ties_pessimistically():
    scores = np.array([[3.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    hr, ndcg = llm_ranking.hit_ndcg(scores)  # ranks 0, 2, 1 (the tie ranks the target last)
    assert hr == 1.0
    assert ndcg == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(3)) / 3)


def test_zero_shot_rows_on_two_users():
    from mtrec.models.llm import load_language_model

    model, tokenizer = load_language_model(device="cpu")
    rows = llm_ranking.zero_shot_rows(model, tokenizer, num_users=2, seed=0)
    assert set(rows.model) == {"smollm2-sum", "smollm2-mean", "popularity", "random"}
    assert set(rows.metric) == {"hr@10", "ndcg@10"} and rows.value.between(0, 1).all()


def test_prompts_follow_the_task_rows():
    data = llm_fewshot.clothing_text()
    for split in ("train", "valid", "test"):
        assert len(data.prompts[split]) == len(getattr(data.task, split)["labels"])
    labels = data.labels("test", data.test_rows)
    assert labels.shape == (llm_fewshot.TEST_ROWS,) and set(np.unique(labels)) <= {0.0, 1.0}
    assert len(set(data.valid_rows)) == llm_fewshot.VALID_ROWS


def test_training_rows_are_nested_per_seed_and_differ_between_seeds():
    small, large = llm_fewshot.training_rows(64, 0), llm_fewshot.training_rows(256, 0)
    assert (large[:64] == small).all()
    assert not (llm_fewshot.training_rows(64, 1) == small).all()
    assert [llm_fewshot.lm_epochs(n) for n in (64, 256, 1024)] == [10, 6, 2]


def test_recorded_reads_only_this_experiments_rows(tmp_path):
    rows = pd.DataFrame({
        "dataset": ["clothing", "clothing", "ml-100k", "ml-100k"],
        "model": ["mmoe@64", "mmoe", "popularity", "popularity"],
        "scenario": "all", "task": ["recommended", "recommended", "next-item-100", "next-item"],
        "metric": ["auc", "auc", "hr@10", "hr@10"], "value": [0.7, 0.75, 0.3, 0.05],
        "std": 0.01, "seeds": 3, "split": "test", "commit": "x"})  # fmt: skip
    path = tmp_path / "quality.csv"
    rows.to_csv(path, index=False)
    got = llm.recorded(path)
    assert got.model.tolist() == ["mmoe@64", "popularity"]
    assert torch.tensor(got.value.tolist()).allclose(torch.tensor([0.7, 0.3]))


def test_unknown_item_ids_are_named():
    case = llm_ranking.RankingCase(1, (1, 2), np.array([3, 99999]))
    with pytest.raises(ValueError, match=r"item ids \[99999\] have no title"):
        llm_ranking.language_model_scores(None, None, case, {1: "a", 2: "b", 3: "c"})
