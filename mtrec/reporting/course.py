"""The course map, read from the notebooks themselves so it never goes stale.

Every numbered notebook opens with ``# NN · Title`` and the labelled lines ``**Prerequisites:**``
and ``**Time:**`` (the notebook convention tests require them). :func:`course_map` turns them
into one row per notebook; notebook 00 shows it and the website's course map page is built
from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mtrec.utils import REPO_ROOT

__all__ = ["NOTEBOOKS", "course_map", "notebook_summary"]

NOTEBOOKS = REPO_ROOT / "notebooks"
LABELS = ("**Prerequisites:**", "**Time:**")


def _markdown_lines(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [line for cell in cells if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines()]  # fmt: skip


def _labelled(lines: list[str], label: str, name: str) -> str:
    """The text after ``label`` up to the next blank line or bold label, as one line."""
    starts = [i for i, line in enumerate(lines) if line.startswith(label)]
    if not starts:
        raise ValueError(
            f"{name}: expected a line starting with '{label}' (the course map lists it); add one "
            "under the notebook's title"
        )
    parts = [lines[starts[0]][len(label) :].strip()]
    for line in lines[starts[0] + 1 :]:
        if not line.strip() or line.startswith("**"):
            break
        parts.append(line.strip())
    return " ".join(parts)


def notebook_summary(path: Path) -> dict[str, str]:
    """``number``, ``title``, ``prerequisites`` and ``time`` of one notebook.

    Raises:
        ValueError: the notebook has no ``# NN · Title`` heading or lacks a labelled line.
    """
    lines = _markdown_lines(path)
    heading = next((line for line in lines if line.startswith("# ")), None)
    if heading is None or "·" not in heading:
        raise ValueError(f"{path.name}: expected a first-level '# NN · Title' heading, found none")
    number, _, title = heading[2:].partition("·")
    prerequisites, time = (_labelled(lines, label, path.name) for label in LABELS)
    return {"number": number.strip(), "title": title.strip(), "prerequisites": prerequisites,
            "time": time}  # fmt: skip


def course_map(folder: Path = NOTEBOOKS) -> pd.DataFrame:
    """One row per numbered notebook (``NN_*.ipynb``) in order, with its file name."""
    paths = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise ValueError(f"no numbered notebooks (NN_*.ipynb) in {folder}")
    return pd.DataFrame([{**notebook_summary(p), "file": p.name} for p in paths])
