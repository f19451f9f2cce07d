r"""Epochs and iterations: converting between the two units a training run is counted in.

An **iteration** is one optimizer update: one mini-batch forward, backward and ``optimizer.step()``.
An **epoch** is one pass over the training set, which takes

.. math::

    \text{iterations per epoch} = \left\lceil N / B \right\rceil
    \quad\text{(or } \lfloor N / B \rfloor \text{ when the last, short batch is dropped)}

iterations for :math:`N` training examples at batch size :math:`B`; this is ``len(DataLoader)``.
Every schedule in :mod:`clr_lib` counts iterations, so these helpers are the only place epochs enter.

Smith's guideline for the cyclical step size (half a cycle) is 2 to 10 epochs' worth of iterations
(Smith 2017, section 3.3): CIFAR-10's 50,000 images at batch 100 give 500 iterations per epoch, hence
a step size of 1,000 to 5,000 iterations (the paper used 2,000).

The module is pure Python (``math`` only) and validates every argument: a bad one raises
``ValueError`` naming the parameter, its value and what is allowed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = [
    "epochs_to_iterations",
    "iterations_per_epoch",
    "iterations_to_epochs",
    "step_size_range",
]


def _whole(name: str, value: Any, unit: str, *, minimum: int) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (bools rejected), else ``ValueError``."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        qualifier = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {qualifier} whole number of {unit}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, unit: str, *, positive: bool) -> float:
    """``value`` as a float if it is a finite real > 0 (``positive``) or >= 0, else ``ValueError``."""
    qualifier = "positive" if positive else "non-negative"
    if (
        not isinstance(value, Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise ValueError(f"{name} must be a finite, {qualifier} number of {unit}, got {value!r}")
    return float(value)


def iterations_per_epoch(num_examples: int, batch_size: int, drop_last: bool = False) -> int:
    r"""How many iterations (mini-batch updates) one epoch takes: ``len(DataLoader)``.

    .. math::

        \lceil N / B \rceil \ \text{(keep the last, short batch)}, \qquad
        \lfloor N / B \rfloor \ \text{(} \texttt{drop\_last=True} \text{)}

    Args:
        num_examples: :math:`N`, the number of training examples (a whole number >= 1).
        batch_size: :math:`B`, examples per mini-batch (a whole number >= 1).
        drop_last: drop the final batch when it holds fewer than ``batch_size`` examples, as
            ``torch.utils.data.DataLoader(drop_last=True)`` does.

    Returns:
        Iterations per epoch, equal to ``len(DataLoader(dataset, batch_size, drop_last=drop_last))``
        for a map-style dataset of ``num_examples`` items.

    Raises:
        ValueError: a non-positive or non-integer ``num_examples`` or ``batch_size``, a non-bool
            ``drop_last``, or ``drop_last=True`` with ``num_examples < batch_size``. In that last case
            torch's ``DataLoader`` has length 0 and a training loop silently does nothing; here it is
            an error, because an epoch of zero iterations cannot be what was meant.

    Example:
        >>> iterations_per_epoch(1_000, 10)
        100
        >>> iterations_per_epoch(50_000, 100)  # CIFAR-10 at batch 100
        500
        >>> iterations_per_epoch(1_050, 100), iterations_per_epoch(1_050, 100, drop_last=True)
        (11, 10)
    """
    examples = _whole("num_examples", num_examples, "examples", minimum=1)
    batch = _whole("batch_size", batch_size, "examples", minimum=1)
    if not isinstance(drop_last, bool):
        raise ValueError(f"drop_last must be True or False, got {drop_last!r}")
    if drop_last:
        if examples < batch:
            raise ValueError(
                f"drop_last=True with num_examples={examples} < batch_size={batch} leaves no full batch: "
                "an epoch would have 0 iterations"
            )
        return examples // batch
    return -(-examples // batch)  # ceil in exact integer arithmetic


def epochs_to_iterations(epochs: float, iterations_per_epoch: int) -> int:
    r"""The number of iterations in ``epochs`` epochs: :math:`\mathrm{round}(E \cdot I)`.

    Use it to turn a guideline stated in epochs into the iterations a schedule needs, e.g. a step
    size of 4 epochs at 500 iterations per epoch is 2,000 iterations.

    Args:
        epochs: :math:`E`, a finite number of epochs >= 0; fractions are allowed (2.5 epochs).
        iterations_per_epoch: :math:`I`, iterations (mini-batches) per epoch, a whole number >= 1;
            see :func:`iterations_per_epoch`.

    Returns:
        Whole iterations; a fractional product is rounded to the nearest iteration (halves to even,
        as Python's ``round``).

    Raises:
        ValueError: a negative, non-finite or non-numeric ``epochs``, or an ``iterations_per_epoch``
            that is not a whole number >= 1.

    Example:
        >>> epochs_to_iterations(4, 500)
        2000
        >>> epochs_to_iterations(2.5, 100)
        250
    """
    count = _number("epochs", epochs, "epochs", positive=False)
    per_epoch = _whole("iterations_per_epoch", iterations_per_epoch, "iterations", minimum=1)
    return round(count * per_epoch)


def iterations_to_epochs(iterations: float, iterations_per_epoch: int) -> float:
    r"""How many epochs ``iterations`` iterations make: :math:`t / I` (a float, fractions allowed).

    Args:
        iterations: :math:`t`, a finite number of iterations >= 0.
        iterations_per_epoch: :math:`I`, iterations per epoch, a whole number >= 1.

    Returns:
        Epochs, e.g. 2,000 iterations at 500 iterations per epoch are 4.0 epochs.

    Raises:
        ValueError: a negative, non-finite or non-numeric ``iterations``, or an
            ``iterations_per_epoch`` that is not a whole number >= 1.
    """
    count = _number("iterations", iterations, "iterations", positive=False)
    per_epoch = _whole("iterations_per_epoch", iterations_per_epoch, "iterations", minimum=1)
    return count / per_epoch


def step_size_range(
    iterations_per_epoch: int, min_epochs: float = 2, max_epochs: float = 10
) -> tuple[int, int]:
    r"""Smith's guideline for the cyclical step size (half a cycle), in iterations.

    .. math:: s \in [\,E_{min} I,\; E_{max} I\,], \qquad E_{min} = 2,\ E_{max} = 10 \text{ epochs}

    Args:
        iterations_per_epoch: :math:`I`, iterations per epoch, a whole number >= 1.
        min_epochs: the shortest step size, in epochs (default 2), > 0.
        max_epochs: the longest step size, in epochs (default 10), >= ``min_epochs``.

    Returns:
        ``(shortest, longest)`` step size in iterations, each rounded as in
        :func:`epochs_to_iterations` and at least 1.

    Raises:
        ValueError: invalid ``iterations_per_epoch``, a non-positive or non-finite ``min_epochs`` or
            ``max_epochs``, or ``min_epochs > max_epochs``.

    Example:
        >>> step_size_range(500)  # CIFAR-10 at batch 100; the paper used 2,000
        (1000, 5000)

    Reference:
        Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV, section 3.3.
    """
    per_epoch = _whole("iterations_per_epoch", iterations_per_epoch, "iterations", minimum=1)
    low = _number("min_epochs", min_epochs, "epochs", positive=True)
    high = _number("max_epochs", max_epochs, "epochs", positive=True)
    if low > high:
        raise ValueError(f"min_epochs must be <= max_epochs, got min_epochs={min_epochs!r} > max_epochs={max_epochs!r}")
    return max(1, epochs_to_iterations(low, per_epoch)), max(1, epochs_to_iterations(high, per_epoch))
