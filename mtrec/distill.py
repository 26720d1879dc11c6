"""Knowledge distillation: move a large recommender's knowledge into a small, fast one.

Three kinds of knowledge, each a plain function on tensors, plus a :class:`Distiller` module that
trains a student from a frozen teacher with the generic trainer :func:`mtrec.train.fit`:

* **Response** (click-like tasks, (B, T) logits): the teacher's probabilities softened by a
  temperature T are binary soft targets for the student; the soft term (BCE or KL) is scaled by
  T² so its gradient keeps the size of the hard-label term (Hinton, Vinyals & Dean, "Distilling
  the Knowledge in a Neural Network", NIPS Deep Learning Workshop 2015). The objective is
  ``alpha * hard + (1 - alpha) * T² * soft``: ``alpha = 1`` is plain training.
* **Ranking** (top-K, (B, N) scores over candidate items): listwise KL between the teacher's and
  the student's softmax distributions over the candidates, and a ranking-aware variant that
  imitates only the teacher's top-K items, weighted by position, teacher confidence and
  teacher-student consistency, in the spirit of DLLM2Rec (Cui et al., "Distillation Matters:
  Empowering Sequential Recommenders to Match the Performance of Large Language Models",
  RecSys 2024).
* **Feature** (hidden vectors): the student's hidden vector, mapped by a learned linear
  projection to the teacher's width, is pulled towards the teacher's (MSE or cosine), as in
  FitNets (Romero et al., ICLR 2015).

Teacher outputs are best computed **once** for the training set with
:meth:`Distiller.cache_teacher`, which adds them to the batch tensors (keys ``teacher_logits``,
``teacher_hidden``, ``candidates``); without them :meth:`Distiller.loss` calls the teacher in
``eval()`` mode under ``no_grad`` on every batch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.nn.losses import masked_bce

log = logging.getLogger(__name__)
Batch = dict[str, Tensor]
OutputsFn = Callable[[nn.Module, Batch], Tensor]

TEACHER_LOGITS = "teacher_logits"  # cached teacher outputs: (N, T) logits or (N, I|C) scores
TEACHER_HIDDEN = "teacher_hidden"  # cached teacher hidden vectors (N, D_teacher)
CANDIDATES = "candidates"  # ranking: (N, C) column indices of sampled candidate items

RESPONSE_LOSSES = ("bce", "kl")
RANKING_LOSSES = ("listwise", "ranking_aware")


# --------------------------------------------------------------------------------------------
# response distillation (binary soft targets)
# --------------------------------------------------------------------------------------------
def _check_pair(student: Tensor, teacher: Tensor, what: str) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f"{what}: student outputs {tuple(student.shape)} and teacher outputs "
            f"{tuple(teacher.shape)} must have the same shape (same tasks or items, same order)"
        )


def response_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float = 1.0,
    kind: str = "bce",
) -> Tensor:
    """T²-scaled soft-target loss between binary logits, averaged over the batch.

    Soft targets are ``p = sigmoid(teacher_logits / T)``; the student predicts
    ``q = sigmoid(student_logits / T)``. ``kind="bce"`` is the cross-entropy ``H(p, q)``,
    ``kind="kl"`` the binary KL ``KL(p || q) = H(p, q) - H(p)``: same gradient, but KL is 0 when
    the student matches the teacher.

    Args:
        student_logits: (B,) or (B, T) logits.
        teacher_logits: same shape; never receives gradient.
        temperature: T > 0; larger T softens both distributions.
        kind: ``"bce"`` or ``"kl"``.

    Returns:
        (T,) per-task losses for (B, T) inputs, a scalar for (B,) inputs, each × T².
    """
    if kind not in RESPONSE_LOSSES:
        raise ValueError(f"kind must be one of {RESPONSE_LOSSES}, got {kind!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    _check_pair(student_logits, teacher_logits, "response distillation")
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    p = torch.sigmoid(t)
    per = F.binary_cross_entropy_with_logits(s, p, reduction="none")  # H(p, q)
    if kind == "kl":
        per = per - F.binary_cross_entropy_with_logits(t, p, reduction="none")  # - H(p)
    return per.mean(dim=0) * temperature**2


def mix(hard: Tensor, soft: Tensor, *, alpha: float) -> Tensor:
    """``alpha * hard + (1 - alpha) * soft``: ``alpha = 1`` is training on labels only."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha * hard + (1.0 - alpha) * soft


