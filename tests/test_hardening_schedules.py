"""Hardening of the schedule factories, the combinators and the epoch helpers: momenta in [0, 1), real
booleans and integers, extreme numbers refused with a ValueError that names the parameter and the value
(never ZeroDivisionError, OverflowError, MemoryError or a misleading message), schedules that pickle,
and the ``scaled`` combinator."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import clr_lib
from clr_lib import (
    Schedule,
    constant,
    cosine_warm_restarts,
    cyclic,
    cyclic_momentum,
    decay,
    exponential_decay,
    one_cycle,
    one_cycle_momentum,
    scaled,
    sequence,
    step_decay,
    warmup,
)
from clr_lib._validation import MAX_ITERATIONS
from clr_lib.epochs import epochs_to_iterations, iterations_per_epoch, iterations_to_epochs, step_size_range

FEW_ULPS = 4 * np.finfo(float).eps


def assert_rejects(call, *fragments):
    """``call()`` raises ValueError (nothing else) whose message contains every fragment (the parameter
    name and the bad value, at least)."""
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --- momentum and beta1 lie in [0, 1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name", "value"),
    [
        (lambda: cyclic_momentum(0.8, 1.0), "max_momentum", "1.0"),
        (lambda: cyclic_momentum(1.0, 1.0), "base_momentum", "1.0"),
        (lambda: cyclic_momentum(0.8, 1.5), "max_momentum", "1.5"),
        (lambda: cyclic_momentum(-0.1, 0.9), "base_momentum", "-0.1"),
        (lambda: cyclic_momentum(0.8, math.nan), "max_momentum", "nan"),
        (lambda: one_cycle_momentum(100, 0.85, 1.0), "max_momentum", "1.0"),
        (lambda: one_cycle_momentum(100, 1, 22), "base_momentum", "1"),  # PyTorch's test vector: not a momentum
        (lambda: one_cycle_momentum(100, -0.01, 0.95), "base_momentum", "-0.01"),
    ],
)
def test_a_momentum_outside_zero_to_one_is_refused_naming_the_range(call, name, value):
    assert_rejects(call, f"{name} must be a number in [0, 1)", f"got {value}")


def test_a_momentum_just_below_one_is_accepted():
    assert cyclic_momentum(0.9, 0.999, 10)(0) == 0.999
    assert one_cycle_momentum(100, 0.0, 0.999)(0) == 0.999


# --- booleans are real bools, integers are real integers ----------------------------------------------


@pytest.mark.parametrize("flag", ["False", "yes", 1, None])
def test_three_phase_must_be_true_or_false(flag):
    assert_rejects(lambda: one_cycle(0.1, 100, three_phase=flag), "three_phase must be True or False", repr(flag))
    assert_rejects(lambda: one_cycle_momentum(100, three_phase=flag), "three_phase", repr(flag))


def test_drop_last_must_be_true_or_false_not_a_truthy_string():
    assert_rejects(lambda: iterations_per_epoch(1_050, 100, drop_last="False"), "drop_last must be True or False",
                   "'False'")


@pytest.mark.parametrize(
    ("call", "name", "value"),
    [
        (lambda: one_cycle(0.1, True), "total_steps", "True"),
        (lambda: one_cycle_momentum(False), "total_steps", "False"),
        (lambda: cosine_warm_restarts(0.1, True), "first_cycle_steps", "True"),
        (lambda: cosine_warm_restarts(0.1, 10, cycle_mult=True), "cycle_mult", "True"),
        (lambda: step_decay(0.1, [True, 20]), "milestones", "True"),
        (lambda: step_decay(0.1, [10.5]), "milestones", "10.5"),
        (lambda: sequence([constant(0.1), constant(0.2)], [True]), "boundaries", "True"),
        (lambda: warmup(constant(0.1), True), "warmup_steps", "True"),
        (lambda: iterations_per_epoch(True, 1), "num_examples", "True"),
        (lambda: epochs_to_iterations(4, True), "iterations_per_epoch", "True"),
        (lambda: cyclic(0.001, 0.006, True), "step_size_up", "True"),
    ],
)
def test_a_bool_is_not_taken_as_an_integer(call, name, value):
    assert_rejects(call, name, f"got {value}")


def test_total_steps_true_is_not_taken_as_one_step():
    with pytest.raises(ValueError, match="total_steps must be a positive whole number of iterations, got True"):
        one_cycle(0.1, True)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: step_decay(0.1, 100), "milestones must be a sequence"),
        (lambda: step_decay(0.1, "100"), "milestones must be a sequence"),
        (lambda: sequence(constant(0.1), []), "schedules must be a non-empty sequence"),
    ],
)
def test_a_scalar_or_a_string_is_not_a_sequence(call, name):
    assert_rejects(call, name)


def test_milestones_from_a_generator_are_read_once_and_shown_in_the_repr():
    schedule = step_decay(0.1, (mark for mark in [10, 20]))
    assert repr(schedule) == "step_decay(lr=0.1, milestones=[10, 20], gamma=0.1)"
    np.testing.assert_allclose(schedule(np.array([0, 10, 20])), [0.1, 0.01, 0.001], rtol=1e-15)


# --- extreme numbers: a ValueError naming the parameter, never an arithmetic error ---------------------


@pytest.mark.parametrize(
    ("call", "name", "value"),
    [
        (lambda: cyclic(0.001, 0.006, 1e308, 1e308), "step_size_up", "1e+308"),  # up + down would be inf
        (lambda: cyclic(0.001, 0.006, 10, 2.0**60), "step_size_down", "1.152921504606847e+18"),
        (lambda: cyclic(0.001, 0.006, 1e-300), "step_size_up", "1e-300"),  # its phase overflowed to NaN
        (lambda: cyclic(0.001, 0.006, 0.5), "step_size_up", "0.5"),
        (lambda: cyclic_momentum(0.8, 0.9, math.inf), "step_size_up", "inf"),
        (lambda: decay(0.001, 0.006, 1e308), "step_size", "1e+308"),
        (lambda: one_cycle(0.1, 100, div_factor=1e-310), "div_factor=1e-310", "max_lr / div_factor = inf"),
        (lambda: one_cycle(1e300, 100, div_factor=1e-10), "div_factor=1e-10", "= inf"),
        (lambda: one_cycle(0.1, 100, div_factor=1e-300, final_div_factor=1e-300), "div_factor", "inf"),
        (lambda: one_cycle(1.0, 100, final_div_factor=1e-310), "final_div_factor=1e-310", "= inf"),
        (lambda: one_cycle(10**400, 100), "max_lr", "an integer of about 401 digits"),
        (lambda: one_cycle(0.1, 10**400), "total_steps", "an integer of about 401 digits"),
        (lambda: one_cycle(0.1, MAX_ITERATIONS + 1), "total_steps", "got 9007199254740993"),
        (lambda: cosine_warm_restarts(0.1, 10**400), "first_cycle_steps", "about 401 digits"),
        (lambda: cosine_warm_restarts(0.1, 10, cycle_mult=10**400), "cycle_mult", "about 401 digits"),
        (lambda: cosine_warm_restarts(1e308, 10), "max_lr=1e+308", "(max_lr - min_lr) * 2 = inf"),
        (lambda: step_decay(0.1, [10**400]), "milestones", "about 401 digits"),
        (lambda: sequence([constant(0.1), one_cycle(0.1, 100)], [MAX_ITERATIONS]), "boundaries", "past 2**53"),
        (lambda: warmup(one_cycle(0.1, 100), MAX_ITERATIONS), "warmup_steps", "past 2**53"),
        (lambda: constant(-1e-320), "lr", "-1e-320"),
        (lambda: exponential_decay(0.1, 5e-324 * 0), "gamma", "0.0"),
    ],
)
def test_extreme_arguments_are_a_value_error_naming_the_parameter(call, name, value):
    assert_rejects(call, name, value)


@pytest.mark.parametrize(
    ("iteration", "fragment"),
    [
        (10**400, "iteration must be at most 2**53 (9,007,199,254,740,992)"),  # float(10**400) overflows
        (MAX_ITERATIONS + 1, "got 9007199254740993"),
        (np.array([0, 2**60]), "iteration must be at most 2**53"),
        (np.uint64(2**63), "iteration must be at most 2**53"),
        (-1, "iteration must be >= 0 (iterations count from 0), got -1"),
        (-(10**400), "got a negative integer of about 401 digits"),
        (math.inf, "iteration must be a finite whole number of iterations, got inf"),
        (-math.inf, "got -inf"),
        (math.nan, "got nan"),
        (np.array([3.0, math.nan]), "iteration must be a finite whole number"),
    ],
)
def test_evaluating_at_an_extreme_iteration_is_a_value_error(iteration, fragment):
    for schedule in (cyclic(0.001, 0.006, 10), exponential_decay(0.1, 0.9), cosine_warm_restarts(0.1, 10, 2)):
        assert_rejects(lambda: schedule(iteration), fragment)


def test_the_last_exact_iteration_still_evaluates():
    # the phase it / (u + d) keeps only a few bits of fraction there, so only the bounds are certain
    assert 0.001 <= cyclic(0.001, 0.006, 10)(MAX_ITERATIONS) <= 0.006
    assert 0 <= cosine_warm_restarts(0.1, 3, cycle_mult=3)(MAX_ITERATIONS) <= 0.1
    assert step_decay(0.1, [MAX_ITERATIONS])(MAX_ITERATIONS) == pytest.approx(0.01, rel=1e-15)


def test_huge_but_finite_learning_rates_do_not_overflow_inside_the_formulas():
    assert warmup(constant(0.1), 10, start_lr=1e308)(7) == pytest.approx(0.3e308 + 0.07, rel=1e-12)
    with np.errstate(all="raise"):  # not even a silent overflow in the unused branch of the vectorised path
        values = warmup(constant(0.1), 10, start_lr=1e308)(np.arange(20))
    assert np.isfinite(values).all()
    assert one_cycle(1e308, 100, anneal_strategy="cos")(29) == 1e308
    assert cosine_warm_restarts(8e307, 10)(5) == pytest.approx(4e307, rel=1e-12)


def test_a_cycle_with_a_tiny_falling_half_relative_to_the_rising_half_has_no_division_by_zero():
    # u = 2**53 and d = 1: u / (u + d) rounds to 1.0, so (x - 1) / (r - 1) would divide by zero
    schedule = cyclic(0.0, 1.0, float(MAX_ITERATIONS), 1)
    with np.errstate(all="raise"):
        values = schedule(np.array([0, 1, 2**52]))
    np.testing.assert_allclose(values, [0.0, 0.0, 0.5], rtol=0, atol=2.0**-52)  # 1 / 2**53 is below an ulp of 1
    assert schedule(2**52) == 0.5 and schedule(1) <= 2.0**-52


@pytest.mark.parametrize(
    ("call", "name", "value"),
    [
        (lambda: epochs_to_iterations(1e308, 10), "epochs=1e+308", "= inf"),  # round(inf) raised OverflowError
        (lambda: epochs_to_iterations(4, 10**400), "iterations_per_epoch", "about 401 digits"),
        (lambda: epochs_to_iterations(2.0**52, 4), "epochs=4503599627370496.0", "at most 2**53"),
        (lambda: iterations_to_epochs(10**400, 10), "iterations", "about 401 digits"),
        (lambda: iterations_to_epochs(10, MAX_ITERATIONS + 1), "iterations_per_epoch", "9007199254740993"),
        (lambda: step_size_range(MAX_ITERATIONS, max_epochs=10), "max_epochs=10", "at most 2**53"),
        (lambda: step_size_range(500, min_epochs=math.inf), "min_epochs", "inf"),
    ],
)
def test_epoch_conversions_refuse_counts_beyond_2_to_the_53(call, name, value):
    assert_rejects(call, name, value)


def test_epoch_conversions_still_handle_large_exact_counts():
    assert epochs_to_iterations(2, 2**52) == 2**53
    assert iterations_per_epoch(10**30, 10) == 10**29  # exact integer arithmetic, no float involved


# --- pickling and deep copies --------------------------------------------------------------------------


def halving(cycle):
    """A module-level scale_fn, so that the schedule using it pickles (a lambda would not)."""
    return 0.5 ** (cycle - 1)


def linear_ramp(iteration):
    """A plain callable for scaled(): torch's lr_lambda convention."""
    return 0.001 * (1 + iteration)


