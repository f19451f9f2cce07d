"""The schedule explorer: the pure settings -> (schedules, summary, code) function, the code it writes
(which must rebuild the very same curve with clr_lib and with PyTorch's own schedulers), and the
widgets, driven headlessly by setting their values as a reader's slider would."""

from __future__ import annotations

import html
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clr_lib.explorer import POLICIES, ExplorerSettings, ScheduleExplorer, compute, peak_iterations, render_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# One case per policy and per option that changes the code; short runs keep the torch loops fast.
CASES = {
    "default (paper's triangular)": ExplorerSettings(),
    "triangular2": ExplorerSettings(policy="triangular2", step_size_up=500, total_iterations=3_000),
    "exp_range": ExplorerSettings(policy="exp_range", gamma=0.9995, step_size_up=500, total_iterations=3_000),
    "exp_range asymmetric": ExplorerSettings(policy="exp_range", gamma=0.9991, step_size_up=300, step_size_down=700,
                                             total_iterations=2_500),
    "welch window": ExplorerSettings(shape="welch", step_size_up=400, step_size_down=600, total_iterations=2_000),
    "hann window, triangular2, no momentum cycling": ExplorerSettings(policy="triangular2", shape="hann",
                                                                      cycle_momentum=False, step_size_up=250,
                                                                      total_iterations=2_000),
    "one-cycle": ExplorerSettings(policy="one_cycle", max_lr=0.1, total_iterations=2_000),
    "one-cycle, three phases, linear": ExplorerSettings(policy="one_cycle", max_lr=3.0, div_factor=30.0,
                                                        three_phase=True, anneal_strategy="linear",
                                                        total_iterations=2_000),
    "one-cycle, fixed momentum": ExplorerSettings(policy="one_cycle", cycle_momentum=False, pct_start=0.45,
                                                  final_div_factor=316.0, total_iterations=1_500),
    "SGDR": ExplorerSettings(policy="sgdr", first_cycle_steps=500, total_iterations=2_000),
    "SGDR, cycle_mult 2": ExplorerSettings(policy="sgdr", first_cycle_steps=300, cycle_mult=2, base_lr=0.0,
                                           total_iterations=2_100),
    "decay": ExplorerSettings(policy="decay", step_size_up=700, total_iterations=2_000),
    "decay, large LR": ExplorerSettings(policy="decay", base_lr=1e-5, max_lr=3.0, step_size_up=1_990,
                                        total_iterations=2_000),
}


def run_clr_lib_code(code: str) -> tuple[np.ndarray, np.ndarray]:
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the code under test
    return namespace["lr"], namespace["momentum"]


