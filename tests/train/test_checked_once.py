"""Value checks run once per batcher (over all its rows), not on every training step.

A batch of a TensorBatcher carries its origin (mtrec.checks.CheckedBatch); the id, NaN, label
and scenario checks then scan the whole data on the first batch and never again. Plain dicts keep
the per-call checks and the same errors.
"""

import pytest
import torch

from mtrec.checks import CheckedBatch, checked_once
from mtrec.data import TensorBatcher
from mtrec.data.batching import to_device
from mtrec.data.schema import DenseFeature, SparseFeature
from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig
from mtrec.nn.layers import FeatureEmbedding
from mtrec.train import fit
from mtrec.train.trainer import _shard


def _embedding_and_data():
    emb = FeatureEmbedding([SparseFeature("user", 5, 4), DenseFeature("price", 1)])
    data = {"user": torch.tensor([1, 2, 3, 4, 1, 2]), "price": torch.arange(6.0)}
    return emb, data


def test_feature_checks_scan_the_whole_data_once(monkeypatch):
    emb, data = _embedding_and_data()
    batcher = TensorBatcher(data, 2, shuffle=True)
    calls = []
    whole = emb._check_whole
    monkeypatch.setattr(emb, "_check_whole", lambda d: (calls.append(len(d["user"])), whole(d)))
    for _ in range(3):  # three epochs of three batches
        for batch in batcher:
            assert isinstance(batch, CheckedBatch) and emb(batch).shape == (2, 5)
    assert calls == [6]  # once, over all six rows
    with pytest.raises(ValueError, match=r"feature 'user' has ids outside 0..4: got \[7\]"):
        emb({"user": torch.tensor([7]), "price": torch.tensor([1.0])})  # a plain dict: per call


def test_a_bad_row_anywhere_is_refused_on_the_first_batch():
    emb, data = _embedding_and_data()
    late_id = TensorBatcher({**data, "user": torch.tensor([1, 2, 3, 4, 1, 9])}, 2)
    with pytest.raises(ValueError, match=r"ids outside 0..4: got \[9\]"):
        emb(next(iter(late_id)))  # rows 0-1 are fine; row 5 is not
    late_nan = TensorBatcher({**data, "price": torch.tensor([0, 1, 2, 3, 4, float("nan")])}, 2)
    with pytest.raises(ValueError, match="feature 'price'.*NaN"):
        emb(next(iter(late_nan)))


def test_two_models_on_one_batcher_each_get_their_own_check():
    _, data = _embedding_and_data()
    batch = next(iter(TensorBatcher(data, 2)))
    FeatureEmbedding([SparseFeature("user", 10, 4)])(batch)  # vocabulary 10: fine
    with pytest.raises(ValueError, match="outside 0..2"):
        FeatureEmbedding([SparseFeature("user", 3, 4)])(batch)  # vocabulary 3: row 2 has id 3
    assert checked_once({"user": data["user"]}, "key", lambda d: None) is False  # plain dict


def test_moving_and_sharding_keep_a_batch_checked():
    _, data = _embedding_and_data()
    batch = next(iter(TensorBatcher(data, 4)))
    assert isinstance(to_device(batch, torch.device("cpu")), CheckedBatch)
    shard = _shard(batch, 1, 2)
    assert isinstance(shard, CheckedBatch) and shard.origin is batch.origin
    assert shard["user"].tolist() == [2, 4]


def test_training_a_scenario_model_checks_labels_and_scenarios_once():
    torch.manual_seed(0)
    model = STAR(STARConfig.tiny(num_tasks=1, num_scenarios=3))
    data = random_batch(tiny_features(), 64, num_tasks=1, num_scenarios=3)
    batcher = TensorBatcher(data, 16, shuffle=True)
    history = fit(model, batcher, epochs=2, progress=False)
    assert len(history.epochs) == 2
    assert {("labels",), ("scenario_ids", 3)} <= batcher.checked.passed
    bad_labels = {**data, "labels": data["labels"].clone()}
    bad_labels["labels"][-1, 0] = 4.0  # a rating, in the last row only
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fit(model, TensorBatcher(bad_labels, 16), epochs=1, progress=False)
    bad_scenario = {**data, "scenario_ids": data["scenario_ids"].clone()}
    bad_scenario["scenario_ids"][-1] = 5
    with pytest.raises(ValueError, match=r"scenario ids \[5\] are outside the trained range"):
        fit(model, TensorBatcher(bad_scenario, 16), epochs=1, progress=False)


def test_sasrec_batches_check_their_ids_once():
    model = SASRec(SASRecConfig.tiny())
    n = model.config.num_items
    items = torch.randint(1, n + 1, (8, 5))
    batcher = TensorBatcher({"item_ids": items, "targets": items.roll(-1, dims=1)}, 4)
    assert torch.isfinite(model.loss(next(iter(batcher))))
    assert ("sasrec", n) in batcher.checked.passed
    targets = items.roll(-1, dims=1)
    targets[-1, -1] = n + 3
    with pytest.raises(ValueError, match="targets has ids outside"):
        model.loss(next(iter(TensorBatcher({"item_ids": items, "targets": targets}, 4))))
