"""Notebook 09's teacher: train it once, then cache its outputs for every student.

The students of notebook 09 never run the teacher: its logits (for response distillation) and
the mean of its expert outputs (for feature distillation) are computed once over the labelled
and the transfer rows and stored next to each row's ids and labels. Two functions:

* :func:`train_teacher`: seed, build and fit the teacher (validation early stopping), return it
  on the CPU in eval mode;
* :func:`cache_teacher_rows`: the row sets a student trains on, ``"labelled"`` (the labelled
  training rows) and ``"labelled+transfer"`` (those followed by the transfer rows), each a dict
  of the student's inputs plus the cached teacher outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mtrec.checks import check_int, check_nonempty
from mtrec.data import TensorBatcher
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.train import distill, fit
from mtrec.train.distill import DistillConfig, Distiller
from mtrec.utils import set_seed

Batch = dict[str, torch.Tensor]

# feature distillation: labels (alpha = 1) plus an MSE to the mean of the teacher's expert outputs
FEATURE_KD = DistillConfig(alpha=1.0, temperature=1.0, feature_weight=1.0, hidden_reduce="mean")
FEATURE_LAYERS = ("mlp", "experts")  # (student's hidden layer, teacher's experts) to match
EXAMPLE_ROWS = 64  # rows of the example batch a Distiller traces the layers' widths with


def train_teacher(
    config: MMoEConfig,
    train: Batch,
    *,
    valid_fn: Callable[[nn.Module], float],
    epochs: int,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> MMoE:
    """Seed, build and fit an MMoE teacher on ``train``; early stopping on ``valid_fn``.

    Args:
        config: the teacher's configuration.
        train: training tensors (feature keys and ``labels`` (N, T)).
        valid_fn: model → validation score (higher is better) for early stopping.
        epochs, lr, batch_size, seed, device: as in :func:`mtrec.train.fit`.

    Returns:
        The trained teacher, on the CPU in eval mode.
    """
    check_int(epochs, "epochs", min=1)
    check_int(batch_size, "batch_size", min=1)
    set_seed(seed)
    teacher = MMoE(config)
    batches = TensorBatcher(train, batch_size, shuffle=True, seed=seed)
    fit(teacher, batches, valid_fn=valid_fn, epochs=epochs, lr=lr, seed=seed, device=device,
        progress=False)  # fmt: skip
    return teacher.cpu().eval()


def cache_teacher_rows(
    teacher: nn.Module,
    student_config: StudentConfig,
    labelled: Batch,
    transfer: Batch,
    *,
    keep: Sequence[str] = ("user_id", "item_id", "labels"),
) -> dict[str, Batch]:
    """The teacher's outputs on the labelled rows and the transfer rows, computed once.

    Args:
        teacher: the trained teacher (its ``experts`` feed feature distillation).
        student_config: the student's configuration (a throw-away student traces its widths).
        labelled: the labelled training tensors; ``transfer``: the transfer tensors, same keys
            (their labels are NaN: withheld).
        keep: the input keys a student batch carries besides the teacher's outputs.

    Returns:
        ``{"labelled": rows, "labelled+transfer": rows}``; each ``rows`` holds ``keep`` plus
        ``teacher_logits`` (N, T) and ``teacher_hidden`` (N, D_teacher), the labelled rows first.
    """
    check_nonempty(labelled, "labelled")
    missing = sorted(set(labelled) ^ set(transfer))
    if missing:
        raise KeyError(
            f"labelled and transfer rows must have the same keys; only one of them has {missing}. "
            "Build both with the same to_tensors function"
        )
    example = {k: v[:EXAMPLE_ROWS] for k, v in labelled.items()}
    cacher = Distiller(StudentMLP(student_config), teacher, FEATURE_KD,
                       feature_layers=FEATURE_LAYERS, example_batch=example)  # fmt: skip
    cached = cacher.cache_teacher({k: torch.cat([labelled[k], transfer[k]]) for k in labelled})
    keys = [*keep, distill.TEACHER_LOGITS, distill.TEACHER_HIDDEN]
    num_labelled = len(labelled["labels"])
    return {
        "labelled": {k: cached[k][:num_labelled] for k in keys},
        "labelled+transfer": {k: cached[k] for k in keys},
    }
