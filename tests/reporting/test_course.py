"""The course map is read from the notebooks' headers, and a notebook without one is named."""

import json

import pytest

from mtrec.reporting.course import NOTEBOOKS, course_map, notebook_summary


def test_every_numbered_notebook_has_a_row_with_prerequisites_and_time():
    course = course_map()
    files = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert course.file.tolist() == files
    assert course.number.tolist() == [f[:2] for f in files]
    assert (course.title.str.len() > 5).all()
    assert (course.prerequisites.str.len() > 2).all() and (course.time.str.len() > 2).all()


def _notebook(tmp_path, text):
    path = tmp_path / "01_x.ipynb"
    cell = {"cell_type": "markdown", "metadata": {}, "source": [text]}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))  # fmt: skip
    return path


def test_labelled_lines_run_to_the_next_label(tmp_path):
    path = _notebook(tmp_path, "# 01 · A title\n\n**Prerequisites:** one,\ntwo.\n**Time:** 5 min.")
    assert notebook_summary(path) == {"number": "01", "title": "A title",
                                      "prerequisites": "one, two.", "time": "5 min."}  # fmt: skip


def test_a_missing_label_or_heading_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"'\*\*Time:\*\*'"):
        notebook_summary(_notebook(tmp_path, "# 01 · T\n**Prerequisites:** none."))
    with pytest.raises(ValueError, match="NN · Title"):
        notebook_summary(_notebook(tmp_path, "no heading"))
    with pytest.raises(ValueError, match="no numbered notebooks"):
        course_map(tmp_path / "empty")
