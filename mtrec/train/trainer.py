"""A small generic trainer: ``fit`` knows nothing of model types.

Contract with models
--------------------
* ``model.loss(batch) -> Tensor``: a scalar, or a (T,) vector of per-task losses that the
  ``weighting`` module (see :mod:`mtrec.train.weighting`) combines into one scalar. A model that wants
  rows with a NaN label left out of a task's loss does the masking itself.
* ``model.predict(batch) -> Tensor``: (B, T) probabilities (or scores) under ``torch.no_grad()``,
  used by :func:`mtrec.eval.click.evaluate` (``fit`` itself never calls it).
* ``valid_fn(model) -> float``: the model-selection score on the *validation* split; ``fit``
  keeps the best state by it and stops after ``patience`` epochs without improvement. The test
  split never enters ``fit``. A score that is not a finite number (NaN, e.g. the AUC of a
  validation set holding one class only) stops training with a ``ValueError``: it cannot rank
  epochs, and keeping epoch 0 silently would hide the problem.

Failures are loud, never silent: an epoch that sees no batch (an empty batcher, or a one-shot
generator already used up by epoch 0) raises ``ValueError``, and a NaN or infinite training loss
raises :class:`NonFiniteLossError` naming the epoch, the batch and any input holding NaN/inf.

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm  # plain text bars: tqdm.auto warns in a notebook without ipywidgets

from mtrec.checks import check_choice, check_float, check_int, same_origin
from mtrec.data.batching import Batch, non_finite_keys, to_device
from mtrec.utils import get_device, set_seed

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite (also a ``ValueError`` for uniform handling)."""


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


def _shard(batch: Batch, rank: int, world: int) -> Batch:
    if world == 1:
        return batch
    return same_origin(batch, {k: v[rank::world] for k, v in batch.items()})  # still checked


def _loss_error(loss: Tensor, epoch: int, step: int, batch: Batch) -> NonFiniteLossError:
    bad = non_finite_keys(batch)
    cause = (
        f"the batch itself holds NaN/inf in {bad}: clean or impute those inputs (a NaN label "
        "is allowed only where the model masks it)"
        if bad
        else "the inputs are finite, so the optimisation diverged: lower lr (or set grad_clip), "
        "and check feature scales"
    )
    value = loss.item() if loss.numel() == 1 else loss.detach().cpu().tolist()
    return NonFiniteLossError(
        f"loss became {value} at epoch {epoch}, batch {step}; {cause}. Likely causes: "
        "a learning rate too high (lower lr) or NaN inputs"
    )


def _no_batch_error(train_batches: Iterable[Batch], epoch: int) -> ValueError:
    if isinstance(train_batches, Iterator) and epoch > 0:
        return ValueError(
            f"epoch {epoch} got no batch: train_batches is a one-shot iterator "
            f"({type(train_batches).__name__}) that was exhausted after epoch {epoch - 1} "
            "(epochs count from 0); "
            "pass a re-iterable batcher such as mtrec.data.TensorBatcher (or a list of batches) "
            "so every epoch sees the data"
        )
    return ValueError(
        f"epoch {epoch} got no batch: train_batches ({type(train_batches).__name__}) is empty; "
        "pass at least one training row (check the split and that drop_last did not drop the "
        "only batch)"
    )


def _valid_score(valid_fn: Callable[[nn.Module], float], model: nn.Module, epoch: int) -> float:
    raw = valid_fn(model)
    try:
        score = float(raw)
    except (TypeError, ValueError):
        raise TypeError(
            f"valid_fn must return one number (the validation score), got {type(raw).__name__} "
            f"at epoch {epoch}; return e.g. float(auc(labels, probs))"
        ) from None
    if not math.isfinite(score):
        raise ValueError(
            f"the validation score was {score} at epoch {epoch}, so fit cannot tell which epoch "
            "is best. Likely cause: a validation set with one class only (AUC is undefined), "
            "an empty validation set, or NaN predictions. Fix: use a validation split that holds "
            "both classes (a larger or stratified split), or have valid_fn skip undefined tasks "
            "(e.g. np.nanmean over tasks that have both classes)"
        )
    return score


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
    check_choice(mode, "mode", ("max", "min"))
    if not hasattr(model, "loss"):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; fit() needs one")
    if isinstance(train_batches, Mapping):
        raise TypeError(
            "train_batches must yield batches, got one dict of tensors; wrap it: "
            "TensorBatcher(tensors, batch_size) or [batch]"
        )
    if not isinstance(train_batches, Iterable):
        raise TypeError(
            f"train_batches must be an iterable of batches (dict[str, Tensor]), got "
            f"{type(train_batches).__name__}; use mtrec.data.TensorBatcher"
        )
    epochs = check_int(epochs, "epochs", min=1)
    patience = check_int(patience, "patience", min=0)
    check_float(lr, "lr", min=0.0)
    if grad_clip is not None:
        check_float(grad_clip, "grad_clip", min=0.0)
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
        for step, batch in enumerate(train_batches):
            if not isinstance(batch, Mapping):
                raise TypeError(
                    f"each batch must be a dict[str, Tensor], got {type(batch).__name__} at "
                    f"epoch {epoch}, batch {step}; iterate a mtrec.data.TensorBatcher"
                )
            batch = to_device(_shard(batch, rank, world), device)
            with autocast():
                losses = step_module(batch)
            losses = losses.float()
            if weighting is not None and not bool(torch.isfinite(losses).all()):
                raise _loss_error(losses, epoch, step, batch)  # before the weighting sees it
            loss = (
                losses
                if losses.ndim == 0
                else (weighting(losses) if weighting is not None else losses.sum())
            )
            if not torch.isfinite(loss):
                raise _loss_error(loss, epoch, step, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += loss.item()
            count += 1
            rows += next(iter(batch.values())).shape[0] * world
        if count == 0:
            raise _no_batch_error(train_batches, epoch)
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "train_loss": total / count,
            "seconds": seconds,
            "samples_per_s": rows / seconds if seconds > 0 else math.nan,
        }
        if valid_fn is not None:
            model.eval()
            with torch.no_grad():
                score = _valid_score(valid_fn, model, epoch)
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
