r"""Gradient descent on toy loss surfaces, for seeing what a learning rate does.

Three surfaces, each small enough to reason about exactly:

* :func:`quadratic_1d`: :math:`f(w) = \tfrac{\lambda}{2}(w - w^*)^2`, one parameter, curvature :math:`\lambda`;
* :func:`ill_conditioned_bowl`: :math:`f(w) = \tfrac12 \sum_i \lambda_i w_i^2`, two parameters whose
  curvatures differ by the condition number :math:`\kappa = \lambda_{max} / \lambda_{min}`;
* :func:`saddle_surface`: :math:`f(x, y) = \tfrac{\lambda}{2} x^2 + \tfrac14 (y^2 - 1)^2`, a saddle at the
  origin surrounded by a plateau (gradient close to zero), and two minima at :math:`(0, \pm 1)`.

:func:`gradient_descent` runs :math:`w_{k+1} = w_k - \eta_k \nabla f(w_k)` from a starting point with a
fixed learning rate or any schedule (a callable ``iteration -> lr``, e.g. :func:`clr_lib.cyclic`), and
returns a :class:`Trajectory`. :func:`plot_contours`, :func:`plot_loss_curve` and
:func:`plot_trajectory` draw them (matplotlib is imported inside the functions).

Units: the parameters :math:`w` are in arbitrary "parameter units" and the loss in "loss units", so a
curvature :math:`\lambda` is in loss units per parameter unit squared and a learning rate in parameter
units squared per loss unit: the product :math:`\eta \lambda` is a pure number, and it alone decides
whether a step along that direction shrinks (:math:`|1 - \eta\lambda| < 1`) or grows the error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "LR_REGIME_COLORS",
    "Surface",
    "Trajectory",
    "gradient_descent",
    "ill_conditioned_bowl",
    "plot_contours",
    "plot_loss_curve",
    "plot_trajectory",
    "quadratic_1d",
    "saddle_surface",
]

# Colours for "too small", "good" and "too large" learning rates (Okabe-Ito, colour-blind safe).
LR_REGIME_COLORS = {"too small": "#56B4E9", "good": "#009E73", "too large": "#D55E00"}

LearningRate = Union[float, Callable[[int], float]]


@dataclass(frozen=True)
class Surface:
    """A differentiable toy loss surface.

    Attributes:
        name: a short description, used in plot titles.
        dimension: number of parameters (1 or 2).
        loss: points of shape ``(..., dimension)`` -> losses of shape ``(...)`` (loss units).
        gradient: points of shape ``(..., dimension)`` -> gradients of the same shape.
        minima: the global minima, each a tuple of ``dimension`` coordinates.
        curvatures: eigenvalues of the Hessian at the minima (loss units per parameter unit squared),
            ascending. Plain gradient descent is stable near a minimum only for
            :math:`\\eta < 2 / \\lambda_{max}`.
        saddles: saddle points, if any.
    """

    name: str
    dimension: int
    loss: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    gradient: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    minima: tuple[tuple[float, ...], ...]
    curvatures: tuple[float, ...]
    saddles: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Trajectory:
    """The iterates of one gradient-descent run.

    Attributes:
        points: shape ``(k + 1, dimension)``; ``points[0]`` is the start, ``points[i]`` the parameters
            after ``i`` iterations.
        losses: shape ``(k + 1,)``, the loss at each point.
        learning_rates: shape ``(k,)``, the learning rate used by iteration ``i``.
        diverged: ``True`` if the run stopped early because a parameter left the divergence limit
            (then ``k`` is smaller than the number of iterations asked for).
    """

    points: np.ndarray
    losses: np.ndarray
    learning_rates: np.ndarray
    diverged: bool

    @property
    def num_iterations(self) -> int:
        """Iterations actually taken (fewer than requested if the run diverged)."""
        return len(self.points) - 1

    def first_iteration_below(self, loss: float) -> Optional[int]:
        """The first iteration count after which the loss is below ``loss``, or ``None`` if never."""
        below = np.flatnonzero(self.losses < loss)
        return int(below[0]) if below.size else None

    def settled_below(self, loss: float) -> Optional[int]:
        """The first iteration count from which the loss stays below ``loss`` to the end of the run.

        Unlike :meth:`first_iteration_below`, a run that dips below ``loss`` and bounces back above
        it is not counted until its last bounce. ``None`` if the final loss is not below ``loss``
        or the run diverged.
        """
        if self.diverged:
            return None
        at_or_above = np.flatnonzero(~(self.losses < loss))
        if not at_or_above.size:
            return 0
        settled = int(at_or_above[-1]) + 1
        return settled if settled < len(self.losses) else None


def _positive(name: str, value: object) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def quadratic_1d(curvature: float = 1.0, minimum: float = 0.0) -> Surface:
    r"""The 1-D quadratic :math:`f(w) = \tfrac{\lambda}{2}(w - w^*)^2`, gradient :math:`\lambda (w - w^*)`.

    One gradient step gives :math:`w_{k+1} - w^* = (1 - \eta\lambda)(w_k - w^*)`: the error shrinks
    iff :math:`|1 - \eta\lambda| < 1`, i.e. :math:`0 < \eta < 2/\lambda`; :math:`\eta = 1/\lambda`
    lands on the minimum in one step.

    Args:
        curvature: :math:`\lambda > 0`, the second derivative (loss units per parameter unit squared).
        minimum: :math:`w^*`, where the loss is 0.

    Raises:
        ValueError: a non-positive or non-finite ``curvature``, a non-finite ``minimum``.
    """
    lam = _positive("curvature", curvature)
    if not isinstance(minimum, Real) or not np.isfinite(minimum):
        raise ValueError(f"minimum must be a finite number, got {minimum!r}")
    centre = float(minimum)

    def loss(points: np.ndarray) -> np.ndarray:
        return 0.5 * lam * (np.asarray(points, dtype=np.float64)[..., 0] - centre) ** 2

    def gradient(points: np.ndarray) -> np.ndarray:
        return lam * (np.asarray(points, dtype=np.float64) - centre)

    return Surface(f"1-D quadratic, curvature {lam:g}", 1, loss, gradient, ((centre,),), (lam,))


def ill_conditioned_bowl(curvatures: Sequence[float] = (1.0, 10.0)) -> Surface:
    r"""An axis-aligned 2-D bowl :math:`f(w) = \tfrac12(\lambda_1 w_1^2 + \lambda_2 w_2^2)`.

    Each coordinate evolves on its own: :math:`w_{i,k+1} = (1 - \eta\lambda_i) w_{i,k}`. The steepest
    direction caps the learning rate at :math:`2/\lambda_{max}`, and at that rate the flattest
    direction shrinks only by :math:`1 - \eta\lambda_{min} > 1 - 2/\kappa` per step, with the condition
    number :math:`\kappa = \lambda_{max}/\lambda_{min}`.

    Args:
        curvatures: :math:`(\lambda_1, \lambda_2)`, both positive (loss units per parameter unit squared).

    Raises:
        ValueError: not exactly two curvatures, or one that is not positive and finite.
    """
    values = tuple(curvatures)
    if len(values) != 2:
        raise ValueError(f"curvatures must hold exactly two numbers, got {curvatures!r}")
    lams = np.array([_positive("curvatures", value) for value in values])

    def loss(points: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum(lams * np.asarray(points, dtype=np.float64) ** 2, axis=-1)

    def gradient(points: np.ndarray) -> np.ndarray:
        return lams * np.asarray(points, dtype=np.float64)

    kappa = lams.max() / lams.min()
    name = f"ill-conditioned bowl, curvatures {lams[0]:g} and {lams[1]:g} (condition number {kappa:g})"
    return Surface(name, 2, loss, gradient, ((0.0, 0.0),), tuple(sorted(float(v) for v in lams)))


def saddle_surface(curvature: float = 1.0) -> Surface:
    r"""A saddle on a plateau: :math:`f(x, y) = \tfrac{\lambda}{2} x^2 + \tfrac14 (y^2 - 1)^2`.

    Gradient :math:`(\lambda x,\ y^3 - y)`. The origin is a saddle (loss 1/4, Hessian eigenvalues
    :math:`\lambda` and :math:`-1`); the minima are :math:`(0, \pm 1)` (loss 0, Hessian eigenvalues
    :math:`\lambda` and 2). Near the saddle the gradient along :math:`y` is about :math:`-y`, so a run
    that starts at a small :math:`y_0` leaves it only as :math:`y_k \approx (1 + \eta)^k y_0`: the time
    spent on the plateau grows like :math:`\ln(1/y_0) / \eta`, inversely with the learning rate.

    Args:
        curvature: :math:`\lambda > 0` along :math:`x` (loss units per parameter unit squared).

    Raises:
        ValueError: a non-positive or non-finite ``curvature``.
    """
    lam = _positive("curvature", curvature)

    def loss(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return 0.5 * lam * p[..., 0] ** 2 + 0.25 * (p[..., 1] ** 2 - 1.0) ** 2

    def gradient(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.stack([lam * p[..., 0], p[..., 1] ** 3 - p[..., 1]], axis=-1)

    return Surface(
        f"saddle surface, curvature {lam:g} along x",
        2,
        loss,
        gradient,
        ((0.0, -1.0), (0.0, 1.0)),
        tuple(sorted((lam, 2.0))),
        saddles=((0.0, 0.0),),
    )


def gradient_descent(
    surface: Surface,
    start: ArrayLike,
    learning_rate: LearningRate,
    num_iterations: int,
    divergence_limit: float = 1e6,
) -> Trajectory:
    r"""Run plain gradient descent :math:`w_{k+1} = w_k - \eta_k \nabla f(w_k)`.

    Args:
        surface: the loss surface.
        start: the starting point, ``dimension`` coordinates (a number is accepted in 1-D).
        learning_rate: a fixed :math:`\eta > 0`, or a schedule: any callable mapping the 0-based
            iteration to :math:`\eta_k \ge 0` (e.g. a :class:`clr_lib.Schedule`).
        num_iterations: iterations to run (a whole number >= 0).
        divergence_limit: the run stops, with ``diverged=True``, as soon as a coordinate's absolute
            value exceeds this (or is not finite), so exploding runs end quietly, without overflow.

    Returns:
        A :class:`Trajectory` with ``num_iterations + 1`` points (fewer if the run diverged).

    Raises:
        ValueError: a start of the wrong size or not finite, a non-positive fixed learning rate, a
            schedule value that is negative or not finite, a bad ``num_iterations`` or
            ``divergence_limit``.
    """
    point = np.atleast_1d(np.asarray(start, dtype=np.float64)).copy()
    if point.shape != (surface.dimension,) or not np.isfinite(point).all():
        raise ValueError(f"start must hold {surface.dimension} finite coordinate(s), got {start!r}")
    if isinstance(num_iterations, bool) or not isinstance(num_iterations, (int, np.integer)) or num_iterations < 0:
        raise ValueError(f"num_iterations must be a non-negative whole number of iterations, got {num_iterations!r}")
    limit = _positive("divergence_limit", divergence_limit)
    if callable(learning_rate):
        rates = np.array([float(learning_rate(i)) for i in range(int(num_iterations))], dtype=np.float64)
        if not (np.isfinite(rates).all() and (rates >= 0).all()):
            raise ValueError("learning_rate schedule must return finite, non-negative values")
    else:
        rates = np.full(int(num_iterations), _positive("learning_rate", learning_rate))

    points = [point]
    diverged = False
    with np.errstate(all="ignore"):
        for rate in rates:
            point = point - rate * surface.gradient(point)
            if not (np.isfinite(point).all() and np.abs(point).max() <= limit):
                diverged = True
                break
            points.append(point)
    stacked = np.array(points)
    return Trajectory(stacked, surface.loss(stacked), rates[: len(points) - 1], diverged)


def plot_contours(
    surface: Surface,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    ax: Optional["Axes"] = None,
    levels: int = 12,
    resolution: int = 200,
    title: Optional[str] = None,
) -> "Axes":
    """Contour lines of a 2-D surface, its minima (x) and saddles (+); axes fixed to the given ranges.

    Levels are spaced quadratically in loss between the lowest and highest value on the grid, so the
    rings near the bottom stay visible. Returns the Axes.
    """
    if surface.dimension != 2:
        raise ValueError(f"plot_contours needs a 2-D surface, got dimension {surface.dimension}")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.0), layout="constrained")
    xs = np.linspace(*x_range, resolution)
    ys = np.linspace(*y_range, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    values = surface.loss(grid)
    low, high = float(values.min()), float(values.max())
    contour_levels = low + (high - low) * np.linspace(0.0, 1.0, levels + 1)[1:] ** 2
    ax.contour(xs, ys, values, levels=contour_levels, colors="0.75", linewidths=0.8)
    for x, y in surface.minima:
        ax.plot(x, y, marker="x", color="0.3", markersize=8, linestyle="none")
    for x, y in surface.saddles:
        ax.plot(x, y, marker="+", color="0.3", markersize=10, linestyle="none")
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.set_xlabel("parameter $w_1$ (parameter units)")
    ax.set_ylabel("parameter $w_2$ (parameter units)")
    ax.set_title(title if title is not None else surface.name)
    return ax


def plot_loss_curve(
    surface: Surface,
    x_range: tuple[float, float],
    *,
    ax: Optional["Axes"] = None,
    resolution: int = 400,
    title: Optional[str] = None,
) -> "Axes":
    """The loss of a 1-D surface against its parameter (grey line); returns the Axes."""
    if surface.dimension != 1:
        raise ValueError(f"plot_loss_curve needs a 1-D surface, got dimension {surface.dimension}")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.5), layout="constrained")
    ws = np.linspace(*x_range, resolution)
    ax.plot(ws, surface.loss(ws[:, None]), color="0.6", linewidth=1.2)
    ax.set_xlim(*x_range)
    ax.set_xlabel("parameter $w$ (parameter units)")
    ax.set_ylabel("loss (loss units)")
    ax.set_title(title if title is not None else surface.name)
    return ax


def plot_trajectory(
    ax: "Axes", trajectory: Trajectory, surface: Surface, *, label: Optional[str] = None, color: Optional[str] = None
) -> None:
    """Draw a run's iterates as dots joined by lines, the start as a hollow circle.

    On a 2-D surface the points are drawn in parameter space (over :func:`plot_contours`); on a 1-D
    surface they are drawn on the loss curve, as ``(w_k, f(w_k))`` (over :func:`plot_loss_curve`).
    Points outside the axes' limits are clipped by matplotlib; the limits are left unchanged.
    """
    if surface.dimension == 1:
        xs, ys = trajectory.points[:, 0], trajectory.losses
    else:
        xs, ys = trajectory.points[:, 0], trajectory.points[:, 1]
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.0, color=color, label=label)
    ax.plot(xs[0], ys[0], marker="o", markersize=8, markerfacecolor="none", color=line.get_color())
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
