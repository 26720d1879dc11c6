"""Knowledge distillation: move a large recommender's knowledge into a small, fast one.

:mod:`mtrec.train.distill.losses` holds the response, ranking and feature losses (plain functions on
tensors); :mod:`mtrec.train.distill.distiller` the :class:`Distiller` that trains a student from a frozen
teacher with the generic trainer :func:`mtrec.train.fit`. Every public name of both is here.
"""

from mtrec.train.distill.distiller import (
    CANDIDATES,
    TEACHER_HIDDEN,
    TEACHER_LOGITS,
    DistillConfig,
    Distiller,
    OutputsFn,
    call_outputs,
    task_names_of,
)
from mtrec.train.distill.losses import (
    RANKING_LOSSES,
    RESPONSE_LOSSES,
    FeatureProjection,
    feature_distillation_loss,
    listwise_kl_loss,
    mix,
    ranking_aware_loss,
    ranking_aware_weights,
    response_distillation_loss,
)

__all__ = [
    "CANDIDATES", "RANKING_LOSSES", "RESPONSE_LOSSES", "TEACHER_HIDDEN", "TEACHER_LOGITS",
    "DistillConfig", "Distiller", "FeatureProjection", "OutputsFn", "call_outputs",
    "feature_distillation_loss", "listwise_kl_loss", "mix", "ranking_aware_loss",
    "ranking_aware_weights", "response_distillation_loss", "task_names_of",
]  # fmt: skip
