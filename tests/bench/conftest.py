"""A toy benchmark case: a (B, 6) → (B, 2) linear model, cheap to time on any machine."""

import pytest
import torch
from torch import nn

from mtrec import bench


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 2)

    def loss(self, batch):
        return nn.functional.binary_cross_entropy_with_logits(
            self.linear(batch["x"]), batch["labels"], reduction="none"
        ).mean(0)

    def predict(self, batch):
        return torch.sigmoid(self.linear(batch["x"]))


def _toy_built(batch_size):
    return bench.Built(
        _Toy(), {"x": torch.randn(batch_size, 6), "labels": torch.ones(batch_size, 2)}
    )


@pytest.fixture
def toy_built():
    """Batch size → the toy model and its batch."""
    return _toy_built


@pytest.fixture
def toy_case():
    return bench.Case("toy", _toy_built, (4, 16), (4,))


@pytest.fixture
def cpu_context():
    cpu = torch.device("cpu")
    return bench.Context(cpu, bench.environment(cpu, ""), bench.Settings(warmup=1, repeats=3), 10.0)
