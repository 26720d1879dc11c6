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

from mtrec.data.batching import Batch
from mtrec.eval.metrics import CLICK_METRICS, breakdown
from mtrec.train import _to


@torch.no_grad()
def predict(
    model: nn.Module, batches: Iterable[Batch], *, device: torch.device | None = None
) -> Tensor:
    """Concatenate ``model.predict(batch)`` over batches (on CPU)."""
    model.eval()
    device = device or next(model.parameters()).device
    return torch.cat([model.predict(_to(b, device)).float().cpu() for b in batches])


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
    """
    batches = list(batches)
    probs = predict(model, batches)
    labels = torch.cat([b[labels_key].float().cpu() for b in batches])
    if probs.shape != labels.shape or probs.shape[1] != len(task_names):
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
