"""Chapter 4 (Variants, and its section Training with the schedules) runs to the end with any
reasonable value in its "Parameters you may change" cell, and stops at once, with one clear sentence,
on an unreasonable one.

Each run executes the notebook's code cells in this process (tests/chapter_runner.py), with
parameters replaced right after the parameter cell; any warning fails the run.

The training section trains seven networks per run, so its variants each change one parameter on
top of a short budget (``ITERATIONS = 40``), and they run only where ``CLR_CIFAR10`` names the data
(as in CI), so that no test tries torchvision's download.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from chapter_runner import assigned_names, code_cells, parameter_cell_index, raised_in_cell, run_chapter

VARIANTS_CHAPTER = "04_variants.ipynb"
TRAINING_CHAPTER = "04b_training_with_schedules.ipynb"

# One different, reasonable value for every parameter.
VARIANTS: dict[str, dict[str, Any]] = {
    VARIANTS_CHAPTER: {
        "BASE_LR": 0.002,
        "MAX_LR": 0.01,
        "STEP_SIZE": 500,
        "CYCLES": 1,
        "GAMMA": 0.9999,
        "BASE_MOMENTUM": 0.8,
        "MAX_MOMENTUM": 0.99,
        "ONE_CYCLE_MAX_LR": 1.0,
        "ONE_CYCLE_DIV_FACTOR": 10,
        "ONE_CYCLE_STEPS": 2_000,
        "SGDR_FIRST_PERIOD": 500,
    },
    TRAINING_CHAPTER: {
        "SEED": 1,
        "TRAIN_IMAGES": 2_000,
        "ITERATIONS": 40,
        "BATCH_SIZE": 32,
        "CYCLES": 1,
    },
}
SHORT_BUDGET = {"ITERATIONS": 40}   # added to every variant of the training section

# Unreasonable values: each must stop the chapter in the cell right after the parameters, with a
# ValueError whose message names the parameter and says what range works.
UNREASONABLE = [
    (VARIANTS_CHAPTER, {"STEP_SIZE": 0},
     "STEP_SIZE must be a whole number of iterations from 4 to 100,000; got 0"),
    (VARIANTS_CHAPTER, {"BASE_LR": 0.01},
     r"BASE_LR must be below MAX_LR \(the schedules move between the two\); got BASE_LR = 0.01"),
    (VARIANTS_CHAPTER, {"GAMMA": 1.5}, "GAMMA must be a number above 0 and at most 1; got 1.5"),
    (VARIANTS_CHAPTER, {"ONE_CYCLE_STEPS": 50},
     "ONE_CYCLE_STEPS must be a whole number of iterations from 100 to 1,000,000; got 50"),
    (VARIANTS_CHAPTER, {"MAX_MOMENTUM": 1.0}, "MAX_MOMENTUM must be a number from 0 to 0.99; got 1.0"),
    (TRAINING_CHAPTER, {"ITERATIONS": 10},
     r"ITERATIONS must be a whole number of iterations \(at least 20 per cycle\) from 40 to 2,000; got 10"),
    (TRAINING_CHAPTER, {"BATCH_SIZE": 0}, "BATCH_SIZE must be a whole number of images from 8 to 512; got 0"),
    (TRAINING_CHAPTER, {"TRAIN_IMAGES": 100_000},
     "TRAIN_IMAGES must be a whole number of images from 1,000 to 50,000; got 100000"),
]

needs_data = pytest.mark.skipif(
    not os.environ.get("CLR_CIFAR10"),
    reason="the training section runs only where CLR_CIFAR10 names the data (no download in tests)",
)


def test_every_parameter_has_a_variant():
    for chapter, variants in VARIANTS.items():
        cells = code_cells(chapter)
        assert set(assigned_names(cells[parameter_cell_index(cells)])) == set(variants), chapter


@pytest.mark.parametrize("name", list(VARIANTS[VARIANTS_CHAPTER]))
def test_a_reasonable_value_runs_the_variants_chapter_to_the_end(name):
    value = VARIANTS[VARIANTS_CHAPTER][name]
    namespace = run_chapter(VARIANTS_CHAPTER, {name: value})
    assert namespace[name] == value


@needs_data
@pytest.mark.parametrize("name", list(VARIANTS[TRAINING_CHAPTER]))
def test_a_reasonable_value_runs_the_training_section_to_the_end(name):
    overrides = {**SHORT_BUDGET, name: VARIANTS[TRAINING_CHAPTER][name]}
    namespace = run_chapter(TRAINING_CHAPTER, overrides)
    assert [r["curves"]["iteration"][-1] for r in namespace["records"]] == [overrides["ITERATIONS"]] * 7
    assert namespace["records"][0]["provenance"]["seed"] == overrides.get("SEED", 0)


@pytest.mark.parametrize("chapter, overrides, message", UNREASONABLE)
def test_an_unreasonable_value_stops_the_chapter_at_once_with_one_clear_sentence(chapter, overrides, message):
    cells = code_cells(chapter)
    check_cell = parameter_cell_index(cells) + 1
    with pytest.raises(ValueError, match=message) as raised:
        run_chapter(chapter, overrides)
    assert raised_in_cell(raised.tb, chapter, check_cell)  # stopped right after the parameters
