"""Run a chapter's code cells in this process, with parameters replaced: shared by the parameter tests.

Each run executes the notebook's code cells in order in one namespace (IPython syntax such as the
Colab cell's ``%pip`` is translated by IPython's own input transformer first), with parameters
replaced right after the parameter cell (the one holding :data:`PARAMETER_MARKER`). Figures are drawn
on matplotlib's Agg canvas and closed after every cell, as a kernel would render them; any warning
fails the run. Each cell is compiled under the name ``"<chapter>, code cell <index>"``, so that a
traceback says which cell raised (:func:`raised_in_cell`).
"""

from __future__ import annotations

import ast
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import matplotlib
import nbformat
from IPython.core.inputtransformer2 import TransformerManager

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

BOOK = Path(__file__).resolve().parents[1] / "book"
PARAMETER_MARKER = "# --- Parameters you may change"


def code_cells(chapter: str) -> list[str]:
    """The chapter's code cells as plain Python (IPython magics translated)."""
    notebook = nbformat.read(BOOK / chapter, as_version=4)
    transform = TransformerManager().transform_cell
    return [transform(cell.source) for cell in notebook.cells if cell.cell_type == "code"]


def parameter_cell_index(cells: list[str]) -> int:
    """The index, among the code cells, of the one parameter cell."""
    (index,) = [i for i, source in enumerate(cells) if PARAMETER_MARKER in source]
    return index


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell, including ``A, B = 1, 2``."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names += [element.id for element in elements if isinstance(element, ast.Name)]
    return names


@contextmanager
def in_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_chapter(chapter: str, overrides: Mapping[str, Any], stop_after: int | None = None) -> dict[str, Any]:
    """Execute the chapter's code cells, replacing parameters right after the parameter cell.

    Returns the namespace. ``stop_after`` ends the run after that many code cells.
    """
    cells = code_cells(chapter)
    parameters = parameter_cell_index(cells)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with in_directory(BOOK), warnings.catch_warnings():
        warnings.simplefilter("error")
        # plt.show() on the non-interactive Agg canvas says it cannot show; that is expected here.
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
        for index, source in enumerate(cells[:stop_after]):
            try:
                exec(compile(source, f"{chapter}, code cell {index}", "exec"), namespace)
                for number in plt.get_fignums():
                    plt.figure(number).canvas.draw()  # render, as the inline backend would
            finally:
                plt.close("all")
            if index == parameters:
                namespace.update(overrides)
    return namespace


def raised_in_cell(traceback: TracebackType | None, chapter: str, cell: int) -> bool:
    """Whether ``traceback`` passes through the chapter's code cell ``cell`` (as :func:`run_chapter` names it)."""
    name = f"{chapter}, code cell {cell}"
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == name:
            return True
        traceback = traceback.tb_next
    return False
