"""A two-stage cascade scorer and its measured cost model.

The cheap **student** scores all C candidates of a request; the expensive **teacher** re-scores
only the student's top N (the cascade *depth*). The final order is the teacher's order of those
N followed by the student's order of the rest, so ``depth = C`` is the teacher's ranking and
``depth = 0`` the student's. This is the ranking cascade of industrial recommenders (e.g. Wang,
Lin & Metzler, "A Cascade Ranking Model for Efficient Ranked Retrieval", SIGIR 2011).

Scores are relevances: Σ over the request's active tasks of log σ(logit), as in
:class:`mtrec.serving.recommender.Recommender`. A task a scenario does not need is left out of
the sum (an MMoE computes every tower in one batched call, so skipping a task changes what is
ranked, not the cost; the depth is what buys time).

:class:`StageCosts` is the latency model ``overhead + student(C) + teacher(N)``, each model
linear in its row count, fitted by :func:`measure_costs` from timings on this machine.

Batch keys: whatever both models read, each (C, ...) for the C candidates of one request.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.checks import as_tensor, check_finite, check_int, check_tensor
from mtrec.data import Batch


def task_relevance(logits: Tensor, tasks: Tensor | None = None) -> Tensor:
    """(C, T) logits → (C,) Σ over active tasks of log σ(logit); ``tasks`` (T,) bool, None = all."""
    check_tensor(logits, "logits")
    if logits.dim() != 2:
        raise ValueError(
            f"logits must be (C, T), got shape {tuple(logits.shape)}; call the model on a batch"
        )
    check_finite(logits, "logits", fix="the model produced NaN/inf logits; check its inputs")
    log_p = nn.functional.logsigmoid(logits.float())  # (C, T)
    if tasks is None:
        return log_p.sum(dim=1)
    if not isinstance(tasks, Tensor):
        try:
            tasks = as_tensor(tasks)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"tasks must be a (T,) bool mask, got {tasks!r}") from None
    if tasks.dtype != torch.bool and bool(((tasks != 0) & (tasks != 1)).any()):
        raise ValueError(f"tasks must be a bool (or 0/1) mask, got {tasks.tolist()}")
    tasks = torch.as_tensor(tasks, dtype=torch.bool, device=logits.device)
    if tasks.shape != (logits.shape[1],) or not bool(tasks.any()):
        raise ValueError(
            f"tasks must be a (T,) = ({logits.shape[1]},) bool mask with at least one True, got "
            f"{tasks.tolist()}; map the scenario's tasks with RuleTaskMapper.mask"
        )
    return (log_p * tasks.float()).sum(dim=1)


def cascade_order(student_scores: Tensor, teacher_scores: Tensor, depth: int) -> Tensor:
    """The cascade's final order, (C,) candidate positions, best first.

    Args:
        student_scores: (C,) the student's relevance of every candidate.
        teacher_scores: (N,) the teacher's relevance of the student's top ``depth`` candidates,
            in the student's order (``N = depth``).
        depth: N, how many candidates the teacher re-scored.
    """
    check_tensor(student_scores, "student_scores", ndim=1)
    check_tensor(teacher_scores, "teacher_scores")
    check_finite(student_scores, "student_scores", fix="a NaN score has no place in an order")
    check_finite(teacher_scores, "teacher_scores", fix="a NaN score has no place in an order")
    num = student_scores.shape[0]
    depth = check_depth(depth, num)
    if teacher_scores.shape != (depth,):
        raise ValueError(
            f"teacher_scores must be ({depth},) (one per re-scored candidate), got "
            f"{tuple(teacher_scores.shape)}"
        )
    by_student = torch.argsort(student_scores, descending=True, stable=True)  # (C,)
    head = by_student[:depth][torch.argsort(teacher_scores, descending=True, stable=True)]
    return torch.cat([head, by_student[depth:]])


def check_depth(depth: int, num_candidates: int) -> int:
    """``depth`` as an int in 0..num_candidates, or a ValueError saying so."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth must be an int, got {type(depth).__name__}")
    if not 0 <= int(depth) <= num_candidates:
        raise ValueError(
            f"depth must be in 0..{num_candidates} (the number of candidates), got {depth}; "
            "0 = student only, C = the teacher re-scores everything"
        )
    return int(depth)


