"""The in-browser explorer (JupyterLite) as built: run after `make book` (`make browser` runs it).

The Pyodide runtime itself comes from a CDN in the reader's browser, so the offline CI machine cannot
execute the notebook in the browser. What it can check is everything the build is responsible for:

* the site's package index serves a clr_lib wheel of this tree's version, built from this tree's code,
  with the ``widgets`` extra that the notebook's ``%pip install`` asks for, and the ipywidgets wheels
  that extra needs;
* the live notebook is in the site and installs ``clr_lib[widgets]``;
* the notebook's code, run with clr_lib taken from the bundled wheel, builds the explorer without
  importing torch (Pyodide has no torch).
"""

from __future__ import annotations

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
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)


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
