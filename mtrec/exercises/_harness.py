"""The checking harness behind every ``check_<name>``: run hidden cases, explain failures.

A check never raises on a wrong or unfinished answer (a student's notebook keeps running): it
prints one line per case, and for the first failing case what was passed in, what was expected,
what came back and a hint, then returns ``False``. ``NotImplementedError`` is reported as
"not implemented yet". Only a broken checker (a bug in mtrec) raises.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

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
        value = torch.as_tensor(value)
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


def compare(got: Any, expected: Any, atol: float) -> str | None:
    """``None`` when ``got`` matches ``expected``, else the reason it does not."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            reason = compare(g, e, atol)
            if reason:
                return f"output {i}: {reason}"
        return None
    if isinstance(expected, Tensor):
        if isinstance(got, np.ndarray):
            got = torch.as_tensor(got)
        if not isinstance(got, Tensor):
            return f"expected a torch.Tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"wrong shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}"
        got_f, exp_f = got.detach().double().cpu(), expected.detach().double().cpu()
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
    except (TypeError, ValueError):
        return f"expected a number, got {type(got).__name__}"
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
    try:
        return compare(got, wrong(**kwargs), atol) is None
    except Exception:
        return False


def run_cases(title: str, student: Callable[..., Any], cases: Sequence[Case]) -> bool:
    """Run ``student`` on every case; print feedback; return True when all pass."""
    if not callable(student):
        print(f"{title}: pass your function itself, e.g. check(my_function), not its result")
        return False
    print(f"Checking {title} on {len(cases)} hidden cases")
    for number, case in enumerate(cases, 1):
        label = f"  case {number}/{len(cases)} ({case.name})"
        kwargs = {k: _copy(v) for k, v in case.kwargs.items()}
        try:
            got = student(**kwargs)
        except NotImplementedError:
            print(f"{label}: not implemented yet - replace the `raise NotImplementedError` line")
            return False
        except Exception as error:
            print(f"{label}: your function raised {type(error).__name__}: {error}")
            frames = traceback.extract_tb(error.__traceback__)[1:]
            if frames:
                print(f"    at line {frames[-1].lineno}: {frames[-1].line}")
            print(f"    inputs: {_inputs(case.kwargs)}")
            if case.hint:
                print(f"    hint: {case.hint}")
            return False
        reason = compare(got, case.expected, case.atol)
        if reason is None:
            print(f"{label}: ok")
            continue
        print(f"{label}: FAILED - {reason}")
        print(f"    inputs:   {_inputs(case.kwargs)}")
        print(f"    expected: {describe(case.expected)}")
        print(f"    got:      {describe(got)}")
        for wrong, message in case.diagnoses:
            if _matches(wrong, got, case.kwargs, case.atol):
                print(f"    diagnosis: {message}")
                break
        else:
            if case.hint:
                print(f"    hint: {case.hint}")
        return False
    print(f"All {len(cases)} cases passed. Well done!")
    return True
