"""Test-wide settings (no network outside loopback, offline Hugging Face, Agg backend) and the
``one_thread`` and ``tmp_cache`` fixtures."""

import os
import tempfile
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
