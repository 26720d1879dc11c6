"""The checking harness behind every ``check_<name>``: run hidden cases, explain failures.

A check never raises on a wrong or unfinished answer (a student's notebook keeps running): it
prints one line per case, and for the first failing case what was passed in, what was expected,
what came back and a hint, then returns ``False``. ``NotImplementedError`` is reported as
"not implemented yet". Only a broken checker (a bug in mtrec) raises.

Every call of the student's function runs under a time limit (:mod:`mtrec.exercises._limits`): an
endless loop is stopped and named ("case 2 timed out after 10 s"), and ``sys.exit()`` inside the
answer is reported, not obeyed. A known mistake is named even when it crashes (``W @ W_p`` on a
non-square layer raises like the student's answer does) or yields NaN (an inverted mask).

Inside ``with recording() as record:`` every check also reports each case's outcome as a
:class:`CaseResult` (``record.total``, ``record.results``, ``record.num_passed``): what the
classroom grader (:mod:`mtrec.exercises.grading`) counts. What a check prints is unchanged.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mtrec.exercises._limits import (
    TIME_LIMIT_S,
    TimeLimitExceeded,
    call_with_time_limit,
    student_error,
)

Diagnosis = tuple[Callable[..., Any], str]  # (a known wrong answer, what it means)


@dataclass
class Case:
    """One hidden test case.

    Attributes:
        name: shown to the student ("causal mask, B=2 H=3 L=5").
        kwargs: the arguments passed to the student's function.
        expected: the reference output (tensor, tuple of tensors or float).
        hint: printed when this case fails.
        diagnoses: known mistakes: if the student's output matches ``wrong(**kwargs)``, its
            message is printed (e.g. "you multiplied the matrices instead of element-wise").
        atol: absolute tolerance of the comparison.
    """

    name: str
    kwargs: dict[str, Any]
    expected: Any
    hint: str = ""
    diagnoses: Sequence[Diagnosis] = field(default_factory=tuple)
    atol: float = 1e-5


def describe(value: Any) -> str:
    """A short description of a value: shape and a few numbers for tensors."""
    if isinstance(value, np.ndarray):
        return "array" + describe(torch.as_tensor(value))[len("tensor") :]
    if isinstance(value, Tensor) and value.device.type == "meta":
        return f"meta tensor shape {tuple(value.shape)} (no values)"
    if isinstance(value, Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(f"{v:.4g}" for v in flat[:6].tolist())
        more = ", ..." if flat.numel() > 6 else ""
        return f"tensor shape {tuple(value.shape)} dtype {value.dtype} [{shown}{more}]"
    if isinstance(value, (tuple, list)):
        return "(" + "; ".join(describe(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)[:200]


def compare(got: Any, expected: Any, atol: float, *, equal_nan: bool = False) -> str | None:
    """``None`` when ``got`` matches ``expected``, else the reason it does not.

    ``equal_nan`` treats NaN in the same places as equal (used to recognise a known mistake that
    produces NaN, e.g. an inverted mask); an answer is never accepted with NaN.
    """
    if got is None and expected is not None:
        return "your function returned None - did you forget the `return` statement?"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            reason = compare(g, e, atol, equal_nan=equal_nan)
            if reason:
                return f"output {i}: {reason}"
        return None
    if isinstance(expected, Tensor):
        if isinstance(got, np.ndarray):
            got = torch.as_tensor(got)
        if not isinstance(got, Tensor):
            return f"expected a torch.Tensor, got {type(got).__name__}"
        if got.device.type == "meta":
            return (
                "the output is a meta tensor (shapes only, no values): compute it from the inputs"
            )
        if tuple(got.shape) != tuple(expected.shape):
            return f"wrong shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.is_complex():
            return f"expected real numbers, got a {got.dtype} tensor"
        got_f, exp_f = got.detach().double().cpu(), expected.detach().double().cpu()
        if equal_nan:
            same = torch.isnan(got_f) == torch.isnan(exp_f)
            if not bool(same.all()):
                return "NaN in different places"
            got_f, exp_f = torch.nan_to_num(got_f), torch.nan_to_num(exp_f)
        if not torch.isfinite(got_f).all():
            return "the output contains NaN or inf"
        diff = (got_f - exp_f).abs()
        if diff.max() > atol + 1e-4 * exp_f.abs().max():
            where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
            return (
                f"values differ: largest difference {diff.max():.3g} at index {where} "
                f"(expected {exp_f[where]:.5g}, got {got_f[where]:.5g})"
            )
        return None
    try:
        got_value = float(got)
    except (TypeError, ValueError, RuntimeError):
        return f"expected a number, got {describe(got)}"
    if equal_nan and np.isnan(got_value) and np.isnan(float(expected)):
        return None
    if not np.isfinite(got_value):
        return f"expected {float(expected):.6g}, got {got_value} (NaN or inf)"
    if not abs(got_value - float(expected)) <= atol + 1e-6 * abs(float(expected)):
        return f"expected {float(expected):.6g}, got {got_value:.6g}"
    return None


def _copy(value: Any) -> Any:
    """A fresh copy, so a student's in-place edit cannot change the expected values."""
    return value.clone() if isinstance(value, Tensor) else np.copy(value) if isinstance(
        value, np.ndarray) else value  # fmt: skip


