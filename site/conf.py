"""Sphinx configuration of the course website (``make site``).

Built offline from the outputs stored in the notebooks: nothing is executed, nothing is fetched.

Where the pages come from. The source directory is the repository root and this folder holds only
the configuration (``sphinx-build -c site . site/_build/html``); ``include_patterns`` picks the
pages: this folder's Markdown, the numbered notebooks, the exercises and their solutions, and
``benchmarks/README.md`` (which ``make report`` writes). So the notebooks are read where they
live: no copy that could go stale, no symlink (which a Windows checkout turns into a plain
file), and every relative link a notebook holds (such as ``exercises/05_ndcg.ipynb``) resolves on
the site exactly as it does on disk. The landing page is therefore ``site/index.html``; the
``index.html`` at the top of the build only forwards to it.
"""

import shutil
from importlib import resources
from pathlib import Path

from mtrec.reporting.course import course_map
from mtrec.utils import block_network

# The build must never need the network: any connection that leaves loopback raises here, so a
# theme or an extension that tried to download something would fail the build, not slip by.
block_network()

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

project = "mtrec"
author = "the mtrec authors"
copyright = "the mtrec authors, MIT licence"
html_title = "mtrec: multi-scenario, multi-task recommendation"

root_doc = "site/index"
include_patterns = [
    "site/*.md",
    "notebooks/[0-9][0-9]_*.ipynb",
    "notebooks/exercises/*.ipynb",
    "notebooks/exercises/solutions/*.ipynb",
    "benchmarks/README.md",
]
# Not pages; listed so the walk from the repository root does not descend into them.
exclude_patterns = [
    ".git", ".venv", "datasets", "mtrec", "tests", "site/_build", "build", "dist", "tmp",
    "**/.ipynb_checkpoints",
]  # fmt: skip

extensions = ["myst_nb", "sphinxcontrib.bibtex"]  # no intersphinx: it would fetch inventories

# myst-nb: render the outputs stored in each notebook; never start a kernel.
nb_execution_mode = "off"
nb_merge_streams = True  # one stdout block per cell, as JupyterLab shows it
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

bibtex_bibfiles = ["references.bib"]  # relative to this folder (the configuration directory)
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

html_theme = "sphinx_book_theme"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,  # the .ipynb of each notebook page
    "home_page_in_toc": True,
}
templates_path = ["_templates"]
html_additional_pages = {"index": "redirect.html"}  # top-level index.html → site/index.html
html_last_updated_fmt = None

# MathJax, which typesets the notebooks' formulas ($...$ and $$...$$, MyST's dollarmath and
# amsmath above), is served by the site itself, never by a CDN: the build copies a subset of
# MathJax 3 from the installed Python package django-static-mathjax (the `site` extra, pinned in
# constraints.txt) into _static/mathjax/, so formulas render with no network (see
# _copy_mathjax). A relative mathjax_path is relative to _static/. MyST fills
# mathjax3_config's options with the classes to typeset (only its math, not code cells).
MATHJAX = resources.files("mathjax") / "static" / "mathjax"  # the package's copy of MathJax
MATHJAX_FILES = {  # what the site needs, relative to MATHJAX: about 2 MB of the package's 43 MB
    "LICENSE": "LICENSE",
    "es5/tex-chtml.js": "tex-chtml.js",  # TeX input (ams, newcommand, ...), CommonHTML output, menu
    "es5/output/chtml/fonts/woff-v2": "output/chtml/fonts/woff-v2",  # the fonts it draws with
    "es5/input/tex/extensions": "input/tex/extensions",  # TeX packages loaded on first use
}
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {}}  # non-empty, so MyST writes MathJax 3's (not 4's) config

suppress_warnings = [
    # "Non-consecutive header level increase": notebook 04 puts a "###" caption before its first
    # "##" section, and benchmarks/README.md (written by `make report`) nests its per-dataset
    # tables as "####" under "##". Both read well as they are and render correctly; the site
    # shows the sources as they are rather than asking them to change for it.
    "myst.header",
]


# --- The course map: a table generated from the notebooks, so it never goes stale. -----------

COURSE_MAP_MARKER = "<!-- course-map -->"


def course_map_table() -> str:
    """The Markdown table of every numbered notebook, linked from ``site/``."""
    rows = ["| # | notebook | prerequisites | time |", "|---|---|---|---|"]
    for row in course_map(NOTEBOOKS).itertuples():
        cells = [row.number, f"[{row.title}](../notebooks/{row.file})", row.prerequisites, row.time]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def _fill_course_map(app, docname: str, source: list[str]) -> None:
    if COURSE_MAP_MARKER not in source[0]:
        return
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        app.env.note_dependency(str(path))  # a changed notebook rebuilds the map
    source[0] = source[0].replace(COURSE_MAP_MARKER, course_map_table())


# --- MathJax, copied into the site so that formulas render offline. ------------------------


def _copy_mathjax(app, exception) -> None:
    """Copy ``MATHJAX_FILES`` into the build's ``_static/mathjax`` (MathJax finds its fonts and
    extensions beside the script it was loaded from)."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for source, destination in MATHJAX_FILES.items():
        path, destination = Path(str(MATHJAX / source)), target / destination
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


def setup(app):
    app.connect("source-read", _fill_course_map)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True}
