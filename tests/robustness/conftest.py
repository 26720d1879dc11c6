"""What a *clear error* is, checked once for every bad-input battery in tests/robustness.

A clear error is raised in mtrec's own code (the innermost traceback frame is a file of the
``mtrec`` package, never a bare torch / numpy / pandas traceback), carries a non-empty message,
is of a type the caller accepts and, when asked, names given words (what was expected, the fix).

pytest runs with ``--import-mode=importlib``, which registers this file as the module
``tests.robustness.conftest``; the test modules import the helpers from there::

    from tests.robustness.conftest import CLEAR, assert_clear_error
"""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, settings

import mtrec

MTREC_DIR = Path(mtrec.__file__).resolve().parent
ANY_ERROR: tuple[type[Exception], ...] = (Exception,)  # any type, as long as mtrec raised it
CLEAR = (ValueError, TypeError, KeyError)  # the familiar types of a bad argument
CLEAR_OR_UNFITTED = (*CLEAR, RuntimeError)  # RuntimeError: only mtrec's "call fit first"
REPLAYABLE = settings(  # hypothesis settings of the data and train/eval batteries
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run (CI-stable)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def seeded() -> None:
    """Tensors drawn inside a case come from a seeded global RNG: reruns see the same data.

    Use it with ``pytestmark = pytest.mark.usefixtures("seeded")``.
    """
    torch.manual_seed(0)


def check_clear(
    error: BaseException,
    *,
    accept: tuple[type[BaseException], ...] = ANY_ERROR,
    match: str | Iterable[str] = (),
) -> BaseException:
    """Assert ``error`` is clear; return it for further checks on its message.

    Args:
        error: the exception a call raised (with its traceback).
        accept: the exception types allowed. When it names ``RuntimeError`` itself, a
            ``RuntimeError`` must be mtrec's documented "call fit first" (its message says "fit").
        match: a word, or words, the message must contain (case-insensitive).
    """
    assert isinstance(error, accept), f"unexpected {type(error).__name__}: {error}"
    last = traceback.extract_tb(error.__traceback__)[-1]
    assert Path(last.filename).resolve().is_relative_to(MTREC_DIR), (
        f"{type(error).__name__} raised outside mtrec, at {last.filename}:{last.lineno}: {error}"
    )
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    if RuntimeError in accept and isinstance(error, RuntimeError):
        assert "fit" in message, f"unexpected RuntimeError (only 'call fit first' is): {error}"
    words = [match] if isinstance(match, str) else list(match)
    missing = [word for word in words if word.lower() not in message.lower()]
    assert not missing, f"{missing} not in the message: {error}"
    return error


def assert_clear_error(
    fn: Callable[..., Any],
    *args: Any,
    accept: tuple[type[BaseException], ...] = ANY_ERROR,
    match: str | Iterable[str] = (),
    **kwargs: Any,
) -> BaseException:
    """``fn(*args, **kwargs)`` must raise a clear error (see :func:`check_clear`); return it.

    A result instead of an error fails; so does an exception outside ``accept`` (it propagates).
    """
    try:
        result = fn(*args, **kwargs)
    except accept as error:
        return check_clear(error, accept=accept, match=match)
    raise AssertionError(f"expected a clear error, got a result: {result!r}")


def result_or_clear_error(
    fn: Callable[..., Any],
    *args: Any,
    accept: tuple[type[BaseException], ...] = ANY_ERROR,
    **kwargs: Any,
) -> Any:
    """A battery case: ``fn(*args, **kwargs)``'s result, or the clear error it raised.

    The caller checks a result (an instance of ``Exception`` means the call was refused clearly).
    """
    try:
        return fn(*args, **kwargs)
    except accept as error:
        return check_clear(error, accept=accept)


# ------------------------------------------- one small fitted Recommender per test module


@pytest.fixture(scope="module")
def recommender(tmp_path_factory):
    """A Recommender fitted for one epoch on 40 MovieLens users (one thread)."""
    from mtrec.data import leave_last_out, load_movielens
    from mtrec.extractors.text import TextEncoder
    from mtrec.serving.recommender import Recommender

    ml = load_movielens()
    users = ml.ratings.user_id.drop_duplicates().to_numpy()[:40]
    split = leave_last_out(ml.ratings[ml.ratings.user_id.isin(users)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MMoE on a shared CPU
    try:
        fitted = Recommender.fit(split.train, ml.users, ml.items, encoder=TextEncoder(), epochs=1)
        # random query texts go to a private cache, not the shared one the item profiles use
        queries = TextEncoder(cache_dir=tmp_path_factory.mktemp("queries"), device="cpu")
        queries._model, queries._tokenizer = fitted.encoder.model, fitted.encoder.tokenizer
        fitted.encoder = queries
        yield fitted
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def user(recommender):
    """A known user id (the fitted users are a sample of MovieLens ids)."""
    return min(recommender.history)


@pytest.fixture(scope="module")
def saved(recommender, tmp_path_factory):
    return recommender.save(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture
def copy(saved, tmp_path):
    """A fresh copy of the saved pipeline to damage."""
    return Path(shutil.copytree(saved, tmp_path / "copy"))
