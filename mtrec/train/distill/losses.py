"""Distillation losses: response (binary soft targets), ranking (listwise, ranking-aware), feature.

Each kind of knowledge is a plain function on tensors:

* **Response** (click-like tasks, (B, T) logits): the teacher's probabilities softened by a
  temperature T are binary soft targets for the student; the soft term (BCE or KL) is scaled by
  T² so its gradient keeps the size of the hard-label term (Hinton, Vinyals & Dean, "Distilling
  the Knowledge in a Neural Network", NIPS Deep Learning Workshop 2015). The objective is
  ``alpha * hard + (1 - alpha) * T² * soft`` (:func:`mix`): ``alpha = 1`` is plain training.
* **Ranking** (top-K, (B, N) scores over candidate items): listwise KL between the teacher's and
  the student's softmax distributions over the candidates, and a ranking-aware variant that
  imitates only the teacher's top-K items, weighted by position, teacher confidence and
  teacher-student consistency, in the spirit of DLLM2Rec (Cui et al., "Distillation Matters:
  Empowering Sequential Recommenders to Match the Performance of Large Language Models",
  RecSys 2024).
* **Feature** (hidden vectors): the student's hidden vector, mapped by a learned linear
  projection to the teacher's width, is pulled towards the teacher's (MSE or cosine), as in
  FitNets (Romero et al., ICLR 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_choice, check_finite, check_float, check_int, check_tensor

RESPONSE_LOSSES = ("bce", "kl")
RANKING_LOSSES = ("listwise", "ranking_aware")


# --------------------------------------------------------------------------------------------
# response distillation (binary soft targets)
# --------------------------------------------------------------------------------------------
def _check_temperature(temperature: float) -> float:
    temperature = check_float(temperature, "temperature")
    if temperature <= 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}; T = 1 leaves the logits as they are, "
            "larger T softens them (2 to 4 is usual)"
        )
    return temperature


def _check_excluded(student: Tensor, teacher: Tensor, what: str, *, need: int = 1) -> None:
    """Ranking losses: -inf marks an excluded teacher candidate; +inf and empty rows are errors."""
    if bool((teacher == float("inf")).any()):
        raise ValueError(f"{what}: teacher scores contain +inf; use -inf to exclude an item")
    valid = torch.isfinite(teacher)
    counts = valid.sum(dim=-1)
    if bool((counts < need).any()):
        raise ValueError(
            f"{what}: a row has only {int(counts.min())} candidates with a finite teacher "
            f"score, {need} needed; exclude fewer items (-inf) or lower top_k"
        )
    if bool((valid & ~torch.isfinite(student)).any()):
        raise ValueError(
            f"{what}: student scores are infinite where the teacher scores a candidate; check "
            "the student's outputs"
        )


def _check_pair(student: Tensor, teacher: Tensor, what: str) -> None:
    check_tensor(student, f"{what}: student outputs")
    check_tensor(teacher, f"{what}: teacher outputs")
    if student.ndim == 0:
        raise ValueError(f"{what}: outputs must have a batch dimension, got a 0-D scalar")
    if student.numel() == 0 or teacher.numel() == 0:
        raise ValueError(
            f"{what}: empty outputs {tuple(student.shape)} and {tuple(teacher.shape)}; a batch "
            "needs at least one row (the mean over no rows is undefined)"
        )
    for role, value in (("student", student), ("teacher", teacher)):
        if not value.is_floating_point():
            raise TypeError(
                f"{what}: {role} outputs must be float logits/scores, got {value.dtype}"
            )
        if bool(torch.isnan(value).any()):
            raise ValueError(
                f"{what}: {role} outputs contain NaN; check that model's inputs and weights "
                "(use -inf, not NaN, to exclude an item)"
            )
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
    temperature = _check_temperature(temperature)
    _check_pair(student_logits, teacher_logits, "response distillation")
    for role, value in (("student", student_logits), ("teacher", teacher_logits)):
        if bool(torch.isinf(value).any()):
            raise ValueError(f"response distillation: {role} logits contain infinite values")
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    p = torch.sigmoid(t)
    per = F.binary_cross_entropy_with_logits(s, p, reduction="none")  # H(p, q)
    if kind == "kl":
        per = per - F.binary_cross_entropy_with_logits(t, p, reduction="none")  # - H(p)
    return per.mean(dim=0) * temperature**2


def mix(hard: Tensor, soft: Tensor, *, alpha: float) -> Tensor:
    """``alpha * hard + (1 - alpha) * soft``: ``alpha = 1`` is training on labels only."""
    alpha = check_float(alpha, "alpha")
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
    temperature = _check_temperature(temperature)
    _check_pair(student_scores, teacher_scores, "listwise distillation")
    _check_excluded(student_scores, teacher_scores, "listwise distillation")
    if mask is not None:
        check_tensor(mask, "mask", shape=tuple(student_scores.shape))
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = counts), got {mask.dtype}")
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
    _check_pair(student_scores, teacher_scores, "ranking-aware weights")
    top_k = check_int(top_k, "top_k")
    check_float(position_decay, "position_decay")
    if isinstance(gammas, (str, bytes)) or len(gammas) != 3:
        raise ValueError(
            f"gammas must be three weights (position, confidence, consistency), got {gammas!r}"
        )
    for i, g in enumerate(gammas):
        check_float(g, f"gammas[{i}]")
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
    temperature = _check_temperature(temperature)
    _check_excluded(student_scores, teacher_scores, "ranking-aware distillation",
                    need=check_int(top_k, "top_k"))  # fmt: skip
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
        check_int(student_dim, "student_dim")
        check_int(teacher_dim, "teacher_dim")
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
    check_choice(kind, "feature loss kind", ("mse", "cosine"))
    _check_pair(projected_student, teacher_hidden, "feature distillation")
    check_finite(projected_student.detach(), "feature distillation: student hidden vectors")
    check_finite(teacher_hidden.detach(), "feature distillation: teacher hidden vectors")
    t = teacher_hidden.detach().float()
    if kind == "mse":
        return F.mse_loss(projected_student.float(), t)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(projected_student.float(), t, dim=-1)).mean()
    raise ValueError(f"feature loss kind must be 'mse' or 'cosine', got {kind!r}")
