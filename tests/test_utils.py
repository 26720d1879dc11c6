import importlib.metadata
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from mtrec.utils import env_info, get_device, set_seed, synchronize


def test_get_device_defaults_to_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_get_device_refuses_missing_cuda_with_a_fix():
    with pytest.raises(ValueError, match="prefer='cpu'"):
        get_device("cuda")


def test_synchronize_is_a_noop_on_cpu():
    synchronize("cpu")


def test_set_seed_makes_runs_repeatable():
    set_seed(7)
    a = (torch.rand(3), np.random.rand(3))
    set_seed(7)
    b = (torch.rand(3), np.random.rand(3))
    torch.testing.assert_close(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        set_seed(-1)


def test_env_info_names_versions():
    info = env_info()
    assert info["torch"] == torch.__version__
    assert info["cpu_cores"] >= 1
    assert info["transformers"] == importlib.metadata.version("transformers")


def test_env_info_imports_no_heavy_library():
    """Versions come from package metadata: the first cell of a notebook stays fast."""
    code = "import sys, mtrec; mtrec.env_info(); print(sorted({'torchvision', 'torchaudio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_exercise_and_reporting_imports_leave_scipy_and_sklearn_for_later():
    """Every exercise notebook starts with these imports: scikit-learn and SciPy (~1.5 s) load
    only when a check or a t-test uses them."""
    code = (
        "import sys, mtrec, mtrec.exercises, mtrec.reporting, mtrec.eval.significance; "
        "print(sorted({'sklearn', 'scipy'} & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_offline_guard_refuses_remote_sockets():
    # tests/conftest.py installed the guard: any connect outside loopback fails at once.
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="offline guard"):
        sock.connect(("93.184.216.34", 80))


def test_offline_guard_allows_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close())
    accepted.start()
    with socket.socket() as client:
        client.connect(("127.0.0.1", port))
    accepted.join(timeout=5)
    server.close()
