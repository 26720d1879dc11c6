import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.esmm import ESMM, ESMMConfig


def test_shapes_loss_and_nan_masking(mtl):
    torch.manual_seed(0)
    mtl.check_shapes(ESMM(ESMMConfig.tiny()), 2)
    mtl.check_loss_decreases(ESMM(ESMMConfig.tiny()), 2)
    mtl.check_nan_labels_masked(ESMM(ESMMConfig.tiny()), 2)
    mtl.check_bad_labels(ESMM(ESMMConfig.tiny()), 2)


def test_ctcvr_is_ctr_times_cvr_and_loss_matches_bce_on_probabilities():
    torch.manual_seed(0)
    model = ESMM(ESMMConfig.tiny()).eval()
    batch = random_batch(tiny_features(), 32)
    batch["labels"][:, 1] *= batch["labels"][:, 0]  # conversion implies click
    probs = model.predict(batch)
    torch.testing.assert_close(probs[:, 1], probs[:, 0] * model.predict_cvr(batch))
    expected = torch.stack(
        [F.binary_cross_entropy(probs[:, t], batch["labels"][:, t]) for t in range(2)]
    )
    torch.testing.assert_close(model.loss(batch), expected, rtol=1e-4, atol=1e-5)


def test_predict_and_predict_cvr_keep_no_graph(mtl):
    model = ESMM(ESMMConfig.tiny())
    batch = random_batch(tiny_features(), 8)
    mtl.check_predict_without_grad(model, batch)
    mtl.check_predict_without_grad(model, batch, "predict_cvr")


def test_stable_for_extreme_logits():
    model = ESMM(ESMMConfig.tiny())
    with torch.no_grad():
        model.towers.biases[-1].fill_(40.0)  # pCTR, pCVR → 1
    batch = random_batch(tiny_features(), 8)
    assert bool(torch.isfinite(model.loss(batch)).all())


def test_bad_config():
    with pytest.raises(ValueError, match="tower_hidden"):
        ESMMConfig.tiny(tower_hidden=())
