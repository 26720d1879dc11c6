"""Training: the generic trainer, task weighting, distillation and scenario transfer.

* :mod:`mtrec.train.trainer` — :func:`fit`, the one loop every model trains with (validation
  early stopping, DDP-ready); it knows nothing of model types.
* :mod:`mtrec.train.weighting` — modules that combine per-task losses into one (fixed,
  uncertainty, GradNorm), passed to ``fit``.
* :mod:`mtrec.train.distill` — distillation losses and the :class:`~mtrec.train.distill.Distiller`.
* :mod:`mtrec.train.transfer` — adding a scenario to a trained model and adapting it few-shot.

The trainer's names are re-exported here, so ``from mtrec.train import fit`` reads as it says.
"""

from mtrec.train.trainer import (
    History,
    NonFiniteLossError,
    count_parameters,
    describe,
    distributed_context,
    fit,
)

__all__ = [
    "History",
    "NonFiniteLossError",
    "count_parameters",
    "describe",
    "distributed_context",
    "fit",
]
