"""Checks for a chapter's "Parameters you may change" cell.

A reader may change any value in that cell. A reasonable value runs the chapter to the end; an
unreasonable one should stop it at once, in the cell after the parameters, with one sentence that
names the parameter and says which range works, rather than with a traceback from deep inside a
later cell.

>>> require_between("STEP_SIZE", 2_000, 4, 100_000, whole=True, unit="iterations")
2000
>>> require_between("CYCLES", 0, 1, 10, whole=True, unit="cycles")
Traceback (most recent call last):
...
ValueError: CYCLES must be a whole number of cycles from 1 to 10; got 0
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = ["require_between", "require_less"]


def _spell(number: float) -> str:
    """A bound as a reader would write it: ``100,000``, ``0.5``, ``1e-05``."""
    if isinstance(number, Integral):
        return f"{number:,}"
    return f"{number:g}"


def require_between(
    name: str, value: Any, low: float, high: float, *, whole: bool = False, unit: str = "",
    open_low: bool = False,
) -> Any:
    """Return ``value`` if it is a number in ``[low, high]`` (``(low, high]`` with ``open_low``).

    Args:
        name: the parameter's name as the cell spells it (``"STEP_SIZE"``).
        value: what the reader set.
        low, high: the range the chapter works with.
        whole: the value must be a whole number (an ``int``; not a bool, not ``2000.0``).
        unit: what is counted, for the message (``"iterations"``).
        open_low: exclude ``low`` itself (a learning rate must be above 0).

    Raises:
        ValueError: one sentence naming the parameter, the range that works and the value.

    >>> require_between("MAX_LR", 0.0, 0, 10, open_low=True)
    Traceback (most recent call last):
    ...
    ValueError: MAX_LR must be a number above 0 and at most 10; got 0.0
    >>> require_between("SEED", 2**63 - 1, 0, 2**63 - 1, whole=True)
    9223372036854775807
    """
    kind = "a whole number" if whole else "a number"
    what = f"{kind} of {unit}" if unit else kind
    span = (f"above {_spell(low)} and at most {_spell(high)}" if open_low
            else f"from {_spell(low)} to {_spell(high)}")
    sentence = f"{name} must be {what} {span}; got {value!r}"
    if isinstance(value, bool) or not isinstance(value, Integral if whole else Real):
        raise ValueError(sentence)
    # compared as they are, not through float(): Python compares ints and floats exactly, and a whole
    # number above 2**53 would round (2**63 - 1 becomes 2**63, above a bound of 2**63 - 1)
    if (not isinstance(value, Integral) and not math.isfinite(value)) or value > high or value < low or (open_low and value == low):
        raise ValueError(sentence)
    return value


def require_less(
    smaller_name: str, smaller: float, larger_name: str, larger: float, *,
    reason: str = "the schedules move between the two",
) -> None:
    """Raise ``ValueError`` unless ``smaller < larger`` (e.g. ``BASE_LR`` below ``MAX_LR``).

    >>> require_less("BASE_LR", 0.01, "MAX_LR", 0.006)
    Traceback (most recent call last):
    ...
    ValueError: BASE_LR must be below MAX_LR (the schedules move between the two); got BASE_LR = 0.01, MAX_LR = 0.006
    """
    if not smaller < larger:
        raise ValueError(f"{smaller_name} must be below {larger_name} ({reason}); "
                         f"got {smaller_name} = {smaller!r}, {larger_name} = {larger!r}")
