"""clr_lib.plotting: the shared figures' labels, units and styles."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from clr_lib.plotting import RunCurves, color_for, plot_runs_with_lr, plot_schedules  # noqa: E402
from clr_lib.schedules import cyclic  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _run(label: str | None, accuracy: list[float], **style) -> RunCurves:
    steps = np.arange(40)
    return RunCurves(label=label, x=[10, 20, 30, 40][: len(accuracy)], accuracy=accuracy, lr_x=steps,
                     lr=cyclic(0.001, 0.006, 10)(steps), style=style)


def test_runs_with_lr_share_the_x_axis_and_one_style_per_run_in_both_panels():
    figure = plot_runs_with_lr([_run("fixed", [0.1, 0.2, 0.3], color="#000000"),
                                _run(None, [0.15, 0.25], color="#000000"),
                                _run("triangular", [0.2, 0.4, 0.5, 0.6], color="#0072B2", linestyle="--")],
                               title="three runs", accuracy_title="accuracy", target_accuracy=0.5)
    accuracy_ax, lr_ax = figure.axes
    assert accuracy_ax.get_shared_x_axes().joined(accuracy_ax, lr_ax)
    assert figure.get_suptitle() == "three runs" and accuracy_ax.get_title() == "accuracy"
    assert accuracy_ax.get_ylabel() == "test accuracy (%)" and lr_ax.get_xlabel() == "iteration (mini-batch updates)"
    np.testing.assert_allclose(accuracy_ax.lines[2].get_ydata(), [20, 40, 50, 60])  # fractions drawn in percent
    assert [line.get_linestyle() for line in lr_ax.lines] == ["-", "-", "--"]
    assert accuracy_ax.lines[0].get_color() == lr_ax.lines[0].get_color() == "#000000"
    # the unlabelled run (another seed) is not in the legend; the target line is
    assert [t.get_text() for t in accuracy_ax.get_legend().get_texts()] == ["fixed", "triangular", "target 50 %"]
    assert accuracy_ax.lines[-1].get_ydata()[0] == pytest.approx(50)
    assert lr_ax.get_yscale() == "linear" and accuracy_ax.lines[0].get_marker() == "None"


def test_runs_with_lr_options_log_lr_markers_and_x_unit():
    figure = plot_runs_with_lr([_run("a", [0.1, 0.2])], title="t", log_lr=True, markers=True,
                               x_label="training time (seconds)")
    accuracy_ax, lr_ax = figure.axes
    assert lr_ax.get_yscale() == "log" and "log" in lr_ax.get_ylabel()
    assert accuracy_ax.lines[0].get_marker() == "." and lr_ax.lines[0].get_marker() == "None"
    assert lr_ax.get_xlabel() == "training time (seconds)"


def test_runs_with_lr_rejects_bad_input():
    with pytest.raises(ValueError, match="runs must hold at least one run"):
        plot_runs_with_lr([], title="t")
    with pytest.raises(ValueError, match=r"target_accuracy must be a fraction in \[0, 1\], got 90"):
        plot_runs_with_lr([_run("a", [0.1])], title="t", target_accuracy=90)


def test_plot_schedules_labels_units_and_uses_the_book_colours():
    steps = np.arange(100)
    ax = plot_schedules({"triangular": cyclic(0.1, 1.0, 25),
                         "mine": lambda it: np.full(it.shape, 0.5)}, steps, log_y=True)
    assert ax.get_xlabel() == "iteration (mini-batch updates)" and ax.get_yscale() == "log"
    assert ax.lines[0].get_color() == color_for("triangular") and ax.get_legend() is not None
    assert color_for("no such family") is None