def _inputs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={describe(v)}" for k, v in kwargs.items())


def _matches(wrong: Callable[..., Any], got: Any, kwargs: dict[str, Any], atol: float) -> bool:
    """Whether ``got`` equals the known wrong answer ``wrong`` on these inputs (NaN-aware)."""
    try:
        wrong_value = wrong(**{k: _copy(v) for k, v in kwargs.items()})
        return compare(got, wrong_value, atol, equal_nan=True) is None
    except Exception:
        return False


def _raises_alike(wrong: Callable[..., Any], error: BaseException, kwargs: dict[str, Any]) -> bool:
    """Whether the known wrong answer ``wrong`` raises the same kind of error on these inputs."""
    try:
        wrong(**{k: _copy(v) for k, v in kwargs.items()})
    except Exception as other:
        return type(other) is type(error)
    return False


def _safe_compare(got: Any, expected: Any, atol: float) -> str | None:
    try:
        return compare(got, expected, atol)
    except Exception as error:  # an output the comparison cannot read (an odd object)
        return f"could not read the output {describe(got)} ({type(error).__name__}: {error})"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one hidden case, as a check reports it while :func:`recording`.

    Attributes:
        number: 1-based position of the case.
        name: the case's name ("perfect ranking gives 1").
        passed: whether the student's answer matched.
        message: why it failed ("expected 1, got 0.105", "not implemented yet - ..."); "" if passed.
        advice: the diagnosis or hint printed with the failure ("" when there is none).
    """

    number: int
    name: str
    passed: bool
    message: str = ""
    advice: str = ""


@dataclass
class CaseRecord:
    """What the checks run inside one :func:`recording` block reported.

    Attributes:
        keep_going: run every case even after a failure (the grader's mode; a notebook's check
            stops at the first failure). An unfinished answer and a time-out still stop.
        on_change: called with this record after ``start`` and after every case.
        title: the last check's title; ``total`` its number of cases; ``results`` its outcomes.
    """

    keep_going: bool = False
    on_change: Callable[[CaseRecord], None] | None = None
    title: str = ""
    total: int = 0
    results: list[CaseResult] = field(default_factory=list)

    @property
    def num_passed(self) -> int:
        """How many cases passed."""
        return sum(r.passed for r in self.results)

    def first_failure(self) -> CaseResult | None:
        """The first case that failed, or None."""
        return next((r for r in self.results if not r.passed), None)

    def start(self, title: str, total: int) -> None:
        """A check starts ``total`` cases (a new check replaces the previous one's results)."""
        self.title, self.total, self.results = title, total, []
        self._changed()

    def add(self, result: CaseResult) -> None:
        """One case's outcome."""
        self.results.append(result)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)