PICKLE_CASES = {
    "cyclic triangular": cyclic(0.001, 0.006, 97, 31),
    "cyclic exp_range hann": cyclic(0.001, 0.006, 50, mode="exp_range", gamma=0.999, shape="hann"),
    "cyclic triangular2 welch": cyclic(0.001, 0.006, 40, mode="triangular2", shape="welch"),
    "cyclic custom scale_fn": cyclic(0.001, 0.006, 20, scale_fn=halving),
    "cyclic_momentum": cyclic_momentum(0.8, 0.95, 40, 60),
    "one_cycle": one_cycle(0.1, 5000),
    "one_cycle three phases linear": one_cycle(0.1, 5000, anneal_strategy="linear", three_phase=True),
    "one_cycle_momentum": one_cycle_momentum(5000),
    "cosine_warm_restarts": cosine_warm_restarts(0.1, 30),
    "cosine_warm_restarts cycle_mult": cosine_warm_restarts(0.1, 30, 3, 0.001),
    "decay": decay(0.001, 0.006, 700),
    "constant": constant(0.01),
    "step_decay": step_decay(0.1, [1000, 3000]),
    "exponential_decay": exponential_decay(0.1, 0.9995),
    "sequence": sequence([cyclic(0.001, 0.005, 200, mode="triangular2"), one_cycle(0.01, 3000)], [1000]),
    "warmup": warmup(cyclic(0.001, 0.006, 100), 250),
    "scaled": scaled(one_cycle(0.1, 5000), 0.5),
    "scaled callable": scaled(linear_ramp, 2.0),
}


