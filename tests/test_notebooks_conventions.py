"""Every numbered notebook follows the course conventions (DESIGN.md, 'Notebooks')."""

import json
import re
import subprocess
import sys

import pytest

from mtrec.utils import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [f"{i:02d}" for i in range(len(NOTEBOOKS))]  # numbered 00, 01, ... without gaps


def _code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def test_the_course_is_numbered_from_00_without_gaps():
    assert len(NOTEBOOKS) >= 12
    assert [p.name[:2] for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    code = _code_cells(path)
    first, second = "".join(code[0]["source"]), code[1]
    assert "set_seed(" in first, f"{path.name}: the first code cell must call set_seed"
    assert "parameters" in second.get("metadata", {}).get("tags", []), (
        f"{path.name}: the second code cell must be tagged 'parameters'"
    )
    assert re.search(r"^SEED\s*=", "".join(second["source"]), re.M), f"{path.name}: no SEED"
    assert any(c.get("outputs") for c in code), f"{path.name}: outputs are not stored"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored outputs contain an error"
    text = path.read_text()
    assert "sys.path" not in text and "import *" not in text


def test_cli_tour_lists_the_notebooks_in_order():
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "tour", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert [line.split("/")[-1][:2] for line in result.stdout.split()] == EXPECTED
