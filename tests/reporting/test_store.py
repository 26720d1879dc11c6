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


def _throughput_row(device_name: str, batch_size: int, samples_per_s: float) -> dict:
    row = dict.fromkeys(reporting.THROUGHPUT_COLUMNS, "x")
    return {**row, "model": "mmoe", "device": "cpu", "device_name": device_name,
            "precision": "fp32", "batch_size": batch_size, "phase": "train", "compiled": False,
            "samples_per_s": samples_per_s}  # fmt: skip


def test_a_relabelled_machine_replaces_its_rows_only_when_asked(tmp_path):
    path = tmp_path / "throughput.csv"
    busy, quiet = "EPYC (2 threads) [busy host]", "EPYC (2 threads) [quiet host]"
    old = [_throughput_row(busy, 64, 1.0), _throughput_row(busy, 4096, 2.0),
           _throughput_row("Xeon (2 threads) [busy host]", 64, 3.0)]  # fmt: skip
    reporting.record_throughput(pd.DataFrame(old), path=path)
    new = pd.DataFrame([_throughput_row(quiet, 64, 9.0)])

    reporting.record_throughput(new, path=path)  # a new label stands beside the old one
    assert len(reporting.load_throughput(path)) == 4
    reporting.record_throughput(new, path=path, relabel=True)
    table = reporting.load_throughput(path)
    kept = set(zip(table.device_name, table.batch_size))
    assert kept == {(quiet, 64), (busy, 4096), ("Xeon (2 threads) [busy host]", 64)}
    assert (
        reporting.machine_name(quiet)
        == "EPYC (2 threads)"
        == reporting.machine_name("EPYC (2 threads)")
    )


def test_a_relabelled_partial_run_keeps_the_ceiling_the_other_rows_were_measured_beside(tmp_path):
    path = tmp_path / "throughput.csv"
    busy, quiet = "EPYC (2 threads) [busy host]", "EPYC (2 threads) [quiet host]"

    def ceiling(name: str, gflops: float) -> dict:
        return {**_throughput_row(name, 2048, 1.0), "model": "ceiling/matmul", "phase": "ceiling",
                "gflops_per_s": gflops}  # fmt: skip

    reporting.record_throughput(pd.DataFrame([ceiling(quiet, 198.0), _throughput_row(quiet, 64, 1.0),
                                              _throughput_row(quiet, 4096, 2.0)]), path=path)  # fmt: skip
    partial = pd.DataFrame([ceiling(busy, 150.0), _throughput_row(busy, 64, 3.0)])
    reporting.record_throughput(partial, path=path, relabel=True)
    table = reporting.load_throughput(path)
    ceilings = table[table.phase == "ceiling"].set_index("device_name").gflops_per_s.astype(float)
    assert ceilings.to_dict() == {busy: 150.0, quiet: 198.0}  # quiet's 4096 row still needs it
    rest = table[table.phase != "ceiling"]
    assert set(zip(rest.device_name, rest.batch_size)) == {(busy, 64), (quiet, 4096)}

    whole = pd.DataFrame([ceiling(busy, 160.0), _throughput_row(busy, 4096, 4.0)])
    reporting.record_throughput(whole, path=path, relabel=True)  # no quiet row left: nor ceiling
    table = reporting.load_throughput(path)
    assert set(table.device_name) == {busy}
    assert table[table.phase == "ceiling"].gflops_per_s.astype(float).tolist() == [160.0]


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
