"""The course website (``make site``), built and read in real headless Chromium.

Builds the site into a temporary folder with the command of ``make site`` (Sphinx, warnings as
errors, from the outputs stored in the notebooks, offline), serves it with ``python -m
http.server`` on a free loopback port and opens every page in Debian's Chromium driven by
Playwright. It checks that every notebook page shows its title and, where the notebook stores
images, figures that loaded; that the search page finds "MMoE"; that every internal link and
resource of every page answers 200; that the course map lists every notebook; that no page asks
anything of the network; and that every formula is typeset by the site's own copy of MathJax
(``site/conf.py`` copies it into ``_static/mathjax``) with every request outside the site refused.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mtrec.utils import REPO_ROOT
from tests.browser import CHROMIUM_ARGS, ensure_chromium, free_port, running_server

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((REPO_ROOT / "notebooks" / "exercises").glob("**/[0-9][0-9]_*.ipynb"))
TIMEOUT_MS = 30_000


def notebook_title(path: Path) -> str:
    """The notebook's first ``# `` heading."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise AssertionError(f"{path.name} has no '# ' title heading")


def words(text: str) -> str:
    """Letters and digits only: Markdown marks, typographic quotes and dashes compare equal."""
    return re.sub(r"[\W_]+", "", text)


def stores_images(path: Path) -> bool:
    """Whether any output stored in the notebook is an image."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return any(
        mime.startswith("image/")
        for cell in cells
        for output in cell.get("outputs", [])
        for mime in output.get("data", {})
    )


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    """Build the site as ``make site`` does, serve it on loopback; yields the base URL."""
    ensure_chromium()  # skip before the build where no browser can run
    tmp = tmp_path_factory.mktemp("site")
    html = tmp / "html"
    env = {
        **os.environ,
        "MTREC_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }  # fmt: skip
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-c", "site", "-d", str(tmp / "doctrees"),
         "-W", "--keep-going", "-q", ".", str(html)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, f"make site's build failed:\n{build.stdout}\n{build.stderr}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(html)],
        name="http.server", ready_url=f"{url}/index.html", log=tmp / "server.log", timeout_s=30,
    ):  # fmt: skip
        yield url, html


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_site_pages_links_figures_and_search_in_headless_chromium(site_url):
    base, html = site_url
    chromium = ensure_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    pages = sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")  # theme templates, sources
    )
    notebook_pages = {
        nb.relative_to(REPO_ROOT).with_suffix(".html").as_posix(): nb
        for nb in NOTEBOOKS + EXERCISES
    }
    assert set(notebook_pages) <= set(pages), sorted(set(notebook_pages) - set(pages))

    links: dict[str, str] = {}  # internal URL without its anchor -> a page that links to it
    remote, page_errors, problems = set(), [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})

            def route(request_route):  # nothing leaves loopback; remember what was asked for
                if urllib.parse.urlsplit(request_route.request.url).hostname == "127.0.0.1":
                    request_route.continue_()
                else:
                    remote.add(request_route.request.url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(f"{page.url}: {error}"))
            for name in pages:
                page.goto(f"{base}/{name}", wait_until="load", timeout=TIMEOUT_MS)
                if name == "index.html":  # the top of the build forwards to the landing page
                    page.wait_for_url(f"{base}/site/index.html", timeout=TIMEOUT_MS)
                    page.wait_for_load_state("load")
                for url in page.eval_on_selector_all(
                    "a[href], link[href], img[src], script[src]",
                    "els => els.map(e => e.href || e.src)",
                ):
                    url = url.split("#")[0]
                    if url.startswith(base):
                        links.setdefault(url, name)
                if name not in notebook_pages:
                    continue
                notebook = notebook_pages[name]
                h1 = page.locator("article h1").first.inner_text()
                if words(h1) != words(notebook_title(notebook)):
                    problems.append(f"{name}: h1 {h1!r}, expected {notebook_title(notebook)!r}")
                if stores_images(notebook):
                    sizes = page.eval_on_selector_all(
                        ".cell_output img",
                        "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)",
                    )
                    if not sizes or 0 in sizes:
                        problems.append(f"{name}: output image widths {sizes} (want ≥ 1, all > 0)")

            # The course map lists every numbered notebook, linked to its page.
            page.goto(f"{base}/site/course-map.html", wait_until="load", timeout=TIMEOUT_MS)
            listed = page.eval_on_selector_all("article table a", "as => as.map(a => a.href)")
            expected = {f"{base}/notebooks/{nb.stem}.html" for nb in NOTEBOOKS}
            assert expected <= set(listed), sorted(expected - set(listed))

            # Sphinx's own search index answers in the browser.
            page.goto(f"{base}/search.html?q=MMoE", wait_until="load", timeout=TIMEOUT_MS)
            results = page.locator("#search-results ul.search li")
            results.first.wait_for(timeout=TIMEOUT_MS)
            found = results.all_inner_texts()
        finally:
            browser.close()

    broken = {url: links[url] for url in sorted(links) if status(url) != 200}
    assert not problems, problems
    assert not broken, f"internal links that do not answer 200 (URL: a page linking it): {broken}"
    assert found and any("MMoE" in text or "Multi-task" in text for text in found), found
    assert not page_errors, page_errors
    assert not remote, f"pages asked the network for {sorted(remote)}"
    assert len(links) > len(pages), (len(links), len(pages))


# Each formula the site holds, as Sphinx writes it for MathJax: inline and display math.
MATH = "span.math, div.math"


def test_formulas_render_offline_with_the_sites_own_mathjax(site_url):
    """Every page with a formula typesets it, with MathJax and its fonts served by the site.

    Every request that leaves loopback is refused (as on a machine with no network), so a page
    that needed a CDN would show its formulas as LaTeX source and fail here.
    """
    base, html = site_url
    chromium = ensure_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    pages = sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")
        and re.search(r'class="math[ "]', p.read_text(encoding="utf-8"))
    )
    # The notebooks that hold the most formulas are among them (dollar and display math).
    assert {"notebooks/02_attention.html", "notebooks/06_multi_task_learning.html"} <= set(pages)

    remote, failed, fonts, problems = set(), [], set(), []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})

            def route(request_route):  # no network: only the site itself answers
                if urllib.parse.urlsplit(request_route.request.url).hostname == "127.0.0.1":
                    request_route.continue_()
                else:
                    remote.add(request_route.request.url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on(
                "response",
                lambda response: (
                    fonts.add((response.url.rsplit("/", 1)[-1], response.status))
                    if response.url.endswith(".woff")
                    else None
                ),
            )
            for name in pages:
                page.goto(f"{base}/{name}", wait_until="load", timeout=TIMEOUT_MS)
                script = page.eval_on_selector_all(
                    "script[src*='mathjax']", "scripts => scripts.map(s => s.src)"
                )
                if not script or not all(
                    src.startswith(f"{base}/_static/mathjax/") for src in script
                ):
                    problems.append(f"{name}: MathJax scripts {script}, want the site's own")
                    continue
                page.wait_for_function("() => window.MathJax?.startup?.promise", timeout=TIMEOUT_MS)
                page.evaluate("() => MathJax.startup.promise.then(() => document.fonts.ready)")
                counts = page.evaluate(
                    """selector => {
                        const math = [...document.querySelectorAll(selector)];
                        return {
                            math: math.length,
                            typeset: math.filter(m => m.querySelector("mjx-container")).length,
                            errors: document.querySelectorAll("mjx-merror").length,
                        };
                    }""",
                    MATH,
                )
                if not counts["math"] or counts["typeset"] != counts["math"] or counts["errors"]:
                    problems.append(f"{name}: {counts} (want every formula typeset, no error)")
        finally:
            browser.close()

    assert not problems, problems
    assert not remote, f"pages asked the network for {sorted(remote)}"
    assert not failed, f"requests that failed: {failed}"
    assert fonts and all(status == 200 for _, status in fonts), sorted(fonts)
