"""The Distiller: trains a small student from a frozen teacher with :func:`mtrec.train.fit`.

Its objective is ``alpha·hard + (1−alpha)·soft + feature_weight·feature``, the losses of
:mod:`mtrec.train.distill.losses`. Teacher outputs are best computed **once** for the training set with
:meth:`Distiller.cache_teacher`, which adds them to the batch tensors (keys ``teacher_logits``,
``teacher_hidden``, ``candidates``); without them :meth:`Distiller.loss` calls the teacher in
``eval()`` mode under ``no_grad`` on every batch. Feature distillation reads hidden vectors through
forward hooks on both models; :meth:`Distiller.close` (or a ``with`` block) removes them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from mtrec.checks import check_float, check_int
from mtrec.data import Batch
from mtrec.nn.losses import masked_bce
from mtrec.train.distill import losses

log = logging.getLogger(__name__)
OutputsFn = Callable[[nn.Module, Batch], Tensor]

TEACHER_LOGITS = "teacher_logits"  # cached teacher outputs: (N, T) logits or (N, I|C) scores
TEACHER_HIDDEN = "teacher_hidden"  # cached teacher hidden vectors (N, D_teacher)
CANDIDATES = "candidates"  # ranking: (N, C) column indices of sampled candidate items


@dataclass(frozen=True)
class DistillConfig:
    """What :class:`Distiller` optimises: ``alpha·hard + (1−alpha)·soft + feature_weight·feature``."""

    mode: str = "response"  # "response": (B, T) click-like logits; "ranking": (B, I) item scores
    soft_loss: str = "bce"  # response: "bce" | "kl"; ranking: "listwise" | "ranking_aware"
    alpha: float = 0.5  # weight of the hard-label loss; 1 = no response/ranking distillation
    temperature: float = 2.0  # T: logits / T, soft term × T²
    top_k: int = 10  # ranking_aware: teacher items imitated per row (and in sampled candidates)
    position_decay: float = 5.0  # ranking_aware: lambda of the position weight exp(-r / lambda)
    num_candidates: int | None = None  # ranking: C candidates per row in the cache; None = all
    feature_weight: float = 0.0  # weight of the feature term; 0 = off
    feature_loss: str = "mse"  # "mse" | "cosine"
    hidden_reduce: str = "last"  # a (B, L, D) hooked output → (B, D): "last" position or "mean"

    def __post_init__(self) -> None:
        allowed = {"response": losses.RESPONSE_LOSSES, "ranking": losses.RANKING_LOSSES}
        if self.mode not in allowed:
            raise ValueError(f"mode must be 'response' or 'ranking', got {self.mode!r}")
        if self.soft_loss not in allowed[self.mode]:
            raise ValueError(
                f"soft_loss {self.soft_loss!r} does not fit mode {self.mode!r}; "
                f"use one of {allowed[self.mode]}"
            )
        for name in ("alpha", "temperature", "position_decay", "feature_weight"):
            check_float(getattr(self, name), name)
        check_int(self.top_k, "top_k")
        if self.num_candidates is not None:
            check_int(self.num_candidates, "num_candidates")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0 or self.position_decay <= 0 or self.top_k < 1:
            raise ValueError("temperature and position_decay must be > 0 and top_k >= 1")
        if self.num_candidates is not None and self.num_candidates <= self.top_k:
            raise ValueError(
                f"num_candidates ({self.num_candidates}) must exceed top_k ({self.top_k}): the "
                "cache keeps the teacher's top_k items plus uniformly sampled others"
            )
        if self.feature_weight < 0 or self.feature_loss not in ("mse", "cosine"):
            raise ValueError("feature_weight must be >= 0 and feature_loss 'mse' or 'cosine'")
        if self.hidden_reduce not in ("last", "mean"):
            raise ValueError(f"hidden_reduce must be 'last' or 'mean', got {self.hidden_reduce!r}")


def call_outputs(model: nn.Module, batch: Batch) -> Tensor:
    """Default outputs: ``model(batch)``; a tuple gives its first item, a dict its ``"logits"``."""
    out = model(batch)
    if isinstance(out, tuple):
        out = out[0]
    if isinstance(out, Mapping):
        out = out["logits"]
    return out


def task_names_of(model: nn.Module) -> tuple[str, ...] | None:
    """A model's task names from ``model.task_names`` or ``model.config.task_names`` (or None)."""
    names = getattr(model, "task_names", None)
    if names is None:
        names = getattr(getattr(model, "config", None), "task_names", None)
    return tuple(names) if names is not None else None


