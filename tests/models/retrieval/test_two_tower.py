"""TwoTower: shapes for every item tower, loss decreases, scores agree with forward, clear errors."""

import pytest
import torch

from mtrec.extractors import FUSIONS
from mtrec.models.retrieval.two_tower import TwoTower, TwoTowerConfig


def _features(num_items=7):
    g = torch.Generator().manual_seed(0)
    return {"text": torch.randn(num_items, 6, generator=g),
            "image": torch.randn(num_items, 3, generator=g)}  # fmt: skip


def _model(tower):
    config = TwoTowerConfig.tiny(tower)
    if tower == "id":
        return TwoTower(config)
    return TwoTower(config, features=_features(), fusion=FUSIONS["attention"])


def _batch(size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"user_ids": torch.randint(0, 5, (size,), generator=g),
            "pos_item_ids": torch.randint(0, 3, (size,), generator=g),
            "neg_item_ids": torch.randint(3, 7, (size,), generator=g)}  # fmt: skip


@pytest.mark.parametrize("tower", ["id", "content", "fused"])
def test_shapes_and_scores_match_forward(tower):
    model = _model(tower)
    assert model.item_vectors(torch.arange(7)).shape == (7, 4)
    scores = model.scores()
    assert scores.shape == (5, 7)
    users, items = torch.tensor([0, 4, 2]), torch.tensor([6, 1, 3])
    torch.testing.assert_close(model(users, items), scores[users, items])
    assert model.loss(_batch()).shape == ()


def test_fused_tower_lists_content_then_id_then_media_and_returns_weights():
    model = _model("fused")
    assert model.fusion.modalities == ["text", "id", "image"]
    _, weights = model.item_vectors(torch.arange(7), return_weights=True)
    torch.testing.assert_close(weights.sum(1), torch.ones(7))


@pytest.mark.parametrize("tower", ["id", "content", "fused"])
def test_loss_decreases(tower):
    torch.manual_seed(0)
    model = _model(tower)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = _batch(64)
    first = model.loss(batch).item()
    for _ in range(50):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    assert model.loss(batch).item() < 0.5 * first


def test_features_are_frozen_buffers():
    model = _model("content")
    assert all("feature_" not in name for name, _ in model.named_parameters())
    model.loss(_batch()).backward()
    assert model.feature("text").grad is None


def test_errors_say_what_to_pass():
    with pytest.raises(ValueError, match="item_tower"):
        TwoTowerConfig(5, 7, item_tower="mlp")
    with pytest.raises(ValueError, match=r"features\['text'\]"):
        TwoTower(TwoTowerConfig.tiny("content"))
    with pytest.raises(ValueError, match="fusion"):
        TwoTower(TwoTowerConfig.tiny("fused"), features=_features())
    with pytest.raises(ValueError, match="features"):
        TwoTower(TwoTowerConfig.tiny("content"), features=_features(num_items=3))
    with pytest.raises(ValueError, match="item_ids"):
        _model("id").item_vectors(torch.tensor([7]))
    with pytest.raises(KeyError, match="neg_item_ids"):
        _model("id").loss({"user_ids": torch.tensor([0]), "pos_item_ids": torch.tensor([1])})
