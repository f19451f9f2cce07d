"""The book's notebooks follow the project's standards (the parts a machine can check)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COLAB_INSTALL = 'if "google.colab" in sys.modules:'


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def chapter_notebooks() -> list[Path]:
    return [ROOT / f"{name}.ipynb" for name in toc_files() if (ROOT / f"{name}.ipynb").exists()]


def test_every_toc_entry_exists():
    for name in toc_files():
        assert any((ROOT / f"{name}{suffix}").exists() for suffix in (".ipynb", ".md")), name


def test_every_notebook_in_book_is_in_the_toc_so_nbval_and_the_build_cover_it():
    listed = set(chapter_notebooks())
    present = {path for path in (ROOT / "book").glob("*.ipynb")}
    assert present == listed


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda path: path.name)
def test_notebook_opens_with_a_title_and_the_colab_install_cell(path):
    notebook = nbformat.read(path, as_version=4)
    first_markdown = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    titles = re.findall(r"^# (.+)$", first_markdown.source, flags=re.MULTILINE)
    assert len(titles) == 1, f"{path.name}: one '# Title' in the first cell"
    assert not re.match(r"\d", titles[0]), f"{path.name}: Sphinx numbers chapters; no number in the title"
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert COLAB_INSTALL in first_code.source and "pip install" in first_code.source
    assert not re.search(r"(torch|numpy)\s*==", first_code.source), "never pin torch or numpy for Colab"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda path: path.name)
def test_notebook_ends_with_summary_and_exercises(path):
    markdown = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
    assert re.search(r"^#+ .*Summary", markdown, flags=re.MULTILINE), path.name
    assert re.search(r"^#+ .*Exercises", markdown, flags=re.MULTILINE), path.name


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda path: path.name)
def test_code_lines_fit_the_page(path):
    """The rendered page cuts code lines off past about 88 characters (the style guide's limit)."""
    long = [(index, line) for index, cell in enumerate(nbformat.read(path, as_version=4).cells)
            if cell.cell_type == "code" for line in cell.source.splitlines() if len(line) > 88]
    assert not long, f"{path.name}: {len(long)} code lines over 88 characters, first in cell {long[0][0]}: {long[0][1]!r}"
