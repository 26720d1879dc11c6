"""The grader's worker: one student's notebook code and its check, in a process of its own.

Started by :func:`mtrec.exercises.grading.grade` as
``python -m mtrec.exercises._worker SOURCE FUNCTION CHECK EVENTS``: it executes the student's
cells (the file SOURCE), runs ``CHECKS[CHECK]`` on the function FUNCTION they define, and appends
one JSON object per line to the file EVENTS as it goes, so that the grader still knows how far it
got when this process has to be stopped:

* ``{"event": "ready", "total": N}``: imports done, the student's code starts now;
* ``{"event": "progress", "total": N, "results": [CaseResult as a dict, ...]}`` after every case;
* ``{"event": "done", "passed": bool}`` or ``{"event": "error", "message": "..."}`` at the end.

What the student's code and the check print is not kept (the grader reads the events only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from mtrec.exercises import CHECKS
from mtrec.exercises._harness import CaseRecord, recording
from mtrec.exercises.grading import case_count, compile_error
from mtrec.utils import set_seed

SEED = 0  # every student's code starts from the same random state, as the notebooks do


def _emit(stream: TextIO, **event: Any) -> None:
    stream.write(json.dumps(event) + "\n")
    stream.flush()


def _student_function(source: str, filename: str, function: str) -> Any:
    """Execute the student's cells; return their function ``function`` (or a message why not)."""
    namespace: dict[str, Any] = {"__name__": "__main__", "np": np, "torch": torch}
    message = compile_error(source, filename)
    if message:
        return message
    code = compile(source, filename, "exec")
    try:
        exec(code, namespace)  # the student's own code, in this throw-away process
    except SystemExit:
        return "the cells tagged 'student' called exit() / sys.exit()"
    except Exception as error:
        return f"the cells tagged 'student' raised {type(error).__name__}: {error}"
    value = namespace.get(function)
    if not callable(value):
        return (
            f"no function named {function!r} in the cells tagged 'student': keep the name the "
            "exercise gives it"
        )
    return value


def main(argv: list[str]) -> int:
    """Run one submission; see the module docstring."""
    source_path, function, check_name, events_path = argv
    with open(events_path, "a", encoding="utf-8") as events:
        total = case_count(check_name)
        source = Path(source_path).read_text(encoding="utf-8")
        set_seed(SEED)
        _emit(events, event="ready", total=total)
        found = _student_function(source, Path(source_path).name, function)
        if isinstance(found, str):
            _emit(events, event="error", message=found)
            return 0

        def progress(record: CaseRecord) -> None:
            results = [dataclasses.asdict(r) for r in record.results]
            _emit(events, event="progress", total=record.total, results=results)

        try:
            with recording(keep_going=True, on_change=progress):
                passed = CHECKS[check_name](found)
        except BaseException as error:  # the check itself broke: a bug in mtrec, not the student
            _emit(events, event="error", message=f"the check failed ({type(error).__name__}: "
                  f"{error}); please report it with this notebook")  # fmt: skip
            return 1
        _emit(events, event="done", passed=bool(passed))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # do not wait for threads the student's code may have left running
