"""The small MLP / ID-only student: shapes, learning, masked BCE against torch, bad config."""

import pytest
import torch
import torch.nn.functional as F

from mtrec.data import TensorBatcher
from mtrec.data.schema import DenseFeature, SparseFeature
from mtrec.data.synthetic import random_batch
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.nn.losses import masked_bce
from mtrec.train import fit


def _batch(n=64, seed=0):
    """Random ids of the tiny student's schema; labels that depend on them (learnable)."""
    batch = random_batch(StudentConfig.tiny().features, n, seed=seed)
    users, items = batch["user_id"], batch["item_id"]
    watch = ((users + items) % 2).float()
    like = (items % 3 == 0).float()
    return {"user_id": users, "item_id": items, "labels": torch.stack([watch, like], dim=1)}


def test_shapes_and_probabilities():
    model = StudentMLP(StudentConfig.tiny())
    batch = _batch()
    assert model(batch).shape == (64, 2)
    assert model.hidden(batch).shape == (64, model.hidden_dim)
    probs = model.predict(batch)
    assert probs.shape == (64, 2) and bool(((probs > 0) & (probs < 1)).all())
    assert probs.grad_fn is None and not probs.requires_grad  # predict runs under no_grad
    assert model.loss(batch).shape == (2,)


def test_loss_decreases_with_fit():
    torch.manual_seed(0)
    model = StudentMLP(StudentConfig.tiny())
    data = _batch(512)
    before = model.loss(data).sum().item()
    fit(model, TensorBatcher(data, 64, shuffle=True), epochs=15, lr=0.02, progress=False)
    assert model.loss(data).sum().item() < 0.7 * before


def test_masked_bce_matches_torch_on_labelled_rows():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(10, 2, generator=g)
    labels = torch.randint(0, 2, (10, 2), generator=g).float()
    labels[[1, 4], 0] = float("nan")
    got = masked_bce(logits, labels)
    keep = ~torch.isnan(labels[:, 0])
    want0 = F.binary_cross_entropy_with_logits(logits[keep, 0], labels[keep, 0])
    want1 = F.binary_cross_entropy_with_logits(logits[:, 1], labels[:, 1])
    torch.testing.assert_close(got, torch.stack([want0, want1]))


def test_dense_features_and_linear_student():
    config = StudentConfig(
        features=(SparseFeature("item_id", 40, 4), DenseFeature("text", 6)),
        task_names=("like",),
        hidden=(),
    )
    model = StudentMLP(config)
    batch = {"item_id": torch.tensor([1, 2]), "text": torch.randn(2, 6)}
    assert model(batch).shape == (2, 1)


def test_bad_config_and_labels_raise():
    features = (SparseFeature("item_id", 40, 4),)
    with pytest.raises(ValueError, match="unique"):
        StudentConfig(features=features, task_names=("a", "a"))
    with pytest.raises(ValueError, match="task_names"):
        StudentConfig(features=features, task_names=())
    with pytest.raises(ValueError, match="dropout"):
        StudentConfig(features=features, task_names=("a",), dropout=1.0)
    with pytest.raises(ValueError, match="labels"):
        masked_bce(torch.zeros(4, 2), torch.zeros(4, 3))
