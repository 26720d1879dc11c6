"""mtrec exercises release: a handout of the exercises, without solutions or outputs, atomically."""

import json

import pytest

from mtrec import cli
from mtrec.exercises import classroom

FOLDER = classroom.FOLDER


def _student_sources(path):
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if "student" in c["metadata"].get("tags", [])]


def test_list_names_every_exercise(capsys):
    assert cli.main(["exercises", "list"]) == 0
    out = capsys.readouterr().out
    for exercise in classroom.EXERCISES:
        assert f"{exercise.stem} " in out and exercise.function in out
    assert "Semantic IDs by residual quantisation" in out


def test_release_hands_out_exercises_without_solutions_or_outputs(tmp_path):
    out = tmp_path / "handout"
    written = classroom.release(out)
    stems = sorted(p.name for p in FOLDER.glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in written) == sorted([*stems, "README.md"])
    assert not (out / "solutions").exists() and len(list(out.rglob("*"))) == len(stems) + 1
    solutions = {s for p in (FOLDER / "solutions").glob("*.ipynb") for s in _student_sources(p)}
    for name in stems:
        text = (out / name).read_text()
        cells = json.loads(text)["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), name
        assert not any("execution" in c["metadata"] for c in code), name
        assert not set(_student_sources(out / name)) & solutions, f"{name}: a solution was written"
        assert "NotImplementedError" in "".join(_student_sources(out / name))
        assert "Well done!" not in text and text.endswith("}\n")
        assert [c["source"] for c in cells] == [  # only the outputs differ from the source
            c["source"] for c in json.loads((FOLDER / name).read_text())["cells"]
        ]
    readme = (out / "README.md").read_text()
    assert all(name in readme for name in stems) and "tagged `student`" in readme
    assert "solution" not in readme.lower()


def test_release_refuses_a_non_empty_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "handout"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["exercises", "release", str(out)]) == 1
    err = capsys.readouterr().err
    assert "is not empty (1 entries: notes.txt)" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert cli.main(["exercises", "release", str(out), "--force"]) == 0
    assert not (out / "notes.txt").exists() and (out / "05_ndcg.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout"]  # nothing left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert classroom.release(empty) and (empty / "README.md").exists()


def test_release_is_atomic(tmp_path, monkeypatch):
    real, calls = classroom.student_version, []

    def fails_on_the_third(path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path)

    monkeypatch.setattr(classroom, "student_version", fails_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        classroom.release(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # no half-written folder, no staging folder
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        classroom.release(kept, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]  # the old contents are untouched


def test_release_refuses_the_sources_and_a_solved_exercise(tmp_path):
    with pytest.raises(classroom.ClassroomError, match="overlaps the exercise sources"):
        classroom.release(FOLDER / "handout")
    source = tmp_path / "source"
    source.mkdir()
    for path in FOLDER.glob("*.ipynb"):
        (source / path.name).write_bytes(path.read_bytes())
    (source / "05_ndcg.ipynb").write_bytes((FOLDER / "solutions" / "05_ndcg.ipynb").read_bytes())
    with pytest.raises(classroom.ClassroomError, match="05_ndcg.ipynb: expected a cell tagged"):
        classroom.release(tmp_path / "out", source=source)
    assert not (tmp_path / "out").exists()
