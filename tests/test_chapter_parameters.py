"""Chapters 1-3 run to the end with any reasonable value in their "Parameters you may change" cell,
and stop at once, with one clear sentence, on an unreasonable one.

Each run executes the notebook's code cells in this process (tests/chapter_runner.py), with
parameters replaced right after the parameter cell; any warning fails the run.
"""

from __future__ import annotations

from typing import Any

import pytest

from chapter_runner import assigned_names, code_cells, parameter_cell_index, raised_in_cell, run_chapter

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
    assert raised_in_cell(raised.tb, chapter, check_cell)  # stopped right after the parameters
