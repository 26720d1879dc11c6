"""Losses and label checks shared by the click models (multi-task and multi-scenario).

``masked_bce`` is the multi-task loss every click model uses: rows whose label is NaN are left
out of that task's loss (and only that task's). ``check_labels`` turns ``batch["labels"]`` into
the (B, T) float tensor it expects, or says what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mtrec.checks import check_binary_labels, check_nonempty, check_tensor, checked_once


def check_labels(batch: dict[str, Tensor], num_tasks: int) -> Tensor:
    """batch["labels"] as float (B, T); raise a teaching error when absent or mis-shaped.

    Also refused: an empty batch (B = 0: a mean loss over no row is undefined) and labels other
    than 0, 1 or NaN (= unlabelled), e.g. raw ratings (:func:`mtrec.checks.check_binary_labels`).
    """
    if "labels" not in batch:
        raise KeyError(f"batch needs 'labels' of shape (B, {num_tasks}); it has {sorted(batch)}")
    labels = check_tensor(batch["labels"], "batch['labels']").float()
    if labels.ndim == 1 and num_tasks == 1:
        labels = labels.unsqueeze(1)
    if labels.ndim != 2 or labels.shape[1] != num_tasks:
        raise ValueError(
            f"labels must be (B, {num_tasks}) (one column per task, NaN = unlabelled), got "
            f"{tuple(labels.shape)}; select the task columns in the batch"
        )
    check_nonempty(
        labels, "batch['labels']", fix="a loss needs at least one row (a mean over none is NaN)"
    )
    if not checked_once(batch, ("labels",), _check_whole_labels):
        _check_label_values(labels)
    return labels


def _check_label_values(labels: Tensor) -> None:
    if bool(((labels != 0) & (labels != 1) & ~torch.isnan(labels)).any()):
        check_binary_labels(labels, "labels")  # raises, naming the offending values


def _check_whole_labels(data: Mapping[str, Tensor]) -> None:
    if "labels" in data:
        _check_label_values(check_tensor(data["labels"], "labels").float())


def masked_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-task mean binary cross-entropy of ``logits`` (B, T) against ``labels`` (B, T), NaN-masked.

    Returns:
        (T,) losses; a task with no labelled row in the batch contributes 0.
    """
    if labels.shape != logits.shape:
        raise ValueError(
            f"labels {tuple(labels.shape)} must match logits {tuple(logits.shape)}: one column per "
            "task; build batch['labels'] as a (B, T) float tensor in the model's task order"
        )
    labels = labels.float()
    keep = ~torch.isnan(labels)  # (B, T)
    per = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), torch.where(keep, labels, torch.zeros_like(labels)), reduction="none"
    )  # (B, T)
    per = per * keep
    return per.sum(dim=0) / keep.sum(dim=0).clamp_min(1)