# --------------------------------------------------------------------------------------------
# ranking distillation (scores over candidate items)
# --------------------------------------------------------------------------------------------
def _masked(scores: Tensor, mask: Tensor | None) -> Tensor:
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


def listwise_kl_loss(
    student_scores: Tensor,
    teacher_scores: Tensor,
    *,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """``T² · KL(softmax(teacher/T) || softmax(student/T))`` over candidates, mean over rows.

    Args:
        student_scores: (B, N) scores of N candidate items per row.
        teacher_scores: (B, N) teacher scores of the same candidates (``-inf`` = excluded).
        temperature: T > 0.
        mask: optional (B, N) bool, True where a candidate counts.

    Returns:
        A scalar.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    _check_pair(student_scores, teacher_scores, "listwise distillation")
    valid = (
        torch.isfinite(teacher_scores) if mask is None else mask & torch.isfinite(teacher_scores)
    )
    log_q = F.log_softmax(_masked(student_scores.float() / temperature, valid), dim=-1)  # (B, N)
    log_p = F.log_softmax(_masked(teacher_scores.detach().float() / temperature, valid), dim=-1)
    p = log_p.exp()
    per = torch.where(valid, p * (log_p - log_q), torch.zeros_like(p)).sum(dim=-1)  # (B,)
    return per.mean() * temperature**2


def ranking_aware_weights(
    student_scores: Tensor,
    teacher_scores: Tensor,
    *,
    top_k: int = 10,
    position_decay: float = 5.0,
    gammas: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> tuple[Tensor, Tensor]:
    """The teacher's top-K candidates per row and their importance weights (DLLM2Rec-style).

    Weight of the item at teacher rank r (0-based) = normalised sum of
    position ``exp(-r / position_decay)``, confidence (the teacher's softmax probability,
    renormalised over its top-K) and consistency (1 if the item is also in the student's
    current top-K), mixed by ``gammas``. Each part is normalised to sum to 1 over the K items
    before mixing; the weights of a row sum to 1 (uniform when every mixed part is 0).

    Returns:
        (top (B, K) candidate column indices, weights (B, K)); no gradient flows through either.
    """
    if top_k < 1 or top_k > teacher_scores.shape[-1]:
        raise ValueError(f"top_k must be in [1, {teacher_scores.shape[-1]}], got {top_k}")
    if position_decay <= 0 or min(gammas) < 0 or sum(gammas) <= 0:
        raise ValueError(f"need position_decay > 0 and non-negative gammas, got {gammas}")
    with torch.no_grad():
        t = teacher_scores.float()
        top_scores, top = t.topk(top_k, dim=-1)  # (B, K)
        ranks = torch.arange(top_k, device=t.device, dtype=torch.float32)
        position = torch.exp(-ranks / position_decay).expand_as(top_scores)  # (B, K)
        confidence = torch.softmax(top_scores, dim=-1)  # (B, K)
        student_top = student_scores.float().topk(top_k, dim=-1).indices  # (B, K)
        consistency = (top[:, :, None] == student_top[:, None, :]).any(dim=-1).float()  # (B, K)
        parts = [position, confidence, consistency]
        weights = sum(
            g * w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12) for g, w in zip(gammas, parts)
        )
        total = weights.sum(dim=-1, keepdim=True)  # 0 only if every mixed part is 0
        weights = torch.where(total > 0, weights / total.clamp_min(1e-12), 1.0 / top_k)
    return top, weights


def ranking_aware_loss(
    student_scores: Tensor,
    teacher_scores: Tensor,
    *,
    top_k: int = 10,
    position_decay: float = 5.0,
    temperature: float = 1.0,
    gammas: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Tensor:
    """Weighted cross-entropy of the student's softmax on the teacher's top-K items.

    ``-sum_r w_r log softmax(student / T)[top_r]``, weights from :func:`ranking_aware_weights`,
    times T². DLLM2Rec scores each top item with ``log sigmoid``; the softmax form used here
    also pushes non-top candidates down, so it works without a separate negative sampler.

    Args:
        student_scores, teacher_scores: (B, N) over the same candidates (teacher ``-inf`` =
            excluded item).

    Returns:
        A scalar.
    """
    _check_pair(student_scores, teacher_scores, "ranking-aware distillation")
    top, weights = ranking_aware_weights(
        student_scores, teacher_scores, top_k=top_k, position_decay=position_decay, gammas=gammas
    )
    valid = torch.isfinite(teacher_scores)
    log_q = F.log_softmax(_masked(student_scores.float() / temperature, valid), dim=-1)  # (B, N)
    picked = log_q.gather(1, top)  # (B, K)
    return -(weights * picked).sum(dim=-1).mean() * temperature**2


# --------------------------------------------------------------------------------------------
# feature distillation
# --------------------------------------------------------------------------------------------
class FeatureProjection(nn.Module):
    """A learned linear map from the student's hidden width to the teacher's: (B, Ds) → (B, Dt)."""

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        if student_dim < 1 or teacher_dim < 1:
            raise ValueError(f"widths must be >= 1, got {student_dim} → {teacher_dim}")
        self.linear = nn.Linear(student_dim, teacher_dim)

    def forward(self, hidden: Tensor) -> Tensor:
        """(B, Ds) → (B, Dt)."""
        return self.linear(hidden)


def feature_distillation_loss(
    projected_student: Tensor, teacher_hidden: Tensor, *, kind: str = "mse"
) -> Tensor:
    """MSE, or 1 − cosine similarity, between projected student and teacher vectors (B, Dt).

    Returns:
        A scalar (mean over rows, and over dimensions for MSE).
    """
    _check_pair(projected_student, teacher_hidden, "feature distillation")
    t = teacher_hidden.detach().float()
    if kind == "mse":
        return F.mse_loss(projected_student.float(), t)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(projected_student.float(), t, dim=-1)).mean()
    raise ValueError(f"feature loss kind must be 'mse' or 'cosine', got {kind!r}")


# --------------------------------------------------------------------------------------------
# the Distiller
# --------------------------------------------------------------------------------------------
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
        allowed = {"response": RESPONSE_LOSSES, "ranking": RANKING_LOSSES}
        if self.mode not in allowed:
            raise ValueError(f"mode must be 'response' or 'ranking', got {self.mode!r}")
        if self.soft_loss not in allowed[self.mode]:
            raise ValueError(
                f"soft_loss {self.soft_loss!r} does not fit mode {self.mode!r}; "
                f"use one of {allowed[self.mode]}"
            )
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
        modules[name].register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if out.ndim == 3:  # (B, L, D) → (B, D): last position (sequences) or mean (experts)
            out = out[:, -1] if self.reduce == "last" else out.mean(dim=1)
        self.value = out

    def take(self) -> Tensor:
        if self.value is None:
            raise RuntimeError("the hooked layer did not run during the forward pass")
        value, self.value = self.value, None
        return value


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
        self.projection: FeatureProjection | None = None
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
            self.projection = FeatureProjection(s_hidden.shape[-1], t_hidden.shape[-1])
            self.projection.to(s_hidden.device)
        self._checked = True

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
    ) -> dict[str, Tensor]:
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
            soft = response_distillation_loss(
                s_out, t_out, temperature=cfg.temperature, kind=cfg.soft_loss
            )
        else:
            hard = (self.hard_loss or _model_hard)(self.student, batch, s_out)
            if CANDIDATES in batch:
                s_out = s_out.gather(1, batch[CANDIDATES].long())  # (B, C)
            soft = self._ranking_soft(s_out, t_out)
        total = mix(hard.sum(), soft.sum(), alpha=cfg.alpha)
        if s_hidden is not None and self.projection is not None and t_hidden is not None:
            feature = feature_distillation_loss(
                self.projection(s_hidden), t_hidden, kind=cfg.feature_loss
            )
            total = total + cfg.feature_weight * feature
        return total

    def _ranking_soft(self, s_out: Tensor, t_out: Tensor) -> Tensor:
        cfg = self.config
        if cfg.soft_loss == "listwise":
            return listwise_kl_loss(s_out, t_out, temperature=cfg.temperature)
        return ranking_aware_loss(
            s_out, t_out, top_k=cfg.top_k, position_decay=cfg.position_decay,
            temperature=cfg.temperature,
        )  # fmt: skip

    @torch.no_grad()
    def predict(self, batch: Batch) -> Tensor:
        """The student's predictions."""
        return self.student.predict(batch)


def _bce_hard(student: nn.Module, batch: Batch, outputs: Tensor) -> Tensor:
    if "labels" not in batch:
        raise KeyError(f"response distillation needs batch['labels'] (B, T); got {sorted(batch)}")
    return masked_bce(outputs, batch["labels"])


def _model_hard(student: nn.Module, batch: Batch, outputs: Tensor) -> Tensor:
    if not hasattr(student, "loss"):
        raise TypeError(f"{type(student).__name__} has no loss(batch); pass hard_loss=...")
    return student.loss(batch)


# --------------------------------------------------------------------------------------------
# the real-size pair for `mtrec bench`
# --------------------------------------------------------------------------------------------
def benchmark_pair(
    *,
    num_users: int = 944,
    num_items: int = 1683,
    text_dim: int = 384,
    task_names: tuple[str, ...] = ("watch", "like"),
) -> tuple[nn.Module, nn.Module, Callable[[int], Batch]]:
    """The teacher/student pair of notebook 09 at real (ML-100k) sizes, for throughput tables.

    Teacher: an MMoE (8 experts of widths (512, 256), towers (64,)) over user and item ids (16-d
    embeddings) and a 384-d language-model item-text embedding. Student: the ID-only
    :class:`~mtrec.models.student.StudentMLP` (16-d id embeddings, one hidden layer of 32).

    Returns:
        (teacher, student, example_batch_fn); ``example_batch_fn(batch_size)`` gives a random
        batch with every key either model reads (``user_id``, ``item_id``, ``item_text``) plus
        ``labels`` (B, T). Both models are in eval mode on the CPU.
    """
    from mtrec.data.schema import SparseFeature, TextFeature
    from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
    from mtrec.models.student import StudentConfig, StudentMLP

    ids = (SparseFeature("user_id", num_users, 16), SparseFeature("item_id", num_items, 16))
    teacher = MMoE(
        MMoEConfig(
            features=(*ids, TextFeature("item_text", text_dim)),
            num_tasks=len(task_names),
            num_experts=8,
            expert_hidden=(512, 256),
            tower_hidden=(64,),
        )
    ).eval()
    student = StudentMLP(StudentConfig(features=ids, task_names=task_names, hidden=(32,))).eval()

    def example_batch(batch_size: int) -> Batch:
        generator = torch.Generator().manual_seed(batch_size)
        return {
            "user_id": torch.randint(1, num_users, (batch_size,), generator=generator),
            "item_id": torch.randint(1, num_items, (batch_size,), generator=generator),
            "item_text": F.normalize(
                torch.randn(batch_size, text_dim, generator=generator), dim=-1
            ),
            "labels": torch.randint(
                0, 2, (batch_size, len(task_names)), generator=generator
            ).float(),
        }

    return teacher, student, example_batch
