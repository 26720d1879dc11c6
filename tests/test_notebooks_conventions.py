"""Every numbered notebook follows the course conventions (DESIGN.md, 'Notebooks')."""

import ast
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


MAX_CELL_LINES = 25
DEV_WORDS = re.compile(
    r"\b(issues?|tickets?|TODO|FIXME|goals? of (the|our)|source documents|course outline|"
    r"acceptance|reviewer)\b",
    re.I,
)
NOISE = re.compile(r"Warning\b|it/s\]|\d+%\|.*\||USDT|Loading weights|gpuGetDeviceCount")


def _lines_without_imports(source):
    """Lines of a code cell, not counting import statements (the formatter spreads those out)."""
    lines = source.splitlines()
    try:
        tree = ast.parse(
            "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        )
    except SyntaxError:
        return len(lines)
    imports = sum(
        node.end_lineno - node.lineno + 1
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    )
    return len(lines) - imports


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _outputs_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_teaches_like_a_textbook(path):
    """Header, a drawn diagram, two 'try this' prompts, an inline check, an exercise link, and a
    closing summary printed by code; short cells; clean outputs; a learner's vocabulary."""
    cells = _cells(path)
    name = path.name
    header = _text(cells[0])
    assert cells[0]["cell_type"] == "markdown" and header.startswith("# "), f"{name}: no title"
    for field in ("**Goal", "**Prerequisites", "**Time"):
        assert field in header, f"{name}: the header cell lacks {field}**"
    code = [c for c in cells if c["cell_type"] == "code"]
    markdown = [_text(c) for c in cells if c["cell_type"] == "markdown"]
    diagrams = [
        c
        for c in code
        if "draw_diagram(" in _text(c)
        and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    ]
    assert diagrams, f"{name}: no diagram drawn with mtrec.reporting.diagram.draw_diagram"
    assert sum("**Try this" in m for m in markdown) >= 2, f"{name}: fewer than two 'Try this'"
    checks = [c for c in code if re.search(r"\bcheck_\w+\(", _text(c)) and "exercises" in _text(c)]
    assert checks, f"{name}: no inline self-check from mtrec.exercises"
    assert any(re.search(r"\]\((\.\./)?(notebooks/)?exercises/", m) for m in markdown), (
        f"{name}: no link to an exercise"
    )
    closing = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and re.search(r"^#+ What we learned", _text(c), re.M)
    ]
    assert closing, f"{name}: no closing 'What we learned' section"
    after = [c for c in cells[closing[-1] :] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in after), f"{name}: the summary prints no numbers"
    for i, cell in enumerate(cells):
        text = _text(cell)
        assert not DEV_WORDS.search(text), f"{name} cell {i}: {DEV_WORDS.search(text)[0]!r}"
        if cell["cell_type"] != "code":
            continue
        lines = _lines_without_imports(text)
        assert lines <= MAX_CELL_LINES, f"{name} cell {i}: {lines} lines (max {MAX_CELL_LINES})"
        for out in cell.get("outputs", []):
            assert out.get("name") != "stderr", f"{name} cell {i}: stderr stored in outputs"
        noise = NOISE.search(_outputs_text(cell))
        assert not noise, f"{name} cell {i}: output noise {noise[0]!r}"


# A number in prose is either printed by code or a setting the code names: a decimal, N% or N× typed
# into markdown must also occur in the notebook's code (25% may appear as 0.25). Exempt: "Try this"
# prompts (they propose values) and cells quoting a publication (its numbers carry their source).
PROSE_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(%|×(?!\s?\d))|(?<![\w.])(\d+\.\d+)")
CITATION = re.compile(
    r"arXiv|et al\.|\b(ICDM|KDD|WWW|CIKM|WSDM|RecSys|NeurIPS|ICML|ICLR|SIGIR|ACL|EMNLP)\b|CC BY"
)


