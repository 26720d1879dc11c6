"""The generic trainer: early stopping on validation, best state restored, NaN guarded."""

import pytest
import torch
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.schema import DenseFeature
from mtrec.data.synthetic import random_batch
from mtrec.train import fit


class TwoTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def loss(self, batch):
        logits = self.linear(batch["x"])
        per = nn.functional.binary_cross_entropy_with_logits(
            logits, batch["labels"], reduction="none"
        )
        return per.mean(dim=0)  # (T,)

    def predict(self, batch):
        return torch.sigmoid(self.linear(batch["x"]))


def _data(n=600, seed=0):
    x = random_batch([DenseFeature("x", 4)], n, seed=seed)["x"]  # (n, 4)
    labels = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0)], dim=1).float()
    return {"x": x, "labels": labels, "scenario_ids": (x[:, 3] > 0).long()}


def test_fit_learns_and_restores_the_best_validation_state():
    train, valid = _data(), _data(seed=1)
    model = TwoTask()
    scores = []

    def valid_fn(m):
        score = -m.loss(valid).sum().item()
        scores.append(score)
        return score

    history = fit(model, TensorBatcher(train, 64, shuffle=True), valid_fn=valid_fn, epochs=8,
                  lr=0.05, progress=False)  # fmt: skip
    frame = history.frame()
    assert frame.train_loss.iloc[-1] < frame.train_loss.iloc[0]
    assert history.best_score == max(scores)
    assert valid_fn(model) == pytest.approx(history.best_score, abs=1e-6)  # best state restored


def test_fit_stops_early_without_improvement():
    model = TwoTask()
    history = fit(model, TensorBatcher(_data(), 64), valid_fn=lambda m: 0.0, epochs=20, patience=2,
                  progress=False)  # fmt: skip
    assert len(history.epochs) == 3


def test_fit_refuses_models_without_loss_and_nan_losses():
    with pytest.raises(TypeError, match="loss"):
        fit(nn.Linear(2, 2), [], progress=False)

    class Broken(TwoTask):
        def loss(self, batch):
            return super().loss(batch) * float("nan")

    with pytest.raises(FloatingPointError, match="lower lr"):
        fit(Broken(), TensorBatcher(_data(), 64), epochs=1, progress=False)
