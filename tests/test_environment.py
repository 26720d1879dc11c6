"""The pinned set: constraints.txt, environment.yml and pyproject agree."""

import re

import tomllib

from mtrec.utils import REPO_ROOT


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.strip().lstrip("-").strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_environment_yml_mirrors_constraints():
    constraints = _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    conda = _pins((REPO_ROOT / "environment.yml").read_text().splitlines())
    assert constraints, "constraints.txt pins nothing"
    differ = {k: (v, conda.get(k)) for k, v in constraints.items() if conda.get(k) != v}
    extra = sorted(set(conda) - set(constraints))
    assert not differ and not extra, f"environment.yml differs: {differ}, extra: {extra}"


def test_tested_torch_stack_is_pinned():
    constraints = _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    assert constraints["torch"] == "2.14.1"
    assert constraints["torchvision"] == "0.29.1"
    assert constraints["torchaudio"] == "2.11.0"


def test_every_declared_dependency_is_pinned():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    constraints = _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    declared = list(project["dependencies"])
    for deps in project["optional-dependencies"].values():
        declared += [d for d in deps if not d.startswith("mtrec[")]
    names = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in declared}
    unpinned = sorted(names - set(constraints))
    assert not unpinned, f"declared in pyproject.toml but not pinned in constraints.txt: {unpinned}"


def test_torch_range_admits_older_gpu_images():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "torch>=2.4" in project["dependencies"]