def run_torch_code(code: str, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the generated PyTorch code on a real model and record the optimizer's LR and momentum at
    every iteration, stepping as a training loop does (optimizer.step(), then scheduler.step())."""
    torch.manual_seed(0)
    namespace: dict = {"model": torch.nn.Linear(3, 1)}
    exec(code, namespace)  # noqa: S102 - the code under test
    optimizer, scheduler = namespace["optimizer"], namespace["scheduler"]
    lrs, momenta = [], []
    for iteration in range(iterations):
        group = optimizer.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["momentum"])
        if iteration < iterations - 1:
            optimizer.step()
            scheduler.step()
    return np.array(lrs), np.array(momenta)


def code_text(explorer: ScheduleExplorer) -> str:
    """What a reader sees in the copy-as-code area, as plain text."""
    return html.unescape(explorer.code.value)


# --- import hygiene -------------------------------------------------------------------------------


def test_importing_the_explorer_does_not_import_torch():
    check = "import clr_lib.explorer, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    completed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_using_the_explorer_imports_neither_torch_nor_pyplot():
    # Pyodide has no torch; pyplot would also register figures that Jupyter displays on its own
    check = (
        "import sys\n"
        "from clr_lib.explorer import ScheduleExplorer\n"
        "explorer = ScheduleExplorer()\n"
        "explorer.policy.value = 'one_cycle'\n"
        "explorer.log_scale.value = True\n"
        "assert explorer.png and 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    completed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""


# --- the pure function ------------------------------------------------------------------------------


def test_default_settings_are_the_papers_triangular_schedule_over_three_cycles():
    result = compute(ExplorerSettings())
    assert result.ok and result.lr.shape == (12_000,)
    assert result.peaks == (2_000, 6_000, 10_000)
    assert result.lr[2_000] == 0.006 and result.lr[0] == result.lr[4_000] == 0.001
    assert result.momentum[2_000] == 0.85 and result.momentum[0] == 0.95
    assert "3 cycles of 4,000 iterations" in result.summary
    assert "peaks at iterations 2,000, 6,000 and 10,000" in result.summary
    assert "LR at the end (iteration 11,999): 0.001002" in result.summary


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_clr_lib_code_reproduces_the_curve_exactly(case):
    result = compute(case)
    assert result.ok, result.error
    lr, momentum = run_clr_lib_code(result.clr_lib_code)
    np.testing.assert_array_equal(lr, result.lr)
    np.testing.assert_array_equal(momentum, result.momentum)
    assert result.clr_lib_code in result.code


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_torch_code_reproduces_the_curve_on_a_real_optimizer(case):
    result = compute(case)
    lr, momentum = run_torch_code(result.torch_code, case.total_iterations)
    np.testing.assert_allclose(lr, result.lr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(momentum, result.momentum, rtol=0, atol=1e-12)
    assert result.torch_code in result.code


@pytest.mark.parametrize(
    ("case", "scheduler"),
    [
        (ExplorerSettings(), "torch.optim.lr_scheduler.CyclicLR("),
        (ExplorerSettings(shape="welch"), "clr_lib.CyclicLR("),
        (ExplorerSettings(policy="one_cycle"), "torch.optim.lr_scheduler.OneCycleLR("),
        (ExplorerSettings(policy="sgdr"), "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts("),
        (ExplorerSettings(policy="decay"), "torch.optim.lr_scheduler.LinearLR("),
    ],
)
def test_torch_code_uses_torchs_own_scheduler_wherever_torch_has_one(case, scheduler):
    assert scheduler in compute(case).torch_code


def test_generated_code_shows_the_settings_as_written():
    result = compute(ExplorerSettings(policy="exp_range", gamma=0.99994, step_size_down=3_000, total_iterations=42_000))
    for line in ("lr_schedule = clr_lib.cyclic(", "    base_lr=0.001,", "    step_size_down=3_000,",
                 '    mode="exp_range",', "    gamma=0.99994,"):
        assert line + "\n" in result.clr_lib_code
    assert "np.arange(42_000)" in result.code
    assert "once per iteration" in result.code


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        (ExplorerSettings(policy="exp_range", gamma=0.99994), ["halves every 11,552 iterations"]),
        (ExplorerSettings(policy="exp_range", gamma=1.0), ["no decay"]),
        (ExplorerSettings(policy="triangular2"), ["halves every cycle"]),
        (ExplorerSettings(total_iterations=13_000), ["3.25 cycles", "stops mid-cycle", "after 12,000 iterations"]),
        (ExplorerSettings(policy="one_cycle"), ["1 cycle over all 12,000 iterations (two phases)",
                                                "peak at iteration 3,599", "2.4e-08"]),
        (ExplorerSettings(policy="one_cycle", three_phase=True), ["three phases"]),
        (ExplorerSettings(policy="sgdr"), ["6 restart periods of 2,000 iterations",
                                           "peaks at iterations 0, 2,000, 4,000, 6,000, 8,000 and 10,000",
                                           "momentum fixed at 0.95"]),
        (ExplorerSettings(policy="sgdr", cycle_mult=2), ["3 restart periods (2,000, 4,000 and 8,000",
                                                         "it would end after 14,000"]),
        (ExplorerSettings(policy="decay"), ["no cycles", "peak at iteration 0", "LR at the end (iteration 11,999): 0.001"]),
        (ExplorerSettings(step_size_up=10, step_size_down=10, total_iterations=1_000),
         ["50 cycles", "peaks at iterations 10, 30, 50, 70", "... and 990"]),
    ],
)
def test_summary_states_cycles_peaks_and_the_final_lr(case, fragments):
    summary = compute(case).summary
    for fragment in fragments:
        assert fragment in summary


def test_peaks_are_where_the_lr_really_peaks_even_when_exp_range_decays_fast():
    # with gamma**it falling faster than the triangle rises, the maximum comes before step_size_up
    result = compute(ExplorerSettings(policy="exp_range", gamma=0.999, total_iterations=4_000))
    peak = result.peaks[0]
    assert peak < 2_000 and result.lr[peak] == result.lr[:4_000].max()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (ExplorerSettings(base_lr=0.01, max_lr=0.006), "base_lr must be <= max_lr"),
        (ExplorerSettings(policy="sgdr", base_lr=0.01, max_lr=0.006), "min_lr must be <= max_lr"),
        (ExplorerSettings(policy="one_cycle", pct_start=0.05, total_iterations=10), "warm-up phase"),
        (ExplorerSettings(base_momentum=0.96), "base_momentum must be <= max_momentum"),
        (ExplorerSettings(policy="cosine"), "policy must be one of"),
        (ExplorerSettings(shape="square"), "shape must be one of"),
        (ExplorerSettings(total_iterations=0), "total_iterations must be a positive whole number"),
    ],
)
def test_invalid_settings_return_the_error_instead_of_raising(case, message):
    result = compute(case)
    assert not result.ok and message in result.error
    assert result.lr_schedule is None and result.code == ""
    assert render_png(result).startswith(PNG_SIGNATURE)  # a picture of the message, not a traceback


@settings(max_examples=40, deadline=None)
@given(
    policy=st.sampled_from(list(POLICIES)),
    shape=st.sampled_from(["triangle", "welch", "hann"]),
    base_lr=st.floats(1e-6, 0.1),
    lr_ratio=st.floats(1.0, 100.0),
    step_size_up=st.integers(10, 1_500),
    step_size_down=st.integers(10, 1_500),
    gamma=st.floats(0.999, 1.0),
    pct_start=st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.75]),
    three_phase=st.booleans(),
    cycle_mult=st.integers(1, 3),
    cycle_momentum=st.booleans(),
    total_iterations=st.integers(100, 4_000),
)
def test_clr_lib_code_reproduces_any_valid_curve(base_lr, lr_ratio, **fields):
    case = ExplorerSettings(base_lr=base_lr, max_lr=base_lr * lr_ratio, **fields)
    result = compute(case)
    if not result.ok:  # e.g. a one-cycle phase shorter than an iteration
        assert result.error
        return
    lr, momentum = run_clr_lib_code(result.clr_lib_code)
    np.testing.assert_array_equal(lr, result.lr)
    np.testing.assert_array_equal(momentum, result.momentum)
    assert all(result.lr[peak] >= result.lr[peak + 1] for peak in result.peaks)


@pytest.mark.parametrize(
    ("values", "peaks"),
    [
        ([1, 2, 3, 2, 1, 2, 3, 2], [2, 6]),
        ([1, 2, 3, 2, 1, 2, 3], [2]),            # the last iteration is the end of the run, not a peak
        ([3, 2, 1, 1, 1], [0]),                  # the decay policy: iteration 0 is its peak
        ([1, 1, 1, 1], []),                      # constant: no peaks
        ([1, 3, 3, 3, 1, 3, 3], [1]),            # a flat top counts once; a top that never falls is not one
        ([5], []),
        ([], []),
    ],
)
def test_peak_iterations_finds_each_local_maximum_once(values, peaks):
    assert peak_iterations(values).tolist() == peaks


# --- the widgets ----------------------------------------------------------------------------------------


@pytest.fixture
def explorer():
    return ScheduleExplorer()


def test_every_setting_has_a_control_of_the_same_name(explorer):
    for name, control in explorer.controls.items():
        assert getattr(explorer, name) is control
        assert control.value == getattr(explorer.settings, name)
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
    assert explorer.image in explorer.widget.children and explorer.code in explorer.widget.children
    assert "peaks at iterations 2,000, 6,000 and 10,000" in explorer.summary.value


def test_moving_a_slider_changes_the_curve_the_picture_and_the_code(explorer):
    before_lr, before_png = explorer.result.lr.copy(), bytes(explorer.image.value)
    explorer.max_lr.value = 0.01
    assert explorer.settings.max_lr == 0.01
    assert explorer.result.lr.max() == pytest.approx(0.01, rel=1e-12)
    assert not np.array_equal(explorer.result.lr, before_lr)
    assert bytes(explorer.image.value) != before_png
    assert "max_lr=0.01," in code_text(explorer) and "max_lr=0.006" not in code_text(explorer)

    explorer.step_size_down.value = 3_000
    assert explorer.result.peaks == (2_000, 7_000)
    assert "step_size_down=3_000" in code_text(explorer)
    explorer.total_iterations.value = 20_000
    assert explorer.result.lr.shape == (20_000,) and "4 cycles of 5,000 iterations" in explorer.summary.value


def test_the_code_shown_for_the_widgets_state_reproduces_their_curve(explorer):
    explorer.policy.value = "exp_range"
    explorer.gamma.value = 0.9998
    explorer.shape.value = "hann"
    explorer.total_iterations.value = 3_000
    explorer.step_size_up.value = 400
    assert code_text(explorer).count("shape=\"hann\"") == 3  # LR, momentum, clr_lib.CyclicLR
    lr, momentum = run_clr_lib_code(explorer.result.clr_lib_code)
    np.testing.assert_array_equal(lr, explorer.result.lr)
    np.testing.assert_array_equal(momentum, explorer.result.momentum)
    torch_lr, torch_momentum = run_torch_code(explorer.result.torch_code, 3_000)
    np.testing.assert_allclose(torch_lr, explorer.result.lr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch_momentum, explorer.result.momentum, rtol=0, atol=1e-12)


def test_switching_policy_shows_its_own_controls_and_hides_the_others(explorer):
    def visible(name):
        return explorer.controls[name].layout.display != "none"

    assert visible("step_size_down") and not visible("pct_start") and not visible("gamma")
    explorer.policy.value = "one_cycle"
    assert visible("pct_start") and visible("three_phase") and not visible("base_lr") and not visible("shape")
    assert "OneCycleLR(" in code_text(explorer) and explorer.result.peaks == (3_599,)
    explorer.policy.value = "exp_range"
    assert visible("gamma") and visible("shape") and not visible("pct_start")
    explorer.policy.value = "sgdr"
    assert visible("first_cycle_steps") and explorer.base_lr.description == "min_lr"
    assert not visible("cycle_momentum") and explorer.max_momentum.description == "momentum"
    explorer.policy.value = "decay"
    assert explorer.step_size_up.description == "step_size" and not visible("step_size_down")


def test_log_slider_positions_snap_to_simple_numbers_and_typed_values_are_kept(explorer):
    explorer.max_lr.value = 10 ** -2.2  # where dragging to "0.006" lands: 0.0063095...
    assert explorer.settings.max_lr == 0.006 and explorer.max_lr.value == 0.006
    explorer.base_lr.value = 10 ** -3.55  # 0.000281838...
    assert explorer.settings.base_lr == 0.00028
    explorer.base_lr.value = 0.00125  # typed into the readout: not a slider position
    assert explorer.settings.base_lr == 0.00125
    explorer.policy.value = "one_cycle"
    explorer.final_div_factor.value = 10 ** 3.75  # 5623.4...
    assert explorer.settings.final_div_factor == 6000.0
    explorer.base_momentum.value = 0.8 + 0.01 * 3  # 0.8300000000000001 from a linear slider's arithmetic
    assert explorer.settings.base_momentum == 0.83 and "base_momentum=0.83," in code_text(explorer)


def test_invalid_settings_show_a_message_not_a_traceback_and_recover(explorer):
    explorer.base_lr.value = 0.01
    assert "Invalid settings" in explorer.message.value and "base_lr must be &lt;= max_lr" in explorer.message.value
    assert not explorer.result.ok and explorer.summary.value == ""
    assert "no code until the settings are valid" in explorer.code.value
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
    explorer.max_lr.value = 0.05
    assert explorer.message.value == "" and explorer.result.ok
    assert explorer.result.lr.max() == pytest.approx(0.05, rel=1e-12)


def test_assigning_settings_moves_every_control_and_renders(explorer):
    wanted = ExplorerSettings(policy="sgdr", base_lr=0.0005, max_lr=0.05, first_cycle_steps=1_500, cycle_mult=2,
                              total_iterations=10_500, log_scale=True)
    explorer.settings = wanted
    assert explorer.settings == wanted
    for name, control in explorer.controls.items():
        assert control.value == getattr(wanted, name)
    assert explorer.result.settings == wanted and "CosineAnnealingWarmRestarts(" in code_text(explorer)
    assert explorer.result.peaks == (0, 1_500, 4_500)


def test_constructor_accepts_settings_and_overrides():
    explorer = ScheduleExplorer(ExplorerSettings(policy="triangular2"), step_size_up=1_000)
    assert explorer.settings == replace(ExplorerSettings(), policy="triangular2", step_size_up=1_000)
    assert explorer.policy.value == "triangular2" and explorer.step_size_up.value == 1_000
    assert explorer.result.peaks[:2] == (1_000, 4_000)  # step_size_down stays 2,000


def test_log_scale_changes_the_picture_but_not_the_schedule_or_code(explorer):
    lr, code, png = explorer.result.lr, explorer.result.code, bytes(explorer.image.value)
    explorer.log_scale.value = True
    np.testing.assert_array_equal(explorer.result.lr, lr)
    assert explorer.result.code == code and bytes(explorer.image.value) != png


def test_snapshot_is_the_current_picture_as_an_ordinary_image_output(explorer):
    explorer.policy.value = "triangular2"
    snapshot = explorer.snapshot()
    assert snapshot._repr_png_() == bytes(explorer.image.value) == explorer.png
    assert snapshot._repr_png_().startswith(PNG_SIGNATURE)


# --- hardening: momenta in [0, 1), real booleans and integers, a bounded run -----------------------------


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        (ExplorerSettings(max_momentum=1.0), "max_momentum must be a number in [0, 1)"),
        (ExplorerSettings(base_momentum=1.0, max_momentum=1.0), "base_momentum must be a number in [0, 1)"),
        (ExplorerSettings(policy="one_cycle", max_momentum=1.2), "max_momentum must be a number in [0, 1)"),
        (ExplorerSettings(policy="sgdr", max_momentum=1.0), "max_momentum must be a number in [0, 1)"),  # fixed
        (ExplorerSettings(cycle_momentum=False, max_momentum=1.0), "max_momentum must be a number in [0, 1)"),
        (ExplorerSettings(base_momentum=-0.1), "base_momentum must be a number in [0, 1)"),
    ],
)
def test_a_momentum_of_one_or_more_is_an_error_for_every_policy(case, fragment):
    result = compute(case)
    assert not result.ok and fragment in result.error
    value = case.max_momentum if "max_momentum" in fragment else case.base_momentum
    assert f"got {value!r}" in result.error


def test_the_momentum_sliders_stop_below_one():
    explorer = ScheduleExplorer()
    assert explorer.base_momentum.max < 1 and explorer.max_momentum.max < 1
    explorer.settings = replace(explorer.settings, max_momentum=1.0)
    assert not explorer.result.ok and "max_momentum must be a number in [0, 1)" in explorer.message.value


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"three_phase": "False"}, "three_phase must be True or False, got 'False'"),
        ({"cycle_momentum": "yes"}, "cycle_momentum must be True or False, got 'yes'"),
        ({"log_scale": 1}, "log_scale must be True or False, got 1"),
        ({"total_iterations": True}, "total_iterations must be a positive whole number of iterations, got True"),
        ({"step_size_up": True}, "step_size_up must be a positive whole number of iterations, got True"),
        ({"first_cycle_steps": 2000.5}, "first_cycle_steps must be a positive whole number of iterations, got 2000.5"),
        ({"cycle_mult": False}, "cycle_mult must be a positive whole number"),
    ],
)
def test_booleans_and_counts_must_have_their_type(changes, fragment):
    result = compute(replace(ExplorerSettings(), **changes))
    assert not result.ok and fragment in result.error


def test_a_huge_run_is_refused_before_anything_is_allocated():
    result = compute(ExplorerSettings(total_iterations=10**12))
    assert not result.ok
    assert "total_iterations must be a positive whole number of iterations <= 1,000,000" in result.error
    assert "got 1000000000000" in result.error
    assert compute(ExplorerSettings(total_iterations=1_000_000, step_size_up=100_000, step_size_down=100_000)).ok


def test_the_figure_refuses_a_truthy_string_for_log_scale():
    with pytest.raises(ValueError, match="log_scale must be True or False, got 'no'"):
        render_png(compute(ExplorerSettings()), log_scale="no")
