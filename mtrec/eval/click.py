"""Click-model evaluation: scenario × task metrics; the one entry point is :func:`evaluate`.

Protocol: a random seeded train/validation/test split of labelled rows
(:func:`mtrec.data.random_split`); model selection on the validation rows, the test rows
reported once. ``evaluate`` runs ``model.predict`` (probabilities, no gradients) over the
batches given and reports each metric (AUC and LogLoss by default) per scenario and per task,
NaN labels left out of their task (rows of one scenario: ``scenario_ids``; without that key
every row is scenario 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mtrec.checks import check_nonempty
from mtrec.data.batching import Batch, TensorBatcher, non_finite_keys, to_device
from mtrec.eval.metrics import CLICK_METRICS, auc, breakdown


@torch.no_grad()
def predict(
    model: nn.Module, batches: Iterable[Batch], *, device: torch.device | None = None
) -> Tensor:
    """Concatenate ``model.predict(batch)`` over batches (on CPU)."""
    batches = check_nonempty(list(batches), "batches", fix="pass at least one batch of rows")
    model.eval()
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    return torch.cat([model.predict(to_device(b, device)).float().cpu() for b in batches])


def mean_auc(model: nn.Module, part: Batch, *, batch_size: int = 4096) -> float:
    """Mean over tasks of the pooled AUC of ``model`` on the rows of ``part`` (a validation score).

    ``part`` holds (N, T) ``"labels"``; predictions run in slices of ``batch_size`` rows. A task
    whose labels have one class (AUC undefined, NaN) is left out of the mean.
    """
    probs, labels = predict(model, TensorBatcher(part, batch_size)), part["labels"]
    return float(np.nanmean([auc(labels[:, t], probs[:, t]) for t in range(labels.shape[1])]))


def evaluate(
    model: nn.Module,
    batches: Sequence[Batch] | Iterable[Batch],
    *,
    task_names: Sequence[str],
    scenario_names: Sequence[str] | None = None,
    labels_key: str = "labels",
    scenario_key: str = "scenario_ids",
    metrics: dict[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
) -> pd.DataFrame:
    """Per-scenario × per-task metrics (tidy: scenario, task, metric, value, n).

    ``model.predict(batch)`` must return (B, T) probabilities with T = ``len(task_names)``;
    ``batch[labels_key]`` holds (B, T) labels (NaN = unlabelled, left out of that task).

    Raises:
        ValueError: no batch, predictions that are NaN/inf (naming the inputs that hold NaN/inf),
            shapes that do not match ``task_names``, labels outside {0, 1} (from the metrics).
        KeyError: a batch without ``labels_key``.
    """
    if not hasattr(model, "predict"):
        raise TypeError(f"{type(model).__name__} has no predict(batch) method; evaluate needs one")
    batches = check_nonempty(
        list(batches), "batches", fix="pass at least one batch of evaluation rows"
    )
    missing = [i for i, b in enumerate(batches) if labels_key not in b]
    if missing:
        raise KeyError(
            f"batch {missing[0]} has no {labels_key!r} key (keys {sorted(batches[missing[0]])}); "
            f"evaluate reads the (B, T) labels from batch[{labels_key!r}]: set labels_key"
        )
    probs = predict(model, batches)
    if not bool(torch.isfinite(probs).all()):
        bad = sorted({k for b in batches for k in non_finite_keys(b) if k != labels_key})
        where = (
            f"the inputs {bad} hold NaN/inf: clean or impute them (e.g. fillna) before evaluating"
            if bad
            else "the inputs are finite, so the model's weights are NaN/inf (training diverged: "
            "lower lr)"
        )
        raise ValueError(
            f"model.predict returned {int(torch.isnan(probs).sum())} NaN and "
            f"{int(torch.isinf(probs).sum())} infinite values; {where}"
        )
    labels = torch.cat([b[labels_key].float().cpu() for b in batches])
    if probs.ndim != 2 or probs.shape != labels.shape or probs.shape[1] != len(task_names):
        raise ValueError(
            f"predictions {tuple(probs.shape)} and labels {tuple(labels.shape)} must both be "
            f"(N, {len(task_names)}) for tasks {list(task_names)}"
        )
    if scenario_key in batches[0]:
        sid = torch.cat([b[scenario_key].cpu() for b in batches])
    else:
        sid = torch.zeros(len(labels), dtype=torch.long)
    return breakdown(
        sid,
        {t: labels[:, i] for i, t in enumerate(task_names)},
        {t: probs[:, i] for i, t in enumerate(task_names)},
        scenario_names=scenario_names,
        metrics=metrics or CLICK_METRICS,
    )