def _typed_numbers(markdown, code):
    """Numbers in ``markdown`` that the notebook's ``code`` neither prints nor names."""
    typed = []
    for match in PROSE_NUMBER.finditer(markdown):
        number, unit, decimal = match.groups()
        if decimal is not None:
            spellings = {decimal}
        elif unit == "%":
            spellings = {number, f"{float(number) / 100:g}", match[0]}
        else:
            spellings = {number}
        if not any(re.search(rf"(?<![\w.]){re.escape(s)}(?![\d])", code) for s in spellings):
            typed.append(match[0])
    return typed


def test_prose_number_rule_catches_typed_results():
    assert _typed_numbers("STAR reaches 0.745 AUC, 3.3× the cost, 99% of it", "x = 1") == [
        "0.745",
        "3.3×",
        "99%",
    ]
    code = "TEMPERATURE = 0.1\nsplit(test=0.25)\nLOADS = (0.25, 4.0)\nSPEEDUP = 4"
    assert _typed_numbers("T = 0.1, a 25% test part, 4× the load, 28×28 pixels", code) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_types_no_measured_number(path):
    """Findings in prose point at printed lines; they do not retype (and so cannot contradict) them."""
    cells = _cells(path)
    code = "\n".join(_text(c) for c in cells if c["cell_type"] == "code")
    for i, cell in enumerate(cells):
        text = _text(cell)
        if cell["cell_type"] != "markdown" or "**Try this" in text or CITATION.search(text):
            continue
        typed = _typed_numbers(text, code)
        assert not typed, (
            f"{path.name} cell {i}: {typed} typed into prose; print them from code and point at "
            "the printed line, or name the setting in code"
        )


def test_cli_tour_lists_the_notebooks_in_order():
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "tour", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert [line.split("/")[-1][:2] for line in result.stdout.split()] == EXPECTED


# Notebooks whose inline self-check starts from an unwritten function: the learner fills it in, the
# reference answer stays hidden in mtrec.exercises, and the stored check says so instead of passing.
STARTS_UNWRITTEN = ("02", "05", "06", "07", "09", "11", "12")
SELF_CHECK = re.compile(r"\bcheck_\w+\(")


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.name[:2] in STARTS_UNWRITTEN], ids=lambda p: p.name
)
def test_inline_self_check_starts_unwritten(path):
    code = _code_cells(path)
    checks = [c for c in code if SELF_CHECK.search(_text(c)) and "exercises" in _text(c)]
    assert checks, f"{path.name}: no inline self-check"
    assert any("raise NotImplementedError" in _text(c) for c in code), (
        f"{path.name}: the learner's function must start unwritten (raise NotImplementedError)"
    )
    shown = "".join(_outputs_text(c) for c in checks)
    assert "not implemented yet" in shown, f"{path.name}: the stored check does not say so"
    assert "Well done!" not in shown, f"{path.name}: the stored check prints a passing answer"


EXERCISES_HEADING = re.compile(r"^## Exercises[ \t]*$", re.M)
NUMBERED_ITEM = re.compile(r"^\d+\. ", re.M)
EXERCISE_LINK = re.compile(r"\]\(((?:\.\./)?(?:notebooks/)?exercises/[^)\s#]+)[^)]*\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_numbered_exercises(path):
    """An '## Exercises' section with at least three numbered items; its exercise links resolve."""
    sections = []
    for cell in _cells(path):
        heading = EXERCISES_HEADING.search(_text(cell))
        if cell["cell_type"] == "markdown" and heading:
            rest = _text(cell)[heading.end() :]
            sections.append(re.split(r"^#{1,2} ", rest, maxsplit=1, flags=re.M)[0])
    assert len(sections) == 1, f"{path.name}: {len(sections)} '## Exercises' sections (want 1)"
    items = NUMBERED_ITEM.findall(sections[0])
    assert len(items) >= 3, f"{path.name}: {len(items)} numbered exercises (want at least 3)"
    for link in EXERCISE_LINK.findall(sections[0]):
        assert (path.parent / link).resolve().is_file(), f"{path.name}: broken link {link}"
