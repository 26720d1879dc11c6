"""mtrec exercises grade: per-case results from the checks; each submission in its own process."""

import csv
import json
import time

import numpy as np
import pytest

from mtrec import cli
from mtrec.exercises import classroom, grading, ndcg, scenario
from mtrec.exercises._harness import recording

FOLDER = classroom.FOLDER


# -- per-case results ----------------------------------------------------------------------------


def test_recording_reports_each_case_and_prints_the_same(capsys):
    wrong = ndcg._ideal_from_all  # right on cases 1-2, wrong on case 3
    assert ndcg.check_ndcg(wrong) is False
    plain = capsys.readouterr().out
    with recording() as record:
        assert ndcg.check_ndcg(wrong) is False
    assert capsys.readouterr().out == plain
    assert (record.total, len(record.results), record.num_passed) == (5, 3, 2)
    first = record.first_failure()
    assert first.number == 3 and first.name == "graded relevance, 3 users, k=4"
    assert first.message.startswith("FAILED - expected ") and first.message in plain
    assert (
        first.advice
        == "diagnosis: cut the ideal ranking at k too: IDCG@k uses the k best relevances"
    )

    with recording(keep_going=True) as record:
        assert ndcg.check_ndcg(wrong) is False
    assert len(record.results) == 5 and 2 <= record.num_passed < 5  # cases 4-5 run too
    assert f"{record.num_passed} of 5 cases passed." in capsys.readouterr().out
    with recording(keep_going=True) as record:
        assert ndcg.check_ndcg(ndcg.reference_ndcg) is True
    assert record.num_passed == 5 and record.first_failure() is None


def test_the_scenario_check_reports_its_one_case(monkeypatch, capsys):
    texts, labels = ["a dress", "a top"], np.array(["Dresses", "Tops"])
    monkeypatch.setattr(scenario, "_split", lambda: (texts, labels, texts, labels))
    with recording() as record:
        assert scenario.check_scenario_classifier(lambda a, b, c: None) is False
    assert record.total == 1 and not record.results[0].passed
    assert "returned None" in record.results[0].message


# -- grading -------------------------------------------------------------------------------------

ANSWERS = {  # student → the code of their cell tagged 'student' (None: left as handed out)
    "alice": "def pick_depth(depths, cost_ms, time_left_ms):\n"
    "    fits = np.asarray(depths)[np.asarray(cost_ms) <= time_left_ms]\n"
    "    return int(fits.max()) if len(fits) else 0\n",
    "bob": "def pick_depth(depths, cost_ms, time_left_ms):\n"
    "    fits = np.asarray(depths)[np.asarray(cost_ms) < time_left_ms]\n"
    "    return int(fits.max()) if len(fits) else 0\n",
    "carol": None,
    "dave": "import ctypes\n\ndef pick_depth(depths, cost_ms, time_left_ms):\n"
    "    return ctypes.string_at(0)  # reads address 0: the process crashes\n",
    "erin": "def pick_depth(depths, cost_ms, time_left_ms):\n    while True:\n        pass\n",
}


def _submit(path, answer):
    notebook = json.loads((FOLDER / "11_pick_depth.ipynb").read_text())
    for cell in notebook["cells"]:
        if answer is not None and "student" in cell["metadata"].get("tags", []):
            cell["source"] = answer
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))


def test_find_submissions_reads_both_layouts(tmp_path):
    for name in ["alice_05_ndcg.ipynb", "bob/05_NDCG.ipynb", "bob/bob-11_pick_depth.ipynb",
                 "carol/.ipynb_checkpoints/05_ndcg-checkpoint.ipynb", "05_ndcg.ipynb",
                 "notes.ipynb", "alice/05_ndcg.ipynb", "a/b/c_05_ndcg.ipynb"]:  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found, skipped = grading.find_submissions(tmp_path)
    assert [(s.student, s.exercise.stem) for s in found] == [
        ("alice", "05_ndcg"), ("bob", "05_ndcg"), ("bob", "11_pick_depth"),
    ]  # fmt: skip
    assert len(skipped) == 4 and any("already handed in" in s for s in skipped)
    assert any(s.startswith("05_ndcg.ipynb: no student name") for s in skipped)


def test_grade_isolates_each_submission_and_writes_one_row_each(tmp_path, capsys):
    subs = tmp_path / "submissions"
    for student, answer in ANSWERS.items():
        _submit(subs / f"{student}_11_pick_depth.ipynb", answer)
    _submit(subs / "frank" / "11_pick_depth.ipynb", ANSWERS["alice"])  # a folder per student
    (subs / "notes.ipynb").write_text("{}")
    grades = tmp_path / "grades.csv"
    start = time.monotonic()
    code = cli.main(["exercises", "grade", str(subs), "--out", str(grades), "--timeout", "4",
                     "--jobs", "2"])  # fmt: skip
    assert code == 0 and time.monotonic() - start < 90
    assert "skipped notes.ipynb" in capsys.readouterr().err
    with grades.open() as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert list(rows) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert list(rows["alice"]) == grading.CSV_COLUMNS

    def summary(student):
        row = rows[student]
        return row["exercise"], row["cases_passed"], row["cases_total"], row["passed"]

    assert summary("alice") == summary("frank") == ("11_pick_depth", "4", "4", "True")
    assert rows["alice"]["first_failure"] == rows["alice"]["error"] == ""
    assert summary("bob") == ("11_pick_depth", "3", "4", "False")
    assert rows["bob"]["first_failure"] == (
        "case 3/4 (a budget equal to one cost: 1.3 ms): FAILED - expected 200, got 50; "
        "diagnosis: a cost equal to the time left still fits: use <="
    )
    assert summary("carol") == ("11_pick_depth", "0", "4", "False")
    assert "case 1/4 (a roomy budget: 10 ms): not implemented yet" in rows["carol"]["first_failure"]
    assert summary("dave")[1:] == ("0", "4", "False")
    assert rows["dave"]["error"].startswith("crashed: the process was killed by signal SIGSEGV")
    assert summary("erin")[1:] == ("0", "4", "False")
    assert rows["erin"]["error"].startswith("timed out after 4 s during case 1/4")
    assert float(rows["erin"]["seconds"]) < 60  # stopped, not left to run


def test_grade_reports_code_that_never_reaches_the_check(tmp_path):
    subs = tmp_path / "subs"
    _submit(subs / "gina_11_pick_depth.ipynb", "while True:\n    pass\n")
    _submit(subs / "hugo_11_pick_depth.ipynb", "def pick_depth(:\n")
    _submit(subs / "ines_11_pick_depth.ipynb", "def pickdepth(depths, cost_ms, time_left_ms):\n    return 0\n")  # fmt: skip
    rows, skipped = grading.grade(subs, time_limit_s=2, jobs=2)
    errors = {row.student: row.error for row in rows}
    assert not skipped and all(not row.passed and row.cases_total == 4 for row in rows)
    assert errors["gina"].startswith("timed out after 2 s while running the cells tagged 'student'")
    assert errors["hugo"].startswith("the cells tagged 'student' do not compile")
    assert errors["ines"].startswith("no function named 'pick_depth'")
    (tmp_path / "empty").mkdir()
    with pytest.raises(classroom.ClassroomError, match="no submissions found"):
        grading.grade(tmp_path / "empty")
