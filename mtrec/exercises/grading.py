"""Grading a class: run each handed-in notebook's answer and check in a process of its own.

:func:`grade` grades a folder of handed-in notebooks (``mtrec exercises grade``): for each one it
runs the cells tagged ``student``, then the exercise's check, in a subprocess
(:mod:`mtrec.exercises._worker`) under a time limit, and returns one :class:`GradeRow` per
(student, exercise) with the cases passed (the check runs every case, see
:func:`mtrec.exercises._harness.recording`) and the first failure. :func:`write_csv` saves them.

Layout of a submissions folder (one notebook per student and exercise; the exercise is read from
the end of the file name, case-insensitively)::

    SUBMISSIONS/alice_05_ndcg.ipynb        flat: <student>_<exercise>.ipynb ("-" also separates)
    SUBMISSIONS/bob/05_ndcg.ipynb          a folder per student: <student>/<exercise>.ipynb
    SUBMISSIONS/bob/bob_07_semantic_ids.ipynb   (a prefix before the exercise name is ignored)

The subprocess keeps a student's crash, endless loop or ``exit()`` out of the grader; it is not a
security sandbox (the code runs as the grader's user and can read and write files): grade
untrusted code in a container or a throw-away account.
"""

from __future__ import annotations

import collections
import csv
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from mtrec.exercises import CHECKS
from mtrec.exercises.classroom import (
    EXERCISES,
    ClassroomError,
    Exercise,
    cell_source,
    is_student_cell,
    read_notebook,
    umask,
)

STARTUP_LIMIT_S = 300.0  # for the worker's imports (torch), before the student's time starts


@dataclass(frozen=True)
class Submission:
    """One handed-in notebook: whose it is, which exercise, where."""

    student: str
    exercise: Exercise
    path: Path


@dataclass
class GradeRow:
    """One row of the grades CSV (see :data:`CSV_COLUMNS`)."""

    student: str
    exercise: str
    cases_passed: int = 0
    cases_total: int | None = None
    passed: bool = False
    first_failure: str = ""  # "case 2/5 (name): why; diagnosis or hint"
    error: str = ""  # the submission could not be checked: crash, time-out, no function, ...
    seconds: float = 0.0
    file: str = ""  # relative to the submissions folder


CSV_COLUMNS = [f.name for f in fields(GradeRow)]


def _exercise_of(stem: str, exercises: Sequence[Exercise]) -> tuple[Exercise, str] | None:
    """(exercise, what comes before its name) for a file stem ending with an exercise's name."""
    for exercise in sorted(exercises, key=lambda e: -len(e.stem)):
        match = re.fullmatch(rf"(?P<prefix>.*?)[_\-. ]*{re.escape(exercise.stem)}", stem, re.I)
        if match:
            return exercise, match["prefix"]
    return None


