"""What a benchmark case is: a model ready to time (:class:`Built`) and its builder with the batch
sizes to sweep (:class:`Case`). The builders live in :mod:`mtrec.bench.cases` and
:mod:`mtrec.bench.scenario_cases`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from mtrec.data import Batch


class Unavailable(RuntimeError):
    """A benchmarked model cannot run here: an optional dependency (extra) is missing."""


@dataclass
class Built:
    """A model ready to time: its synthetic batch and how to count its FLOPs.

    ``flops_per_sample`` is the forward FLOPs of one sample counted from the config (transformer
    models); ``None`` falls back to ``torch.utils.flop_counter`` on one step. ``loss`` and
    ``predict`` default to the model's own methods; ``optimizer=False`` times forward + backward
    only (the attention block).
    """

    model: nn.Module
    batch: Batch
    flops_per_sample: float | None = None
    loss: Callable[[Batch], Tensor] | None = None
    predict: Callable[[Batch], Tensor] | None = None
    optimizer: bool = True
    phases: tuple[str, ...] = ("train", "inference")
    inference_flops_per_sample: float | None = None  # when inference computes less (SASRec)
    count_flops: bool = True  # False: no FLOP count (small routed MLPs, bound by overhead)


@dataclass(frozen=True)
class Case:
    """A benchmarked model: a builder (batch size → Built) and the batch sizes to try."""

    name: str
    build: Callable[[int], Built]
    batch_sizes: tuple[int, ...]
    quick_batch_sizes: tuple[int, ...]
    cuda_batch_sizes: tuple[int, ...] = ()
    train_min_batch: int = 1  # BatchNorm cannot train on one row


TASKS = ("click", "like")
