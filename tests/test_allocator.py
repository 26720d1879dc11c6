"""``import mtrec`` lets glibc keep freed buffers: a training step stops page-faulting its
activations in at every step. Counted in minor page faults (``getrusage``), never in seconds."""

import platform

import pytest

from mtrec.bench import allocator
from mtrec.utils import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_a_training_step_reuses_freed_memory_instead_of_faulting_pages_in():
    effect = allocator.freed_memory_effect("mmoe", 4096, steps=5)["page faults per step"]
    kept, returned = effect["freed memory kept"], effect["glibc defaults"]
    # MMoE's 8 MiB activations: 2,048 pages each, faulted in afresh at every step by default
    assert returned > 1000, effect
    assert kept < returned / 10, effect


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_keep_freed_memory_applies_once_asked_and_yields_to_the_users_own_setting(monkeypatch):
    assert keep_freed_memory() is True  # idempotent: import mtrec already called it
    monkeypatch.setenv("MTREC_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("MTREC_KEEP_FREED_MEMORY")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # glibc's own variable wins
    assert keep_freed_memory() is False


def test_an_unknown_model_is_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="model must be one of"):
        allocator.freed_memory_effect("nonsense")
    with pytest.raises(ValueError, match="batch_size"):
        allocator.measure_step("mmoe", 0)
