"""Fixtures shared by the extractor tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from intra-op threads; on a busy CPU they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