def find_submissions(
    folder: str | Path, exercises: Sequence[Exercise] = EXERCISES
) -> tuple[list[Submission], list[str]]:
    """The submissions in ``folder`` (layout in the module docstring) and what was skipped, why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClassroomError(f"{folder} is not a folder; pass the folder of handed-in notebooks")
    found: dict[tuple[str, str], Submission] = {}
    skipped: list[str] = []
    names = ", ".join(e.stem for e in exercises[:2])
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and other hidden copies
        if len(relative.parts) > 2:
            skipped.append(f"{relative}: too deep; use <student>/<exercise>.ipynb")
            continue
        matched = _exercise_of(path.stem, exercises)
        if matched is None:
            skipped.append(f"{relative}: the name does not end with an exercise's ({names}, ...)")
            continue
        exercise, prefix = matched
        student = relative.parts[0] if len(relative.parts) == 2 else prefix
        if not student:
            skipped.append(f"{relative}: no student name; name it <student>_{exercise.stem}.ipynb")
            continue
        key = (student, exercise.stem)
        if key in found:
            skipped.append(f"{relative}: {student} already handed in {found[key].path.name}")
            continue
        found[key] = Submission(student, exercise, path)
    return sorted(found.values(), key=lambda s: (s.student, s.exercise.stem)), skipped


@cache
def case_count(check: str) -> int:
    """How many hidden cases the check ``check`` runs (its module's ``cases()``; else 1)."""
    module = importlib.import_module(CHECKS[check].__module__)
    cases = getattr(module, "cases", None)
    return len(cases()) if callable(cases) else 1


def compile_error(source: str, filename: str) -> str | None:
    """Why ``source`` does not compile (None when it does); compiling runs none of it."""
    try:
        compile(source, filename, "exec")
    except SyntaxError as error:
        return f"the cells tagged 'student' do not compile: {error.msg} (line {error.lineno})"
    return None


def student_source(path: Path) -> str:
    """The code of the cells tagged ``student``, in order (IPython magics commented out)."""
    cells = [c for c in read_notebook(path)["cells"] if is_student_cell(c)]
    if not cells:
        raise ClassroomError(
            "no code cell tagged 'student': the exercise's TODO cell carries that tag; keep it"
        )
    lines = []
    for cell in cells:
        for line in cell_source(cell).splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):
                line = f"{line[: len(line) - len(stripped)]}pass  # skipped: {stripped}"
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def _read_events(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written
        if isinstance(event, dict):
            events.append(event)
    return events


def _stop(process: subprocess.Popen) -> None:
    """Kill the worker and whatever it started (its own process group on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass  # it has already ended
    process.wait()


@dataclass
class _Outcome:
    events: list[dict[str, Any]]
    returncode: int | None
    stderr: str
    timed_out: bool = False
    no_start: bool = False


def _run_worker(source: Path, exercise: Exercise, events: Path, time_limit_s: float) -> _Outcome:
    """Run the student's code and the check in a subprocess; stop it ``time_limit_s`` after its
    imports are done (the "ready" event)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    package_root = str(Path(__file__).resolve().parents[2])  # so the worker imports this mtrec
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "mtrec.exercises._worker", str(source), exercise.function,
               exercise.check, str(events)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=source.parent, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=os.name == "posix",
    )  # fmt: skip
    tail: collections.deque[str] = collections.deque(maxlen=20)  # the last lines of stderr
    reader = threading.Thread(
        target=lambda: tail.extend(
            line[:2000].decode("utf-8", "replace") for line in process.stderr
        ),
        daemon=True,
    )
    reader.start()
    started, ready_at, finished_at = time.monotonic(), None, None
    outcome = _Outcome([], None, "")
    try:
        while process.poll() is None:
            time.sleep(0.05)
            seen = _read_events(events)
            now = time.monotonic()
            if ready_at is None and any(e.get("event") == "ready" for e in seen):
                ready_at = now
            if finished_at is None and any(e.get("event") in ("done", "error") for e in seen):
                finished_at = now
            if finished_at is not None and now - finished_at > 5.0:
                _stop(process)  # finished, but something it started keeps it alive
            elif ready_at is None and now - started > STARTUP_LIMIT_S:
                outcome.no_start = True
                _stop(process)
            elif ready_at is not None and finished_at is None and now - ready_at > time_limit_s:
                outcome.timed_out = True
                _stop(process)
    except BaseException:  # Ctrl-C or an error here: leave no student code running
        _stop(process)
        raise
    reader.join(timeout=5)
    outcome.events, outcome.returncode = _read_events(events), process.returncode
    outcome.stderr = "".join(tail)
    return outcome


