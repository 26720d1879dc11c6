"""A classroom kit: the exercises, and handing them out (``mtrec exercises list|release``).

:data:`EXERCISES` names each exercise notebook's function, check and numbered notebook.
:func:`release` writes the student notebooks (``notebooks/exercises/NN_*.ipynb``, outputs
cleared) and a README for students into a new folder, atomically; the solutions
(``notebooks/exercises/solutions/``) are never copied. Grading what comes back is
:mod:`mtrec.exercises.grading` (``mtrec exercises grade``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtrec.exercises import CHECKS
from mtrec.utils import REPO_ROOT

FOLDER = REPO_ROOT / "notebooks" / "exercises"  # the student versions; solutions/ below them


class ClassroomError(Exception):
    """A release or grading request that cannot be carried out (the message says how to fix it)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise notebook.

    Attributes:
        stem: the notebook's name without ``.ipynb`` ("05_ndcg").
        function: the function the student writes in the cell tagged ``student``.
        check: its check, a key of :data:`mtrec.exercises.CHECKS`.
        notebook: the numbered notebook it goes with ("07").
        time_limit_s: grading time for one submission's cells and check (after imports).
    """

    stem: str
    function: str
    check: str
    notebook: str
    time_limit_s: float = 60.0

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"{self.stem}: no check named {self.check!r}; one of {sorted(CHECKS)}")


EXERCISES = (
    Exercise("01_attention", "attention", "attention", "02"),
    Exercise("02_mmoe_gate", "mmoe_gate", "mmoe_gate", "06"),
    Exercise("03_star_layer", "star_linear", "star_linear", "05"),
    Exercise("04_distillation_loss", "distillation_loss", "distillation_loss", "09"),
    Exercise("05_ndcg", "ndcg_at_k", "ndcg", "07"),
    # trains the student's classifier and the baseline tree on 4,000 reviews
    Exercise("06_scenario_classifier", "fit_predict", "scenario_classifier", "05", 900.0),
    Exercise("07_semantic_ids", "residual_codes", "semantic_ids", "08"),
    Exercise("08_step_percentiles", "step_percentiles", "step_percentiles", "10"),
    Exercise("09_new_scenario", "add_scenario_slice", "add_scenario_slice", "12"),
    Exercise("10_transe_score", "transe_score", "transe_score", "13"),
    Exercise("11_pick_depth", "pick_depth", "pick_depth", "14"),
)


def exercise_notebooks(source: Path = FOLDER) -> list[Path]:
    """The student notebooks in ``source``, in order (raises when there are none)."""
    paths = sorted(Path(source).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise ClassroomError(
            f"no exercise notebooks (NN_name.ipynb) in {source}; the exercises ship with the "
            "source checkout of mtrec (git clone ...), not with an installed wheel"
        )
    return paths


def title_of(path: Path) -> tuple[str, str]:
    """(title, time) from a notebook's first line: "# Exercise 5 · NDCG@K (about 25 minutes)"."""
    cells = read_notebook(path)["cells"]
    first = cell_source(cells[0]).splitlines()[0] if cells and cell_source(cells[0]) else path.stem
    match = re.match(r"#\s*Exercise \d+\s*·\s*(?P<title>.+?)\s*\((?P<time>about [^)]*)\)", first)
    return (match["title"], match["time"]) if match else (first.lstrip("# "), "")


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook's JSON (raises ClassroomError when it is not a readable notebook)."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ClassroomError(f"{path.name} is not a readable notebook ({error})") from error
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ClassroomError(f"{path.name} is not a Jupyter notebook (no list of cells)")
    return notebook


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (stored as a list of lines or as a string)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_student_cell(cell: dict[str, Any]) -> bool:
    """Whether ``cell`` is a code cell tagged ``student`` (the learner's answer)."""
    tags = (cell.get("metadata") or {}).get("tags") or []
    return cell.get("cell_type") == "code" and "student" in tags


def _write_notebook(notebook: dict[str, Any], path: Path) -> None:
    """As the course stores notebooks: indent 1, UTF-8 kept, a final newline."""
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# -- release ----------------------------------------------------------------------------------