class _Capture:
    """A forward hook keeping the last output of one submodule (for feature distillation)."""

    def __init__(self, model: nn.Module, name: str, role: str, reduce: str = "last") -> None:
        modules = dict(model.named_modules())
        if name not in modules:
            shown = [n for n in modules if n][:20]
            raise ValueError(f"{role} has no submodule {name!r}; some of its modules: {shown}")
        self.value: Tensor | None = None
        self.reduce = reduce
        self.where = f"{role} layer {name!r}"
        self.handle: RemovableHandle | None = modules[name].register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if out.ndim == 3:  # (B, L, D) → (B, D): last position (sequences) or mean (experts)
            out = out[:, -1] if self.reduce == "last" else out.mean(dim=1)
        self.value = out

    def take(self) -> Tensor:
        if self.handle is None:
            raise RuntimeError(
                f"the hook on the {self.where} was removed by Distiller.close(); "
                "build a new Distiller to distil features again"
            )
        if self.value is None:
            raise RuntimeError("the hooked layer did not run during the forward pass")
        value, self.value = self.value, None
        return value

    def remove(self) -> None:
        """Take the hook off the model (idempotent)."""
        if self.handle is not None:
            self.handle.remove()
            self.handle, self.value = None, None


def _bce_hard(student: nn.Module, batch: Batch, outputs: Tensor) -> Tensor:
    if "labels" not in batch:
        raise KeyError(f"response distillation needs batch['labels'] (B, T); got {sorted(batch)}")
    return masked_bce(outputs, batch["labels"])


def _model_hard(student: nn.Module, batch: Batch, outputs: Tensor) -> Tensor:
    if not hasattr(student, "loss"):
        raise TypeError(f"{type(student).__name__} has no loss(batch); pass hard_loss=...")
    return student.loss(batch)


