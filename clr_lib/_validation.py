"""Argument checks shared by the schedule factories and adapters.

Every check raises ``ValueError`` with the parameter's name, the offending value and what is allowed,
so a user never has to guess which argument was wrong.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = [
    "require_choice",
    "require_finite",
    "require_learning_rate",
    "require_non_negative",
    "require_non_negative_int",
    "require_positive",
    "require_positive_int",
    "require_unit_interval",
]


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def require_finite(name: str, value: Any, what: str = "a finite number") -> float:
    """Return ``value`` as a float if it is a finite real number, else raise ``ValueError``."""
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


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
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
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


def require_positive_int(name: str, value: Any, unit: str = "iterations") -> int:
    """An integer >= 1 (bools are rejected)."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive whole number of {unit}, got {value!r}")
    return int(value)


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
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
