"""The strict book build is the chapters' test: a failing cell, even one hidden from the page, fails it.

`make test` executes every chapter once, in the book build, instead of once under nbval and again in
the build. That loses nothing only if the build fails wherever nbval would: on an exception in any
cell, including the check cells tagged ``remove-cell``. These tests build a one-page book with this
project's execution settings (``_config.yml``'s ``execute`` block) and the Makefile's flags.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def makefile_build_flags() -> list[str]:
    """The flags of `make book`'s jupyter-book command, read from the Makefile."""
    match = re.search(r"jupyter-book build \. (.*)", (REPO / "Makefile").read_text())
    assert match, "the Makefile's book target runs `jupyter-book build . <flags>`"
    return match.group(1).split()


def build_one_page(tmp_path: Path, check_cell: str) -> subprocess.CompletedProcess[str]:
    project = yaml.safe_load((REPO / "_config.yml").read_text())
    config = {"title": "strict build", "execute": project["execute"], "only_build_toc_files": True}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A page"),
        nbformat.v4.new_code_cell("answer = 6 * 7\nprint(answer)"),
        nbformat.v4.new_code_cell(check_cell, metadata={"tags": ["remove-cell"]}),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "page.ipynb")
    return subprocess.run([str(JUPYTER_BOOK), "build", ".", *makefile_build_flags()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book is not installed beside this Python")
def test_the_project_executes_every_chapter_and_forbids_cell_errors():
    execute = yaml.safe_load((REPO / "_config.yml").read_text())["execute"]
    assert execute["execute_notebooks"] == "force" and execute["allow_errors"] is False
    assert {"--warningiserror", "--keep-going"} <= set(makefile_build_flags())


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book is not installed beside this Python")
def test_a_failing_hidden_check_cell_fails_the_build(tmp_path):
    failed = build_one_page(tmp_path, "assert answer == 41, 'the check cell failed'")
    assert failed.returncode != 0
    assert "Executing notebook failed" in failed.stdout + failed.stderr


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book is not installed beside this Python")
def test_a_passing_check_cell_builds_and_is_not_on_the_page(tmp_path):
    built = build_one_page(tmp_path, "assert answer == 42, 'the check cell failed'")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    page = (tmp_path / "_build" / "html" / "page.html").read_text()
    assert "42" in page and "the check cell failed" not in page