def student_version(path: Path) -> dict[str, Any]:
    """The notebook at ``path`` with outputs, execution counts and timings cleared.

    Raises ClassroomError when it has no cell tagged ``student`` that still raises
    NotImplementedError (it would hand out an answer), or when that cell equals the solution's.
    """
    notebook = read_notebook(path)
    todo = [cell_source(c) for c in notebook["cells"] if is_student_cell(c)]
    if not todo or not any("NotImplementedError" in s for s in todo):
        raise ClassroomError(
            f"{path.name}: expected a cell tagged 'student' that raises NotImplementedError (the "
            "TODO), found none: this looks like a solved notebook; restore the exercise with "
            f"git checkout -- {path.name} (solutions belong in solutions/)"
        )
    solution = path.parent / "solutions" / path.name
    if solution.exists():
        answers = [cell_source(c) for c in read_notebook(solution)["cells"] if is_student_cell(c)]
        if set(answers) & set(todo):
            raise ClassroomError(f"{path.name}: a 'student' cell equals the solution's; refusing")
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).pop("execution", None)
    return notebook


def student_readme(exercises: Sequence[Exercise] = EXERCISES, source: Path = FOLDER) -> str:
    """The README.md handed out with the notebooks."""
    rows = []
    for exercise in exercises:
        title, minutes = title_of(source / f"{exercise.stem}.ipynb")
        rows.append(
            f"| `{exercise.stem}.ipynb` | {title} | `{exercise.function}` | {minutes} | "
            f"{exercise.notebook} |"
        )
    table = "\n".join(rows)
    return f"""# mtrec exercises

Each notebook asks you to write one function in the cell tagged `student` (it starts with
`raise NotImplementedError`). The cell after it checks your function on hidden cases: it names
the first case that fails, what it expected and what it got, and often the mistake. Run the
notebook from the top; the checks never crash it.

You need the course environment (`import mtrec` must work). Exercise 6 also needs the review data:
`mtrec data fetch clothing`. Nothing needs a GPU.

| notebook | topic | you write | time | course notebook |
|---|---|---|---|---|
{table}

## Handing in

Hand in the notebook itself, renamed `<your name>_<notebook>`, e.g. `alice_05_ndcg.ipynb` (or put
your notebooks in a folder named after you). The grader runs **only the cells tagged `student`**,
with `np` (NumPy) and `torch` already imported, in a fresh Python process with a time limit, and
then the same check as your notebook. So:

* keep the function's name and arguments as given;
* put every import and helper function your answer needs inside a cell tagged `student` (to tag
  another cell: the gear icon in JupyterLab's right sidebar, "Cell Tags", add `student`);
* no `input()`, no files, no internet: the check's cases are all it gets.

If your notebook's check prints "All N cases passed. Well done!", the grader agrees.
"""


def _check_release_target(out: Path, source: Path, force: bool) -> None:
    out_r, source_r = out.resolve(), source.resolve()
    if out_r == source_r or source_r in out_r.parents or out_r in source_r.parents:
        raise ClassroomError(
            f"{out} overlaps the exercise sources {source}; release into a folder outside them, "
            "e.g. mtrec exercises release ~/course/handout"
        )
    if out.exists() and not out.is_dir():
        raise ClassroomError(f"{out} is a file; pass a folder (new or empty) to release into")
    if out.is_dir() and not force:
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ClassroomError(
                f"{out} is not empty ({len(entries)} entries: {shown}); choose a new or empty "
                "folder, or pass --force to replace its contents"
            )


def release(
    out: str | Path,
    *,
    force: bool = False,
    source: Path = FOLDER,
    exercises: Sequence[Exercise] = EXERCISES,
) -> list[Path]:
    """Write the student notebooks (outputs cleared, never a solution) and a README into ``out``.

    Atomic: everything is written to a hidden folder next to ``out``, which then takes its place
    (with ``force``, an existing ``out`` is replaced only after everything was written); on any
    error ``out`` is left as it was. Returns the written paths.
    """
    out, source = Path(out), Path(source)
    paths = exercise_notebooks(source)
    known = {e.stem for e in exercises}
    unknown = [p.name for p in paths if p.stem not in known]
    if unknown:
        raise ClassroomError(
            f"{', '.join(unknown)} in {source} have no entry in mtrec.exercises.classroom."
            "EXERCISES; add one (function, check, notebook) before releasing"
        )
    missing = sorted(known - {p.stem for p in paths})
    if missing:
        raise ClassroomError(f"no notebook for the exercises {missing} in {source}")
    _check_release_target(out, source, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp's folder is private; a handout is not
        for path in paths:
            _write_notebook(student_version(path), staging / path.name)
        (staging / "README.md").write_text(student_readme(exercises, source), encoding="utf-8")
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out.iterdir())


def umask() -> int:
    """The process's file-creation mask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _swap_in(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is moved aside first, then deleted."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = staging.with_suffix(".old")  # staging's name is unique, so is this one
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)  # put the previous contents back
        raise
    shutil.rmtree(old, ignore_errors=True)