def _rows(batch: Batch) -> int:
    if not isinstance(batch, Mapping):
        raise TypeError(f"a candidate batch must be a dict of tensors, got {type(batch).__name__}")
    for key, value in batch.items():
        check_tensor(value, f"batch[{key!r}]")
        if value.ndim == 0:
            raise ValueError(f"batch[{key!r}] must have a first dimension C, got a 0-D tensor")
    sizes = {k: v.shape[0] for k, v in batch.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"a candidate batch needs tensors of one first dimension C, got {sizes}")
    return next(iter(sizes.values()))


def _declared_tasks(model: nn.Module) -> tuple[int | None, tuple[str, ...] | None]:
    """(T, task names) a model declares (``config.num_tasks``, ``task_names``), None if not."""
    config = getattr(model, "config", None)
    names = getattr(model, "task_names", None) or getattr(config, "task_names", None)
    names = tuple(names) if names else None
    count = getattr(config, "num_tasks", None)
    if not isinstance(count, int) or isinstance(count, bool):
        count = len(names) if names else None
    return count, names


class CascadeScorer:
    """Student over all candidates → teacher over the top ``depth`` → one order.

    Args:
        student: a click model, ``student(batch) -> (C, T)`` logits.
        teacher: a click model with the same T tasks in the same order: refused at construction
            when the two declare different tasks, else at the first call whose logits differ.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        for name, model in (("student", student), ("teacher", teacher)):
            if not isinstance(model, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(model).__name__}")
        (s_count, s_names), (t_count, t_names) = _declared_tasks(student), _declared_tasks(teacher)
        if s_count is not None and t_count is not None and s_count != t_count:
            raise ValueError(
                f"the student predicts {s_count} tasks {list(s_names or ())} but the teacher "
                f"{t_count} {list(t_names or ())}: a cascade sums the same tasks in both stages; "
                "distil a student on the teacher's tasks, or pair models of the same tasks"
            )
        if s_names and t_names and s_names != t_names:
            raise ValueError(
                f"the student's tasks {list(s_names)} and the teacher's {list(t_names)} differ in "
                "name or order: logit t must mean the same task in both; pair models whose "
                "task_names match"
            )
        self.student, self.teacher = student.eval(), teacher.eval()
        self._widths: dict[str, int] = {}  # T of each model's logits, seen at the first call

    def _logits(self, stage: str, batch: Batch) -> Tensor:
        logits = getattr(self, stage)(batch)
        if isinstance(logits, Tensor) and logits.dim() == 2:
            self._widths.setdefault(stage, logits.shape[1])
        if len(set(self._widths.values())) > 1:
            raise ValueError(
                f"the student's logits have {self._widths['student']} tasks but the teacher's "
                f"{self._widths['teacher']}: a cascade sums the same tasks in both stages; pair "
                "models of the same tasks in the same order"
            )
        return logits

    @torch.no_grad()
    def student_scores(self, batch: Batch, tasks: Tensor | None = None) -> Tensor:
        """(C,) student relevance of every candidate."""
        return task_relevance(self._logits("student", batch), tasks)

    @torch.no_grad()
    def teacher_scores(self, batch: Batch, tasks: Tensor | None = None) -> Tensor:
        """(C,) teacher relevance of every candidate (the teacher-only policy)."""
        return task_relevance(self._logits("teacher", batch), tasks)

    @torch.no_grad()
    def rank(self, batch: Batch, depth: int, tasks: Tensor | None = None) -> Tensor:
        """(C,) candidate positions, best first, with the teacher re-scoring the top ``depth``."""
        num = _rows(batch)
        depth = check_depth(depth, num)
        student = self.student_scores(batch, tasks)  # (C,)
        top = torch.argsort(student, descending=True, stable=True)[:depth]  # (N,)
        teacher = student.new_zeros(0)
        if depth:
            teacher = self.teacher_scores({k: v[top] for k, v in batch.items()}, tasks)  # (N,)
        return cascade_order(student, teacher, depth)


@dataclass(frozen=True)
class StageCosts:
    """Measured milliseconds of each stage of one request; all fields >= 0.

    A request with C candidates and depth N costs
    ``overhead_ms + student_fixed_ms + student_ms * C + [N > 0] (teacher_fixed_ms + teacher_ms * N)``;
    the teacher-only policy costs ``overhead_ms + teacher_fixed_ms + teacher_ms * C``.
    """

    overhead_ms: float  # per request, outside the models: gather features, sort, cut the list
    student_fixed_ms: float  # one student call, independent of its row count
    student_ms: float  # per candidate the student scores
    teacher_fixed_ms: float  # one teacher call, independent of its row count
    teacher_ms: float  # per candidate the teacher re-scores

    def __post_init__(self) -> None:
        for key, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"stage cost {key} must be a number of ms, got {value!r}")
        bad = {k: v for k, v in vars(self).items() if not (np.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"stage costs must be finite and >= 0 ms, got {bad}")

    def request_ms(self, num_candidates: np.ndarray | int, depth: np.ndarray | int) -> np.ndarray:
        """Milliseconds of a cascade request (vectorised over arrays of C and N)."""
        c, n = _counts(num_candidates, "num_candidates"), _counts(depth, "depth")
        teacher = np.where(n > 0, self.teacher_fixed_ms + self.teacher_ms * n, 0.0)
        return self.overhead_ms + self.student_fixed_ms + self.student_ms * c + teacher

    def teacher_only_ms(self, num_candidates: np.ndarray | int) -> np.ndarray:
        """Milliseconds of a request the teacher scores alone (no student stage)."""
        c = _counts(num_candidates, "num_candidates")
        return self.overhead_ms + self.teacher_fixed_ms + self.teacher_ms * c

    def frame(self) -> dict[str, float]:
        """The fields in ms, rounded to the nanosecond, for printing."""
        return {k: round(v, 6) for k, v in vars(self).items()}


def _counts(value: object, name: str) -> np.ndarray:
    """``value`` (a count or an array of counts) as a float array; finite and >= 0, or an error."""
    try:
        array = np.asarray(value, float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a count or an array of counts, got {value!r}") from None
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return array


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _line(sizes: list[int], ms: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ms against sizes, both clipped at 0."""
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(ms, float), 1)
    return max(float(intercept), 0.0), max(float(slope), 0.0)


