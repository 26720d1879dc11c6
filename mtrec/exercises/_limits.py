"""A student's function called safely: under a time limit, its exceptions turned into advice.

:func:`call_with_time_limit` stops an endless loop (SIGALRM in the main thread, an abandoned
daemon thread elsewhere); :func:`student_error` says what an exception the answer raised means
(a time-out, ``sys.exit()``, an unfinished ``NotImplementedError``, any other error). The
checking harness (:mod:`mtrec.exercises._harness`) runs every case through both.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

TIME_LIMIT_S = 10.0  # per case: every reference answer takes well under a second


class TimeLimitExceeded(BaseException):
    """The student's function ran past its time limit (a BaseException, so a student's
    ``except Exception`` cannot swallow it)."""


def call_with_time_limit(function: Callable[..., Any], kwargs: dict[str, Any], seconds: float):
    """``function(**kwargs)``, or :class:`TimeLimitExceeded` after ``seconds``.

    In the main thread (a notebook kernel, a script) a SIGALRM timer interrupts the call, even
    an endless pure-Python loop. Elsewhere the call runs in a daemon thread that is abandoned
    when late (it cannot be killed, but the check returns).
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def _alarm(signum: int, frame: Any) -> None:
            raise TimeLimitExceeded

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return function(**kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: dict[str, Any] = {}

    def _run() -> None:
        try:
            box["value"] = function(**kwargs)
        except BaseException as error:  # handed back to the caller's thread below
            box["error"] = error

    worker = threading.Thread(target=_run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimitExceeded
    if "error" in box:
        raise box["error"]
    return box["value"]


def student_error(error: BaseException, seconds: float) -> str | None:
    """What to tell the student about an exception their function raised (None: re-raise)."""
    if isinstance(error, KeyboardInterrupt):
        return None
    if isinstance(error, TimeLimitExceeded):
        return (
            f"timed out after {seconds:g} s - your function did not return (an endless loop, or "
            "a loop whose variable never changes?)"
        )
    if isinstance(error, SystemExit):
        return "your function called exit() / sys.exit(); return the value instead"
    if isinstance(error, NotImplementedError):
        return "not implemented yet - replace the `raise NotImplementedError` line"
    return f"your function raised {type(error).__name__}: {error}"
