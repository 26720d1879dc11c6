"""Synthetic inputs of the benchmarked models' real shapes, moved to the device once.

Random ids in range and random floats, never zeros (zeros hit fast paths real data does not), from
fixed seeds. Click-log batches come from :func:`mtrec.data.synthetic.random_batch`, the one
synthetic batch builder; the text benchmark times real review texts when they are cached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from mtrec.bench.timing import SEED
from mtrec.data import Batch, load_clothing
from mtrec.data.schema import DenseFeature, SparseFeature
from mtrec.data.synthetic import random_batch

log = logging.getLogger(__name__)


def click_features(num_sparse: int = 8, *, embed_dim: int = 16, vocab: int = 1000) -> tuple:
    """The synthetic click-log schema of the multi-task benchmark: sparse ids, two dense values."""
    sparse = tuple(SparseFeature(f"f{i}", vocab, embed_dim) for i in range(num_sparse))
    return (*sparse, DenseFeature("dense", 2))


def click_batch(features: Sequence[Any], batch_size: int, *, num_tasks: int) -> Batch:
    """A seeded click-log batch: ids in ``1..vocab-1``, dense values, (B, T) 0/1 ``labels``.

    The multi-task models read no ``scenario_ids`` (STAR draws its own), so the key is dropped:
    the per-sample baseline would otherwise collate a column the models never read.
    """
    batch = random_batch(features, batch_size, num_tasks=num_tasks, seed=SEED)
    del batch["scenario_ids"]
    return batch


def review_texts(count: int, *, exclude: Sequence[str] = (), seed: int = SEED) -> list[str]:
    """``count`` real review texts (Women's Clothing reviews) when cached, else fixed sentences;
    none of ``exclude`` (e.g. the timed reviews, when others measure accuracy)."""
    try:
        texts = load_clothing().text
        texts = texts[(texts.str.len() > 0) & ~texts.isin(list(exclude))]
        return texts.sample(count, random_state=seed).tolist()
    except Exception as err:  # dataset not fetched on this machine: still real-looking sentences
        log.warning("clothing reviews unavailable (%s); timing fixed review-like sentences", err)
        words = (
            "soft fabric runs small lovely colour fits well returned it too long great "
            "quality the dress was perfect for summer but the zipper broke after"
        ).split()
        rng = np.random.default_rng(seed)
        return [" ".join(rng.choice(words, size=rng.integers(10, 60))) for _ in range(count)]


def move(batch: Batch, device: torch.device) -> Batch:
    """Every tensor of ``batch`` on ``device``."""
    return {k: v.to(device) for k, v in batch.items()}


def moving(loader: Iterable[Batch], device: torch.device) -> Iterator[Batch]:
    """The batches of ``loader``, each moved to ``device`` as it is drawn."""
    for batch in loader:
        yield move(batch, device)
