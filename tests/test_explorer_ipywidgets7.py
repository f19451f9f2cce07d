"""The explorer's tests also pass on the oldest ipywidgets the ``widgets`` extra accepts (7.7.1, Colab's own).

The virtual environment has ipywidgets 8, so this test installs the extra's floor into a temporary
folder and runs ``tests/test_explorer.py`` in a fresh interpreter with that folder first on
``PYTHONPATH``. It is skipped, with pip's own message, when the wheels cannot be obtained; to run it
without an index, point ``CLR_IPYWIDGETS7_WHEELS`` at a folder holding the two wheels
(``pip download --no-deps ipywidgets==7.7.1 ipython_genutils==0.2.0``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _widgets_floor() -> str:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    ipywidgets, = (Requirement(text) for text in extra["widgets"] if Requirement(text).name == "ipywidgets")
    floor, = (spec.version for spec in ipywidgets.specifier if spec.operator == ">=")
    return floor


FLOOR = _widgets_floor()


@pytest.fixture(scope="module")
def ipywidgets_floor(tmp_path_factory) -> Path:
    """A folder holding ipywidgets at the extra's floor. Without its dependencies: the environment's
    ipykernel, traitlets and IPython serve, ipython_genutils is the one 7.x needs and 8 does not, and
    widgetsnbextension and jupyterlab_widgets are frontend files never imported by the kernel."""
    target = tmp_path_factory.mktemp("ipywidgets-floor")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
               f"ipywidgets=={FLOOR}", "ipython_genutils==0.2.0"]
    if os.environ.get("CLR_IPYWIDGETS7_WHEELS"):
        command += ["--no-index", "--find-links", os.environ["CLR_IPYWIDGETS7_WHEELS"]]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip could not fetch ipywidgets=={FLOOR} within 300 s (no package index?); "
                    "set CLR_IPYWIDGETS7_WHEELS to a folder with the wheels")
    if completed.returncode != 0:
        said = " ".join(completed.stderr.split()[-60:])
        pytest.skip(f"cannot install ipywidgets=={FLOOR} and ipython_genutils==0.2.0 (pip: {said}); "
                    "set CLR_IPYWIDGETS7_WHEELS to a folder with the wheels")
    return target


def test_the_floor_is_colabs_ipywidgets_7_7():
    assert FLOOR.startswith("7.7"), f"the widgets extra's floor is {FLOOR}; Colab ships ipywidgets 7.7.1"


def test_the_explorer_tests_pass_on_the_oldest_ipywidgets_accepted(ipywidgets_floor):
    # The version is checked in the process that runs the tests, after the import they all share.
    script = (
        "import sys, ipywidgets, pytest\n"
        f"assert ipywidgets.__version__ == {FLOOR!r}, f'ran on ipywidgets {{ipywidgets.__version__}}'\n"
        f"assert ipywidgets.__file__.startswith({str(ipywidgets_floor)!r}), ipywidgets.__file__\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_explorer.py']))\n"
    )
    path = os.pathsep.join([str(ipywidgets_floor), *filter(None, [os.environ.get("PYTHONPATH")])])
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": path}, timeout=600)
    report = completed.stdout[-6000:] + completed.stderr[-3000:]
    assert completed.returncode == 0, f"tests/test_explorer.py on ipywidgets {FLOOR}:\n{report}"
    summary = completed.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"skipped|deselected", summary), summary
