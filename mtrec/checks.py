"""Input validation shared by every stage: one helper per kind of input, one message style.

Every helper raises from mtrec's own frame (never deep inside torch or NumPy) with a message
that says *what* was expected, *what* was received and *how* to fix it::

    check_ids(batch["user"], "feature 'user'", vocab_size=943)
    ValueError: feature 'user' has ids outside 0..942: got [943, 1200] (vocabulary size 943);
    build the vocabulary from all rows (IdIndex) or map unseen ids to the padding id 0

``ValueError`` for a wrong value or shape, ``TypeError`` for a wrong kind of object, so callers
and learners can catch the familiar built-in exceptions.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {_shown(value)}"


def check_int(value: Any, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as a Python int in ``[min, max]``; bools and non-integral floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            fix = f"pass {int(value)} (an int)"
        else:
            fix = "pass a whole number"
        raise TypeError(f"{name} must be an int, got {_kind(value)}; {fix}")
    value = int(value)
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}, got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be <= {max}, got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    below_max: bool = False,
) -> float:
    """``value`` as a finite float in ``[min, max]`` (``[min, max)`` when ``below_max``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}, got {value}")
    if max is not None and (value > max or (below_max and value >= max)):
        bound = f"< {max}" if below_max else f"<= {max}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_probability(value: Any, name: str) -> float:
    """A rate in ``[0, 1)``, e.g. a dropout probability (1 would drop everything)."""
    return check_float(value, name, min=0.0, max=1.0, below_max=True)


def check_widths(value: Any, name: str, *, allow_empty: bool = True) -> tuple[int, ...]:
    """A sequence of layer widths, each a positive int; returned as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of positive ints, got {_kind(value)}")
    widths = tuple(value)
    if not widths and not allow_empty:
        raise ValueError(f"{name} must list at least one width, got ()")
    for i, width in enumerate(widths):
        check_int(width, f"{name}[{i}]", min=1)
    return tuple(int(w) for w in widths)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {_shown(value)}")
    return value


def check_tensor(
    value: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
) -> Tensor:
    """``value`` when it is a tensor of the given ``ndim`` / ``shape`` (``None`` = any size)."""
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {_kind(value)}; wrap it with torch.as_tensor"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {dims}, got shape {tuple(value.shape)}")
    if shape is not None:
        ok = value.ndim == len(shape) and all(
            want is None or got == want for got, want in zip(value.shape, shape)
        )
        if not ok:
            want_text = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want_text}, got {tuple(value.shape)}")
    if value.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (no data); create it on 'cpu' or 'cuda'")
    return value


def check_finite(value: Tensor, name: str, *, fix: str = "") -> Tensor:
    """``value`` when it holds no NaN or infinity; else say how many and where to look."""
    if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
        nan = int(torch.isnan(value).sum())
        inf = int(torch.isinf(value).sum())
        hint = f"; {fix}" if fix else "; clean or impute the input (e.g. fillna) before passing it"
        raise ValueError(f"{name} contains {nan} NaN and {inf} infinite values{hint}")
    return value


def as_tensor(value: Any, dtype: Any = None) -> Tensor:
    """``value`` (a tensor, array or list) as a tensor, sharing memory where torch can.

    A read-only array (a pandas column under copy-on-write, a memory map) is copied first:
    torch cannot share it and would print a UserWarning instead.
    """
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array)


def check_ids(value: Any, name: str, vocab_size: int | None = None) -> Tensor:
    """Integer ids as a long tensor in ``0..vocab_size-1``.

    Float tensors are accepted only when every value is a whole number (ids read from a float
    column); 1.7 is refused rather than truncated to 1.
    """
    ids = as_tensor(value)
    check_tensor(ids, name)
    if ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got a bool tensor")
    if ids.is_floating_point() or ids.is_complex():
        if ids.numel() and not bool((torch.isfinite(ids) & (ids == ids.round())).all()):
            bad = ids[~(torch.isfinite(ids) & (ids == ids.round()))].flatten()[:3].tolist()
            raise ValueError(
                f"{name} must hold integer ids, got non-integral values {bad}; ids are row "
                "numbers in a vocabulary (IdIndex), not measurements"
            )
    ids = ids.long()
    if vocab_size is not None and ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            bad = ids[(ids < 0) | (ids >= vocab_size)].unique()[:5].tolist()
            raise ValueError(
                f"{name} has ids outside 0..{vocab_size - 1}: got {bad} (vocabulary size "
                f"{vocab_size}); build the vocabulary from all rows (IdIndex) or map unseen "
                "values to a known id before calling the model"
            )
    return ids


def check_binary_labels(value: Tensor, name: str = "labels", *, allow_nan: bool = True) -> Tensor:
    """Click labels in {0, 1} (NaN = unlabelled when ``allow_nan``); ratings are refused."""
    labels = check_tensor(value, name).float()
    known = labels[~torch.isnan(labels)] if allow_nan else labels
    if not allow_nan and bool(torch.isnan(labels).any()):
        raise ValueError(f"{name} contains NaN; every row needs a 0/1 label here")
    bad = known[(known != 0) & (known != 1)]
    if bad.numel():
        raise ValueError(
            f"{name} must be 0 or 1 (click / no click), got {bad.unique()[:5].tolist()}; "
            "binarise ratings first, e.g. labels = (rating > 3).float()"
        )
    return labels


def check_nonempty(value: Any, name: str, *, fix: str = "") -> Any:
    """``value`` when it has at least one element."""
    size = value.numel() if isinstance(value, Tensor) else len(value)
    if size == 0:
        raise ValueError(f"{name} is empty; {fix or 'pass at least one element'}")
    return value


def is_tracing() -> bool:
    """True while ``torch.export``/``torch.compile``/``torch.jit.trace`` records a graph.

    Value checks (``int(ids.max())``, ``bool(isfinite.all())``) read data, which a graph being
    traced does not have: callers skip them then (the eager call checked the same inputs).
    """
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())


class CheckedData:
    """Whole-dataset tensors whose value checks run once each, not on every batch.

    A :class:`mtrec.data.TensorBatcher` owns one and tags every batch it yields with it
    (:class:`CheckedBatch`). A module that would scan each batch (ids in range, no NaN, 0/1
    labels) calls :func:`checked_once` instead: the first batch runs the scan over *all* rows,
    later batches cost nothing (no scan, no device sync). Direct calls with plain dicts keep the
    per-call checks and their errors.

    The tensors are the batcher's own; change them in place and build a new batcher.
    """

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        self.tensors = tensors
        self.passed: set[Hashable] = set()

    def once(self, key: Hashable, check: Callable[[Mapping[str, Tensor]], object]) -> None:
        """Run ``check`` on the whole data unless a check with this ``key`` already passed."""
        if key not in self.passed:
            check(self.tensors)  # raises the same clear error a bad batch would
            self.passed.add(key)


class CheckedBatch(dict):
    """A batch sliced from :class:`CheckedData` (a plain ``dict[str, Tensor]`` plus ``origin``)."""

    __slots__ = ("origin",)

    def __init__(self, items: Mapping[str, Tensor], origin: CheckedData) -> None:
        super().__init__(items)
        self.origin = origin


def same_origin(batch: Mapping[str, Any], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """``tensors`` (rows or a copy of ``batch``) tagged with ``batch``'s origin if it has one."""
    origin = getattr(batch, "origin", None)
    return CheckedBatch(tensors, origin) if isinstance(origin, CheckedData) else tensors


