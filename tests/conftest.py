"""Test-wide settings (no network outside loopback, offline Hugging Face, Agg backend) and the
``one_thread`` fixture."""

import os
from collections.abc import Iterator

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
