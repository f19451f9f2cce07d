"""The repository's URL and branch have one source, _config.yml's ``repository:`` block (the launch
buttons read it there); every copy (pyproject's [project.urls], the README's install line, each
chapter's Colab install cell) must agree with it, and a copy that does not is named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("0*.ipynb"))
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
# A pip requirement's VCS URL: git+https://host/owner/name, optionally @ref.
PIP_GIT_URL = re.compile(r"git\+(?P<url>https?://[^\s\"'@`)]+)(?:@(?P<ref>[^\s\"'`)]+))?")


def _source() -> tuple[str, str]:
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    return repository["url"], repository["branch"]


def _disagreements(where: str, text: str, url: str, branch: str) -> list[str]:
    """Every pip git URL in ``text`` that is not ``git+{url}@{branch}``, described with ``where``."""
    found = []
    for match in PIP_GIT_URL.finditer(text):
        if (match["url"], match["ref"]) != (url, branch):
            found.append(f"{where}: {match[0]!r}, expected 'git+{url}@{branch}' (from _config.yml)")
    return found


def test_the_source_is_a_plain_github_url_and_a_branch():
    url, branch = _source()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url) and not url.endswith(".git"), (
        f"_config.yml: repository.url must be https://github.com/<owner>/<name>, got {url!r}")
    assert re.fullmatch(r"[\w./-]+", branch), f"_config.yml: repository.branch must be a branch name, got {branch!r}"


def test_pyproject_urls_are_the_repository_url_and_branch():
    url, branch = _source()
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    wrong = []
    for label in ("Homepage", "Repository"):
        if urls.get(label) != url:
            wrong.append(f"pyproject.toml: [project.urls] {label} = {urls.get(label)!r}, expected {url!r}")
    for label, value in urls.items():
        if not value.startswith(url + "/") and value != url:
            wrong.append(f"pyproject.toml: [project.urls] {label} = {value!r} is not under {url!r}")
        elif re.match(re.escape(url) + r"/(blob|tree)/", value) and not value.startswith(f"{url}/blob/{branch}/"):
            wrong.append(f"pyproject.toml: [project.urls] {label} = {value!r} is not on branch {branch!r}")
    assert not wrong, "\n".join(wrong)


def test_readme_installs_from_the_repository_and_branch():
    url, branch = _source()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert PIP_GIT_URL.search(text), "README.md: no `pip install \"clr_lib @ git+...\"` line found"
    wrong = _disagreements("README.md", text, url, branch)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_the_colab_install_cell_installs_from_the_repository_and_branch(path):
    url, branch = _source()
    install = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    assert PIP_GIT_URL.search(install.source), f"{path.name}: the first code cell installs no git+ URL"
    wrong = _disagreements(f"{path.name}, first code cell", install.source, url, branch)
    assert not wrong, "\n".join(wrong)


def test_no_notebook_has_another_copy_that_disagrees():
    url, branch = _source()
    wrong = [problem for path in NOTEBOOKS
             for index, cell in enumerate(nbformat.read(path, as_version=4).cells)
             for problem in _disagreements(f"{path.relative_to(ROOT)}, cell {index}", cell.source, url, branch)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("text, expected", [
    ('%pip install "clr_lib[torch] @ git+https://github.com/clr-book/clr-book@main"', []),
    ('%pip install "clr_lib @ git+https://github.com/clr-book/clr-book"', ["git+https://github.com/clr-book/clr-book"]),
    ("pip install 'clr_lib @ git+https://github.com/someone/clr-book@main'",
     ["git+https://github.com/someone/clr-book@main"]),
    ("`pip install \"clr_lib @ git+https://github.com/clr-book/clr-book@dev\"`",
     ["git+https://github.com/clr-book/clr-book@dev"]),
])
def test_the_check_itself_finds_each_kind_of_disagreement(text, expected):
    found = _disagreements("X", text, "https://github.com/clr-book/clr-book", "main")
    assert [problem.split("'")[1] for problem in found] == expected
