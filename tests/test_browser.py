"""The learner's first step, end to end: JupyterLab in real headless Chromium runs notebook 00.

Starts ``jupyter lab`` on a free loopback port with a token and no browser, serving a temporary
copy of ``notebooks/00_setup_and_overview.ipynb`` with its outputs cleared (so what appears was
produced by this run, and autosave never touches the committed file),
opens it in Debian's Chromium driven by Playwright, runs every cell with the menu
Run → Run All Cells and waits for the last code cell's output, which must match the first line of
the output stored in the notebook. Chromium is installed with apt-get when missing and running as
root; the test is skipped, with the reason, only where that is impossible.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from mtrec.utils import REPO_ROOT
from tests.browser import CHROMIUM_ARGS, ensure_chromium, free_port, running_server

pytestmark = pytest.mark.browser

NOTEBOOK = REPO_ROOT / "notebooks" / "00_setup_and_overview.ipynb"
TOKEN = "mtrec-browser-test"
RUN_TIMEOUT_S = 60


def last_code_output(path: Path) -> str:
    """The first line of text stored in the notebook's last code cell (what we wait for)."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    texts = ["".join(o.get("text", "")) for o in cells[-1].get("outputs", [])]
    first = "".join(texts).strip().splitlines()
    assert first, f"{path.name}: the last code cell has no stored text output to compare with"
    return first[0]


@pytest.fixture
def jupyter_lab(tmp_path):
    """A running JupyterLab serving a copy of notebook 00; yields its base URL."""
    root, settings = tmp_path / "root", tmp_path / "settings"
    root.mkdir()
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:  # served without outputs: what we see later, the run produced
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["kernelspec"] = {  # the venv's kernel; no "Select Kernel" dialog
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"
    }  # fmt: skip
    (root / NOTEBOOK.name).write_text(json.dumps(notebook))
    # Render every cell (no virtual scrolling) so the last cell's output is in the DOM.
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    docmanager = settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    docmanager.parent.mkdir(parents=True)
    docmanager.write_text(json.dumps({"autoStartDefaultKernel": True}))
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MTREC_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO_ROOT),
    }  # fmt: skip
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers and CI often run as root
        command.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    with running_server(
        command, name="jupyter lab", ready_url=f"{url}/api/status?token={TOKEN}",
        log=tmp_path / "lab.log", cwd=root, env=env,
    ):  # fmt: skip
        yield url


def test_notebook_00_runs_in_jupyterlab_in_headless_chromium(jupyter_lab, tmp_path):
    chromium = ensure_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    expected = last_code_output(NOTEBOOK)
    SCREENSHOT = tmp_path / "jupyterlab.png"  # written when the run times out
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{jupyter_lab}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=RUN_TIMEOUT_S * 1000)
            try:  # older JupyterLabs may still ask which kernel to start: take the default
                page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5000)
            except sync_api.TimeoutError:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=RUN_TIMEOUT_S * 1000)  # fmt: skip
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            last = page.locator(".jp-Notebook .jp-CodeCell").last
            output = last.locator(".jp-OutputArea-output")
            try:
                output.filter(has_text=expected.split(":")[0]).first.wait_for(
                    timeout=RUN_TIMEOUT_S * 1000
                )
            except sync_api.TimeoutError:
                prompts = page.locator(".jp-InputPrompt").all_inner_texts()
                page.screenshot(path=str(SCREENSHOT))
                pytest.fail(
                    f"no output after {RUN_TIMEOUT_S} s; prompts {prompts}; see {SCREENSHOT}"
                )
            text = output.first.inner_text()
            errors = page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        finally:
            browser.close()
    assert text.strip().splitlines()[0] == expected, (text, expected)
    assert not tracebacks, tracebacks
