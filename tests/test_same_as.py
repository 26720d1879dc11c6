"""Intentional copies stay copies: a ``# Same as <module>.<Class>.<method>`` marker is a promise.

One model per file means some methods are repeated on purpose (as transformers does). A marker
line ``# Same as mtrec.a.b.Class.first / second`` sits just above the first copied ``def``; every
method it names must match the referenced one statement for statement (docstrings aside), so a
fix made in one place cannot silently miss its copies.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mtrec"
MARKER = re.compile(r"#\s*Same as (mtrec(?:\.\w+)+)((?:\s*/\s*\w+)*)")


def _markers() -> list[tuple[Path, int, str, list[str]]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = MARKER.search(line)
            if match:
                target, more = match.group(1), match.group(2)
                owner, first = target.rsplit(".", 1)
                names = [first] + [n.strip() for n in more.split("/") if n.strip()]
                found.append((path, number, owner, names))
    return found


def _body(function: ast.FunctionDef) -> str:
    """The function's AST without its docstring (names, arguments and statements compared)."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    copy = ast.FunctionDef(
        name=function.name,
        args=function.args,
        body=body,
        decorator_list=function.decorator_list,
        returns=function.returns,
        type_params=[],
    )
    return ast.dump(copy, annotate_fields=False, include_attributes=False)


def _reference(owner: str, name: str) -> ast.FunctionDef:
    module_name, _, attr = owner.rpartition(".")
    holder = getattr(importlib.import_module(module_name), attr)
    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(holder, name))))
    return tree.body[0]


def _copies(path: Path, line: int, names: list[str]) -> dict[str, ast.FunctionDef]:
    """The named ``def``s that follow the marker line in the same class or module."""
    tree = ast.parse(path.read_text())
    out: dict[str, ast.FunctionDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in names and node.lineno > line:
            if node.name not in out or node.lineno < out[node.name].lineno:
                out[node.name] = node
    return out


MARKERS = _markers()


def test_markers_are_found():
    # The scenario family repeats loss/predict in five files; a parser that finds none is broken.
    assert len(MARKERS) >= 5, MARKERS


@pytest.mark.parametrize(
    ("path", "line", "owner", "names"),
    MARKERS,
    ids=[f"{p.relative_to(ROOT.parent)}:{n}" for p, n, _, _ in MARKERS],
)
def test_marked_copy_matches_its_original(path, line, owner, names):
    copies = _copies(path, line, names)
    missing = [n for n in names if n not in copies]
    assert not missing, f"{path}:{line} names {missing} but no such def follows the marker"
    for name in names:
        original = _reference(owner, name)
        assert _body(copies[name]) == _body(original), (
            f"{path.relative_to(ROOT.parent)}:{copies[name].lineno} {name} is marked "
            f"'Same as {owner}.{name}' but differs from it; change both, or drop the marker"
        )


def test_a_changed_copy_is_caught(tmp_path):
    """The comparison sees a one-token change (it is not vacuous)."""
    a = ast.parse("def loss(self, b):\n    '''doc'''\n    return f(self(b), 1)\n").body[0]
    b = ast.parse("def loss(self, b):\n    return f(self(b), 2)\n").body[0]
    c = ast.parse("def loss(self, b):\n    '''other doc'''\n    return f(self(b), 1)\n").body[0]
    assert _body(a) != _body(b)
    assert _body(a) == _body(c)
