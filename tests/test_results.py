import numpy as np
import pandas as pd
import pytest

from mtrec import results


def test_quality_rows_mean_and_sample_std():
    rows = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8, 0.9]})
    assert rows.value.item() == pytest.approx(0.8)
    assert rows["std"].item() == pytest.approx(np.std([0.7, 0.8, 0.9], ddof=1))
    assert rows.seeds.item() == 3
    assert list(rows.columns) == results.QUALITY_COLUMNS
    with pytest.raises(ValueError, match="no values"):
        results.quality_rows(dataset="d", model="m", metrics={"auc": []})


def test_upsert_replaces_rows_with_the_same_key(tmp_path, monkeypatch):
    path = tmp_path / "quality.csv"
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    first = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.5], "ll": [0.6]})
    results.record_quality(first, path=path)
    second = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.9]})
    results.record_quality(second, path=path)
    table = pd.read_csv(path)
    assert len(table) == 2
    assert table.set_index("metric").loc["auc", "value"] == 0.9


def test_record_quality_is_off_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    path = tmp_path / "q.csv"
    rows = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.5]})
    assert results.record_quality(rows, path=path) is False
    assert not path.exists()


def test_markdown_table_renders_mean_std():
    rows = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8]})
    text = results.quality_markdown(rows)
    assert "0.7500 ± 0.0707" in text and text.startswith("| dataset |")


def test_overall_view_drops_per_scenario_rows():
    overall = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8]})
    tops = results.quality_rows(dataset="d", model="m", metrics={"auc": [0.6]}, scenario="Tops")
    rows = pd.concat([overall, tops])
    assert "Tops" in results.quality_markdown(rows)
    assert "Tops" not in results.quality_markdown(rows, overall_only=True)
    assert "No quality results" in results.quality_markdown(tops, overall_only=True)
