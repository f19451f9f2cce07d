"""Chapters 1-3 run to the end with any reasonable value in their "Parameters you may change" cell,
and stop at once, with one clear sentence, on an unreasonable one.

Each run executes the notebook's code cells in order in one namespace (IPython syntax such as the
Colab cell's ``%pip`` is translated by IPython's own input transformer first), with one parameter
replaced right after the parameter cell. Figures are drawn on matplotlib's Agg canvas and closed
after every cell, as a kernel would render them; any warning fails the run.
"""

from __future__ import annotations

import ast
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

BOOK = Path(__file__).resolve().parents[1] / "book"
PARAMETER_MARKER = "# --- Parameters you may change"

# One different, reasonable value for every parameter of each chapter.
VARIANTS: dict[str, dict[str, Any]] = {
    "01_learning_rate_basics.ipynb": {
        "CURVATURE": 10.0,  # exercise 1: the "good" rate sits exactly on the threshold
        "START_1D": -2.0,
        "LRS_1D": {"too small": 0.05, "good": 0.3, "too large": 0.6},
        "BOWL_CURVATURES": (2.0, 50.0),
        "BOWL_START": (3.0, -2.0),
        "LRS_BOWL": {"too small": 0.01, "good": 0.03, "too large": 0.05},
        "SADDLE_START": (-1.0, 0.1),
        "LRS_SADDLE": {"too small": 0.1, "good": 0.3, "too large": 1.5},
        "STEP_SIZE": 10,
        "RACE_ITERATIONS": 75,
    },
    "02_epochs_and_iterations.ipynb": {
        "NUM_EXAMPLES": 510,  # the last batch is smaller
        "BATCH_SIZE": 20,
        "BASE_LR": 0.0005,
        "MAX_LR": 0.01,
        "STEP_SIZE_EPOCHS": 2.5,
        "NUM_EPOCHS": 6,
        "SEED": 7,
    },
    "03_clr_equations.ipynb": {
        "BASE_LR": 0.0,
        "MAX_LR": 0.1,
        "STEP_SIZE": 250,
        "TOTAL_ITERATIONS": 4_001,
    },
}

# Unreasonable values: each must stop the chapter in the cell right after the parameters, with a
# ValueError whose message names the parameter and says what range works.
UNREASONABLE = [
    ("01_learning_rate_basics.ipynb", {"CURVATURE": -1.0},
     "CURVATURE must be a number above 0 and at most 100; got -1.0"),
    ("01_learning_rate_basics.ipynb",
     {"LRS_SADDLE": {"too small": 0.5, "good": 0.3, "too large": 1.1}},
     "LRS_SADDLE must map 'too small', 'good' and 'too large' to learning rates that increase"),
    ("01_learning_rate_basics.ipynb", {"RACE_ITERATIONS": 40},
     r"RACE_ITERATIONS must be a whole number of iterations \(at least one full cycle, "
     r"2 \* STEP_SIZE\) from 50 to 5,000; got 40"),
    ("02_epochs_and_iterations.ipynb", {"BATCH_SIZE": 0},
     "BATCH_SIZE must be a whole number of examples from 1 to 1,000; got 0"),
    ("02_epochs_and_iterations.ipynb", {"NUM_EPOCHS": 500},
     r"NUM_EPOCHS \* iterations per epoch must be at most 20,000 .*; got 50,000"),
    ("02_epochs_and_iterations.ipynb", {"MAX_LR": 0.0005},
     "BASE_LR must be below MAX_LR"),
    ("03_clr_equations.ipynb", {"STEP_SIZE": 0},
     "STEP_SIZE must be a whole number of iterations from 1 to 100,000; got 0"),
    ("03_clr_equations.ipynb", {"TOTAL_ITERATIONS": 1_500},
     r"TOTAL_ITERATIONS must be a whole number of iterations \(at least one full cycle, "
     r"2 \* STEP_SIZE\) from 2,000 to 1,000,000; got 1500"),
]


def code_cells(chapter: str) -> list[str]:
    """The chapter's code cells as plain Python (IPython magics translated)."""
    notebook = nbformat.read(BOOK / chapter, as_version=4)
    transform = TransformerManager().transform_cell
    return [transform(cell.source) for cell in notebook.cells if cell.cell_type == "code"]


def parameter_cell_index(cells: list[str]) -> int:
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


def run_chapter(chapter: str, overrides: Mapping[str, Any], stop_after: int | None = None) -> dict:
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


def test_every_parameter_has_a_variant():
    for chapter, variants in VARIANTS.items():
        cells = code_cells(chapter)
        assert set(assigned_names(cells[parameter_cell_index(cells)])) == set(variants), chapter


@pytest.mark.parametrize("chapter", ["01_learning_rate_basics.ipynb", "02_epochs_and_iterations.ipynb"])
def test_the_shipped_values_are_the_ones_the_checks_pin(chapter):
    # The hidden checks pin the numbers quoted in the text only when AT_DEFAULTS is True; if a
    # default changed in the parameter cell but not in DEFAULTS, they would silently stop checking.
    cells = code_cells(chapter)
    namespace = run_chapter(chapter, {}, stop_after=parameter_cell_index(cells) + 2)
    assert namespace["AT_DEFAULTS"] is True
    assert set(namespace["DEFAULTS"]) == set(VARIANTS[chapter])


@pytest.mark.parametrize(
    "chapter, name",
    [(chapter, name) for chapter, variants in VARIANTS.items() for name in variants],
)
def test_a_reasonable_value_runs_the_chapter_to_the_end(chapter, name):
    value = VARIANTS[chapter][name]
    namespace = run_chapter(chapter, {name: value})
    assert namespace[name] == value
    assert namespace.get("AT_DEFAULTS", False) is False  # the checks of quoted numbers stood aside


@pytest.mark.parametrize("chapter, overrides, message", UNREASONABLE)
def test_an_unreasonable_value_stops_the_chapter_at_once_with_one_clear_sentence(
    chapter, overrides, message
):
    cells = code_cells(chapter)
    check_cell = parameter_cell_index(cells) + 1
    with pytest.raises(ValueError, match=message) as raised:
        run_chapter(chapter, overrides)
    frames = [frame.tb_frame.f_code.co_filename for frame in _traceback_frames(raised.tb)]
    assert f"{chapter}, code cell {check_cell}" in frames  # stopped right after the parameters


def _traceback_frames(traceback):
    while traceback is not None:
        yield traceback
        traceback = traceback.tb_next