def checked_once(
    batch: Mapping[str, Any], key: Hashable, check: Callable[[Mapping[str, Tensor]], object]
) -> bool:
    """True when ``batch``'s values are covered by a whole-data check (run now if first).

    False for a plain dict: the caller checks this batch itself. ``key`` names what ``check``
    verifies (e.g. ``("scenario_ids", 3)``), so two models with different vocabularies reading
    the same batcher each get their own check. Tracing (:func:`is_tracing`) counts as covered.
    """
    if is_tracing():
        return True
    origin = getattr(batch, "origin", None)
    if not isinstance(origin, CheckedData):
        return False
    origin.once(key, check)
    return True


def arg_int(*, min: int | None = None, max: int | None = None) -> Any:
    """An ``argparse`` ``type=`` for a bounded integer flag (``--threads``, ``--seeds``, ...).

    The parser then answers a bad value with its usage line and a message naming the flag, what
    it expected and what it got, instead of passing it on to torch or the standard library.
    """
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (min is not None and value < min) or (max is not None and value > max):
            bounds = " and ".join(
                part for part in (min is not None and f">= {min}", max is not None and f"<= {max}")
                if part
            )  # fmt: skip
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def arg_float(*, min: float | None = None, max: float | None = None) -> Any:
    """An ``argparse`` ``type=`` for a finite, bounded float flag (``--atol``, ...)."""
    import argparse

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if (min is not None and value < min) or (max is not None and value > max):
            raise argparse.ArgumentTypeError(
                f"expected a number in [{min if min is not None else '-inf'}, "
                f"{max if max is not None else 'inf'}], got {value}"
            )
        return value

    parse.__name__ = "number"
    return parse


def arg_path(text: str) -> str:
    """An ``argparse`` ``type=`` for a folder or file flag: an empty path is refused.

    (``--out ''`` would otherwise fall back to a default folder and overwrite it.)
    """
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected a path, got an empty string; leave the flag out for the default folder"
        )
    return text
