"""A small generic trainer: ``fit`` knows nothing of model types.

Contract with models
--------------------
* ``model.loss(batch) -> Tensor``: a scalar, or a (T,) vector of per-task losses that the
  ``weighting`` module (see :mod:`mtrec.weighting`) combines into one scalar. A model that wants
  rows with a NaN label left out of a task's loss does the masking itself.
* ``model.predict(batch) -> Tensor``: (B, T) probabilities (or scores) under ``torch.no_grad()``,
  used by :func:`mtrec.eval.click.evaluate` (``fit`` itself never calls it).
* ``valid_fn(model) -> float``: the model-selection score on the *validation* split; ``fit``
  keeps the best state by it and stops after ``patience`` epochs without improvement. The test
  split never enters ``fit``.

Multi-process: under ``torchrun`` (``WORLD_SIZE`` > 1) ``fit`` joins the process group (gloo on
CPU, nccl on CUDA), wraps the model in DistributedDataParallel, and gives each rank a strided
share of every batch, so the averaged gradient equals the single-process one.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm  # plain text bars: tqdm.auto warns in a notebook without ipywidgets

from mtrec.data.batching import Batch
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)


@dataclass
class History:
    """What ``fit`` saw, one dict per epoch (train_loss, valid, seconds, samples_per_s)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.epochs)


class _LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss`` so DistributedDataParallel sees the call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> Tensor:
        return self.model.loss(batch)


def distributed_context() -> tuple[int, int]:
    """(rank, world_size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _shard(batch: Batch, rank: int, world: int) -> Batch:
    return batch if world == 1 else {k: v[rank::world] for k, v in batch.items()}


def fit(
    model: nn.Module,
    train_batches: Iterable[Batch],
    *,
    valid_fn: Callable[[nn.Module], float] | None = None,
    mode: str = "max",
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    weighting: nn.Module | None = None,
    patience: int = 3,
    grad_clip: float | None = None,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train_batches`` with validation early stopping; restore the best state.

    Args:
        model: any ``nn.Module`` with ``loss(batch)``.
        train_batches: re-iterable batches (e.g. :class:`mtrec.data.TensorBatcher`).
        valid_fn: validation score of the model (higher is better when ``mode="max"``).
        weighting: combines a (T,) loss vector into a scalar; default: sum.
        amp: bf16 autocast; default on for CUDA only.
        seed: seeds everything once before training.

    Returns:
        History with per-epoch train loss, validation score and throughput.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if not hasattr(model, "loss"):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; fit() needs one")
    set_seed(seed)
    rank, world = distributed_context()
    device = get_device(device) if not isinstance(device, torch.device) else device
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    model.to(device)
    if weighting is not None:
        weighting.to(device)
    use_amp = (device.type == "cuda") if amp is None else amp
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_amp else nullcontext
    )
    step_module: nn.Module = _LossModule(model)
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        step_module = nn.parallel.DistributedDataParallel(step_module, device_ids=ids)
    params = list(model.parameters()) + (list(weighting.parameters()) if weighting else [])
    optimizer = optimizer or torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    history = History()
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    best_state: dict[str, Tensor] | None = None
    stale = 0
    bar = tqdm(range(epochs), desc=type(model).__name__, disable=not progress or rank != 0)
    for epoch in bar:
        model.train()
        start, total, count, rows = time.perf_counter(), 0.0, 0, 0
        for batch in train_batches:
            batch = _to(_shard(batch, rank, world), device)
            with autocast():
                losses = step_module(batch)
            losses = losses.float()
            loss = (
                losses
                if losses.ndim == 0
                else (weighting(losses) if weighting is not None else losses.sum())
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch}; lower lr or check inputs for NaN"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += loss.item()
            count += 1
            rows += next(iter(batch.values())).shape[0] * world
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "seconds": seconds,
            "samples_per_s": rows / seconds if seconds > 0 else math.nan,
        }
        if valid_fn is not None:
            model.eval()
            with torch.no_grad():
                score = float(valid_fn(model))
            record["valid"] = score
            if history.best_epoch < 0 or better(score, history.best_score):
                history.best_epoch, history.best_score, stale = epoch, score, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        history.epochs.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k in ("train_loss", "valid")})
        if valid_fn is not None and stale >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(history: History) -> dict[str, Any]:
    """A one-line summary of a History for notebooks."""
    return {
        "epochs_run": len(history.epochs),
        "best_epoch": history.best_epoch,
        "best_valid": history.best_score,
        "samples_per_s": float(np.median([e["samples_per_s"] for e in history.epochs])),
    }