@torch.no_grad()
def measure_costs(
    scorer: CascadeScorer,
    batch: Batch,
    *,
    sizes: tuple[int, ...] = (64, 256, 1024),
    repeats: int = 30,
    overhead: Callable[[], object] | None = None,
) -> StageCosts:
    """Time each stage on this machine (CPU wall clock, median of ``repeats`` after a warm-up).

    Each model is timed on the first ``s`` rows of ``batch`` for every ``s`` in ``sizes`` and a
    line ms = fixed + per_row · s is fitted. ``overhead`` (a function doing one request's work
    outside the models, e.g. building its candidate batch and ordering it) is timed too; None
    times :func:`cascade_order` on ``max(sizes)`` scores.

    Args:
        scorer: the cascade to time.
        batch: a candidate batch with at least ``max(sizes)`` rows.
    """
    if not isinstance(scorer, CascadeScorer):
        raise TypeError(f"scorer must be a CascadeScorer, got {type(scorer).__name__}")
    num = _rows(batch)
    sizes = tuple(check_int(s, "sizes[i]", min=1) for s in sizes)
    if len(set(sizes)) < 2 or min(sizes) < 1 or max(sizes) > num:
        raise ValueError(
            f"sizes must hold >= 2 row counts in 1..{num} (the batch's rows), got {sizes}; pass "
            "a larger candidate batch or smaller sizes (at least two different ones)"
        )
    check_int(repeats, "repeats", min=1)
    timed = {}
    for name, model in (("student", scorer.student), ("teacher", scorer.teacher)):
        ms = []
        for s in sizes:
            part = {k: v[:s] for k, v in batch.items()}
            ms.append(_median_ms(lambda part=part, model=model: model(part), repeats))
        timed[name] = _line(list(sizes), ms)
    if overhead is not None and not callable(overhead):
        raise TypeError(f"overhead must be a function of no arguments or None, got {overhead!r}")
    if overhead is None:
        scores = torch.randn(max(sizes), generator=torch.Generator().manual_seed(0))
        top = min(100, max(sizes))

        def overhead() -> object:
            return cascade_order(scores, scores[:top], top)

    return StageCosts(
        overhead_ms=_median_ms(overhead, repeats),
        student_fixed_ms=timed["student"][0],
        student_ms=timed["student"][1],
        teacher_fixed_ms=timed["teacher"][0],
        teacher_ms=timed["teacher"][1],
    )