_RECORD: ContextVar[CaseRecord | None] = ContextVar("mtrec_exercise_record", default=None)


@contextmanager
def recording(
    *, keep_going: bool = False, on_change: Callable[[CaseRecord], None] | None = None
) -> Iterator[CaseRecord]:
    """Collect a :class:`CaseResult` per case from the checks run inside the block.

    Example::

        with recording() as record:
            check_ndcg(ndcg_at_k)
        print(record.num_passed, "of", record.total)
    """
    record = CaseRecord(keep_going=keep_going, on_change=on_change)
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def current_record() -> CaseRecord | None:
    """The record of the enclosing :func:`recording` block, if any (checks report to it)."""
    return _RECORD.get()


def _report(
    record: CaseRecord | None, number: int, case: Case, message: str = "", advice: str = ""
) -> None:
    """Tell the enclosing :func:`recording` block (if any) how case ``number`` went."""
    if record is not None:
        record.add(CaseResult(number, case.name, not message, message, advice))


def run_cases(
    title: str,
    student: Callable[..., Any],
    cases: Sequence[Case],
    *,
    time_limit_s: float = TIME_LIMIT_S,
) -> bool:
    """Run ``student`` on every case; print feedback; return True when all pass.

    Never raises on the student's behalf: exceptions, ``sys.exit()``, endless loops (stopped after
    ``time_limit_s`` per case) and unreadable outputs are all reported as a failed case. Stops at
    the first failing case, unless inside ``recording(keep_going=True)``.
    """
    if not callable(student):
        print(f"{title}: pass your function itself, e.g. check(my_function), not its result")
        return False
    record = current_record()
    keep_going = record is not None and record.keep_going
    if record is not None:
        record.start(title, len(cases))
    print(f"Checking {title} on {len(cases)} hidden cases")
    failed = 0
    for number, case in enumerate(cases, 1):
        label = f"  case {number}/{len(cases)} ({case.name})"
        kwargs = {k: _copy(v) for k, v in case.kwargs.items()}
        try:
            got = call_with_time_limit(student, kwargs, time_limit_s)
        except BaseException as error:
            message = student_error(error, time_limit_s)
            if message is None:
                raise
            print(f"{label}: {message}")
            if isinstance(error, NotImplementedError):
                _report(record, number, case, message)
                return False
            frames = traceback.extract_tb(error.__traceback__)[1:]
            if frames and frames[-1].line and not isinstance(error, TimeLimitExceeded):
                print(f"    at line {frames[-1].lineno}: {frames[-1].line}")
            print(f"    inputs: {_inputs(case.kwargs)}")
            named = [m for wrong, m in case.diagnoses if _raises_alike(wrong, error, case.kwargs)]
            advice = ""
            if named and isinstance(error, Exception):
                advice = f"diagnosis: {named[0]}"
            elif case.hint:
                advice = f"hint: {case.hint}"
            if advice:
                print(f"    {advice}")
            _report(record, number, case, message, advice)
            if not keep_going or isinstance(error, TimeLimitExceeded):
                return False
            failed += 1
            continue
        reason = _safe_compare(got, case.expected, case.atol)
        if reason is None:
            print(f"{label}: ok")
            _report(record, number, case)
            continue
        print(f"{label}: FAILED - {reason}")
        print(f"    inputs:   {_inputs(case.kwargs)}")
        print(f"    expected: {describe(case.expected)}")
        print(f"    got:      {describe(got)}")
        advice = ""
        for wrong, message in case.diagnoses:
            if _matches(wrong, got, case.kwargs, case.atol):
                advice = f"diagnosis: {message}"
                break
        else:
            if case.hint:
                advice = f"hint: {case.hint}"
        if advice:
            print(f"    {advice}")
        _report(record, number, case, f"FAILED - {reason}", advice)
        if not keep_going:
            return False
        failed += 1
    if failed:
        print(f"{len(cases) - failed} of {len(cases)} cases passed.")
        return False
    print(f"All {len(cases)} cases passed. Well done!")
    return True
