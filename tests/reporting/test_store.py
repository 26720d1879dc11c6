"""The results store: quality rows, upserts by key, writing only when asked, goals."""

import numpy as np
import pandas as pd
import pytest

from mtrec import reporting


def test_quality_rows_mean_and_sample_std():
    rows = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8, 0.9]})
    assert rows.value.item() == pytest.approx(0.8)
    assert rows["std"].item() == pytest.approx(np.std([0.7, 0.8, 0.9], ddof=1))
    assert rows.seeds.item() == 3
    assert list(rows.columns) == reporting.QUALITY_COLUMNS
    with pytest.raises(ValueError, match="no values"):
        reporting.quality_rows(dataset="d", model="m", metrics={"auc": []})


def test_upsert_replaces_rows_with_the_same_key(tmp_path, monkeypatch):
    path = tmp_path / "quality.csv"
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    first = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.5], "ll": [0.6]})
    reporting.record_quality(first, path=path)
    second = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.9]})
    reporting.record_quality(second, path=path)
    table = pd.read_csv(path)
    assert len(table) == 2
    assert table.set_index("metric").loc["auc", "value"] == 0.9


def test_record_quality_is_off_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    path = tmp_path / "q.csv"
    rows = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.5]})
    assert reporting.record_quality(rows, path=path) is False
    assert not path.exists()


def test_goals_are_upserted_by_goal_and_device(tmp_path):
    path = tmp_path / "goals.csv"
    row = {"goal": "g", "kind": "multitask", "device": "cpu", "measured": 2.5, "target": ">= 2",
           "met": "yes", "detail": "d", "commit": "c", "date": "t"}  # fmt: skip
    reporting.record_goals([row, {**row, "device": "cuda"}], path=path)
    table = reporting.record_goals([{**row, "measured": 1.5, "met": "no"}], path=path)
    assert len(table) == 2 and list(table.columns) == reporting.GOAL_COLUMNS
    loaded = reporting.load_goals(path).set_index("device")
    assert loaded.loc["cpu", "measured"] == 1.5 and loaded.loc["cuda", "measured"] == 2.5
    assert reporting.load_goals(tmp_path / "absent.csv").empty