def _exit_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _fill(row: GradeRow, outcome: _Outcome, time_limit_s: float) -> None:
    """The row's cases and error from what the worker reported."""
    results: list[dict[str, Any]] = []
    done = error = None
    checking = False  # the check has started (the student's cells ran to the end)
    for event in outcome.events:
        kind = event.get("event")
        if kind in ("ready", "progress"):
            row.cases_total = event.get("total", row.cases_total)
        if kind == "progress":
            results, checking = event.get("results", []), True
        elif kind == "done":
            done = event
        elif kind == "error":
            error = event.get("message", "")
    row.cases_passed = sum(bool(r.get("passed")) for r in results)
    failure = next((r for r in results if not r.get("passed")), None)
    if failure:
        advice = f"; {failure['advice']}" if failure.get("advice") else ""
        row.first_failure = (
            f"case {failure['number']}/{row.cases_total} ({failure['name']}): "
            f"{failure['message']}{advice}"
        )
    if outcome.timed_out:
        where = (
            f" during case {len(results) + 1}/{row.cases_total}"
            if checking
            else " while running the cells tagged 'student' (before the check)"
        )
        row.error = (
            f"timed out after {time_limit_s:g} s{where}: an endless loop, or far too slow; "
            "the grader stopped it"
        )
    elif outcome.no_start:
        row.error = f"the grader's worker did not start within {STARTUP_LIMIT_S:g} s"
    elif error is not None:
        row.error = error
    elif done is None:
        last = outcome.stderr.strip().splitlines()[-1:] or [""]
        row.error = f"crashed: the process {_exit_reason(outcome.returncode)}" + (
            f" ({last[0][:200]})" if last[0] else ""
        )
    row.passed = bool(done and done.get("passed")) and not row.error


def grade_one(
    submission: Submission, *, folder: Path | None = None, time_limit_s: float | None = None
) -> GradeRow:
    """Grade one notebook in a subprocess; never raises on the student's behalf."""
    start = time.monotonic()
    exercise = submission.exercise
    limit = exercise.time_limit_s if time_limit_s is None else time_limit_s
    file = submission.path.relative_to(folder) if folder else submission.path
    row = GradeRow(submission.student, exercise.stem, file=str(file))
    row.cases_total = case_count(exercise.check)
    name = f"{submission.path.stem}.py"
    try:
        source = student_source(submission.path)
        row.error = compile_error(source, name) or ""
    except ClassroomError as error:
        row.error = str(error)
    if not row.error:
        with tempfile.TemporaryDirectory(prefix="mtrec-grade-", ignore_cleanup_errors=True) as tmp:
            code = Path(tmp) / name
            code.write_text(source, encoding="utf-8")
            outcome = _run_worker(code, exercise, Path(tmp) / "events.jsonl", limit)
        _fill(row, outcome, limit)
    row.seconds = round(time.monotonic() - start, 2)
    return row


def grade(
    folder: str | Path,
    *,
    time_limit_s: float | None = None,
    jobs: int = 1,
    exercises: Sequence[Exercise] = EXERCISES,
    on_row: Callable[[GradeRow], None] | None = None,
) -> tuple[list[GradeRow], list[str]]:
    """Grade every submission in ``folder``; return (rows sorted by student and exercise, skipped).

    Args:
        folder: the handed-in notebooks (layout in the module docstring).
        time_limit_s: seconds for one submission's code and check (default: the exercise's own,
            60 s; 900 s for the scenario classifier).
        jobs: submissions graded at once (each in its own process).
        on_row: called with each row as soon as it is graded (e.g. to print progress).
    """
    folder = Path(folder)
    submissions, skipped = find_submissions(folder, exercises)
    if not submissions:
        raise ClassroomError(
            f"no submissions found in {folder}: expected <student>_<exercise>.ipynb files (e.g. "
            f"alice_05_ndcg.ipynb) or <student>/<exercise>.ipynb"
            + (f"; skipped {len(skipped)}: {skipped[0]}" if skipped else "")
        )

    def run(submission: Submission) -> GradeRow:
        row = grade_one(submission, folder=folder, time_limit_s=time_limit_s)
        if on_row is not None:
            on_row(row)
        return row

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        rows = list(pool.map(run, submissions))
    return rows, skipped


def write_csv(rows: Iterable[GradeRow], path: str | Path) -> Path:
    """Write the rows to ``path`` (columns :data:`CSV_COLUMNS`), replacing it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(partial, 0o666 & ~umask())
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(asdict(row))
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
