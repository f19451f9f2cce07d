"""The distribution: one version source, type markers in the wheel, extras that fit Colab, a changelog."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import clr_lib

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = ("clr_lib", "clr_book")
COLAB_IPYWIDGETS = "7.7.1"  # the ipywidgets Colab ships


def _extra(name: str) -> dict[str, Requirement]:
    requirements = [Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"][name]]
    return {requirement.name.lower(): requirement for requirement in requirements}


def test_the_version_has_one_source_clr_lib_version():
    project = PYPROJECT["project"]
    assert "version" not in project, "pyproject.toml: remove the static version; it is clr_lib.__version__"
    assert "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "clr_lib.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", clr_lib.__version__), clr_lib.__version__


def test_the_installed_metadata_has_clr_lib_version():
    installed = importlib.metadata.version("clr_lib")
    assert installed == clr_lib.__version__, (
        f"the installed clr_lib metadata says {installed}, clr_lib.__version__ is {clr_lib.__version__}: "
        "reinstall (pip install -e .)")


def test_the_changelog_has_an_entry_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, flags=re.MULTILINE)
    assert releases, "CHANGELOG.md: no '## [X.Y.Z] - YYYY-MM-DD' entry"
    assert releases[0] == clr_lib.__version__, (
        f"CHANGELOG.md: the newest entry is {releases[0]}, clr_lib.__version__ is {clr_lib.__version__}")


def test_the_widgets_extra_accepts_colabs_ipywidgets_and_8_but_not_9():
    specifier = _extra("widgets")["ipywidgets"].specifier
    versions = ("7.6.5", COLAB_IPYWIDGETS, "8.0.0", "8.1.7", "9.0.0")
    accepted = {version: specifier.contains(version) for version in versions}
    assert accepted == {"7.6.5": False, COLAB_IPYWIDGETS: True, "8.0.0": True, "8.1.7": True, "9.0.0": False}


def test_the_data_extra_brings_pillow_and_torchvision():
    assert set(_extra("data")) == {"pillow", "torchvision"}


def test_classifiers_name_the_python_versions_of_requires_python():
    classifiers = PYPROJECT["project"]["classifiers"]
    python = re.compile(r"Programming Language :: Python :: 3\.(\d+)")
    listed = sorted(int(match[1]) for match in map(python.fullmatch, classifiers) if match)
    oldest = int(re.fullmatch(r">=3\.(\d+)", PYPROJECT["project"]["requires-python"])[1])
    assert listed and listed[0] == oldest and listed == list(range(oldest, listed[-1] + 1)), listed
    assert {"Typing :: Typed", "Framework :: Jupyter",
            "Topic :: Scientific/Engineering :: Artificial Intelligence"} <= set(classifiers)
    assert not any(c.startswith("License ::") for c in classifiers), "the license is the SPDX `license` field"


def test_the_wheel_ships_the_type_markers_and_the_metadata(tmp_path):
    # Built from a copy of what the wheel is made of, so the checkout's build/ folder is left alone.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, cwd=tmp_path)
    wheel, = (tmp_path / "wheel").glob("clr_lib-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(archive.read(f"clr_lib-{clr_lib.__version__}.dist-info/METADATA").decode())
    assert {f"{package}/py.typed" for package in PACKAGES} <= names
    assert metadata["Version"] == clr_lib.__version__
    assert set(metadata.get_all("Provides-Extra")) >= {"torch", "plot", "widgets", "data"}
    assert metadata.get_all("Classifier") == PYPROJECT["project"]["classifiers"]
    widgets = [Requirement(text) for text in metadata.get_all("Requires-Dist") if text.startswith("ipywidgets")]
    assert [(str(r.specifier), r.marker.evaluate({"extra": "widgets"})) for r in widgets] \
        == [(str(_extra("widgets")["ipywidgets"].specifier), True)]
