"""Tensor batching: batches are index slices of whole-column tensors, never per-sample Python."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd
import torch
from torch import Tensor


def frame_to_tensors(frame: pd.DataFrame, columns: Mapping[str, torch.dtype]) -> dict[str, Tensor]:
    """Turn the named columns of ``frame`` into tensors of the given dtypes (one copy each)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}; it has {list(frame.columns)}")
    return {c: torch.tensor(frame[c].to_numpy(), dtype=dtype) for c, dtype in columns.items()}


class TensorBatcher:
    """Iterate over aligned tensors in mini-batches by slicing a (shuffled) index.

    Args:
        tensors: ``dict[str, Tensor]``, all with the same first dimension N.
        batch_size: rows per batch.
        shuffle: reshuffle on every ``iter()`` with a generator seeded by ``seed`` + epoch.
        seed: base seed of the shuffling.
        drop_last: drop a final short batch.
        device: move all tensors there once, up front.

    Each batch is a ``dict[str, Tensor]`` of shape (B, ...) per key.
    """

    def __init__(
        self,
        tensors: Mapping[str, Tensor],
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatcher needs at least one tensor")
        sizes = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all tensors must have the same first dimension, got {sizes}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors = {k: v.to(device) if device is not None else v for k, v in tensors.items()}
        self.num_rows = next(iter(sizes.values()))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(self.num_rows, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        device = next(iter(self.tensors.values())).device
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=generator).to(device)
        else:
            order = None
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if order is None:
                yield {k: v[start : start + self.batch_size] for k, v in self.tensors.items()}
            else:
                index = order[start : start + self.batch_size]
                yield {k: v.index_select(0, index) for k, v in self.tensors.items()}
