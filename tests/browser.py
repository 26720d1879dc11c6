"""Headless Chromium for the browser tests (``tests/test_browser.py``, ``tests/test_site.py``).

Debian's Chromium driven by Playwright; installed with apt-get when missing and running as root.
A test that needs it is skipped, with the reason, only where that is impossible.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def ensure_chromium() -> Path:
    """Return Chromium's path, installing Debian's package if needed (root only) or skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip("Chromium is missing and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip("Chromium is missing; install it as root: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"could not install Chromium ({' '.join(command)}): {result.stderr[-300:]}")
    return CHROMIUM


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(
    command: list[str], *, name: str, ready_url: str, log: Path, timeout_s: float = 60, **popen
) -> Iterator[subprocess.Popen]:
    """Start a local server, wait until ``ready_url`` answers, and stop it on leaving.

    Its output goes to ``log``, which the failure message shows when it does not come up in time.
    """
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **popen)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(ready_url, timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        out.flush()
                        pytest.fail(f"{name} did not start:\n{log.read_text()}")
                    time.sleep(0.5)
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
