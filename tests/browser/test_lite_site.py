"""The in-browser explorer (JupyterLite) as built: run after `make book` (`make browser` runs it).

The site ships its own Pyodide (``lite/static/pyodide``, assembled by ``book/lite/assemble_pyodide.py``)
when set-up found a verified copy of it, so the explorer runs with no network, and these tests run it as
a reader would:

* the site's kernel is built for the Pyodide release the Makefile names (its default CDN URL says so);
* the site's Pyodide is the one its kernel is configured with, and every file of it matches the
  SHA-256 in its lock (the official release's);
* the site's package index serves a clr_lib wheel of this tree's version, built from this tree's code,
  with the ``widgets`` extra that the notebook's ``%pip install`` asks for, and the ipywidgets wheels
  that extra needs;
* the live notebook is in the site and installs ``clr_lib[widgets]``;
* headless Chromium opens the live notebook, runs its cell and gets the explorer (widgets, figure,
  summary) from the shipped Pyodide; changing the policy redraws the figure; no request leaves
  127.0.0.1; a screenshot is saved under ``_build/screenshots``;
* the notebook's code, run in CPython with clr_lib taken from the bundled wheel, builds the explorer
  without importing torch (Pyodide has no torch), a quicker check of the same thing.

When set-up found no verified Pyodide, the build leaves the kernel on its CDN and writes why in
``book/lite/static/pyodide-from-cdn.txt``; the two tests of the shipped Pyodide are then skipped
with that reason (a site that loads the CDN with no such note fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
LITE = HTML / "lite"
SHIPPED_PYODIDE = LITE / "static" / "pyodide"
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", ROOT / "_build" / "screenshots"))
CDN_NOTE = ROOT / "book" / "lite" / "static" / "pyodide-from-cdn.txt"  # assemble_pyodide.NOTE_NAME
LOCAL_PYODIDE_URL = "./static/pyodide/pyodide.js"
PYODIDE_VERSION = re.search(r"^PYODIDE_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M).group(1)
# clr_lib's version, where pyproject.toml takes it from (read without importing clr_lib)
VERSION = re.search(r'^__version__ = "([^"]+)"', (ROOT / "clr_lib" / "__init__.py").read_text(encoding="utf-8"), re.M).group(1)


def kernel_settings() -> dict:
    config = json.loads((LITE / "jupyter-lite.json").read_text(encoding="utf-8"))["jupyter-config-data"]
    return config.get("litePluginSettings", {}).get("@jupyterlite/pyodide-kernel-extension:kernel", {})


@pytest.fixture(scope="module")
def shipped_pyodide() -> Path:
    """The site's own Pyodide; skips (with the build's reason) when the build left the kernel on its CDN."""
    assert (LITE / "jupyter-lite.json").exists(), f"no JupyterLite site at {LITE}: run `make book` first"
    url = kernel_settings().get("pyodideUrl")
    if url == LOCAL_PYODIDE_URL:
        return SHIPPED_PYODIDE
    assert url is None, f"the kernel is pointed at {url}, neither the shipped Pyodide nor its own default"
    assert CDN_NOTE.exists(), f"the site loads Pyodide from the CDN, and the build left no note ({CDN_NOTE}) why"
    pytest.skip(f"the site loads Pyodide from its CDN: {CDN_NOTE.read_text(encoding='utf-8').strip()}")


def test_the_kernel_is_built_for_the_pyodide_release_the_makefile_names():
    bundles = (LITE / "extensions" / "@jupyterlite" / "pyodide-kernel-extension" / "static").glob("*.js")
    defaults = {url for bundle in bundles
                for url in re.findall(r"https://cdn\.jsdelivr\.net/pyodide/v[^/\"']+/full/pyodide\.js",
                                      bundle.read_text(encoding="utf-8"))}
    assert defaults == {f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/pyodide.js"}


@pytest.fixture(scope="module")
def index() -> dict:
    path = LITE / "pypi" / "all.json"
    assert path.exists(), f"no JupyterLite package index at {path}: run `make book` first"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wheel(index) -> Path:
    releases = index["clr-lib"]["releases"]
    assert list(releases) == [VERSION], "the site must serve exactly this tree's clr_lib version"
    (entry,) = releases[VERSION]
    path = LITE / "pypi" / entry["url"]
    assert path.exists()
    return path


def test_index_serves_the_explorer_dependencies_that_pyodide_lacks(index):
    assert {"clr-lib", "ipywidgets", "comm", "jupyterlab-widgets"} <= set(index)


def test_bundled_wheel_holds_this_trees_code(wheel):
    with zipfile.ZipFile(wheel) as archive:
        for module in ("__init__.py", "schedules.py", "explorer.py", "plotting.py"):
            bundled = archive.read(f"clr_lib/{module}")
            assert bundled == (ROOT / "clr_lib" / module).read_bytes(), f"clr_lib/{module} differs from the tree"


def test_bundled_wheel_declares_the_widgets_extra(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"clr_lib-{VERSION}.dist-info/METADATA").decode()
    message = Parser().parsestr(metadata)
    requires = message.get_all("Requires-Dist") or []
    widgets = {re.split(r"[<>=;\s]", line)[0] for line in requires if 'extra == "widgets"' in line}
    assert widgets == {"ipywidgets", "matplotlib"}
    assert [re.split(r"[<>=;\s]", line)[0] for line in requires if "extra" not in line] == ["numpy"]


def live_notebook_code() -> list[str]:
    notebook = json.loads((LITE / "files" / "explorer.ipynb").read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_live_notebook_is_in_the_site_and_installs_the_widgets_extra():
    (code,) = live_notebook_code()
    assert code.splitlines()[0] == '%pip install -q "clr_lib[widgets]"'
    assert "ScheduleExplorer" in code


def test_live_notebook_code_runs_on_the_bundled_wheel_without_torch(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site-packages")
    (code,) = live_notebook_code()
    body = "\n".join(line for line in code.splitlines() if not line.startswith("%pip"))
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path / 'site-packages')!r})
import matplotlib
matplotlib.use("Agg")
{body}
import clr_lib
assert clr_lib.__file__.startswith({str(tmp_path)!r}), clr_lib.__file__
assert "torch" not in sys.modules, "the explorer must not import torch (Pyodide has none)"
assert explorer.result.ok and explorer.result.peaks, explorer.result
print("explorer ok:", explorer.result.summary)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "explorer ok:" in done.stdout


def test_site_ships_the_pyodide_its_kernel_loads_and_every_file_matches_the_lock(shipped_pyodide):
    lock = json.loads((shipped_pyodide / "pyodide-lock.json").read_text(encoding="utf-8"))
    assert lock["info"]["version"] == PYODIDE_VERSION
    assert {"numpy", "matplotlib", "micropip", "ipython", "ssl", "sqlite3", "jedi"} <= set(lock["packages"])
    for name, entry in lock["packages"].items():
        data = (shipped_pyodide / entry["file_name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['file_name']} ({name}) differs from the lock"


def test_explorer_runs_in_headless_chromium_on_the_shipped_pyodide(shipped_pyodide, server, browser, missing_paths):
    tab = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems: list[str] = []
    elsewhere: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    tab.on("request", lambda request: None if request.url.startswith((server, "blob:", "data:"))
           else elsewhere.append(request.url))
    tab.goto(f"{server}/lite/notebooks/index.html?path=explorer.ipynb", wait_until="load")
    tab.wait_for_selector(".jp-Notebook .jp-CodeCell .cm-content", timeout=60_000)
    tab.click(".jp-Notebook .jp-CodeCell .cm-content")
    tab.keyboard.press("Shift+Enter")  # %pip install clr_lib[widgets], then the explorer
    figure = ".jp-OutputArea-output img.widget-image"
    summary = '.jp-OutputArea-output .widget-html-content:has-text("Summary:")'
    try:
        tab.wait_for_selector(figure, timeout=300_000)
        tab.wait_for_selector(summary, timeout=30_000)
        before = {"src": tab.get_attribute(figure, "src"), "summary": tab.inner_text(summary)}
        assert "3 cycles of 4,000 iterations" in before["summary"]  # the default triangular policy
        assert tab.evaluate(f"document.querySelector('{figure}').naturalWidth") > 0

        tab.select_option(".jp-OutputArea-output .widget-dropdown select >> nth=0", label="triangular2")
        tab.wait_for_function("([selector, old]) => document.querySelector(selector).src !== old",
                              arg=[figure, before["src"]], timeout=60_000)
        assert tab.inner_text(summary) != before["summary"]
        output = tab.inner_text(".jp-OutputArea")
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / "lite__explorer.png"), full_page=True)
        tab.close()
    assert "Traceback" not in output and "Error" not in output, output[:2000]
    assert not problems, problems
    assert not elsewhere, f"the explorer must need no other site: {elsewhere}"
    assert not missing_paths, f"requests for files the site lacks: {missing_paths}"
