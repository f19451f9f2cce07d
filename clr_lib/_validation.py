"""Argument checks shared by the schedule factories and adapters.

Every check raises ``ValueError`` with the parameter's name, the offending value and what is allowed,
so a user never has to guess which argument was wrong.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = [
    "describe_value",
    "require_callable",
    "require_choice",
    "require_finite",
    "require_finite_result",
    "require_iteration_total",
    "require_learning_rate",
    "require_non_negative",
    "require_non_negative_int",
    "require_positive",
    "require_positive_int",
    "require_step_size",
    "require_unit_interval",
]


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def describe_value(value: Any) -> str:
    """``repr(value)`` for an error message, with integers too large to print (or to read) abbreviated.

    Python refuses to print an int of more than 4,300 digits, so a message quoting ``10**5000`` would
    itself raise; such numbers are described by their size instead.

    >>> describe_value(0.5), describe_value("yes")
    ('0.5', "'yes'")
    >>> describe_value(10**400)
    'an integer of about 401 digits'
    """
    if isinstance(value, Integral) and not isinstance(value, bool) and abs(int(value)).bit_length() > 100:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits:,} digits"
    return repr(value)


def _as_finite_float(value: Any) -> float | None:
    """``float(value)`` for a finite real number (also an int too large for a float: None), else None."""
    if not _is_real(value):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an int beyond float range, an odd Real
        return None
    return number if math.isfinite(number) else None


def require_finite(name: str, value: Any, what: str = "a finite number") -> float:
    """Return ``value`` as a float if it is a finite real number, else raise ``ValueError``.

    An integer too large for a float (``10**400``) is not finite here: it raises ``ValueError``, not
    ``OverflowError``.
    """
    number = _as_finite_float(value)
    if number is None:
        raise ValueError(f"{name} must be {what}, got {describe_value(value)}")
    return number


def require_non_negative(name: str, value: Any, what: str = "number") -> float:
    """A finite value >= 0, e.g. a learning rate or a momentum."""
    description = f"a finite, non-negative {what}"
    value = require_finite(name, value, description)
    if value < 0:
        raise ValueError(f"{name} must be {description}, got {value!r}")
    return value


def require_non_negative_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a whole number >= 0 (a seed, a count), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {describe_value(value)}")
    return int(value)


def require_learning_rate(name: str, value: Any) -> float:
    """A learning rate: finite and non-negative."""
    return require_non_negative(name, value, "learning rate")


def require_positive(name: str, value: Any, unit: str = "") -> float:
    """A finite number > 0 (``unit`` names what is counted, e.g. ``"iterations"``)."""
    what = f"a positive number of {unit}" if unit else "a positive finite number"
    value = require_finite(name, value, what)
    if value <= 0:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def require_positive_int(name: str, value: Any, unit: str = "iterations", *, maximum: int | None = None) -> int:
    """An integer >= 1 (bools and integral floats such as ``100.0`` are rejected), and <= ``maximum``
    when one is given (e.g. ``MAX_ITERATIONS`` for an iteration count, so that it stays exact in float64).

    >>> require_positive_int("total_steps", 100)
    100
    >>> require_positive_int("total_steps", True)
    Traceback (most recent call last):
    ...
    ValueError: total_steps must be a positive whole number of iterations, got True
    """
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive whole number of {unit}, got {describe_value(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be a positive whole number of {unit} <= {_limit(maximum)}, "
                         f"got {describe_value(value)}")
    return int(value)


def _limit(maximum: float) -> str:
    """A bound as text: ``2**53`` is spelled out, since a user sees it in an error message."""
    return "2**53 (9,007,199,254,740,992)" if maximum == 2**53 else f"{maximum:,}"


def require_step_size(name: str, value: Any, unit: str = "iterations") -> float:
    """A length in iterations that may be fractional (a cyclic half-cycle, a decay length): a finite real
    number from 1 to 2**53 (:data:`MAX_ITERATIONS`).

    Below one iteration a half-cycle cannot be sampled once per iteration (the wave aliases, and at
    1e-300 its phase overflows to NaN); above 2**53 the cycle length overflows the iteration grid
    that float64 represents exactly (two such step sizes can even sum to ``inf``).

    >>> require_step_size("step_size_up", 2000)
    2000.0
    >>> require_step_size("step_size_up", 1e308)
    Traceback (most recent call last):
    ...
    ValueError: step_size_up must be a positive number of iterations from 1 to 2**53 (9,007,199,254,740,992), got 1e+308
    """
    what = f"a positive number of {unit} from 1 to {_limit(2**53)}"
    number = require_finite(name, value, what)
    if number <= 0:
        raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")
    if not 1 <= number <= 2**53:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def require_finite_result(name: str, value: Any, result: float, expression: str) -> float:
    """Raise ``ValueError`` naming ``name`` when a quantity derived from it is not finite (an overflow).

    >>> require_finite_result("div_factor", 1e-310, 0.1 / 1e-310, "max_lr / div_factor")
    Traceback (most recent call last):
    ...
    ValueError: div_factor=1e-310 makes max_lr / div_factor = inf; div_factor must keep it a finite number
    """
    if not math.isfinite(result):
        raise ValueError(
            f"{name}={describe_value(value)} makes {expression} = {result!r}; {name} must keep it a finite number"
        )
    return result


def require_iteration_total(name: str, value: Any, iterations: float, expression: str) -> float:
    """Raise ``ValueError`` naming ``name`` when ``iterations`` (computed from it) exceeds 2**53 or overflows."""
    if not (math.isfinite(iterations) and iterations <= 2**53):
        raise ValueError(
            f"{name}={describe_value(value)} makes {expression} = {iterations:.6g} iterations; {name} must keep it "
            f"at most {_limit(2**53)}"
        )
    return iterations


def require_callable(name: str, value: Any, what: str = "a callable") -> Any:
    """``value`` if it can be called, else ``ValueError``."""
    if not callable(value):
        raise ValueError(f"{name} must be {what}, got {describe_value(value)}")
    return value


def require_unit_interval(name: str, value: Any, *, open_low: bool = False) -> float:
    """A number in [0, 1], or in (0, 1] with ``open_low``."""
    low = "(0" if open_low else "[0"
    what = f"a number in {low}, 1]"
    value = require_finite(name, value, what)
    if value > 1 or value < 0 or (open_low and value == 0):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def require_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {choices}, got {describe_value(value)}")
    return value


# --- checks for the torch adapters' arguments (clr_lib.torch_adapters) ---------------------------------

MAX_ITERATIONS = 2**53
"""The largest iteration count the schedules handle exactly: every iteration below it is exact in float64."""


def as_real_number(name: str, value: Any) -> float:
    """Return a real scalar as a plain ``float``: a Python or numpy number, or a one-element 0-d tensor or
    array (``torch.tensor(0.1)``, ``np.float32(0.1)``); reject bools, strings, complex numbers and
    containers with ``ValueError`` naming ``name`` and the value. Checks type only, not range."""
    if _is_real(value):
        return float(value)
    item, shape = getattr(value, "item", None), getattr(value, "shape", None)
    if callable(item) and shape is not None and tuple(shape) == ():
        scalar = item()
        if _is_real(scalar):
            return float(scalar)
    raise ValueError(f"{name} must be a real number (a float, an int or a 0-d tensor), got {value!r}")


def require_momentum_coefficient(name: str, value: Any) -> float:
    """A momentum or Adam ``beta1``: a finite number in [0, 1). At 1 or above SGD's velocity never decays
    (the update grows without bound) and Adam's bias correction divides by ``1 - beta1**t`` = 0."""
    what = "a number in [0, 1) (a momentum or Adam beta1; 1 or more diverges)"
    number = require_finite(name, value, what)
    if not 0 <= number < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def require_flag(name: str, value: Any) -> bool:
    """``True`` or ``False`` (a Python or numpy bool); a truthy string, an int or ``None`` raises ``ValueError``."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {describe_value(value)}")


def require_whole_number(
    name: str, value: Any, *, minimum: int = 1, maximum: int = MAX_ITERATIONS, unit: str = "iterations"
) -> int:
    """An integer in ``[minimum, maximum]`` as a plain ``int``: a Python or numpy int, an integral float
    (``2000.0``) or a 0-d integer tensor. Bools, fractions, non-finite numbers and strings raise ``ValueError``
    naming ``name``, the value and the range; ``maximum`` defaults to 2**53 (:data:`MAX_ITERATIONS`)."""
    if minimum == 1:
        what = f"a positive whole number of {unit}"
    else:
        what = f"a whole number of {unit} >= {minimum}"
    number: Any = value
    if not isinstance(value, bool) and not _is_real(value) and callable(getattr(value, "item", None)):
        if tuple(getattr(value, "shape", (1,))) == ():
            number = value.item()
    if isinstance(number, bool) or not _is_real(number):
        raise ValueError(f"{name} must be {what}, got {describe_value(value)}")
    if not isinstance(number, Integral):
        if not (math.isfinite(number) and float(number).is_integer()):
            raise ValueError(f"{name} must be {what}, got {describe_value(value)}")
    number = int(number)
    if number < minimum:
        raise ValueError(f"{name} must be {what}, got {describe_value(value)}")
    if number > maximum:
        raise ValueError(
            f"{name} must be at most {maximum} {unit} (2**53: beyond it iterations are not exact in float64), "
            f"got {describe_value(value)}"
        )
    return number


__all__ += ["MAX_ITERATIONS", "as_real_number", "require_flag", "require_momentum_coefficient", "require_whole_number"]
