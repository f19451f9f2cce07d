"""The pure schedules: worked examples, the paper's recipes, invariants and bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clr_lib
from clr_lib import (
    constant,
    cosine_warm_restarts,
    cyclic,
    cyclic_momentum,
    decay,
    exponential_decay,
    one_cycle,
    one_cycle_momentum,
    sequence,
    step_decay,
    warmup,
)

BASE, PEAK = 0.001, 0.006
FEW_ULPS = 4 * np.finfo(float).eps  # numpy's vectorised exp/pow/cos may differ from libm by an ulp (AVX-512 vs AVX2)


# --- clr-facts.md section 3: the worked example with step size 1,000 --------------------------------


@pytest.fixture
def worked_example():
    return cyclic(base_lr=BASE, max_lr=PEAK, step_size_up=1000)


def test_iteration_5000_is_the_peak_of_cycle_3(worked_example):
    # cycle = floor(1 + 5000 / 2000) = 3, x = |5 - 6 + 1| = 0, lr = max_lr
    assert math.floor(1 + 5000 / 2000) == 3
    assert worked_example(5000) == PEAK


def test_iteration_5500_is_halfway_down(worked_example):
    assert worked_example(5500) == pytest.approx(BASE + 0.5 * (PEAK - BASE), rel=1e-15)


def test_iteration_6000_starts_cycle_4_at_base_lr(worked_example):
    assert worked_example(6000) == BASE
    assert worked_example(5999) == pytest.approx(BASE + (PEAK - BASE) / 1000, rel=1e-12)


def test_10010_iterations_span_six_cycles(worked_example):
    assert math.ceil(10010 / 2000) == 6
    # iteration 10,010 is 10 iterations into cycle 6: 10 / 1000 of the amplitude
    assert worked_example(10010) == pytest.approx(BASE + (PEAK - BASE) * 0.01, rel=1e-12)


def test_first_peak_is_at_step_size_not_at_twice_step_size(worked_example):
    curve = worked_example(np.arange(4000))
    assert int(np.argmax(curve)) == 1000


def test_symmetric_form_equals_the_papers_equation():
    s = 1000
    it = np.arange(0, 20_000)
    cycle = np.floor(1 + it / (2 * s))
    x = np.abs(it / s - 2 * cycle + 1)
    paper = BASE + (PEAK - BASE) * np.maximum(0, 1 - x)
    np.testing.assert_allclose(cyclic(BASE, PEAK, s)(it), paper, rtol=1e-12, atol=0)


# --- calling conventions --------------------------------------------------------------------------


def test_scalar_in_float_out_and_array_in_array_out():
    schedule = cyclic(BASE, PEAK, 10)
    assert isinstance(schedule(3), float)
    values = schedule(np.arange(12).reshape(3, 4))
    assert values.shape == (3, 4) and values.dtype == np.float64
    # scalar (Python float) and vectorised (numpy) paths: equal to a few ulps, not bit for bit on every CPU
    np.testing.assert_allclose(values[0, 3], schedule(3), rtol=FEW_ULPS, atol=0)


def test_scalar_and_array_paths_agree_to_the_last_bits():
    # The scalar path does torch's float operations with libm's pow and cos; numpy's vectorised pow and
    # cos may round the last bit differently, so the two agree to a couple of ulps, not always exactly.
    iterations = np.arange(0, 5000, 7)
    for schedule in [
        cyclic(BASE, PEAK, 97, 31, mode="exp_range", gamma=0.999),
        cyclic(BASE, PEAK, 50, mode="triangular2", shape="hann"),
        cyclic_momentum(0.8, 0.95, 40, shape="welch"),
        one_cycle(0.1, 5000, three_phase=True),
        one_cycle_momentum(5000, anneal_strategy="linear"),
        cosine_warm_restarts(0.1, 30, 3, 0.001),
        decay(BASE, PEAK, 700),
        step_decay(0.1, [1000, 3000]),
        exponential_decay(0.1, 0.9995),
        warmup(cyclic(BASE, PEAK, 100), 250),
    ]:
        scalars = [schedule(int(i)) for i in iterations]
        np.testing.assert_allclose(np.array(scalars), schedule(iterations), rtol=FEW_ULPS, atol=0,
                                   err_msg=repr(schedule))


def test_whole_floats_are_accepted_as_iterations():
    assert cyclic(BASE, PEAK, 10)(np.array([10.0]))[0] == PEAK


@pytest.mark.parametrize("iteration", [-1, 2.5, np.array([0, -3]), np.array([0.5]), True, "3"])
def test_iterations_must_be_whole_non_negative_numbers(iteration):
    with pytest.raises(ValueError, match="iteration"):
        cyclic(BASE, PEAK, 10)(iteration)


def test_import_does_not_import_torch():
    code = "import sys, clr_lib, clr_lib.schedules, clr_lib.plotting; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the variants (clr-facts.md section 4) ---------------------------------------------------------


def test_triangular2_halves_the_amplitude_every_cycle():
    schedule = cyclic(1.0, 5.0, 4, mode="triangular2")
    peaks = schedule(np.array([4, 12, 20, 28]))
    np.testing.assert_array_equal(peaks - 1.0, [4.0, 2.0, 1.0, 0.5])


def test_exp_range_scales_by_gamma_to_the_global_iteration():
    gamma = 0.99994
    schedule = cyclic(BASE, PEAK, 2000, mode="exp_range", gamma=gamma)
    for peak in (2000, 6000, 10_000):
        assert schedule(peak) == pytest.approx(BASE + (PEAK - BASE) * gamma**peak, rel=1e-14)


def test_builtin_modes_force_their_scale_mode():
    forced = cyclic(BASE, PEAK, 10, mode="exp_range", gamma=0.9, scale_mode="cycle")
    default = cyclic(BASE, PEAK, 10, mode="exp_range", gamma=0.9)
    np.testing.assert_array_equal(forced(np.arange(100)), default(np.arange(100)))


def test_custom_scale_fn_in_cycle_and_iterations_mode():
    it = np.arange(60)
    by_cycle = cyclic(1.0, 2.0, 5, scale_fn=lambda c: 1.0 / c, scale_mode="cycle")
    by_iteration = cyclic(1.0, 2.0, 5, scale_fn=lambda i: 0.99**i, scale_mode="iterations")
    triangle = cyclic(1.0, 2.0, 5)(it) - 1.0
    np.testing.assert_allclose(by_cycle(it) - 1.0, triangle / np.floor(1 + it / 10), rtol=1e-12)
    np.testing.assert_allclose(by_iteration(it) - 1.0, triangle * 0.99**it, rtol=1e-12)


def test_scalar_only_scale_fn_is_applied_element_wise_with_ints():
    seen = []

    def scale(cycle):
        seen.append(type(cycle))
        return 1.0 if cycle < 2 else 0.5  # not vectorisable

    values = cyclic(1.0, 3.0, 2, scale_fn=scale)(np.arange(8))
    np.testing.assert_array_equal(values, [1, 2, 3, 2, 1, 1.5, 2, 1.5])
    assert int in seen


def test_scale_fn_that_makes_the_lr_negative_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        cyclic(1.0, 2.0, 5, scale_fn=lambda c: -5.0)(np.arange(10))


def test_asymmetric_halves_rise_and_fall_over_their_own_lengths():
    schedule = cyclic(1.0, 5.0, step_size_up=2, step_size_down=6)
    np.testing.assert_allclose(
        schedule(np.arange(9)), [1, 3, 5, 13 / 3, 11 / 3, 3, 7 / 3, 5 / 3, 1], rtol=1e-15
    )


@pytest.mark.parametrize("shape", ["welch", "hann"])
def test_windows_share_the_triangle_s_endpoints_and_peaks(shape):
    it = np.arange(0, 10_001, 1000)
    np.testing.assert_allclose(cyclic(BASE, PEAK, 1000, shape=shape)(it), cyclic(BASE, PEAK, 1000)(it), rtol=1e-15)


def test_welch_is_the_parabola_and_hann_the_raised_cosine_over_a_cycle():
    s = 100
    it = np.arange(2 * s)
    phase = it / (2 * s)  # position within the cycle, 0 -> 1
    welch = 1 - (2 * phase - 1) ** 2
    hann = 0.5 * (1 - np.cos(2 * np.pi * phase))
    np.testing.assert_allclose(cyclic(0.0, 1.0, s, shape="welch")(it), welch, atol=1e-15)
    np.testing.assert_allclose(cyclic(0.0, 1.0, s, shape="hann")(it), hann, atol=1e-15)


def test_momentum_moves_opposite_to_the_lr():
    it = np.arange(0, 4001, 500)
    lr = cyclic(BASE, PEAK, 1000)(it)
    momentum = cyclic_momentum(0.8, 0.9, 1000)(it)
    fraction = (lr - BASE) / (PEAK - BASE)
    np.testing.assert_allclose(momentum, 0.9 - 0.1 * fraction, rtol=1e-12)
    assert momentum[0] == 0.9 and momentum[2] == 0.8


def test_decay_policy_falls_linearly_then_holds():
    schedule = decay(BASE, PEAK, 1000)
    np.testing.assert_allclose(schedule(np.array([0, 500, 1000, 5000])), [PEAK, (BASE + PEAK) / 2, BASE, BASE])


def test_fixed_baseline_steps_down_at_60k_and_65k():
    schedule = step_decay(0.001, [60_000, 65_000], 0.1)
    np.testing.assert_allclose(schedule(np.array([0, 59_999, 60_000, 65_000, 69_999])), [1e-3, 1e-3, 1e-4, 1e-5, 1e-5])


def test_exponential_decay_is_lr_times_gamma_to_the_iteration():
    assert exponential_decay(0.01, 0.99994)(10_000) == pytest.approx(0.01 * 0.99994**10_000, rel=1e-14)
    assert constant(0.01)(123) == 0.01


def test_sgdr_restarts_with_period_multiplied_by_cycle_mult():
    schedule = cosine_warm_restarts(1.0, 10, cycle_mult=2, min_lr=0.0)
    restarts = [0, 10, 30, 70, 150]
    np.testing.assert_array_equal(schedule(np.array(restarts)), np.ones(5))
    assert schedule(20) == pytest.approx(0.5, abs=1e-15)  # halfway through the 20-iteration period
    assert schedule(69) == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)), rel=1e-12)


def test_sgdr_boundaries_are_exact_for_long_runs():
    schedule = cosine_warm_restarts(1.0, 3, cycle_mult=3)
    start = 3 * (3**20 - 1) // 2  # first iteration of period 20
    assert schedule(start) == 1.0
    assert schedule(start - 1) < 1e-3


# --- one-cycle ------------------------------------------------------------------------------------


def test_one_cycle_linear_matches_pytorch_s_test_vector():
    schedule = one_cycle(25, 10, anneal_strategy="linear", final_div_factor=2)
    np.testing.assert_allclose(schedule(np.arange(10)), [1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5], rtol=1e-15)


def test_one_cycle_three_phase_matches_pytorch_s_test_vector():
    schedule = one_cycle(25, 10, pct_start=0.4, anneal_strategy="linear", final_div_factor=4, three_phase=True)
    np.testing.assert_allclose(schedule(np.arange(10)), [1, 9, 17, 25, 17, 9, 1, 0.75, 0.5, 0.25], rtol=1e-15)
    # PyTorch's vector uses momenta 1 and 22, which clr_lib now rejects (a momentum must lie in [0, 1)):
    # the same vector divided by 100, since linear annealing is linear in its end points
    momentum = one_cycle_momentum(10, 0.01, 0.22, pct_start=0.4, anneal_strategy="linear", three_phase=True)
    np.testing.assert_allclose(momentum(np.arange(10)), np.array([22, 15, 8, 1, 8, 15, 22, 22, 22, 22]) / 100,
                               rtol=1e-14)


def test_one_cycle_ends_at_min_lr_and_refuses_to_extrapolate():
    schedule = one_cycle(0.1, 100, anneal_strategy="linear")
    assert schedule(99) == pytest.approx(0.1 / 25 / 1e4, rel=1e-12)
    with pytest.raises(ValueError, match="past the end"):
        schedule(100)


@pytest.mark.parametrize(
    ("total_steps", "pct_start", "three_phase"), [(10, 0.1, False), (5, 0.3, False), (10, 0.0, False), (10, 0.6, True)]
)
def test_one_cycle_phase_shorter_than_one_step_is_a_value_error(total_steps, pct_start, three_phase):
    with pytest.raises(ValueError, match="phase would span"):
        one_cycle(0.1, total_steps, pct_start=pct_start, three_phase=three_phase)


# --- composition ----------------------------------------------------------------------------------


def staged_triangular2():
    return sequence(
        [
            cyclic(0.001, 0.005, 2000, mode="triangular2"),
            cyclic(0.0001, 0.0005, 1000, mode="triangular2"),
            cyclic(0.00001, 0.00005, 500, mode="triangular2"),
        ],
        boundaries=[16_000, 22_000],
    )


def test_papers_staged_triangular2_run():
    schedule = staged_triangular2()
    checks = {
        0: 0.001, 2000: 0.005, 6000: 0.003, 10_000: 0.002, 14_000: 0.0015,  # stage 1: four halving cycles
        16_000: 0.0001, 17_000: 0.0005, 19_000: 0.0003, 21_000: 0.0002,    # stage 2 restarts at 16k
        22_000: 0.00001, 22_500: 0.00005, 23_500: 0.00003, 24_500: 0.00002,  # stage 3 restarts at 22k
    }
    np.testing.assert_allclose(schedule(np.array(list(checks))), list(checks.values()), rtol=1e-12)
    # one iteration before the end: the third, quarter-amplitude cycle is 1/500 of the way up from base
    assert schedule(24_999) == pytest.approx(0.00001 + (0.00004 / 4) / 500, rel=1e-12)


def test_sequence_of_a_bounded_stage_checks_its_length():
    with pytest.raises(ValueError, match=r"schedules\[0\] is defined for 100"):
        sequence([one_cycle(0.1, 100), constant(0.001)], [150])
    joined = sequence([one_cycle(0.1, 100), one_cycle(0.01, 50)], [100])
    assert joined.total_steps == 150
    assert joined(100) == one_cycle(0.01, 50)(0)


def test_warmup_ramps_linearly_into_the_schedule():
    inner = one_cycle(0.1, 100)
    schedule = warmup(inner, 10, start_lr=0.0)
    assert schedule.total_steps == 110
    np.testing.assert_allclose(schedule(np.arange(11)), inner(0) * np.arange(11) / 10, rtol=1e-15)
    assert schedule(60) == inner(50)


# --- invariants (hypothesis) ----------------------------------------------------------------------

learning_rates = st.floats(1e-6, 10.0)


@settings(max_examples=200, deadline=None)
@given(
    base=learning_rates,
    span=st.floats(0.0, 10.0),
    up=st.integers(1, 500),
    down=st.integers(1, 500),
    mode=st.sampled_from(clr_lib.CYCLIC_MODES),
    shape=st.sampled_from(clr_lib.WINDOW_SHAPES),
    gamma=st.floats(0.9, 1.0),
)
def test_cyclic_stays_within_its_bounds_and_repeats_with_period_up_plus_down(base, span, up, down, mode, shape, gamma):
    peak = base + span
    schedule = cyclic(base, peak, up, down, mode=mode, gamma=gamma, shape=shape)
    it = np.arange(0, 3 * (up + down))
    values = schedule(it)
    assert np.all(values >= base) and np.all(values <= peak * (1 + 1e-15))
    starts = schedule(np.arange(0, 3 * (up + down), up + down))
    np.testing.assert_allclose(starts, base, rtol=1e-12)
    if mode == "triangular":
        np.testing.assert_allclose(values[up + down :], values[: -(up + down)], rtol=1e-12, atol=1e-15)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "fragment"),
    [
        (lambda: cyclic(0.006, 0.001), "base_lr must be <= max_lr"),
        (lambda: cyclic(-0.001, 0.006), "base_lr must be a finite, non-negative learning rate"),
        (lambda: cyclic(0.001, float("inf")), "max_lr must be a finite"),
        (lambda: cyclic(0.001, float("nan")), "max_lr must be a finite"),
        (lambda: cyclic(0.001, 0.006, 0), "step_size_up must be a positive number of iterations, got 0"),
        (lambda: cyclic(0.001, 0.006, 10, -5), "step_size_down must be a positive number of iterations, got -5"),
        (lambda: cyclic(0.001, 0.006, mode="CATS"), "mode must be one of"),
        (lambda: cyclic(0.001, 0.006, shape="square"), "shape must be one of"),
        (lambda: cyclic(0.001, 0.006, scale_mode="epochs"), "scale_mode must be one of"),
        (lambda: cyclic(0.001, 0.006, mode="exp_range", gamma=0.0), "gamma must be a number in (0, 1], got 0.0"),
        (lambda: cyclic(0.001, 0.006, mode="exp_range", gamma=1.5), "gamma must be a number in (0, 1], got 1.5"),
        (lambda: cyclic(0.001, 0.006, scale_fn=3), "scale_fn must be a callable"),
        (lambda: cyclic_momentum(0.95, 0.85), "base_momentum must be <= max_momentum"),
        (lambda: cyclic_momentum(-0.1, 0.85), "base_momentum must be a number in [0, 1)"),
        (lambda: one_cycle(0.0, 100), "max_lr must be a positive"),
        (lambda: one_cycle(0.1, 0), "total_steps must be a positive whole number of iterations, got 0"),
        (lambda: one_cycle(0.1, 100.0), "total_steps must be a positive whole number"),
        (lambda: one_cycle(0.1, 100, pct_start=1.1), "pct_start must be a number in [0, 1], got 1.1"),
        (lambda: one_cycle(0.1, 100, anneal_strategy="CATS"), "anneal_strategy must be one of"),
        (lambda: one_cycle(0.1, 100, div_factor=0), "div_factor must be a positive"),
        (lambda: one_cycle(0.1, 100, final_div_factor=-1), "final_div_factor must be a positive"),
        (lambda: one_cycle_momentum(100, 0.95, 0.85), "base_momentum must be <= max_momentum"),
        (lambda: cosine_warm_restarts(0.1, 0), "first_cycle_steps must be a positive whole number"),
        (lambda: cosine_warm_restarts(0.1, 10, cycle_mult=1.5), "cycle_mult must be a positive whole number"),
        (lambda: cosine_warm_restarts(0.1, 10, min_lr=0.2), "min_lr must be <= max_lr"),
        (lambda: decay(0.006, 0.001, 100), "base_lr must be <= max_lr"),
        (lambda: decay(0.001, 0.006, 0), "step_size must be a positive number of iterations"),
        (lambda: step_decay(0.1, [300, 200]), "milestones must be strictly increasing"),
        (lambda: step_decay(0.1, [100], gamma=2.0), "gamma must be a number in (0, 1]"),
        (lambda: exponential_decay(0.1, 0.0), "gamma must be a number in (0, 1]"),
        (lambda: constant(-1.0), "lr must be a finite, non-negative learning rate"),
        (lambda: sequence([], []), "schedules must be a non-empty sequence"),
        (lambda: sequence([constant(0.1), constant(0.2)], []), "boundaries must hold one iteration per junction"),
        (lambda: sequence([constant(0.1), constant(0.2), constant(0.3)], [20, 10]), "strictly increasing"),
        (lambda: sequence([constant(0.1), constant(0.2)], [0]), "boundaries must be a positive whole number"),
        (lambda: warmup(constant(0.1), 0), "warmup_steps must be a positive whole number"),
        (lambda: warmup(lambda i: 0.1, 10), "schedule must be a Schedule"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_parameter(factory, fragment):
    with pytest.raises(ValueError) as error:
        factory()
    assert fragment in str(error.value)


def test_triangular2_keeps_halving_past_cycle_1024_without_overflow():
    # torch's 1 / 2.0 ** (cycle - 1) overflows at cycle 1025; the amplitude there is 2**-1024, i.e. nothing
    schedule = cyclic(0.001, 0.006, step_size_up=1, mode="triangular2")
    assert schedule(2048 + 1) == 0.001
    np.testing.assert_array_equal(schedule(np.arange(2046, 2060)), 0.001)
