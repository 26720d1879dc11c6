"""The import-linter contracts in pyproject.toml hold, and a wrong import breaks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtrec.utils import REPO_ROOT

LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "mtrec", tmp_path / "mtrec", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_hold(tmp_path):
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("nn/layers.py", "import mtrec.serving.recommender", "layered"),
        ("models/multitask/mmoe.py", "import mtrec.routing", "layered"),
        ("data/schema.py", "import mtrec.nn.layers", "layered"),
    ],
)
def test_a_wrong_import_breaks_the_layers(tmp_path, module, wrong_import, contract):
    root = _copy(tmp_path)
    path = root / "mtrec" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # a lower layer reaching up\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and contract in result.stdout
