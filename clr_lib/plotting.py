"""Matplotlib helpers shared by the chapters, the explorer and the range-test result.

matplotlib is imported inside the functions, so ``import clr_lib`` stays light. Every helper draws
on an ``Axes`` it is given (or a new one), labels the axes with their units and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "SCHEDULE_COLORS", "RunCurves", "color_for", "mark_iterations", "new_axes", "plot_lr_and_momentum",
    "plot_runs_with_lr", "plot_schedules",
]

# One colour per schedule family, the same in every chapter (Okabe-Ito, colour-blind safe).
SCHEDULE_COLORS: Mapping[str, str] = {
    "fixed": "#000000",
    "triangular": "#0072B2",
    "triangular2": "#E69F00",
    "exp_range": "#009E73",
    "decay": "#CC79A7",
    "exp": "#56B4E9",
    "one_cycle": "#D55E00",
    "sgdr": "#F0E442",
    "welch": "#56B4E9",
    "hann": "#CC79A7",
    "momentum": "#999999",
}


def color_for(name: str) -> Optional[str]:
    """The book's colour for a schedule family, or ``None`` (matplotlib's next colour)."""
    return SCHEDULE_COLORS.get(name)


def new_axes(ax: Optional["Axes"], figsize: tuple[float, float] = (7.0, 3.2)) -> "Axes":
    """``ax`` itself, or the Axes of a new figure of ``figsize`` inches (constrained layout) when it is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_schedules(
    schedules: Mapping[str, Callable[[np.ndarray], ArrayLike]],
    iterations: ArrayLike,
    *,
    ax: Optional["Axes"] = None,
    title: str = "Learning-rate schedules",
    ylabel: str = "learning rate",
    colors: Optional[Mapping[str, str]] = None,
    log_y: bool = False,
    **line_kwargs: Any,
) -> "Axes":
    """Plot one or more schedules against the iteration (x axis in iterations).

    Args:
        schedules: label -> schedule (any vectorised callable of iterations).
        iterations: the iterations to evaluate, e.g. ``np.arange(10_000)``.
        colors: label -> colour; defaults to :data:`SCHEDULE_COLORS` where the label is a family name.
    """
    ax = new_axes(ax)
    steps = np.asarray(iterations)
    for label, schedule in schedules.items():
        color = (colors or {}).get(label, color_for(label))
        ax.plot(steps, schedule(steps), label=label, color=color, **line_kwargs)
    ax.set_xlabel("iteration (mini-batch updates)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    if len(schedules) > 1:
        ax.legend()
    return ax


def plot_lr_and_momentum(
    lr_schedule: Callable[[np.ndarray], ArrayLike],
    momentum_schedule: Callable[[np.ndarray], ArrayLike],
    iterations: ArrayLike,
    *,
    ax: Optional["Axes"] = None,
    title: str = "Learning rate and momentum",
    lr_color: str = SCHEDULE_COLORS["triangular"],
    momentum_color: str = SCHEDULE_COLORS["momentum"],
    momentum_label: str = "momentum",
) -> tuple["Axes", "Axes"]:
    """LR on the left axis, momentum (or beta1) on a twin right axis; returns ``(lr_ax, momentum_ax)``."""
    ax = new_axes(ax)
    steps = np.asarray(iterations)
    lr_line = ax.plot(steps, lr_schedule(steps), color=lr_color, label="learning rate")
    ax.set_xlabel("iteration (mini-batch updates)")
    ax.set_ylabel("learning rate", color=lr_color)
    momentum_ax = ax.twinx()
    momentum_line = momentum_ax.plot(
        steps, momentum_schedule(steps), color=momentum_color, linestyle="--", label=momentum_label
    )
    momentum_ax.set_ylabel(momentum_label, color=momentum_color)
    ax.set_title(title)
    ax.legend(handles=[*lr_line, *momentum_line], loc="upper right")
    return ax, momentum_ax


def mark_iterations(ax: "Axes", iterations: Sequence[float], *, label: Optional[str] = None, **kwargs: Any) -> None:
    """Dotted vertical lines at the given iterations (cycle boundaries, stage changes)."""
    style = {"color": "0.6", "linestyle": ":", "linewidth": 1.0, **kwargs}
    for index, iteration in enumerate(iterations):
        ax.axvline(iteration, label=label if index == 0 else None, **style)


@dataclass(frozen=True)
class RunCurves:
    """One training run, ready to draw: test accuracy at its evaluations and the LR at every iteration.

    ``x`` and ``lr_x`` are in the same unit (iterations, or seconds of training), so both panels of
    :func:`plot_runs_with_lr` share their x axis.

    Attributes:
        label: legend text, or None for a run that shares an already labelled line's style (another seed).
        x: where the evaluations were made.
        accuracy: test accuracy at ``x``, fractions in [0, 1] (drawn in percent).
        lr_x: where the LR is known, usually every iteration.
        lr: the learning rate at ``lr_x``.
        style: matplotlib line properties shared by both panels (``color``, ``linestyle``).
    """

    label: Optional[str]
    x: ArrayLike
    accuracy: ArrayLike
    lr_x: ArrayLike
    lr: ArrayLike
    style: Mapping[str, Any] = field(default_factory=dict)


def plot_runs_with_lr(
    runs: Sequence[RunCurves],
    *,
    title: str,
    x_label: str = "iteration (mini-batch updates)",
    accuracy_title: Optional[str] = None,
    log_lr: bool = False,
    target_accuracy: Optional[float] = None,
    markers: bool = False,
    figsize: tuple[float, float] = (8.0, 6.0),
) -> "Figure":
    """Test accuracy (top) with each run's learning rate under it (bottom), on a shared x axis.

    The shape of Smith (2017), Figure 1, for any number of runs: one style per run in both panels, so the
    accuracy legend also names the LR lines.

    Args:
        runs: the runs to draw, in legend order.
        title: the figure's title.
        x_label: the unit of the shared x axis.
        accuracy_title: a title for the accuracy panel (default: none).
        log_lr: draw the LR on a log axis (for schedules that span decades).
        target_accuracy: a fraction; draws a dotted horizontal line there, labelled.
        markers: mark each evaluation with a dot (for sparse evaluations).

    Returns:
        The Figure; ``fig.axes[0]`` is the accuracy (percent), ``fig.axes[1]`` the LR.

    Raises:
        ValueError: no runs, or a ``target_accuracy`` outside [0, 1].
    """
    if not runs:
        raise ValueError("runs must hold at least one run to draw, got none")
    if target_accuracy is not None and not 0 <= target_accuracy <= 1:
        raise ValueError(f"target_accuracy must be a fraction in [0, 1], got {target_accuracy!r}")
    import matplotlib.pyplot as plt

    figure, (accuracy_ax, lr_ax) = plt.subplots(2, 1, sharex=True, figsize=figsize, layout="constrained",
                                                height_ratios=(2, 1))
    marker = {"marker": ".", "markersize": 3} if markers else {}
    for run in runs:
        accuracy_ax.plot(run.x, 100 * np.asarray(run.accuracy, dtype=float), label=run.label, alpha=0.9,
                         **marker, **run.style)
        lr_ax.plot(run.lr_x, run.lr, linewidth=1.0, alpha=0.9, **run.style)
    if target_accuracy is not None:
        accuracy_ax.axhline(100 * target_accuracy, color="0.5", linestyle=":", linewidth=1.0,
                            label=f"target {100 * target_accuracy:.0f} %")
    accuracy_ax.set_ylabel("test accuracy (%)")
    if accuracy_title:
        accuracy_ax.set_title(accuracy_title)
    accuracy_ax.legend(fontsize="small", ncols=2 if len(runs) > 4 else 1, loc="lower right")
    lr_ax.set_ylabel("learning rate (log)" if log_lr else "learning rate")
    if log_lr:
        lr_ax.set_yscale("log")
    lr_ax.set_title("Learning rate at each iteration")
    lr_ax.set_xlabel(x_label)
    for ax in (accuracy_ax, lr_ax):
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return figure
