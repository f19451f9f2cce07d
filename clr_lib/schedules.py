r"""Learning-rate and momentum schedules as pure, vectorised functions of the iteration.

Every factory here validates its arguments once and returns a :class:`Schedule`: an immutable
callable that maps a 0-based iteration (one mini-batch update) to a value. Call it with an ``int``
to get a ``float``, or with an array of ints to get a ``float64`` array of the same shape::

    >>> import numpy as np
    >>> import clr_lib
    >>> lr = clr_lib.cyclic(base_lr=0.001, max_lr=0.006, step_size_up=2000)
    >>> lr(2000)                      # the first peak
    0.006
    >>> lr(np.arange(0, 8001, 2000))  # base, peak, base, peak, base
    array([0.001, 0.006, 0.001, 0.006, 0.001])

The module imports numpy only. The torch adapters in :mod:`clr_lib.torch_adapters` evaluate these
same functions, so a schedule's formula exists exactly once. Units are always iterations, never
epochs: a cyclical schedule is stepped once per optimizer step.

References:
    Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV.
    Smith, L. N., Topin, N. (2017). Super-Convergence. arXiv:1708.07120.
    Loshchilov, I., Hutter, F. (2016). SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR 2017.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from functools import partial
from numbers import Integral
from typing import Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from ._validation import (
    MAX_ITERATIONS,
    describe_value,
    require_callable,
    require_choice,
    require_finite_result,
    require_flag,
    require_learning_rate,
    require_momentum_coefficient,
    require_non_negative,
    require_positive,
    require_positive_int,
    require_step_size,
    require_unit_interval,
)

__all__ = [
    "CYCLIC_MODES",
    "WINDOW_SHAPES",
    "Schedule",
    "constant",
    "cosine_warm_restarts",
    "cyclic",
    "cyclic_momentum",
    "decay",
    "exponential_decay",
    "one_cycle",
    "one_cycle_momentum",
    "scaled",
    "sequence",
    "step_decay",
    "warmup",
]

ScaleFn = Callable[[np.ndarray], ArrayLike]
"""A cyclic amplitude scale: gets cycle numbers (1-based) or iterations (0-based), returns factors."""

_INFINITY = math.inf
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
WINDOW_SHAPES = ("triangle", "welch", "hann")


class Schedule:
    """An immutable schedule: a pure function from 0-based iteration(s) to value(s).

    Args:
        values: vectorised function from a float64 array of whole, in-range iteration numbers to
            an array of values of the same shape. It must not mutate its input.
        total_steps: number of iterations the schedule is defined for (iterations
            ``0 .. total_steps - 1``), or ``None`` for a schedule without an end.
        description: what ``repr`` shows, normally the factory call that built the schedule.

    Calling a schedule with an ``int`` returns a ``float``; with an array of ints, an array of the
    same shape. The ``values`` function receives a Python ``float`` in the first case and must then
    return one (the helpers ``_floor``, ``_where``, ``_cos`` and ``_lookup`` below serve both cases,
    so each formula is written once). It raises ``ValueError`` for negative, fractional, non-finite or
    out-of-range iterations (also beyond 2**53, :data:`clr_lib._validation.MAX_ITERATIONS`, where
    float64 no longer represents every iteration exactly) and when the values it would return are not
    finite, non-negative numbers.

    Schedules pickle and deep-copy (``pickle.dumps``, ``copy.deepcopy``, ``torch.save`` of a scheduler
    holding one, multiprocessing) as long as ``values`` does: every factory here builds it from
    module-level functions and small classes, never from closures or lambdas. A user's ``scale_fn`` or
    callable must itself be picklable (a module-level function, not a lambda) for that.
    """

    __slots__ = ("_values", "_description", "total_steps")

    def __init__(
        self,
        values: Callable[[np.ndarray], np.ndarray],
        *,
        total_steps: int | None,
        description: str,
    ) -> None:
        require_callable("values", values, "a callable from iterations to values")
        if total_steps is not None:
            require_positive_int("total_steps", total_steps, maximum=MAX_ITERATIONS)
        if not isinstance(description, str):
            raise ValueError(f"description must be a str, got {describe_value(description)}")
        self._values = values
        self.total_steps = None if total_steps is None else int(total_steps)
        self._description = description

    def __call__(self, iteration: ArrayLike) -> Union[float, np.ndarray]:
        if type(iteration) is int:  # the scalar fast path that the torch adapters take every step
            if (
                iteration < 0
                or iteration > MAX_ITERATIONS
                or (self.total_steps is not None and iteration >= self.total_steps)
            ):
                self._checked_iterations(iteration)  # raises the range error
            value = self._values(float(iteration))
            if not 0.0 <= value < _INFINITY:
                self._reject(np.asarray(value), np.asarray(iteration))
            return value
        iterations = self._checked_iterations(iteration)
        values = np.asarray(self._values(iterations), dtype=np.float64)
        if not (np.isfinite(values).all() and (values >= 0).all()):
            self._reject(values, iterations)
        return float(values) if values.ndim == 0 else values

    def _reject(self, values: np.ndarray, iterations: np.ndarray) -> None:
        bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))[0]
        raise ValueError(
            f"{self!r} produced {float(values.flat[bad])!r} at iteration {int(iterations.flat[bad])}; "
            "schedule values must be finite and non-negative (check scale_fn, a scale factor or a callable it wraps)"
        )

    def _checked_iterations(self, iteration: ArrayLike) -> np.ndarray:
        if isinstance(iteration, Integral) and not isinstance(iteration, (bool, np.bool_)):
            if iteration < 0:
                raise ValueError(f"iteration must be >= 0 (iterations count from 0), got {describe_value(iteration)}")
            if iteration > MAX_ITERATIONS:
                raise ValueError(
                    f"iteration must be at most 2**53 ({MAX_ITERATIONS:,}), beyond which float64 cannot count "
                    f"every iteration exactly, got {describe_value(iteration)}"
                )
        array = np.asarray(iteration)
        if array.dtype.kind not in "iuf" or array.dtype == np.bool_:
            raise ValueError(f"iteration must be a whole number or an array of them, got {describe_value(iteration)}")
        as_float = array.astype(np.float64, copy=False)
        if array.dtype.kind == "f" and not (np.isfinite(as_float).all() and (as_float == np.floor(as_float)).all()):
            raise ValueError(f"iteration must be a finite whole number of iterations, got {iteration!r}")
        if as_float.size:
            first, last = as_float.min(), as_float.max()
            if first < 0:
                raise ValueError(f"iteration must be >= 0 (iterations count from 0), got {int(first)}")
            if last > MAX_ITERATIONS:
                raise ValueError(
                    f"iteration must be at most 2**53 ({MAX_ITERATIONS:,}), beyond which float64 cannot count "
                    f"every iteration exactly, got {float(last):.6g}"
                )
            if self.total_steps is not None and last >= self.total_steps:
                raise ValueError(
                    f"iteration {int(last)} is past the end of {self!r}, which is defined for iterations "
                    f"0 to {self.total_steps - 1} (total_steps={self.total_steps})"
                )
        return as_float

    def __repr__(self) -> str:
        return self._description


def _describe(name: str, **arguments: object) -> str:
    return f"{name}(" + ", ".join(f"{key}={value!r}" for key, value in arguments.items()) + ")"


# Each formula below is written once and evaluated either on a Python float (the adapters' per-step
# path, where numpy's per-call overhead would dominate) or on a float64 array (plots, tables).
def _floor(x):
    return math.floor(x) if isinstance(x, float) else np.floor(x)


def _where(condition, if_true, if_false):
    return (if_true if condition else if_false) if isinstance(condition, bool) else np.where(condition, if_true, if_false)


def _cos(x):
    return math.cos(x) if isinstance(x, float) else np.cos(x)


def _maximum(x, floor_value: float):
    return max(x, floor_value) if isinstance(x, float) else np.maximum(x, floor_value)


def _minimum(x, ceiling: float):
    return min(x, ceiling) if isinstance(x, float) else np.minimum(x, ceiling)


def _lookup(sorted_edges: Sequence[float], x, side: Literal["left", "right"]):
    """Index of ``x`` among sorted edges, as ``bisect_left``/``bisect_right`` (arrays: ``searchsorted``)."""
    if isinstance(x, float):
        return (bisect.bisect_left if side == "left" else bisect.bisect_right)(sorted_edges, x)
    return np.searchsorted(np.asarray(sorted_edges, dtype=np.float64), x, side=side)


def _take(table: Sequence[float], index):
    return table[index] if isinstance(index, int) else np.asarray(table, dtype=np.float64)[index]


# ----------------------------------------------------------------------------------------------
# Cyclical schedules (Smith 2017; torch.optim.lr_scheduler.CyclicLR semantics)
# ----------------------------------------------------------------------------------------------


def _apply_scale_fn(scale_fn: ScaleFn, arguments: np.ndarray) -> np.ndarray:
    """Evaluate a user's scale function: on an int (as torch does) for a scalar argument, else on the
    float array, falling back to element-wise calls with ints when the function is not vectorised."""
    if not isinstance(arguments, np.ndarray):
        return float(scale_fn(int(arguments)))
    try:
        factors = np.asarray(scale_fn(arguments), dtype=np.float64)
        if factors.shape in ((), arguments.shape):
            return np.broadcast_to(factors, arguments.shape)
    except Exception:  # noqa: BLE001 - a scalar-only function; retried element-wise below
        pass
    flat = [float(scale_fn(int(argument))) for argument in arguments.ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(arguments.shape)


class _CyclicWave:
    """The fraction of the amplitude in use (0 -> 1 -> 0) and the amplitude scale at each iteration.

    ``cycle = floor(1 + it / (u + d))``, ``x = 1 + it / (u + d) - cycle`` (position in [0, 1)), and
    the triangle ``f = x / r`` while rising, ``(x - 1) / (r - 1)`` while falling, ``r = u / (u + d)``.
    The operations and their order are those of torch's ``CyclicLR.get_lr``, so results agree to
    the last bit. The Welch and Hann windows reshape each half: ``1 - (1 - f)^2`` and
    ``(1 - cos(pi f)) / 2``; both equal the classical windows over a symmetric cycle.

    A small class rather than a closure, so that the schedules built on it pickle.
    """

    __slots__ = ("total_size", "step_ratio", "shape", "mode", "gamma", "scale_fn", "use_cycle")

    def __init__(self, up: float, down: float, mode: str, gamma: float, scale_fn: ScaleFn | None,
                 scale_mode: str, shape: str) -> None:
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.shape, self.mode, self.gamma = shape, mode, gamma
        self.scale_fn, self.use_cycle = scale_fn, scale_mode == "cycle"

    def __call__(self, iterations: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
        cycle = _floor(1 + iterations / self.total_size)
        x = 1.0 + iterations / self.total_size - cycle
        ratio = self.step_ratio
        if isinstance(x, float):  # only the branch taken is evaluated: r may round to 1.0 for d << u
            fraction = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if self.shape == "welch":
            fraction = 1.0 - (1.0 - fraction) ** 2
        elif self.shape == "hann":
            fraction = 0.5 - 0.5 * _cos(math.pi * fraction)
        return fraction, self._scale(cycle, iterations)

    def _scale(self, cycle, iterations):
        if self.scale_fn is not None:
            return _apply_scale_fn(self.scale_fn, cycle if self.use_cycle else iterations)
        if self.mode == "triangular":  # a built-in mode forces its scale_mode, as in torch and the Keras callback
            return 1.0
        if self.mode == "triangular2":
            return 0.5 ** (cycle - 1)  # = torch's 1 / 2.0 ** (cycle - 1), exact, and no overflow past cycle 1024
        return self.gamma**iterations


def _cyclic_wave(
    step_size_up: int | float,
    step_size_down: int | float | None,
    mode: str,
    gamma: float,
    scale_fn: ScaleFn | None,
    scale_mode: str,
    shape: str,
) -> _CyclicWave:
    """Validate the shared cyclic arguments; return ``it -> (f(it), scale)``, in [0, 1] for built-ins."""
    up = require_step_size("step_size_up", step_size_up)
    down = up if step_size_down is None else require_step_size("step_size_down", step_size_down)
    if scale_fn is None:
        require_choice("mode", mode, CYCLIC_MODES)
    elif not callable(scale_fn):
        raise ValueError(f"scale_fn must be a callable or None, got {describe_value(scale_fn)}")
    require_choice("scale_mode", scale_mode, ("cycle", "iterations"))
    require_choice("shape", shape, WINDOW_SHAPES)
    gamma = require_unit_interval("gamma", gamma, open_low=True)
    return _CyclicWave(up, down, mode, gamma, scale_fn, scale_mode, shape)


def _cyclic_values(wave: _CyclicWave, base: float, peak: float, iterations: np.ndarray) -> np.ndarray:
    fraction, scale = wave(iterations)
    return base + (peak - base) * fraction * scale


def _cyclic_momentum_values(wave: _CyclicWave, low: float, high: float, iterations: np.ndarray) -> np.ndarray:
    fraction, scale = wave(iterations)
    return high - (high - low) * fraction * scale


def cyclic(
    base_lr: float,
    max_lr: float,
    step_size_up: int | float = 2000,
    step_size_down: int | float | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    scale_fn: ScaleFn | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
    shape: Literal["triangle", "welch", "hann"] = "triangle",
) -> Schedule:
    r"""A cyclical learning rate (Smith 2017) with the exact semantics of torch's ``CyclicLR``.

    For iteration :math:`t` (0-based), rising half :math:`u` and falling half :math:`d` iterations:

    .. math::

        \mathrm{cycle} = \lfloor 1 + t / (u + d) \rfloor, \qquad
        x = 1 + t / (u + d) - \mathrm{cycle}, \qquad r = u / (u + d)

        f = \begin{cases} x / r & x \le r \\ (x - 1) / (r - 1) & x > r \end{cases}, \qquad
        \mathrm{lr} = \mathrm{base\_lr} + (\mathrm{max\_lr} - \mathrm{base\_lr})\, w(f)\,
        \mathrm{scale}(a)

    where :math:`w` is the window (``triangle``: :math:`w(f) = f`) and :math:`a` is the cycle number
    for ``scale_mode='cycle'`` or :math:`t` for ``'iterations'``. With :math:`u = d = s` this is the
    paper's :math:`x = |t/s - 2\,\mathrm{cycle} + 1|`, :math:`\mathrm{lr} = \mathrm{base} +
    (\mathrm{max} - \mathrm{base}) \max(0, 1 - x)`: the first peak is at :math:`t = s`, the cycle
    lasts :math:`2s` iterations.

    Args:
        base_lr: lower bound, reached at the start and end of every cycle.
        max_lr: upper bound, reached at the peak of the first cycle; ``base_lr <= max_lr``.
        step_size_up: iterations from base to peak (half a cycle when symmetric). Smith's
            guideline: 2 to 10 epochs' worth of iterations.
        step_size_down: iterations from peak back to base; defaults to ``step_size_up``.
        mode: ``'triangular'`` (constant amplitude), ``'triangular2'`` (amplitude halves every
            cycle: :math:`2^{1-\mathrm{cycle}}`) or ``'exp_range'`` (amplitude times
            :math:`\gamma^t`, :math:`t` the global iteration). Ignored when ``scale_fn`` is given.
        gamma: per-iteration decay factor of ``exp_range``, in (0, 1]; useful values are close to 1
            (the paper used 0.99994, which halves the amplitude every ~11,550 iterations).
        scale_fn: custom amplitude scale, called with a float array of cycle numbers or iterations
            (a scalar-only function is applied element-wise with ints). Overrides ``mode``.
        scale_mode: what ``scale_fn`` receives: ``'cycle'`` or ``'iterations'``. A built-in ``mode``
            forces its own (``'cycle'`` for triangular and triangular2, ``'iterations'`` for
            exp_range), exactly as torch does.
        shape: the window: ``'triangle'``, ``'welch'`` (parabolic, :math:`1 - (1 - f)^2`) or
            ``'hann'`` (sinusoidal, :math:`(1 - \cos \pi f) / 2`), the three the paper compared.

    Raises:
        ValueError: ``base_lr > max_lr``, a negative or non-finite learning rate, a step size that is
            not a number of iterations from 1 to 2**53 (a half-cycle shorter than one iteration cannot be
            sampled once per iteration; torch's ``CyclicLR`` takes whole numbers), ``gamma`` outside
            (0, 1], an unknown ``mode``, ``scale_mode`` or ``shape``, a ``scale_fn`` that is not callable.
    """
    base = require_learning_rate("base_lr", base_lr)
    peak = require_learning_rate("max_lr", max_lr)
    if base > peak:
        raise ValueError(f"base_lr must be <= max_lr, got base_lr={base_lr!r} > max_lr={max_lr!r}")
    wave = _cyclic_wave(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode, shape)
    values = partial(_cyclic_values, wave, base, peak)
    description = _describe(
        "cyclic", base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, step_size_down=step_size_down,
        mode=mode, gamma=gamma, scale_fn=scale_fn, scale_mode=scale_mode, shape=shape,
    )
    return Schedule(values, total_steps=None, description=description)


def cyclic_momentum(
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int | float = 2000,
    step_size_down: int | float | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    scale_fn: ScaleFn | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
    shape: Literal["triangle", "welch", "hann"] = "triangle",
) -> Schedule:
    r"""The momentum curve that goes with :func:`cyclic`: it moves opposite to the learning rate.

    .. math::

        m = \mathrm{max\_momentum} - (\mathrm{max\_momentum} - \mathrm{base\_momentum})\, w(f)\,
        \mathrm{scale}(a)

    with :math:`f`, :math:`w` and the scale exactly as in :func:`cyclic` for the same cycle
    arguments: ``max_momentum`` where the LR is at ``base_lr``, ``base_momentum`` at the LR peak
    (torch's defaults 0.8 and 0.9). For Adam-like optimizers the adapters apply it to ``beta1``.

    Both momenta must lie in [0, 1) (:func:`clr_lib._validation.require_momentum_coefficient`): at 1
    SGD's velocity never decays and Adam's bias correction divides by ``1 - beta1**t = 0``.

    Raises:
        ValueError: a momentum outside [0, 1) or not a finite number, ``base_momentum > max_momentum``,
            and every error of :func:`cyclic`'s cycle arguments.
    """
    low, high = _momentum_bounds(base_momentum, max_momentum)
    wave = _cyclic_wave(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode, shape)
    values = partial(_cyclic_momentum_values, wave, low, high)
    description = _describe(
        "cyclic_momentum", base_momentum=base_momentum, max_momentum=max_momentum,
        step_size_up=step_size_up, step_size_down=step_size_down, mode=mode, gamma=gamma,
        scale_fn=scale_fn, scale_mode=scale_mode, shape=shape,
    )
    return Schedule(values, total_steps=None, description=description)


def _momentum_bounds(base_momentum: float, max_momentum: float) -> tuple[float, float]:
    """Both momenta in [0, 1) and ``base_momentum <= max_momentum``, as floats."""
    low = require_momentum_coefficient("base_momentum", base_momentum)
    high = require_momentum_coefficient("max_momentum", max_momentum)
    if low > high:
        raise ValueError(
            f"base_momentum must be <= max_momentum, got base_momentum={base_momentum!r} > "
            f"max_momentum={max_momentum!r}"
        )
    return low, high


# ----------------------------------------------------------------------------------------------
# One-cycle (Smith & Topin 2017; torch.optim.lr_scheduler.OneCycleLR semantics)
# ----------------------------------------------------------------------------------------------

_Phase = tuple[float, float, float]  # (last iteration of the phase, value at its start, value at its end)


def _anneal(strategy: str, start: float, end: float, pct: np.ndarray) -> np.ndarray:
    """Move from ``start`` to ``end`` as ``pct`` goes 0 -> 1: cosine or linear (torch's formulas)."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (_cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def _one_cycle_phase_ends(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """The last iteration of each phase, as torch computes it (fractional values are allowed)."""
    ends = [float(pct_start * total_steps) - 1]
    if three_phase:
        ends.append(float(2 * pct_start * total_steps) - 2)
    ends.append(float(total_steps - 1))
    start = 0.0
    names = ("warm-up", "annealing back to the start", "final annealing") if three_phase else ("warm-up", "annealing")
    for name, end in zip(names, ends):
        if end - start < 1 - 1e-9:  # the tolerance forgives rounding in pct_start * total_steps
            raise ValueError(
                f"one-cycle {name} phase would span {end - start:.6g} iterations (total_steps={total_steps}, "
                f"pct_start={pct_start}); every phase must span at least one iteration: raise total_steps "
                "or move pct_start"
            )
        start = end
    return ends


class _OneCycleValues:
    """Evaluate torch's phase rule: an iteration belongs to the first phase whose end it does not pass
    (the last phase takes everything after), ``pct`` runs from that phase's start to its end.
    (A class rather than a closure, so that it pickles.)"""

    __slots__ = ("rows", "inner_ends", "columns", "strategy")

    def __init__(self, phases: list[_Phase], strategy: str) -> None:
        ends = [end for end, _, _ in phases]
        self.rows = [(start, end, first, last) for start, (end, first, last) in zip([0.0, *ends[:-1]], phases)]
        self.inner_ends = ends[:-1]
        self.columns = np.asarray(self.rows, dtype=np.float64).T  # start, end, first value, last value
        self.strategy = strategy

    def __call__(self, iterations: np.ndarray) -> np.ndarray:
        phase = _lookup(self.inner_ends, iterations, "left")
        start_step, end_step, first, last = self.rows[phase] if isinstance(phase, int) else self.columns[:, phase]
        pct = (iterations - start_step) / (end_step - start_step)
        return _anneal(self.strategy, first, last, pct)


def _check_one_cycle_common(total_steps: int, pct_start: float, anneal_strategy: str, three_phase: bool) -> None:
    require_positive_int("total_steps", total_steps, maximum=MAX_ITERATIONS)
    require_unit_interval("pct_start", pct_start)
    require_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
    require_flag("three_phase", three_phase)


def one_cycle(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    r"""The 1cycle learning rate (Smith & Topin 2017) with the exact semantics of torch's ``OneCycleLR``.

    With :math:`T` = ``total_steps``, :math:`p` = ``pct_start``, ``initial_lr = max_lr / div_factor``
    and ``min_lr = initial_lr / final_div_factor``, the phases end at iterations

    * two phases: :math:`pT - 1` (``initial_lr -> max_lr``), :math:`T - 1` (``max_lr -> min_lr``);
    * three phases: :math:`pT - 1` (up), :math:`2pT - 2` (back to ``initial_lr``), :math:`T - 1`
      (``initial_lr -> min_lr``).

    Within a phase from iteration :math:`a` to :math:`b`, :math:`\mathrm{pct} = (t - a) / (b - a)`
    and the value moves from start to end by ``cos``:
    :math:`\mathrm{end} + (\mathrm{start} - \mathrm{end})(1 + \cos \pi\,\mathrm{pct}) / 2`, or linearly.

    Deliberate differences from torch (torch is silently wrong here):

    * the schedule is defined for iterations ``0 .. total_steps - 1`` only; asking for
      ``total_steps`` or later raises ``ValueError`` (torch extrapolates one step, which gives a
      negative LR with linear annealing);
    * a phase shorter than one iteration raises ``ValueError`` (torch raises
      ``ZeroDivisionError`` when ``pct_start * total_steps == 1``, or silently skips the peak).

    Raises:
        ValueError: as above, and for a non-positive or non-finite ``max_lr``, ``div_factor`` or
            ``final_div_factor``, a ``div_factor`` or ``final_div_factor`` so small that
            ``initial_lr`` or ``min_lr`` overflows to infinity, ``pct_start`` outside [0, 1], an unknown
            ``anneal_strategy``, a ``total_steps`` that is not a whole number from 1 to 2**53, a
            ``three_phase`` that is not ``True`` or ``False``.
    """
    peak = require_positive("max_lr", max_lr)
    _check_one_cycle_common(total_steps, pct_start, anneal_strategy, three_phase)
    divisor = require_positive("div_factor", div_factor)
    initial = require_finite_result("div_factor", div_factor, peak / divisor, "max_lr / div_factor")
    final_divisor = require_positive("final_div_factor", final_div_factor)
    final = require_finite_result(
        "final_div_factor", final_div_factor, initial / final_divisor, "max_lr / div_factor / final_div_factor"
    )
    ends = _one_cycle_phase_ends(total_steps, pct_start, three_phase)
    if three_phase:
        phases = [(ends[0], initial, peak), (ends[1], peak, initial), (ends[2], initial, final)]
    else:
        phases = [(ends[0], initial, peak), (ends[1], peak, final)]
    description = _describe(
        "one_cycle", max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
        anneal_strategy=anneal_strategy, div_factor=div_factor, final_div_factor=final_div_factor,
        three_phase=three_phase,
    )
    return Schedule(_OneCycleValues(phases, anneal_strategy), total_steps=total_steps, description=description)


def one_cycle_momentum(
    total_steps: int,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    three_phase: bool = False,
) -> Schedule:
    r"""The inverse momentum curve of :func:`one_cycle` (torch's ``OneCycleLR`` with ``cycle_momentum``).

    Same phases as :func:`one_cycle`; momentum goes ``max_momentum -> base_momentum`` while the LR
    rises and back to ``max_momentum`` while it falls (three phases: then it stays there).

    Raises:
        ValueError: a momentum outside [0, 1) or not a finite number, ``base_momentum > max_momentum``,
            and the phase and argument errors of :func:`one_cycle`.
    """
    low, high = _momentum_bounds(base_momentum, max_momentum)
    _check_one_cycle_common(total_steps, pct_start, anneal_strategy, three_phase)
    ends = _one_cycle_phase_ends(total_steps, pct_start, three_phase)
    if three_phase:
        phases = [(ends[0], high, low), (ends[1], low, high), (ends[2], high, high)]
    else:
        phases = [(ends[0], high, low), (ends[1], low, high)]
    description = _describe(
        "one_cycle_momentum", total_steps=total_steps, base_momentum=base_momentum, max_momentum=max_momentum,
        pct_start=pct_start, anneal_strategy=anneal_strategy, three_phase=three_phase,
    )
    return Schedule(_OneCycleValues(phases, anneal_strategy), total_steps=total_steps, description=description)


# ----------------------------------------------------------------------------------------------
# SGDR, the paper's decay policy and the classic baselines
# ----------------------------------------------------------------------------------------------


def cosine_warm_restarts(
    max_lr: float, first_cycle_steps: int, cycle_mult: int = 1, min_lr: float = 0.0
) -> Schedule:
    r"""SGDR: cosine annealing with warm restarts (Loshchilov & Hutter 2016).

    .. math::

        \mathrm{lr} = \mathrm{min\_lr} + (\mathrm{max\_lr} - \mathrm{min\_lr})
        \left(1 + \cos\left(\pi\, T_{cur} / T_i\right)\right) / 2

    where :math:`T_i = T_0 m^i` is the length of restart period :math:`i` (``first_cycle_steps``
    :math:`T_0` and ``cycle_mult`` :math:`m`) and :math:`T_{cur}` counts iterations since the last
    restart. Equals torch's ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` stepped once per
    iteration. Restart boundaries are computed in integers, so they are exact at any length.

    Raises:
        ValueError: ``min_lr > max_lr``, negative or non-finite LRs, ``max_lr - min_lr`` above half the
            largest float (torch's formula doubles it), a ``first_cycle_steps`` that is
            not a whole number from 1 to 2**53, a ``cycle_mult`` that is not a whole number from 1 to 2**53.
    """
    peak = require_learning_rate("max_lr", max_lr)
    floor = require_learning_rate("min_lr", min_lr)
    if floor > peak:
        raise ValueError(f"min_lr must be <= max_lr, got min_lr={min_lr!r} > max_lr={max_lr!r}")
    # torch's formula computes (max_lr - min_lr) * (1 + cos), up to twice the range: it must stay finite
    require_finite_result("max_lr", max_lr, (peak - floor) * 2.0, "(max_lr - min_lr) * 2")
    first = require_positive_int("first_cycle_steps", first_cycle_steps, maximum=MAX_ITERATIONS)
    mult = require_positive_int("cycle_mult", cycle_mult, unit="(a factor >= 1)", maximum=MAX_ITERATIONS)
    description = _describe(
        "cosine_warm_restarts", max_lr=max_lr, first_cycle_steps=first_cycle_steps, cycle_mult=cycle_mult, min_lr=min_lr
    )
    return Schedule(partial(_sgdr_values, first, mult, floor, peak), total_steps=None, description=description)


def _sgdr_values(first: int, mult: int, floor: float, peak: float, iterations: np.ndarray) -> np.ndarray:
    if mult == 1:
        t_cur, t_i = iterations % first, float(first)
    else:
        last = iterations if isinstance(iterations, float) else (iterations.max() if iterations.size else 0.0)
        starts = [0]  # first iteration of each restart period, in exact integer arithmetic
        while starts[-1] <= last:
            starts.append(starts[-1] + first * mult ** (len(starts) - 1))
        period = _lookup(starts, iterations, "right") - 1
        t_cur = iterations - _take(starts, period)
        t_i = first * float(mult) ** period  # <= mult * 2**53 <= 2**106: iterations stop at 2**53
    return floor + (peak - floor) * (1 + _cos(math.pi * t_cur / t_i)) / 2


def decay(base_lr: float, max_lr: float, step_size: int | float) -> Schedule:
    r"""The paper's "decay" policy: start at ``max_lr``, fall linearly to ``base_lr`` over
    ``step_size`` iterations, then hold ``base_lr``.

    .. math:: \mathrm{lr} = \mathrm{base\_lr} + (\mathrm{max\_lr} - \mathrm{base\_lr}) \max(0, 1 - t / s)

    Raises:
        ValueError: ``base_lr > max_lr``, negative or non-finite LRs, a ``step_size`` that is not a
            number of iterations from 1 to 2**53.
    """
    base = require_learning_rate("base_lr", base_lr)
    peak = require_learning_rate("max_lr", max_lr)
    if base > peak:
        raise ValueError(f"base_lr must be <= max_lr, got base_lr={base_lr!r} > max_lr={max_lr!r}")
    size = require_step_size("step_size", step_size)
    values = partial(_decay_values, base, peak, size)
    return Schedule(values, total_steps=None, description=_describe("decay", base_lr=base_lr, max_lr=max_lr, step_size=step_size))


def _decay_values(base: float, peak: float, size: float, iterations: np.ndarray) -> np.ndarray:
    return base + (peak - base) * _maximum(1.0 - iterations / size, 0.0)


def constant(lr: float) -> Schedule:
    """A fixed learning rate (or momentum): the same value at every iteration.

    Raises:
        ValueError: ``lr`` negative or not a finite number.
    """
    value = require_learning_rate("lr", lr)
    return Schedule(partial(_constant_values, value), total_steps=None, description=_describe("constant", lr=lr))


def _constant_values(value: float, iterations: np.ndarray) -> np.ndarray:
    return iterations * 0.0 + value


def _iteration_marks(name: str, marks: Any) -> list[int]:
    """A list of strictly increasing whole iterations from 1 to 2**53 (milestones, boundaries)."""
    given = None if isinstance(marks, (str, bytes)) else _as_list(marks)  # a generator is read once, here
    if given is None:
        raise ValueError(f"{name} must be a sequence of whole numbers of iterations, got {describe_value(marks)}")
    checked = [require_positive_int(name, mark, maximum=MAX_ITERATIONS) for mark in given]
    if checked != sorted(set(checked)):
        raise ValueError(f"{name} must be strictly increasing iterations, got {given!r}")
    return checked


def _as_list(items: Any) -> list[Any] | None:
    """``list(items)``, or None when ``items`` cannot be iterated."""
    try:
        return list(items)
    except TypeError:
        return None


def step_decay(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""Piecewise-constant decay (torch's ``MultiStepLR``, Caffe's "multistep"):
    :math:`\mathrm{lr} \cdot \gamma^{k}` where :math:`k` is the number of milestones :math:`\le t`.

    The paper's "fixed" CIFAR-10 baseline is ``step_decay(0.001, [60_000, 65_000], 0.1)``.

    Raises:
        ValueError: ``lr`` negative or not finite, ``gamma`` outside (0, 1], ``milestones`` not a
            sequence of strictly increasing whole iterations from 1 to 2**53.
    """
    value = require_learning_rate("lr", lr)
    gamma = require_unit_interval("gamma", gamma, open_low=True)
    marks = _iteration_marks("milestones", milestones)
    values = partial(_step_decay_values, value, gamma, tuple(marks))
    return Schedule(values, total_steps=None, description=_describe("step_decay", lr=lr, milestones=marks, gamma=gamma))


def _step_decay_values(value: float, gamma: float, marks: tuple[int, ...], iterations: np.ndarray) -> np.ndarray:
    return value * gamma ** _lookup(marks, iterations, "right")


def exponential_decay(lr: float, gamma: float) -> Schedule:
    r"""Exponential decay per iteration (Caffe's "exp", torch's ``ExponentialLR`` stepped per batch):
    :math:`\mathrm{lr} \cdot \gamma^t`. The paper's "exp" run used ``gamma=0.99994``.

    Raises:
        ValueError: ``lr`` negative or not finite, ``gamma`` outside (0, 1].
    """
    value = require_learning_rate("lr", lr)
    gamma = require_unit_interval("gamma", gamma, open_low=True)
    values = partial(_exponential_values, value, gamma)
    return Schedule(values, total_steps=None, description=_describe("exponential_decay", lr=lr, gamma=gamma))


def _exponential_values(value: float, gamma: float, iterations: np.ndarray) -> np.ndarray:
    return value * gamma**iterations


# ----------------------------------------------------------------------------------------------
# Composition
# ----------------------------------------------------------------------------------------------


def sequence(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Run schedules one after another: ``schedules[i]`` covers iterations
    ``boundaries[i-1] <= t < boundaries[i]`` and sees the local iteration ``t - boundaries[i-1]``
    (each stage starts from its own iteration 0, like optax's ``join_schedules``).

    The paper's staged triangular2 CIFAR-10 run (25,000 iterations) is::

        sequence([cyclic(0.001, 0.005, 2000, mode="triangular2"),
                  cyclic(0.0001, 0.0005, 1000, mode="triangular2"),
                  cyclic(0.00001, 0.00005, 500, mode="triangular2")],
                 boundaries=[16_000, 22_000])

    Raises:
        ValueError: no schedules, ``len(boundaries) != len(schedules) - 1``, boundaries that are not
            strictly increasing whole iterations from 1 to 2**53, or a stage too short for its segment.
    """
    stages = None if isinstance(schedules, (str, bytes, Schedule)) else _as_list(schedules)
    if not stages or not all(isinstance(stage, Schedule) for stage in stages):
        raise ValueError(f"schedules must be a non-empty sequence of Schedule objects, got {schedules!r}")
    given = None if isinstance(boundaries, (str, bytes)) else _as_list(boundaries)
    if given is not None and len(given) != len(stages) - 1:
        raise ValueError(
            f"boundaries must hold one iteration per junction ({len(stages) - 1} for {len(stages)} schedules), "
            f"got {len(given)}: {given!r}"
        )
    marks = _iteration_marks("boundaries", boundaries if given is None else given)
    starts = [0, *marks]
    for index, (stage, start, end) in enumerate(zip(stages, starts, marks)):
        if stage.total_steps is not None and end - start > stage.total_steps:
            raise ValueError(
                f"schedules[{index}] is defined for {stage.total_steps} iterations but its segment "
                f"{start}..{end - 1} spans {end - start}"
            )
    last = stages[-1].total_steps
    total_steps = None if last is None else starts[-1] + last
    if total_steps is not None and total_steps > MAX_ITERATIONS:
        raise ValueError(
            f"boundaries={marks!r} put the end of the last schedule at iteration {total_steps:,}, past 2**53 "
            f"({MAX_ITERATIONS:,}); boundaries must keep the sequence within 2**53 iterations"
        )
    values = _SequenceValues(stages, starts, marks)
    return Schedule(values, total_steps=total_steps, description=f"sequence({stages!r}, boundaries={marks!r})")


class _SequenceValues:
    """``schedules[i]`` from ``starts[i]`` on, each at its own local iteration (a class, so it pickles)."""

    __slots__ = ("stages", "starts", "marks")

    def __init__(self, stages: list[Schedule], starts: list[int], marks: list[int]) -> None:
        self.stages, self.starts, self.marks = tuple(stages), tuple(starts), tuple(marks)

    def __call__(self, iterations: np.ndarray) -> np.ndarray:
        stage_index = _lookup(self.marks, iterations, "right")
        if isinstance(stage_index, int):
            return self.stages[stage_index]._values(iterations - self.starts[stage_index])
        out = np.empty(iterations.shape, dtype=np.float64)
        for index, (stage, start) in enumerate(zip(self.stages, self.starts)):
            selected = stage_index == index
            if selected.any():
                out[selected] = stage._values(iterations[selected] - start)
        return out


def warmup(schedule: Schedule, warmup_steps: int, start_lr: float = 0.0) -> Schedule:
    r"""Prepend a linear warm-up: from ``start_lr`` at iteration 0 up to ``schedule(0)`` at iteration
    ``warmup_steps``, after which ``schedule`` runs from its own iteration 0.

    Raises:
        ValueError: ``schedule`` not a :class:`Schedule`, a ``warmup_steps`` that is not a whole number
            from 1 to 2**53 (or that pushes the end of ``schedule`` past 2**53), ``start_lr`` negative or
            not finite.
    """
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {describe_value(schedule)}")
    steps = require_positive_int("warmup_steps", warmup_steps, maximum=MAX_ITERATIONS)
    start = require_learning_rate("start_lr", start_lr)
    target = schedule(0)
    total_steps = None if schedule.total_steps is None else steps + schedule.total_steps
    if total_steps is not None and total_steps > MAX_ITERATIONS:
        raise ValueError(
            f"warmup_steps={steps:,} puts the end of {schedule!r} at iteration {total_steps:,}, past 2**53 "
            f"({MAX_ITERATIONS:,}); warmup_steps must keep it within 2**53 iterations"
        )
    values = partial(_warmup_values, schedule, steps, start, target)
    return Schedule(values, total_steps=total_steps, description=f"warmup({schedule!r}, warmup_steps={steps}, start_lr={start_lr!r})")


def _warmup_values(schedule: Schedule, steps: int, start: float, target: float, iterations: np.ndarray) -> np.ndarray:
    # t / w first, capped at 1 where the ramp is not used: (target - start) * t could overflow for huge LRs
    ramp = start + (target - start) * _minimum(iterations / steps, 1.0)
    return _where(iterations < steps, ramp, schedule._values(_maximum(iterations - steps, 0.0)))


def scaled(schedule: Union[Schedule, Callable[[int], float]], factor: float) -> Schedule:
    r"""A schedule times a constant: :math:`\mathrm{lr}(t) = c \cdot \mathrm{schedule}(t)`.

    Use it to scale a whole policy at once, e.g. a learning rate found for one batch size moved to
    another by the linear scaling rule, or a per-layer multiplier (Caffe's ``lr_mult``), without
    rebuilding the schedule from its arguments.

    Args:
        schedule: a :class:`Schedule`, or a callable ``schedule(iteration) -> value`` (torch's
            ``lr_lambda`` convention: called with an ``int``; a vectorised callable is also called with
            arrays, a scalar-only one element by element).
        factor: :math:`c`, a finite number >= 0.

    Returns:
        A :class:`Schedule` with the same ``total_steps`` as ``schedule`` (``None`` for a plain callable),
        evaluated vectorised, whose ``repr`` reads ``factor * schedule`` (e.g. ``2.0 * cyclic(...)``). It
        pickles when ``schedule`` does.

    Raises:
        ValueError: ``factor`` negative, not finite, or not a real number (a bool is not); ``schedule``
            neither a :class:`Schedule` nor callable. Calling the result raises ``ValueError`` when a
            value is not a finite number >= 0 (e.g. a product that overflows).

    Example:
        >>> import clr_lib
        >>> lr = clr_lib.scaled(clr_lib.cyclic(0.001, 0.006, step_size_up=2000), 0.5)
        >>> lr(2000)  # half of the peak
        0.003
        >>> clr_lib.scaled(clr_lib.constant(0.1), 2)
        2.0 * constant(lr=0.1)
    """
    value = require_non_negative("factor", factor, "scale factor")
    if isinstance(schedule, Schedule):
        return Schedule(partial(_scaled_values, schedule._values, value), total_steps=schedule.total_steps,
                        description=f"{value!r} * {schedule!r}")
    require_callable("schedule", schedule, "a Schedule or a callable iteration -> value")
    return Schedule(partial(_scaled_callable_values, schedule, value), total_steps=None,
                    description=f"{value!r} * {schedule!r}")


def _scaled_values(values: Callable[[np.ndarray], np.ndarray], factor: float, iterations: np.ndarray) -> np.ndarray:
    return factor * values(iterations)


def _scaled_callable_values(function: Callable[[int], float], factor: float, iterations: np.ndarray) -> np.ndarray:
    return factor * _apply_scale_fn(function, iterations)
