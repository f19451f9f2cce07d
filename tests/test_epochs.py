"""Epochs and iterations: the worked examples, agreement with len(DataLoader), Smith's step-size guideline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clr_lib.epochs import epochs_to_iterations, iterations_per_epoch, iterations_to_epochs, step_size_range

# --- clr-facts.md section 2: the worked examples ----------------------------------------------------


def test_1000_images_at_batch_10_are_100_iterations_per_epoch():
    assert iterations_per_epoch(1_000, 10) == 100


def test_cifar10_at_batch_100_is_500_iterations_per_epoch():
    assert iterations_per_epoch(50_000, 100) == 500


def test_a_short_last_batch_counts_unless_dropped():
    assert iterations_per_epoch(1_050, 100) == 11
    assert iterations_per_epoch(1_050, 100, drop_last=True) == 10


def test_drop_last_makes_no_difference_when_the_batch_size_divides():
    assert iterations_per_epoch(50_000, 100, drop_last=True) == 500


def test_cifar10_at_batch_128_rounds_up_to_391_or_down_to_390():
    assert iterations_per_epoch(50_000, 128) == 391 == math.ceil(50_000 / 128)
    assert iterations_per_epoch(50_000, 128, drop_last=True) == 390


def test_smith_step_size_guideline_for_cifar10_is_1000_to_5000_iterations():
    assert step_size_range(500) == (1_000, 5_000)
    low, high = step_size_range(500)
    assert low <= 2_000 <= high  # the paper's choice


def test_step_size_range_with_custom_epochs():
    assert step_size_range(100, min_epochs=4, max_epochs=4) == (400, 400)
    assert step_size_range(3, min_epochs=0.1) == (1, 30)  # never below one iteration


def test_the_papers_step_size_is_4_epochs_at_batch_100():
    assert epochs_to_iterations(4, 500) == 2_000
    assert iterations_to_epochs(2_000, 500) == 4.0


def test_fractional_epochs_round_to_whole_iterations():
    assert epochs_to_iterations(2.5, 100) == 250
    assert epochs_to_iterations(0.333, 10) == 3
    assert epochs_to_iterations(0, 10) == 0


def test_a_step_size_of_2000_stepped_per_epoch_needs_2000_epochs_to_peak():
    # Stepped once per epoch, the schedule's iteration counter counts epochs.
    assert iterations_to_epochs(2_000, 1) == 2_000.0


# --- agreement with torch's DataLoader --------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(num_examples=st.integers(1, 400), batch_size=st.integers(1, 64), drop_last=st.booleans())
def test_equals_len_of_a_torch_dataloader(num_examples, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.zeros(num_examples, 1)), batch_size=batch_size, drop_last=drop_last)
    if drop_last and num_examples < batch_size:
        assert len(loader) == 0  # torch: an empty epoch; clr_lib: an error
        with pytest.raises(ValueError, match="no full batch"):
            iterations_per_epoch(num_examples, batch_size, drop_last=drop_last)
    else:
        assert iterations_per_epoch(num_examples, batch_size, drop_last=drop_last) == len(loader)


@settings(max_examples=200, deadline=None)
@given(iterations=st.integers(0, 10**9), per_epoch=st.integers(1, 10**5))
def test_iterations_to_epochs_and_back_round_trips(iterations, per_epoch):
    assert epochs_to_iterations(iterations_to_epochs(iterations, per_epoch), per_epoch) == iterations


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: iterations_per_epoch(0, 10), "num_examples must be a positive whole number of examples, got 0"),
        (lambda: iterations_per_epoch(10.0, 10), "num_examples"),
        (lambda: iterations_per_epoch(True, 10), "num_examples"),
        (lambda: iterations_per_epoch(100, 0), "batch_size must be a positive whole number of examples, got 0"),
        (lambda: iterations_per_epoch(100, -5), "batch_size"),
        (lambda: iterations_per_epoch(100, 10, drop_last=1), "drop_last must be True or False"),
        (lambda: iterations_per_epoch(5, 10, drop_last=True), "num_examples=5 < batch_size=10"),
        (lambda: epochs_to_iterations(-1, 10), "epochs must be a finite, non-negative number of epochs, got -1"),
        (lambda: epochs_to_iterations(math.inf, 10), "epochs"),
        (lambda: epochs_to_iterations("4", 10), "epochs"),
        (lambda: epochs_to_iterations(4, 0), "iterations_per_epoch must be a positive whole number of iterations"),
        (lambda: epochs_to_iterations(4, 2.5), "iterations_per_epoch"),
        (lambda: iterations_to_epochs(-3, 10), "iterations must be a finite, non-negative number of iterations"),
        (lambda: iterations_to_epochs(math.nan, 10), "iterations"),
        (lambda: iterations_to_epochs(30, 0), "iterations_per_epoch"),
        (lambda: step_size_range(0), "iterations_per_epoch"),
        (lambda: step_size_range(500, min_epochs=0), "min_epochs must be a positive number of epochs, got 0"),
        (lambda: step_size_range(500, max_epochs=-1), "max_epochs"),
        (lambda: step_size_range(500, min_epochs=10, max_epochs=2), "min_epochs must be <= max_epochs"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_parameter(call, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        call()
