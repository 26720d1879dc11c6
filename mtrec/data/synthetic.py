"""Small synthetic schemas and batches for tests, docs and benchmarks.

``tiny_features`` is the schema every model's ``Config.tiny()`` builds on; ``random_batch``
draws a batch for any declared schema (ids within their vocabulary, 0/1 labels, scenario ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mtrec.checks import check_int
from mtrec.data.schema import DenseFeature, SparseFeature


def tiny_features() -> tuple:
    """A small declared schema for tests and docs: two sparse ids and two dense values."""
    return (SparseFeature("user", 20, 4), SparseFeature("item", 30, 4), DenseFeature("dense", 2))


def random_batch(
    features: Sequence,
    batch_size: int,
    *,
    num_tasks: int = 2,
    num_scenarios: int = 1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """A random batch for ``features`` (ids within vocab), 0/1 "labels" and "scenario_ids"."""
    batch_size = check_int(batch_size, "batch_size", min=0)
    check_int(num_tasks, "num_tasks", min=1)
    check_int(num_scenarios, "num_scenarios", min=1)
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {}
    for f in features:
        if isinstance(f, SparseFeature):
            batch[f.name] = torch.randint(1, f.vocab_size, (batch_size,), generator=g)
        elif isinstance(f, DenseFeature):
            batch[f.name] = torch.randn(batch_size, f.dim, generator=g)
    batch["labels"] = (torch.rand(batch_size, num_tasks, generator=g) < 0.4).float()
    batch["scenario_ids"] = torch.randint(0, num_scenarios, (batch_size,), generator=g)
    return batch
