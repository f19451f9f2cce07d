"""Toy surfaces for chapter 1: exact gradient-descent dynamics, the 2/lambda threshold, plateaus, plotting."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clr_lib
from clr_book.toy_problems import (
    LR_REGIME_COLORS,
    gradient_descent,
    ill_conditioned_bowl,
    plot_contours,
    plot_loss_curve,
    plot_trajectory,
    quadratic_1d,
    saddle_surface,
)

# --- the 1-D quadratic: the error is multiplied by (1 - lr * curvature) every step --------------------


@settings(max_examples=100, deadline=None)
@given(
    curvature=st.floats(0.1, 10.0),
    lr_times_curvature=st.floats(0.01, 3.0),
    start=st.floats(-5.0, 5.0).filter(lambda w: abs(w - 1.0) > 1e-3),
)
def test_each_step_multiplies_the_error_by_one_minus_lr_times_curvature(curvature, lr_times_curvature, start):
    surface = quadratic_1d(curvature, minimum=1.0)
    lr = lr_times_curvature / curvature
    trajectory = gradient_descent(surface, start, lr, 5)
    errors = trajectory.points[:, 0] - 1.0
    expected = (start - 1.0) * (1.0 - lr_times_curvature) ** np.arange(6)
    np.testing.assert_allclose(errors, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("curvature", [0.5, 4.0, 20.0])
def test_divergence_threshold_is_two_over_curvature(curvature):
    surface = quadratic_1d(curvature)
    threshold = 2.0 / curvature
    below = gradient_descent(surface, 1.0, 0.99 * threshold, 200)
    above = gradient_descent(surface, 1.0, 1.01 * threshold, 200)
    assert abs(below.points[-1, 0]) < 1.0
    assert abs(above.points[-1, 0]) > 1.0
    at = gradient_descent(surface, 1.0, threshold, 7)  # exactly at the threshold: bounces forever
    np.testing.assert_allclose(np.abs(at.points[:, 0]), 1.0)


def test_one_over_curvature_lands_on_the_minimum_in_one_step():
    trajectory = gradient_descent(quadratic_1d(4.0, minimum=-2.0), 3.0, 0.25, 1)
    assert trajectory.points[1, 0] == -2.0
    assert trajectory.losses[1] == 0.0


def test_divergence_stops_quietly_at_the_limit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trajectory = gradient_descent(quadratic_1d(4.0), 1.0, 10.0, 10_000, divergence_limit=1e6)
    assert trajectory.diverged
    assert trajectory.num_iterations < 10
    assert np.abs(trajectory.points).max() <= 1e6
    assert len(trajectory.learning_rates) == trajectory.num_iterations == len(trajectory.losses) - 1


# --- the ill-conditioned bowl ---------------------------------------------------------------------


def test_bowl_coordinates_evolve_independently():
    surface = ill_conditioned_bowl((1.0, 10.0))
    trajectory = gradient_descent(surface, (-4.0, 1.5), 0.15, 10)
    k = np.arange(11)
    np.testing.assert_allclose(trajectory.points[:, 0], -4.0 * 0.85**k)
    np.testing.assert_allclose(trajectory.points[:, 1], 1.5 * (-0.5) ** k)


def test_steepest_direction_sets_the_bowls_threshold():
    surface = ill_conditioned_bowl((1.0, 10.0))
    assert surface.curvatures == (1.0, 10.0)
    assert not gradient_descent(surface, (-4.0, 1.5), 0.19, 300).losses[-1] > 1e-6
    assert gradient_descent(surface, (-4.0, 1.5), 0.21, 300).losses[-1] > 1.0


# --- the saddle surface ---------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(x=st.floats(-3, 3), y=st.floats(-2, 2), curvature=st.floats(0.1, 5.0))
def test_saddle_gradient_matches_finite_differences(x, y, curvature):
    surface = saddle_surface(curvature)
    h = 1e-6
    point = np.array([x, y])
    numeric = [
        (surface.loss(point + h * e) - surface.loss(point - h * e)) / (2 * h) for e in np.eye(2)
    ]
    np.testing.assert_allclose(surface.gradient(point), numeric, atol=1e-5)


def test_saddle_has_zero_gradient_at_its_critical_points():
    surface = saddle_surface(1.0)
    for point in (*surface.minima, *surface.saddles):
        np.testing.assert_array_equal(surface.gradient(np.array(point)), 0.0)
    assert surface.loss(np.array(surface.saddles[0])) == 0.25
    assert all(surface.loss(np.array(m)) == 0.0 for m in surface.minima)
    assert surface.curvatures == (1.0, 2.0)


def test_time_on_the_plateau_falls_as_the_learning_rate_rises():
    surface = saddle_surface(1.0)
    escapes = [gradient_descent(surface, (2.0, 1e-3), lr, 1_000).first_iteration_below(0.01) for lr in (0.05, 0.2, 0.5)]
    assert escapes[0] > escapes[1] > escapes[2]


def test_a_schedule_is_evaluated_once_per_iteration():
    schedule = clr_lib.cyclic(0.05, 1.1, step_size_up=25)
    trajectory = gradient_descent(saddle_surface(), (2.0, 1e-3), schedule, 100)
    np.testing.assert_array_equal(trajectory.learning_rates, schedule(np.arange(100)))


def test_first_iteration_below_is_none_when_never_reached():
    trajectory = gradient_descent(quadratic_1d(1.0), 1.0, 1e-3, 3)
    assert trajectory.first_iteration_below(1e-9) is None
    assert trajectory.first_iteration_below(1.0) == 0


def test_settled_below_waits_for_the_last_bounce_above():
    # A cycle that peaks above the minimum's threshold (2 / 2 = 1): the loss dips below 1e-3, bounces
    # back above it around the peak, then settles for good as the rate falls.
    schedule = clr_lib.cyclic(0.05, 1.1, step_size_up=25)
    trajectory = gradient_descent(saddle_surface(), (2.0, 1e-3), schedule, 150)
    first, settled = trajectory.first_iteration_below(1e-3), trajectory.settled_below(1e-3)
    assert first < settled
    assert trajectory.losses[first:settled].max() >= 1e-3
    assert (trajectory.losses[settled:] < 1e-3).all() and trajectory.losses[settled - 1] >= 1e-3


def test_settled_below_is_zero_when_always_below_and_none_when_not_settled_or_diverged():
    converging = gradient_descent(quadratic_1d(1.0), 1.0, 0.5, 20)
    assert converging.settled_below(1.0) == 0
    assert converging.settled_below(1e-30) is None  # never gets that low in 20 iterations
    assert converging.settled_below(0.5 * 0.25**4) == 5  # loss 0.5 * 0.25**k, strictly below from k = 5
    diverged = gradient_descent(quadratic_1d(4.0), 1e-9, 10.0, 100, divergence_limit=1e-3)
    assert diverged.diverged and diverged.losses[0] < 1.0
    assert diverged.settled_below(1.0) is None


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: quadratic_1d(0.0), "curvature must be a positive finite number, got 0.0"),
        (lambda: quadratic_1d(1.0, minimum=math.nan), "minimum must be a finite number"),
        (lambda: ill_conditioned_bowl((1.0,)), "curvatures must hold exactly two numbers"),
        (lambda: ill_conditioned_bowl((1.0, -1.0)), "curvatures must be a positive finite number"),
        (lambda: saddle_surface(-1.0), "curvature"),
        (lambda: gradient_descent(quadratic_1d(), (1.0, 2.0), 0.1, 3), "start must hold 1 finite coordinate"),
        (lambda: gradient_descent(saddle_surface(), (1.0, math.inf), 0.1, 3), "start must hold 2"),
        (lambda: gradient_descent(quadratic_1d(), 1.0, 0.0, 3), "learning_rate must be a positive finite number"),
        (lambda: gradient_descent(quadratic_1d(), 1.0, lambda i: -1.0, 3), "learning_rate schedule"),
        (lambda: gradient_descent(quadratic_1d(), 1.0, 0.1, -1), "num_iterations must be a non-negative whole"),
        (lambda: gradient_descent(quadratic_1d(), 1.0, 0.1, 2.5), "num_iterations"),
        (lambda: gradient_descent(quadratic_1d(), 1.0, 0.1, 3, divergence_limit=0), "divergence_limit"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_parameter(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


# --- plotting ---------------------------------------------------------------------------------------


def test_plot_helpers_draw_without_changing_the_axes_limits():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bowl = ill_conditioned_bowl()
    ax = plot_contours(bowl, (-5, 5), (-2, 2), title="bowl")
    plot_trajectory(ax, gradient_descent(bowl, (-4, 1.5), 0.21, 60), bowl, label="too large",
                    color=LR_REGIME_COLORS["too large"])
    assert ax.get_xlim() == (-5, 5) and ax.get_ylim() == (-2, 2)
    assert ax.get_title() == "bowl" and "parameter" in ax.get_xlabel()

    line = quadratic_1d(4.0)
    ax = plot_loss_curve(line, (-3, 3))
    limits = ax.get_ylim()
    plot_trajectory(ax, gradient_descent(line, 1.0, 0.55, 30), line, label="too large")
    assert ax.get_ylim() == limits and ax.get_xlim() == (-3, 3)
    assert ax.get_ylabel() == "loss (loss units)"
    plt.close("all")


def test_plot_helpers_refuse_the_wrong_dimension():
    with pytest.raises(ValueError, match="2-D surface"):
        plot_contours(quadratic_1d(), (-1, 1), (-1, 1))
    with pytest.raises(ValueError, match="1-D surface"):
        plot_loss_curve(saddle_surface(), (-1, 1))
