"""Notebook 04's two-tower experiment on a small synthetic rating table."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.experiments.multimodal import (
    KINDS,
    evaluate_two_tower,
    same_class_hit_rate,
    threads,
    topk_split,
    train_two_tower,
)


def _ratings(num_users=30, num_items=25, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(1, num_users + 1)
            for i in rng.choice(np.arange(1, num_items), 8, replace=False)]  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


def _features(num_items=25):
    g = torch.Generator().manual_seed(1)
    return {"text": torch.randn(num_items, 8, generator=g),
            "image": torch.randn(num_items, 5, generator=g)}  # fmt: skip


def test_split_hides_every_rated_item_but_the_test_positives():
    rated = _ratings()
    positives = rated.iloc[::2]
    split = topk_split(positives, rated, seed=0)
    assert len(split.seen) == len(rated) - len(split.test)
    assert split.seen.merge(split.test).empty


@pytest.mark.parametrize("kind", KINDS)
def test_train_and_evaluate_every_kind(kind):
    rated = _ratings()
    split = topk_split(rated, rated, seed=0)
    with threads(1):
        model = train_two_tower(kind, split, _features(), num_users=31, num_items=25, epochs=2,
                                seed=0)  # fmt: skip
    metrics = evaluate_two_tower(model, split)
    assert set(metrics) == {"ndcg@10", "recall@10"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_training_is_reproducible():
    rated = _ratings()
    split = topk_split(rated, rated, seed=1)
    runs = [evaluate_two_tower(train_two_tower("attention", split, _features(), num_users=31,
                                               num_items=25, epochs=2, seed=3), split)
            for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1]


def test_same_class_hit_rate_limits():
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1], [0.1, 1]]))
    assert same_class_hit_rate(vectors, np.array([0, 0, 1, 1]), 1) == 1.0
    assert same_class_hit_rate(vectors, np.array([0, 1, 0, 1]), 1) == 0.0
    with pytest.raises(ValueError, match="k"):
        same_class_hit_rate(vectors, np.array([0, 0, 1, 1]), 4)


def test_threads_restores_the_setting():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
