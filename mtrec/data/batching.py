"""Tensor batching: batches are index slices of whole-column tensors, never per-sample Python."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import CheckedBatch, CheckedData, check_int, check_tensor, same_origin

Batch = dict[str, Tensor]
"""A batch: feature name → (B, ...) tensor, plus ``"labels"`` (B, T) and ``"scenario_ids"`` (B,)
for click models (see :mod:`mtrec.models` for each family's keys)."""


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` with every tensor moved to ``device`` (non-blocking; a no-op where it already is).

    A :class:`~mtrec.checks.CheckedBatch` stays one: moving does not change its values."""
    return same_origin(batch, {k: v.to(device, non_blocking=True) for k, v in batch.items()})


def non_finite_keys(batch: Batch) -> list[str]:
    """Keys of ``batch`` whose floating-point tensor holds NaN or infinity (for diagnostics)."""
    return [
        key
        for key, value in batch.items()
        if isinstance(value, Tensor)
        and value.is_floating_point()
        and value.numel()
        and not bool(torch.isfinite(value).all())
    ]


def frame_to_tensors(frame: pd.DataFrame, columns: Mapping[str, torch.dtype]) -> dict[str, Tensor]:
    """Turn the named columns of ``frame`` into tensors of the given dtypes (one copy each).

    Integer (id) columns must hold whole numbers: a float column is accepted when every value is
    integral (ids read as floats), while NaN (which would become -9223372036854775808) and
    fractions (which would be truncated) raise ``ValueError`` naming the column.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}; it has {list(frame.columns)}")
    return {c: _column_tensor(frame[c], c, dtype) for c, dtype in columns.items()}


def _column_tensor(column: pd.Series, name: str, dtype: torch.dtype) -> Tensor:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"column {name!r}: dtype must be a torch.dtype, got {dtype!r}")
    values = column.to_numpy()
    if values.dtype == object or values.dtype.kind in "OUSMm":
        raise TypeError(
            f"column {name!r} holds {values.dtype} values (e.g. {values[:2].tolist()}), not "
            "numbers; encode categories to ids first (CategoryEncoder)"
        )
    wants_int = not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    if wants_int and values.dtype.kind == "f":
        nan = np.isnan(values)
        if nan.any():
            raise ValueError(
                f"column {name!r} has {int(nan.sum())} missing values (NaN) but is converted to "
                f"{dtype} ids; fill them first, e.g. frame[{name!r}].fillna(0) for the OOV id 0, "
                "or drop those rows"
            )
        fractional = ~np.isfinite(values) | (values != np.round(values))
        if fractional.any():
            raise ValueError(
                f"column {name!r} must hold whole numbers to become {dtype} ids, got "
                f"{values[fractional][:3].tolist()}; ids are not measurements: encode the column "
                "(CategoryEncoder) or convert it with a dtype of torch.float32"
            )
    return torch.tensor(values, dtype=dtype)


class TensorBatcher:
    """Iterate over aligned tensors in mini-batches by slicing a (shuffled) index.

    Args:
        tensors: ``dict[str, Tensor]``, all with the same first dimension N.
        batch_size: rows per batch.
        shuffle: reshuffle on every ``iter()`` with a generator seeded by ``seed`` + epoch.
        seed: base seed of the shuffling.
        drop_last: drop a final short batch.
        device: move all tensors there once, up front.
        group_ids: optional (N,) integer group of each row; a batch then holds rows of one group
            only (bucketing: e.g. group by target length, so short targets are not padded to
            the longest in the batch), and the order of the batches is shuffled.

    Each batch is a ``dict[str, Tensor]`` of shape (B, ...) per key, tagged as sliced from
    these tensors (:class:`~mtrec.checks.CheckedBatch`): the models' value checks (ids in range,
    no NaN, 0/1 labels) then run once over all rows on the first batch, not on every step.
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
        group_ids: Tensor | None = None,
    ) -> None:
        if not isinstance(tensors, Mapping):
            raise TypeError(
                f"tensors must be a dict[str, Tensor], got {type(tensors).__name__}; "
                "e.g. TensorBatcher({'user': users, 'labels': labels}, 256)"
            )
        if not tensors:
            raise ValueError("TensorBatcher needs at least one tensor")
        for key, value in tensors.items():
            check_tensor(value, f"tensors[{key!r}]")
            if value.ndim == 0:
                raise ValueError(
                    f"tensors[{key!r}] is a 0-D scalar; every tensor needs a first (row) "
                    "dimension N, e.g. value.reshape(1)"
                )
        batch_size = check_int(batch_size, "batch_size", min=1)
        sizes = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all tensors must have the same first dimension, got {sizes}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors = {k: v.to(device) if device is not None else v for k, v in tensors.items()}
        self.checked = CheckedData(self.tensors)
        self.num_rows = next(iter(sizes.values()))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.group_counts: Tensor | None = None
        if group_ids is not None:
            check_tensor(group_ids, "group_ids")
            if group_ids.shape != (self.num_rows,) or group_ids.is_floating_point():
                raise ValueError(
                    f"group_ids must be an integer tensor of shape ({self.num_rows},), one group "
                    f"per row; got {group_ids.dtype} of shape {tuple(group_ids.shape)}"
                )
            self.group_ids = group_ids.cpu()
            self.group_counts = torch.unique(self.group_ids, return_counts=True)[1]

    def _num_batches(self, rows: int) -> int:
        full, rest = divmod(rows, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __len__(self) -> int:
        if self.group_counts is None:
            return self._num_batches(self.num_rows)
        return sum(self._num_batches(int(c)) for c in self.group_counts)

    def _grouped(self, order: Tensor, generator: torch.Generator | None) -> list[Tensor]:
        """Index tensors of the batches: ``order`` stably sorted by group, cut per group."""
        order = order[torch.argsort(self.group_ids[order], stable=True)]
        batches = []
        for rows in torch.split(order, self.group_counts.tolist()):  # a few groups
            batches += list(torch.split(rows, self.batch_size))[: self._num_batches(len(rows))]
        if generator is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches

    def _batch(self, tensors: dict[str, Tensor]) -> CheckedBatch:
        return CheckedBatch(tensors, self.checked)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        device = next(iter(self.tensors.values())).device
        generator = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=generator)
        else:
            order = None
        self.epoch += 1
        if self.group_counts is not None:
            base = order if order is not None else torch.arange(self.num_rows)
            for index in self._grouped(base, generator):
                index = index.to(device)
                yield self._batch({k: v.index_select(0, index) for k, v in self.tensors.items()})
            return
        order = order.to(device) if order is not None else None  # once, not per batch
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if order is None:
                yield self._batch(
                    {k: v[start : start + self.batch_size] for k, v in self.tensors.items()}
                )
            else:
                index = order[start : start + self.batch_size]
                yield self._batch({k: v.index_select(0, index) for k, v in self.tensors.items()})
