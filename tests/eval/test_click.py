"""Click-model evaluation (random split, scenario × task): the table and its checks."""

import pytest
import torch
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.schema import DenseFeature
from mtrec.data.synthetic import random_batch
from mtrec.eval.click import evaluate
from mtrec.train import fit


class TwoTask(nn.Module):
    """A linear two-task click model (tests/test_train.py::TwoTask with a no-grad predict)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def loss(self, batch):
        logits = self.linear(batch["x"])
        per = nn.functional.binary_cross_entropy_with_logits(
            logits, batch["labels"], reduction="none"
        )
        return per.mean(dim=0)  # (T,)

    @torch.no_grad()
    def predict(self, batch):
        return torch.sigmoid(self.linear(batch["x"]))


def _data(n=600, seed=0):
    x = random_batch([DenseFeature("x", 4)], n, seed=seed)["x"]  # (n, 4)
    labels = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0)], dim=1).float()
    return {"x": x, "labels": labels, "scenario_ids": (x[:, 3] > 0).long()}


def test_evaluate_returns_the_scenario_task_table():
    model = TwoTask()
    fit(model, TensorBatcher(_data(), 64), epochs=3, lr=0.05, progress=False)
    table = evaluate(model, TensorBatcher(_data(seed=2), 128), task_names=["a", "b"],
                     scenario_names=["s0", "s1"])  # fmt: skip
    auc = table[(table.metric == "auc") & (table.scenario == "all")].set_index("task").value
    assert auc["a"] > 0.9 and auc["b"] > 0.8
    assert set(table.scenario) == {"all", "s0", "s1"}


def test_task_names_must_match_the_predictions():
    with pytest.raises(ValueError, match=r"\(N, 3\) for tasks"):
        evaluate(TwoTask(), [_data(16)], task_names=["a", "b", "c"])
