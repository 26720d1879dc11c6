"""What a declared task is: one dataset under one protocol, as tensors ready to train on."""

from __future__ import annotations

from dataclasses import dataclass

from mtrec.data.batching import Batch


@dataclass(frozen=True)
class ClickTask:
    """A click-like (multi-scenario, multi-task) task: rows → T binary labels.

    Every transform (category encoders, scalers, text vectorisers) is fitted on ``train`` only and
    applied to all three splits; each split is a :data:`~mtrec.data.batching.Batch` made through
    :func:`~mtrec.data.batching.frame_to_tensors`, with the feature keys of ``features``,
    ``"labels"`` (B, T) float (NaN = unlabelled) and ``"scenario_ids"`` (B,) int64.
    """

    name: str  # the dataset column of the results, e.g. "clothing-departments"
    features: tuple  # declared features (SparseFeature, DenseFeature, ...), in input order
    task_names: tuple[str, ...]  # T task names, in label-column order
    scenario_names: tuple[str, ...]  # S scenario names, in scenario-id order ("all" when S = 1)
    train: Batch
    valid: Batch
    test: Batch
    protocol: str  # one line: the split, and what was fitted on which rows

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def num_scenarios(self) -> int:
        return len(self.scenario_names)
