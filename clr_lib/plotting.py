"""Matplotlib helpers shared by the chapters, the explorer and the range-test result.

matplotlib is imported inside the functions, so ``import clr_lib`` stays light. Every helper draws
on an ``Axes`` it is given (or a new one), labels the axes with their units and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["SCHEDULE_COLORS", "color_for", "mark_iterations", "plot_lr_and_momentum", "plot_schedules"]

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


def _new_axes(ax: Optional["Axes"], figsize: tuple[float, float] = (7.0, 3.2)) -> "Axes":
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
    ax = _new_axes(ax)
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
    ax = _new_axes(ax)
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
