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

The module is pure Python and validates every argument with the shared checks of
:mod:`clr_lib._validation`: a bad one raises ``ValueError`` naming the parameter, its value and what is
allowed. Counts of iterations stay within 2**53 (:data:`clr_lib._validation.MAX_ITERATIONS`), the range
in which float64, and so every schedule, counts iterations exactly; a product that would exceed it (or
overflow) is a ``ValueError``, never an ``OverflowError``.
"""

from __future__ import annotations

from ._validation import (
    MAX_ITERATIONS,
    require_flag,
    require_iteration_total,
    require_non_negative,
    require_positive,
    require_positive_int,
)

__all__ = [
    "epochs_to_iterations",
    "iterations_per_epoch",
    "iterations_to_epochs",
    "step_size_range",
]


def _iterations_per_epoch(value: object) -> int:
    return require_positive_int("iterations_per_epoch", value, "iterations", maximum=MAX_ITERATIONS)


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
        ValueError: a non-positive or non-integer ``num_examples`` or ``batch_size`` (a bool is not an
            integer here), a ``drop_last`` that is not ``True`` or ``False`` (a truthy string such as
            ``"False"`` is refused), or ``drop_last=True`` with ``num_examples < batch_size``. In that last case
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
    examples = require_positive_int("num_examples", num_examples, "examples")
    batch = require_positive_int("batch_size", batch_size, "examples")
    if require_flag("drop_last", drop_last):
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
        ValueError: a negative, non-finite or non-numeric ``epochs``, an ``iterations_per_epoch``
            that is not a whole number from 1 to 2**53, or a product above 2**53 iterations.

    Example:
        >>> epochs_to_iterations(4, 500)
        2000
        >>> epochs_to_iterations(2.5, 100)
        250
    """
    count = require_non_negative("epochs", epochs, "number of epochs")
    per_epoch = _iterations_per_epoch(iterations_per_epoch)
    total = require_iteration_total(
        "epochs", epochs, count * per_epoch, f"epochs * iterations_per_epoch ({per_epoch:,})"
    )
    return round(total)


def iterations_to_epochs(iterations: float, iterations_per_epoch: int) -> float:
    r"""How many epochs ``iterations`` iterations make: :math:`t / I` (a float, fractions allowed).

    Args:
        iterations: :math:`t`, a finite number of iterations >= 0.
        iterations_per_epoch: :math:`I`, iterations per epoch, a whole number >= 1.

    Returns:
        Epochs, e.g. 2,000 iterations at 500 iterations per epoch are 4.0 epochs.

    Raises:
        ValueError: a negative, non-finite or non-numeric ``iterations`` (an int too large for a float
            included), or an ``iterations_per_epoch`` that is not a whole number from 1 to 2**53.
    """
    count = require_non_negative("iterations", iterations, "number of iterations")
    per_epoch = _iterations_per_epoch(iterations_per_epoch)
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
            ``max_epochs``, ``min_epochs > max_epochs``, or a step size above 2**53 iterations.

    Example:
        >>> step_size_range(500)  # CIFAR-10 at batch 100; the paper used 2,000
        (1000, 5000)

    Reference:
        Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV, section 3.3.
    """
    per_epoch = _iterations_per_epoch(iterations_per_epoch)
    low = require_positive("min_epochs", min_epochs, "epochs")
    high = require_positive("max_epochs", max_epochs, "epochs")
    if low > high:
        raise ValueError(f"min_epochs must be <= max_epochs, got min_epochs={min_epochs!r} > max_epochs={max_epochs!r}")
    require_iteration_total(
        "max_epochs", max_epochs, high * per_epoch, f"max_epochs * iterations_per_epoch ({per_epoch:,})"
    )
    return max(1, epochs_to_iterations(low, per_epoch)), max(1, epochs_to_iterations(high, per_epoch))
