"""Test-wide settings (no network outside loopback, offline Hugging Face, Agg backend) and the
``one_thread``, ``tmp_cache`` and ``toy_dataset`` fixtures."""

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MTREC_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from mtrec.utils import block_network

block_network()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test on one intra-op thread, then restore the count.

    Tiny tensors gain nothing from intra-op threads, and on a loaded 2-core machine two spinning
    OpenMP threads make small training loops many times slower. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")`` or as an argument.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, not yet created dataset cache (``MTREC_DATA``) for one test.

    The fetch's scratch space (``tempfile``'s folder) moves under ``tmp_path`` too, so a test can
    check that a failed or interrupted fetch leaves nothing behind.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv("MTREC_DATA", str(cache))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return cache


@pytest.fixture
def toy_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local zip served by a file:// URL, registered as dataset 'toy' (source 'toy-src')."""
    from mtrec.data import registry
    from mtrec.data.registry import DatasetSpec, Source

    payload = {"data/a.csv": b"x,y\n1,2\n", "data/b.txt": b"hello\n"}
    archive = tmp_path / "toy-1.0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, blob in payload.items():
            zf.writestr(name, blob)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = Source(name="toy-src", kind="url", file=archive.name, sha256=digest,
                    url=archive.as_uri())  # fmt: skip
    files = {
        Path(n).name: {"member": n, "sha256": hashlib.sha256(b).hexdigest()}
        for n, b in payload.items()
    }
    dataset = DatasetSpec(name="toy", title="Toy", source="toy-src", files=files, rows=1,
                          license="CC0", citation="-", homepage="-")  # fmt: skip
    monkeypatch.setitem(registry.SOURCES, "toy-src", source)
    monkeypatch.setitem(registry.DATASETS, "toy", dataset)
    return dataset