@pytest.mark.parametrize("schedule", PICKLE_CASES.values(), ids=PICKLE_CASES.keys())
def test_every_schedule_pickles_and_deep_copies_with_identical_values(schedule):
    iterations = np.arange(0, 4000, 7)
    expected = schedule(iterations)
    for copied in (pickle.loads(pickle.dumps(schedule)), copy.deepcopy(schedule)):
        assert isinstance(copied, Schedule) and copied is not schedule
        assert repr(copied) == repr(schedule) and copied.total_steps == schedule.total_steps
        np.testing.assert_array_equal(copied(iterations), expected)
        assert [copied(int(i)) for i in iterations[:50]] == [schedule(int(i)) for i in iterations[:50]]


def test_a_pickled_schedule_is_independent_of_the_original():
    schedule = one_cycle(0.1, 100)
    restored = pickle.loads(pickle.dumps(schedule, protocol=pickle.HIGHEST_PROTOCOL))
    assert restored.total_steps == 100
    with pytest.raises(ValueError, match="past the end"):
        restored(100)


# --- the scaled combinator -------------------------------------------------------------------------------


def test_scaled_multiplies_every_value_and_keeps_total_steps():
    inner = one_cycle(0.1, 1000)
    schedule = scaled(inner, 2.0)
    iterations = np.arange(1000)
    np.testing.assert_allclose(schedule(iterations), 2.0 * inner(iterations), rtol=FEW_ULPS, atol=0)
    assert schedule.total_steps == 1000
    assert isinstance(schedule(3), float) and schedule(np.arange(6).reshape(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="past the end"):
        schedule(1000)


def test_scaled_repr_reads_factor_times_schedule():
    inner = cyclic(0.001, 0.006, 2000)
    assert repr(scaled(inner, 2.0)) == f"2.0 * {inner!r}"
    assert repr(scaled(constant(0.1), 3)) == "3.0 * constant(lr=0.1)"
    assert repr(scaled(inner, 2.0)).startswith("2.0 * cyclic(")


def test_scaled_by_zero_is_zero_and_composes():
    assert scaled(cyclic(0.001, 0.006, 10), 0.0)(10) == 0.0
    twice = scaled(scaled(constant(0.1), 2.0), 0.5)
    assert twice(5) == 0.1 and repr(twice) == "0.5 * 2.0 * constant(lr=0.1)"
    assert sequence([scaled(one_cycle(0.1, 100), 0.1), constant(0.001)], [100])(99) == pytest.approx(
        0.1 * one_cycle(0.1, 100)(99), rel=1e-15)


def test_scaled_wraps_a_plain_callable_scalar_only_or_vectorised():
    vectorised = scaled(linear_ramp, 2.0)
    assert vectorised.total_steps is None
    np.testing.assert_allclose(vectorised(np.arange(4)), 0.002 * np.arange(1, 5), rtol=1e-15)
    step = scaled(lambda iteration: 0.1 if iteration < 3 else 0.01, 10.0)  # not vectorisable: element-wise
    np.testing.assert_allclose(step(np.arange(5)), [1, 1, 1, 0.1, 0.1], rtol=1e-15)
    assert step(4) == pytest.approx(0.1, rel=1e-15)


@pytest.mark.parametrize(
    ("factor", "value"), [(-1.0, "-1.0"), (math.nan, "nan"), (math.inf, "inf"), (True, "True"), ("2", "'2'")]
)
def test_scaled_refuses_a_factor_that_is_not_a_finite_number_at_least_zero(factor, value):
    assert_rejects(lambda: scaled(constant(0.1), factor), "factor must be a finite, non-negative scale factor",
                   f"got {value}")


def test_scaled_refuses_something_that_is_not_a_schedule():
    assert_rejects(lambda: scaled(0.1, 2.0), "schedule must be a Schedule or a callable", "got 0.1")


def test_scaled_values_that_overflow_are_a_value_error_at_the_call():
    assert_rejects(lambda: scaled(constant(1e300), 1e10)(0), "produced inf at iteration 0", "scale factor")


def test_scaled_is_exported_by_the_package():
    assert clr_lib.scaled is scaled and "scaled" in clr_lib.__all__


# --- the Schedule class itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "name", "value"),
    [
        (dict(values=np.cos, total_steps=True, description="x"), "total_steps", "True"),
        (dict(values=np.cos, total_steps=10.0, description="x"), "total_steps", "10.0"),
        (dict(values=0.1, total_steps=None, description="x"), "values", "0.1"),
        (dict(values=np.cos, total_steps=None, description=None), "description", "None"),
    ],
)
def test_schedule_constructor_checks_its_arguments(arguments, name, value):
    values = arguments.pop("values")
    assert_rejects(lambda: Schedule(values, **arguments), name, f"got {value}")
