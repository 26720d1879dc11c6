"""Exercise 4: the distillation loss with a temperature (soft term scaled by T²).

The student writes ``distillation_loss(student_logits, teacher_logits, labels, *, temperature,
alpha) -> scalar``: student/teacher logits (B, N) over N classes (or N candidate items), labels
(B,) the true class; loss = alpha · CE(student, labels) + (1 − alpha) · T² ·
KL(softmax(teacher/T) || softmax(student/T)), KL averaged over the batch rows.
The soft term is checked against :func:`mtrec.train.distill.listwise_kl_loss`. Reference: Hinton,
Vinyals & Dean, "Distilling the Knowledge in a Neural Network", NIPS DL Workshop 2015.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases
from mtrec.train.distill import listwise_kl_loss


def _soft(student_logits: Tensor, teacher_logits: Tensor, t: float) -> Tensor:
    log_q = F.log_softmax(student_logits / t, dim=-1)
    return F.kl_div(log_q, F.softmax(teacher_logits / t, dim=-1), reduction="batchmean")


def reference_distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, temperature: float,
    alpha: float,
) -> Tensor:  # fmt: skip
    """alpha · CE + (1 − alpha) · T² · KL(teacher_T || student_T), a scalar."""
    soft = _soft(student_logits, teacher_logits, temperature) * temperature**2
    torch.testing.assert_close(
        soft, listwise_kl_loss(student_logits, teacher_logits, temperature=temperature)
    )
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def _no_t2(student_logits, teacher_logits, labels, *, temperature, alpha):
    soft = _soft(student_logits, teacher_logits, temperature)
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def _mean_reduction(student_logits, teacher_logits, labels, *, temperature, alpha):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    soft = (p * (p.log() - log_q)).mean() * temperature**2  # what reduction="mean" computes
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def _reversed_kl(student_logits, teacher_logits, labels, *, temperature, alpha):
    soft = _soft(teacher_logits, student_logits, temperature) * temperature**2
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def _teacher_not_softened(student_logits, teacher_logits, labels, *, temperature, alpha):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    soft = F.kl_div(log_q, F.softmax(teacher_logits, dim=-1), reduction="batchmean")
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft * temperature**2


def _swapped_alpha(student_logits, teacher_logits, labels, *, temperature, alpha):
    return reference_distillation_loss(
        student_logits, teacher_logits, labels, temperature=temperature, alpha=1 - alpha
    )


DIAGNOSES = (
    (_no_t2, "multiply the soft term by temperature**2 (keeps its gradient the size of the "
     "hard term's when T changes)"),
    (_mean_reduction, "F.kl_div(..., reduction='mean') averages over every element; the KL is "
     "summed over classes and averaged over rows: reduction='batchmean'"),
    (_reversed_kl, "the KL direction is KL(teacher || student): F.kl_div(log_softmax(student/T), "
     "softmax(teacher/T))"),
    (_teacher_not_softened, "soften the teacher too: softmax(teacher_logits / T)"),
    (_swapped_alpha, "alpha weighs the hard label term: alpha * CE + (1 - alpha) * soft"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(3)

    def make(b: int, n: int, t: float, alpha: float, scale: float = 2.0) -> dict:
        return {
            "student_logits": torch.randn(b, n, generator=g) * scale,
            "teacher_logits": torch.randn(b, n, generator=g) * scale,
            "labels": torch.randint(0, n, (b,), generator=g),
            "temperature": t,
            "alpha": alpha,
        }

    same = make(4, 5, 3.0, 0.0)
    same["student_logits"] = same["teacher_logits"].clone()
    specs = [
        ("alpha=1: labels only", make(4, 3, 2.0, 1.0),
         "with alpha=1 the loss is F.cross_entropy(student_logits, labels)"),
        ("alpha=0, T=1: KL only", make(5, 4, 1.0, 0.0),
         "KL(p || q) = sum p (log p - log q); F.kl_div takes log q first, then p"),
        ("student == teacher, alpha=0: loss is 0", same,
         "the KL of a distribution with itself is 0"),
        ("T=4, alpha=0.3, 10 candidate items", make(6, 10, 4.0, 0.3),
         "divide both logits by T, then scale the soft term by T**2"),
        ("T=0.5 (sharper), alpha=0.5", make(3, 6, 0.5, 0.5),
         "the same formula holds for T < 1"),
    ]  # fmt: skip
    return [
        Case(name, kw, reference_distillation_loss(**kw), hint, DIAGNOSES, atol=1e-5)
        for name, kw, hint in specs
    ]


def check_distillation_loss(student: Callable[..., Tensor]) -> bool:
    """Check ``student(student_logits, teacher_logits, labels, *, temperature, alpha)``."""
    return run_cases("the distillation loss", student, cases())
