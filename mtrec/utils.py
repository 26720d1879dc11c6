"""Device, seed and environment helpers: the only place mtrec chooses a device or seeds RNGs."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.metadata
import ipaddress
import os
import platform
import random
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to run on.

    Args:
        prefer: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``None``. ``None`` (the default)
            picks CUDA when present, else CPU. The default is never ``"cuda"`` unconditionally.

    Raises:
        ValueError: a device was asked for by name and is not available here.
    """
    if prefer is None or prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {prefer!r} was requested but torch.cuda.is_available() is False on this "
            "machine; pass prefer='cpu' or prefer=None to fall back to the CPU"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {prefer!r} was requested but MPS is not available; use 'cpu'")
    return device


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device``; a no-op anywhere but CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_seed(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same.

    Args:
        seed: a non-negative integer.
        deterministic: also ask torch for deterministic kernels (slower on GPU).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (datasets, saved models)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(short: bool = True) -> str:
    """The repository's HEAD commit, or ``"unknown"`` outside a git checkout."""
    args = ["git", "rev-parse", "--short" if short else "--verify", "HEAD"]
    try:
        out = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


DISTRIBUTIONS = {"pandas": "pandas", "transformers": "transformers", "torchvision": "torchvision",
                 "torchaudio": "torchaudio", "sklearn": "scikit-learn"}  # fmt: skip


def env_info() -> dict[str, Any]:
    """Versions and hardware facts, for the first cell of every notebook and for result files."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda or "none",
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(get_device()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    # Installed versions from package metadata: importing torchvision, torchaudio and
    # transformers only to read __version__ would cost seconds in every notebook's first cell.
    for name, distribution in DISTRIBUTIONS.items():
        try:
            info[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return info


_real_connect = socket.socket.connect


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise ConnectionRefusedError(
            f"mtrec offline guard: refused a connection to {address!r}. Notebooks and tests run "
            "without network after `mtrec data fetch`; unset MTREC_OFFLINE to allow it."
        )
    return _real_connect(self, address)


def block_network() -> None:
    """Refuse every socket connection that leaves loopback (idempotent)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# glibc's mallopt parameters (malloc.h) and the values keep_freed_memory sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEPT_BLOCK_BYTES = 32 * 2**20  # the largest mmap threshold glibc accepts on a 64-bit machine
KEPT_TOP_BYTES = 2**30  # free heap top kept before glibc returns it to the system
_GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Let glibc keep freed buffers of up to 32 MiB for reuse (called once by ``import mtrec``).

    A training step allocates the same large activations and gradients at every step. glibc's
    defaults serve many of them with a fresh ``mmap`` and hand the heap's free top back to the
    system, so the step's first write to each page is a page fault that the kernel fills with
    zeros: thousands per step for MMoE at batch 4096 or SASRec at batch 64, and a large share of
    the step's time on a small CPU (:mod:`mtrec.bench.allocator` counts and times both settings).
    Raising the mmap and trim thresholds serves those buffers from the heap, reused step after
    step, with no page fault.

    Every computed value is unchanged; the process holds on to its peak heap instead of
    returning it between steps (buffers over 32 MiB are still returned).

    Returns:
        whether the thresholds were set: only with glibc, and not when
        ``MTREC_KEEP_FREED_MEMORY=0`` or the user set glibc's own ``MALLOC_*_THRESHOLD_``.
    """
    if os.environ.get("MTREC_KEEP_FREED_MEMORY", "1") == "0" or any(
        name in os.environ for name in _GLIBC_MALLOC_ENV
    ):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    kept = mallopt(_M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES) == 1
    return mallopt(_M_TRIM_THRESHOLD, KEPT_TOP_BYTES) == 1 and kept


def umask() -> int:
    """The process umask (Linux reports it in /proc; elsewhere read it by setting it back)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_file(path: Path) -> None:
    """Give ``path`` the permissions of a plain ``open`` (0o666 less the umask).

    ``tempfile.mkstemp`` and safetensors create files 0600, which a colleague reading a shared
    cache or a copied save could not open; every file mtrec writes atomically passes here.
    """
    os.chmod(path, 0o666 & ~umask())


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Load a Hugging Face model without its per-load "Loading weights" progress bar and info
    logs; restores the caller's progress-bar and verbosity settings afterwards."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
