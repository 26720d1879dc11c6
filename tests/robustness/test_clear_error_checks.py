"""The shared clear-error checks (tests/robustness/conftest.py) pass clear errors, fail the rest."""

from __future__ import annotations

import pytest
import torch

import mtrec.checks
from mtrec.checks import check_int
from mtrec.models import Popularity
from tests.robustness.conftest import (
    CLEAR,
    CLEAR_OR_UNFITTED,
    assert_clear_error,
    result_or_clear_error,
)


def test_a_clear_error_passes_and_is_returned():
    error = assert_clear_error(check_int, 2.5, "width", accept=CLEAR, match=["WIDTH", "an int"])
    assert isinstance(error, TypeError)
    assert result_or_clear_error(check_int, 3, "width") == 3
    assert isinstance(result_or_clear_error(check_int, 2.5, "width", accept=CLEAR), TypeError)


def test_a_result_fails():
    with pytest.raises(AssertionError, match="got a result"):
        assert_clear_error(check_int, 3, "width")


def test_an_error_raised_outside_mtrec_fails():
    with pytest.raises(AssertionError, match="raised outside mtrec"):
        assert_clear_error(int, "x")
    with pytest.raises(AssertionError, match="raised outside mtrec"):
        result_or_clear_error(int, "x")


def test_missing_words_fail():
    with pytest.raises(AssertionError, match="not in the message"):
        assert_clear_error(check_int, 2.5, "width", match=["width", "no-such-word"])


def test_a_type_outside_accept_propagates():
    with pytest.raises(ZeroDivisionError):
        assert_clear_error(lambda: 1 / 0, accept=CLEAR)


def test_a_runtime_error_must_be_call_fit_first():
    unfitted = Popularity(10)
    assert_clear_error(unfitted.scores, torch.zeros(2, 10), accept=CLEAR_OR_UNFITTED, match="fit")
    # any other RuntimeError, even from an mtrec frame, is not clear: compile one as mtrec code
    namespace: dict = {}
    exec(compile("def fail():\n    raise RuntimeError('out of memory')\n",
                 mtrec.checks.__file__, "exec"), namespace)  # fmt: skip
    assert_clear_error(namespace["fail"])  # any type is accepted by default
    with pytest.raises(AssertionError, match="only 'call fit first'"):
        assert_clear_error(namespace["fail"], accept=CLEAR_OR_UNFITTED)