class Distiller(nn.Module):
    """Trains ``student`` from a frozen ``teacher``; pass it to :func:`mtrec.train.fit`.

    The teacher is put in ``eval()`` mode (with a warning if it was training), its parameters are
    frozen, and it stays in eval mode when ``fit`` calls ``train()``. Only the student (and the
    feature projection) are trained; :meth:`predict` is the student's, so ``evaluate(distiller,
    ...)`` scores the student.

    Args:
        student: the small model; in "response" mode ``outputs(student, batch)`` gives (B, T)
            logits, in "ranking" mode (B, I) scores over all items.
        teacher: the large model, same output shape (and task names, when both declare them).
        config: losses and weights.
        outputs: ``fn(model, batch) -> Tensor`` for the student (default :func:`call_outputs`).
        teacher_outputs: the same for the teacher (default: ``outputs``).
        feature_layers: (student submodule name, teacher submodule name) whose outputs (B, D)
            are matched when ``config.feature_weight > 0`` (a (B, L, D) output is reduced to
            (B, D) by ``config.hidden_reduce``: last position, or mean, e.g. over experts).
        example_batch: a small batch used to check shapes and task names *before* training and
            to size the feature projection. Strongly recommended.
        hard_loss: ``fn(student, batch, student_outputs) -> Tensor`` for the label term. Default:
            masked BCE of the outputs against ``batch["labels"]`` in "response" mode (no second
            forward), ``student.loss(batch)`` in "ranking" mode.

    Batch keys: whatever the models read, ``"labels"`` (B, T) in response mode, and optionally
    the cached ``teacher_logits``, ``teacher_hidden``, ``candidates`` from :meth:`cache_teacher`.

    Feature distillation hooks a layer of each model; :meth:`close` removes both hooks (the
    teacher is often reused after distillation), as does leaving a ``with Distiller(...) as d:``
    block.

    Transfer sets: a row whose labels are NaN (inputs the teacher scores, no human label) is
    masked out of the default hard term (mean over the labelled rows of the batch) and still
    counts in the soft and feature terms (means over all rows); with ``alpha = 1`` such rows
    give the student no gradient at all.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        config: DistillConfig | None = None,
        *,
        outputs: OutputsFn | None = None,
        teacher_outputs: OutputsFn | None = None,
        feature_layers: tuple[str, str] | None = None,
        example_batch: Batch | None = None,
        hard_loss: Callable[[nn.Module, Batch, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.config = config or DistillConfig()
        self.student = student
        self.teacher = teacher
        if teacher.training:
            warnings.warn(
                f"teacher {type(teacher).__name__} was in training mode (dropout/batch-norm "
                "active); switched it to eval() so its targets are deterministic",
                UserWarning,
                stacklevel=2,
            )
        teacher.eval()
        teacher.requires_grad_(False)
        self.outputs = outputs or call_outputs
        self.teacher_outputs = teacher_outputs or self.outputs
        self.hard_loss = hard_loss
        self._checked = False
        s_names, t_names = task_names_of(student), task_names_of(teacher)
        if s_names is not None and t_names is not None and s_names != t_names:
            raise ValueError(
                f"student tasks {list(s_names)} differ from teacher tasks {list(t_names)}; "
                "distil only between models that predict the same tasks in the same order"
            )
        self.projection: losses.FeatureProjection | None = None
        self._captures: tuple[_Capture, _Capture] | None = None
        if self.config.feature_weight > 0:
            if feature_layers is None:
                raise ValueError(
                    "config.feature_weight > 0 needs feature_layers=(student_layer, teacher_layer)"
                )
            reduce = self.config.hidden_reduce
            self._captures = (
                _Capture(student, feature_layers[0], "student", reduce),
                _Capture(teacher, feature_layers[1], "teacher", reduce),
            )
            if example_batch is None:
                raise ValueError("feature distillation needs example_batch to size the projection")
        if example_batch is not None:
            self._check(example_batch)

    # -- checks -------------------------------------------------------------------------------
    @torch.no_grad()
    def _check(self, batch: Batch) -> None:
        """Run both models once on ``batch``; compare output shapes; size the projection."""
        was_training = self.student.training
        self.student.eval()
        s_out = self.outputs(self.student, batch)
        s_hidden = self._captures[0].take() if self._captures else None
        t_out, t_hidden = self._teacher_forward(batch)
        self.student.train(was_training)
        if s_out.shape != t_out.shape:
            raise ValueError(
                f"student outputs {tuple(s_out.shape)} and teacher outputs {tuple(t_out.shape)} "
                f"differ on the example batch; in {self.config.mode!r} mode both must give "
                + ("(B, T) logits for the same tasks" if self.config.mode == "response"
                   else "(B, I) scores over the same item catalogue")
            )  # fmt: skip
        if self.config.mode == "response" and s_out.ndim != 2:
            raise ValueError(f"response mode needs (B, T) logits, got {tuple(s_out.shape)}")
        if s_hidden is not None and t_hidden is not None and self.projection is None:
            self.projection = losses.FeatureProjection(s_hidden.shape[-1], t_hidden.shape[-1])
            self.projection.to(s_hidden.device)
        self._checked = True

    def close(self) -> None:
        """Remove the feature hooks from the student and the teacher (a no-op without them)."""
        for capture in self._captures or ():
            capture.remove()

    def __enter__(self) -> Distiller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def train(self, mode: bool = True) -> Distiller:
        """Train the student; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    # -- teacher --------------------------------------------------------------------------------
    @torch.no_grad()
    def _teacher_forward(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        self.teacher.eval()
        out = self.teacher_outputs(self.teacher, batch).float()
        hidden = self._captures[1].take().float() if self._captures else None
        return out, hidden

    @torch.no_grad()
    def cache_teacher(
        self, tensors: Mapping[str, Tensor], *, batch_size: int = 2048, seed: int = 0
    ) -> Batch:
        """Run the teacher once over ``tensors`` (all rows, in order) and add its outputs.

        Returns:
            A new dict: the input tensors plus ``teacher_logits`` ((N, T) or (N, I); (N, C)
            with ``candidates`` (N, C) when ``config.num_candidates`` is set) and
            ``teacher_hidden`` (N, D_teacher) when feature distillation is on.
        """
        n = next(iter(tensors.values())).shape[0]
        device = next(self.teacher.parameters()).device
        outs, hiddens = [], []
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size].to(device) for k, v in tensors.items()}
            if not self._checked:
                self._check(batch)
            out, hidden = self._teacher_forward(batch)
            outs.append(out.cpu())
            if hidden is not None:
                hiddens.append(hidden.cpu())
        cached = dict(tensors)
        logits = torch.cat(outs)
        if self.config.mode == "ranking" and self.config.num_candidates is not None:
            cached[CANDIDATES], logits = self._sample_candidates(logits, seed)
        cached[TEACHER_LOGITS] = logits
        if hiddens:
            cached[TEACHER_HIDDEN] = torch.cat(hiddens)
        log.info("cached teacher outputs %s for %d rows", tuple(logits.shape), n)
        return cached

    def _sample_candidates(self, scores: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """Keep the teacher's top-K items plus C − K uniform others per row: (N, C) each."""
        k, c = self.config.top_k, self.config.num_candidates
        assert c is not None
        top = scores.topk(k, dim=-1).indices  # (N, K)
        generator = torch.Generator().manual_seed(seed)
        others = torch.randint(0, scores.shape[1], (scores.shape[0], c - k), generator=generator)
        candidates = torch.cat([top, others], dim=1)  # (N, C)
        return candidates, scores.gather(1, candidates)

    # -- training -------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> Tensor:
        """``alpha·hard + (1−alpha)·soft + feature_weight·feature`` (a scalar)."""
        cfg = self.config
        if not self._checked and TEACHER_LOGITS not in batch:
            self._check(batch)
        s_out = self.outputs(self.student, batch)
        s_hidden = self._captures[0].take() if self._captures else None
        if TEACHER_LOGITS in batch:
            t_out, t_hidden = batch[TEACHER_LOGITS].float(), batch.get(TEACHER_HIDDEN)
            if s_hidden is not None and t_hidden is None:
                t_hidden = self._teacher_forward(batch)[1]
        else:
            t_out, t_hidden = self._teacher_forward(batch)
        if cfg.mode == "response":
            hard = (self.hard_loss or _bce_hard)(self.student, batch, s_out)
            soft = losses.response_distillation_loss(
                s_out, t_out, temperature=cfg.temperature, kind=cfg.soft_loss
            )
        else:
            hard = (self.hard_loss or _model_hard)(self.student, batch, s_out)
            if CANDIDATES in batch:
                s_out = s_out.gather(1, batch[CANDIDATES].long())  # (B, C)
            soft = self._ranking_soft(s_out, t_out)
        total = losses.mix(hard.sum(), soft.sum(), alpha=cfg.alpha)
        if s_hidden is not None and self.projection is not None and t_hidden is not None:
            feature = losses.feature_distillation_loss(
                self.projection(s_hidden), t_hidden, kind=cfg.feature_loss
            )
            total = total + cfg.feature_weight * feature
        return total

    def _ranking_soft(self, s_out: Tensor, t_out: Tensor) -> Tensor:
        cfg = self.config
        if cfg.soft_loss == "listwise":
            return losses.listwise_kl_loss(s_out, t_out, temperature=cfg.temperature)
        return losses.ranking_aware_loss(
            s_out, t_out, top_k=cfg.top_k, position_decay=cfg.position_decay,
            temperature=cfg.temperature,
        )  # fmt: skip

    @torch.no_grad()
    def predict(self, batch: Batch) -> Tensor:
        """The student's predictions."""
        return self.student.predict(batch)
