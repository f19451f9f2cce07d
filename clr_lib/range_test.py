"""The learning-rate range test (Smith 2017, section 3.3; fast.ai's ``lr_find``).

Train for ``num_iter`` iterations while the learning rate rises once per iteration from
``start_lr`` to ``end_lr``, record the loss (and optionally the accuracy) of every iteration,
and read good ``base_lr``/``max_lr`` bounds for a cyclical schedule off the curve.
The model, the optimizer and the random-number generators come back exactly as they were.

**Coming from torch-lr-finder or fastai.** The same test under their names and defaults (read from
torch-lr-finder's ``LRFinder.range_test`` and ``plot`` and fastai's ``Learner.lr_find``,
``LRFinder``, ``AvgSmoothLoss`` and suggestion functions). Mind the smoothing: torch-lr-finder's
``smooth_f`` is the weight of the *new* loss, clr_lib's ``smooth_factor`` (like fastai's ``beta``) the
weight of the *past*, so ``smooth_f=0.05`` is ``smooth_factor=0.95``; ``smooth_factor=0.05`` would
barely smooth at all.

.. list-table::
   :header-rows: 1
   :widths: 14 26 26 34

   * -
     - torch-lr-finder: ``LRFinder(model, optimizer, criterion).range_test(train_loader, ...)``
     - fastai: ``learn.lr_find(...)``
     - clr_lib: ``lr_range_test(model, optimizer, criterion, train_loader, ...)``
   * - first LR
     - ``start_lr=None``: the optimizer's LR
     - ``start_lr=1e-7``
     - ``start_lr``, required
   * - last LR
     - ``end_lr=10``, the LR of the last iteration
     - ``end_lr=10``, never reached: iteration ``i`` trains at
       ``start_lr * (end_lr / start_lr) ** (i / num_it)``
     - ``end_lr``, required; the LR of the last iteration, as in torch-lr-finder. fastai's sweep is
       ``end_lr = start_lr * (end_lr / start_lr) ** ((num_it - 1) / num_it)`` here
   * - iterations
     - ``num_iter=100``
     - ``num_it=100`` (at least 6)
     - ``num_iter``, required (2 to 1,000,000)
   * - LR steps
     - ``step_mode="exp"`` or ``"linear"``
     - exponential only
     - ``mode="exp"`` or ``"linear"``
   * - loss recorded
     - training loss; with ``val_loader``, the validation loss
     - training loss
     - as torch-lr-finder (``val_loader``)
   * - smoothing
     - ``smooth_f=0.05``, weight of the new loss: ``s[0] = l[0]``,
       ``s[i] = smooth_f * l[i] + (1 - smooth_f) * s[i-1]``, no bias correction;
       ``smooth_f=0`` records the raw loss
     - ``Recorder(beta=0.98)``, weight of the past, with bias correction: clr_lib's formula
     - ``smooth_factor=0.98`` (beta), weight of the past, with bias correction (see
       :func:`lr_range_test`). ``smooth_f=f`` is ``smooth_factor=1 - f`` for ``0 < f < 1`` and
       ``smooth_factor=0`` for ``f = 0``. The two averages still differ over the first few times
       ``1 / f`` iterations: torch-lr-finder gives ``l[0]`` the weight ``beta**i`` in ``s[i]``,
       clr_lib ``beta**i * (1 - beta) / (1 - beta**(i + 1))``
   * - early stop
     - ``diverge_th=5``: smoothed loss above 5 times its best so far
     - ``stop_div=True``: above 4 times the best; ``stop_div=False`` never stops
     - ``diverge_threshold=5.0`` (4.0 is fastai's); the same rule for positive losses, and a NaN or
       infinite loss always stops the test
   * - accumulation
     - ``accumulation_steps=1``
     - none
     - ``accumulation_steps=1``
   * - mixed precision
     - ``amp_backend="torch"`` with ``amp_config`` and ``grad_scaler``
     - ``learn.to_fp16()``
     - ``amp=True``, ``amp_dtype``
   * - restoring
     - call ``lr_finder.reset()`` (model and optimizer)
     - automatic (model and optimizer, through a file)
     - automatic (model, optimizer and random generators, in memory)
   * - steepest descent
     - ``lr_finder.plot(suggest_lr=True)`` returns ``(ax, lr)``: the LR at the minimum of
       ``numpy.gradient(losses)``, the first 10 and last 5 points (``skip_start``, ``skip_end``)
       dropped
     - ``steep``: the LR at the most negative forward difference over ``log(lr)``
     - ``result.suggest().steepest_lr``: the centred slope of the lightly averaged loss, the first and
       last ``n // 10`` points dropped, searched only up to the loss minimum
   * - valley
     - none
     - ``valley``, the default ``suggest_funcs``
     - ``suggest().valley_lr``: the same rule, with a start index one higher (fastai's can be -1)
   * - minimum / 10
     - none
     - ``minimum``: the LR of the lowest loss, divided by 10
     - ``suggest().min_over_10_lr``; also ``suggest().max_lr`` when no accuracy was recorded
       (raised to ``start_lr`` if it falls below)
   * - slide
     - none
     - ``slide``
     - none
   * - Smith's bounds
     - none
     - none
     - with ``accuracy=True``: ``suggest().max_lr`` at the peak of the smoothed accuracy,
       ``base_lr = max_lr / 4`` (``base_divisor``)
   * - the picture
     - ``lr_finder.plot()``
     - ``learn.recorder.plot_lr_find()`` (``lr_find`` shows it)
     - ``result.plot()``; ``suggest()`` needs no plot

fastai computes every suggestion on the curve without its first ``num_it // 10`` and last 5 points;
clr_lib's ``valley_lr`` and ``min_over_10_lr`` use the whole finite curve. fastai records the LR of
the last parameter group, clr_lib (like torch-lr-finder) that of group 0.

References:
    L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
    arXiv:1506.01186, section 3.3.
    fast.ai, ``fastai.callback.schedule.lr_find`` and its ``valley``, ``steep`` and
    ``minimum`` suggestion functions.
    J. Howard, S. Gugger, "Deep Learning for Coders with fastai and PyTorch", O'Reilly 2020,
    chapter 5, "The Learning Rate Finder": pick "one order of magnitude less than where the
    minimum loss was achieved (i.e., the minimum divided by 10)".
"""

from __future__ import annotations

import copy
import json
import math
import random
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from numbers import Integral
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import (
    describe_value,
    require_callable,
    require_choice,
    require_finite,
    require_finite_result,
    require_flag,
    require_non_negative_int,
    require_positive_int,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["LRSuggestion", "RangeTestResult", "SweepCheckpoint", "lr_range_test"]

Metric = Callable[[torch.Tensor, Any], float]
Loader = Union[Iterable[Any], Callable[[], Iterable[Any]]]

MIN_POINTS_FOR_SUGGESTION = 5
"""``suggest()`` needs at least this many finite smoothed losses."""

MAX_RANGE_TEST_ITERATIONS = 1_000_000
"""The most iterations :func:`lr_range_test` accepts. A range test takes a few hundred to a few thousand
iterations (Smith's CIFAR-10 test: 4,000); the bound refuses a typo such as ``num_iter=10**13`` at once,
before the LR sweep (8 bytes per iteration) or the recorded curves are allocated."""

MAX_LR_DIVISOR = 10.0
"""The default ``max_lr`` is the LR of the smoothed-loss minimum divided by this (see ``suggest``)."""

_DIVERGENCE_SCALE_FLOOR = 1e-12
"""Smallest loss magnitude the divergence rule measures a rise against (see ``_has_diverged``)."""


@dataclass(frozen=True)
class LRSuggestion:
    """Learning rates read off a range-test curve; every value is a learning rate of group 0.

    Attributes:
        max_lr: the upper bound for a cyclical schedule. When ``max_lr_metric == "accuracy"``,
            the LR at the maximum of the smoothed accuracy. Smith reads ``max_lr`` by eye where
            the accuracy stops rising, slows or turns ragged; the peak lies at or after that
            point, so it is an upper end of his reading, not the reading itself. When ``max_lr_metric == "loss"`` (the default without an accuracy): the LR at
            the minimum of the smoothed loss divided by 10 (= ``min_over_10_lr``), raised to the
            lowest LR swept if it falls below it (with a warning), because the minimum itself lies
            past the largest LR that still converges; see :meth:`RangeTestResult.suggest`.
        base_lr: ``max_lr / base_divisor`` (Smith: divide by 3 or 4).
        steepest_lr: the LR of the most negative slope of the smoothed loss.
        valley_lr: fast.ai's "valley": halfway down the longest descending stretch.
        min_over_10_lr: the LR at the minimum of the smoothed loss, divided by 10.
        max_lr_metric: ``"accuracy"`` or ``"loss"``, the curve max_lr was read from.
    """

    max_lr: float
    base_lr: float
    steepest_lr: float
    valley_lr: float
    min_over_10_lr: float
    max_lr_metric: str


@dataclass(frozen=True, eq=False)
class RangeTestResult:
    """The curves recorded by :func:`lr_range_test`, one entry per iteration.

    Attributes:
        lrs: learning rate of parameter group 0 at each iteration.
        losses: smoothed loss, the debiased exponential moving average of ``raw_losses``
            (see :func:`lr_range_test`).
        raw_losses: loss of each iteration: the mean training loss of its batches, or the
            validation loss when a validation loader was given (``source == "validation"``).
        mode: ``"exp"`` or ``"linear"``, how the LR rose.
        accuracies: smoothed metric (accuracy by default), or None when none was asked for.
        raw_accuracies: the metric of each iteration, or None.
        metric_name: name of the recorded metric (``"accuracy"`` or the callable's name), or None.
        smooth_factor: the EMA factor beta used for ``losses`` and ``accuracies``.
        source: ``"train"`` or ``"validation"``, where losses and metric were measured.
        diverged: True when the test stopped early because the loss diverged.
        stopped_at: the iteration (0-based) at which it stopped early, None when it ran
            all ``num_iter`` iterations.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    mode: str
    accuracies: Optional[np.ndarray] = None
    raw_accuracies: Optional[np.ndarray] = None
    metric_name: Optional[str] = None
    smooth_factor: float = 0.98
    source: str = "train"
    diverged: bool = False
    stopped_at: Optional[int] = None

    def __post_init__(self) -> None:
        require_choice("mode", self.mode, ("exp", "linear"))
        require_choice("source", self.source, ("train", "validation"))
        require_flag("diverged", self.diverged)
        _require("smooth_factor", self.smooth_factor, "a number in [0, 1)", lambda v: 0 <= v < 1)
        if self.stopped_at is not None:
            require_non_negative_int("stopped_at", self.stopped_at)
        for name in ("lrs", "losses", "raw_losses", "accuracies", "raw_accuracies"):
            value = getattr(self, name)
            if value is not None:
                array = np.asarray(value, dtype=float)
                if array.shape != (len(self.lrs),):
                    raise ValueError(
                        f"{name} must be a 1-D sequence as long as lrs ({len(self.lrs)}), "
                        f"got shape {array.shape}"
                    )
                object.__setattr__(self, name, array)

    def suggest(self, *, base_divisor: float = 4.0, metric: Optional[str] = None) -> LRSuggestion:
        r"""Suggest learning rates from the smoothed curves.

        Only the finite prefix of the curves is used (a diverged run may end on NaN or inf).
        With ``n`` finite points, ``x = log10(lrs)`` for the exponential sweep and
        ``x = lrs`` for the linear one, and smoothed losses ``L``:

        * ``max_lr``, read from the accuracy when it was recorded (``metric=None``), else from
          the loss:

          - ``metric == "accuracy"``: ``lrs[argmax(A)]`` over the finite smoothed accuracies
            ``A`` (NaNs are skipped; if every one is NaN the loss rule is used instead, with a
            warning): the peak, where the improvement has stopped. Smith reads ``max_lr`` by eye
            where the accuracy stops rising, slows or turns ragged, which is at or before the
            peak, so this reading errs high (on the book's full-scale CIFAR-10 sweep the climb
            slows at 0.006 and the peak is at 0.013; chapter 5). A cyclical schedule only touches
            ``max_lr`` briefly.
          - ``metric == "loss"`` (**the default** when no accuracy was recorded):
            ``max(lrs[argmin(L)] / 10, lrs[0])``, fast.ai's "minimum/10" (Howard & Gugger 2020).
            The minimum of the smoothed loss itself is no bound: a run just above the largest
            stable LR diverges *slowly*, so its loss keeps falling for a while, and the moving
            average lags behind it. On least squares, where gradient descent diverges above
            :math:`2/\lambda_{max}` exactly, an exponential sweep puts the smoothed minimum at
            2 to 7 times that threshold (full batch; 0.6 to 4.5 times with mini-batch noise), so
            ``max_lr`` at the minimum and ``base_lr = max_lr / 4`` would both diverge. One decade
            below the minimum both sit below the threshold: ``max_lr`` at 0.2-0.7 times it for
            full-batch and 0.06-0.45 times it for mini-batch sweeps in this library's tests
            (``tests/test_hardening_range_test.py``: seeds 0-2, condition numbers 1 to 100, noise
            levels 0 to 1, sweeps of 17 to 170 iterations per decade), ``base_lr`` at 0.015-0.18
            times it. The steepest descent and the valley lie below the threshold too, but further
            (0.008-0.2 times it, moving with the sweep speed), so they stay separate fields.
        * ``base_lr = max_lr / base_divisor`` (Smith: 3 to 4).

        ``suggest`` warns (``UserWarning``) instead of returning a doubtful reading silently:
        when the loss never falls below its first value or the accuracy never rises above its
        first value (the sweep shows no LR that improves training: start lower), when the minimum
        of the loss or the peak of the accuracy is the last point of a run that did not blow up
        (still improving at ``end_lr``: sweep further, the reading is a lower bound on the
        minimum and ``max_lr`` may be too high), when the accuracies are all NaN, and whenever
        ``max_lr``, ``base_lr`` or ``min_over_10_lr`` lies outside the swept range
        ``[lrs[0], lrs[n - 1]]``; the loss-based ``max_lr`` is then raised to ``lrs[0]``, so that
        it is always an LR of the curve.
        * ``steepest_lr = lrs[argmin(numpy.gradient(M, x))]``, where ``M`` is ``L`` lightly
          smoothed by a centred moving average over ``2h + 1`` points, ``h = max(1, n // 50)``
          (ends padded with the end values), so that one odd batch does not make a steep
          point. The first and last ``max(1, n // 10)`` points are skipped (the EMA has
          averaged few losses at the start, the padding and ``numpy.gradient``'s one-sided
          differences distort both ends). Only the descent up to ``argmin(L)`` is searched: a
          loss that jumps up past its minimum and then falls back (a network that forgets and
          returns to chance) has steep drops there that are no advice.
        * ``valley_lr`` (fast.ai's valley): take the longest strictly decreasing
          subsequence of ``L``, from index ``s`` to ``e`` (ties: the earliest); then
          ``lrs[s + floor((e - s) / 3) + floor((e - s) / 6)]``, about halfway down it.
          (fast.ai uses ``e - length`` for ``s``, which is one lower and can be -1.)
        * ``min_over_10_lr = lrs[argmin(L)] / 10`` (fast.ai's "minimum").

        The moving average lags the raw loss by about ``beta / (1 - beta)`` iterations (49 at
        the default 0.98), so its minimum (and the accuracy's peak) comes later than the raw one:
        with a fast sweep the readings overshoot, which the loss rule's factor of 10 absorbs but
        the accuracy rule does not. Give each decade of LR a few hundred iterations (e.g. 1000
        for 1e-5 to 1e-1), or lower ``smooth_factor``.

        Args:
            base_divisor: max_lr / base_lr; Smith recommends 3 to 4. Must be finite and > 1.
            metric: ``"loss"`` or ``"accuracy"`` for max_lr, or None for the default above.

        Returns:
            An :class:`LRSuggestion`.

        Warns:
            UserWarning: as above; the message says what is wrong with the curve and what to do.

        Raises:
            ValueError: fewer than 5 finite points, a bad ``base_divisor`` or ``metric``.

        Example:
            >>> import numpy as np
            >>> lrs = np.logspace(-4, 0, 81)
            >>> losses = (np.log10(lrs) + 1.5) ** 2  # lowest at lr = 10**-1.5 = 0.0316
            >>> bounds = RangeTestResult(lrs=lrs, losses=losses, raw_losses=losses, mode="exp").suggest()
            >>> print(f"{bounds.max_lr:.5f} {bounds.base_lr:.6f} {bounds.max_lr_metric}")
            0.00316 0.000791 loss
        """
        _require("base_divisor", base_divisor, "a finite number > 1 (Smith uses 3 to 4)", lambda v: v > 1)
        metric = metric or ("accuracy" if self.accuracies is not None else "loss")
        self._curve(metric)
        finite = _finite_prefix_length(self.losses)
        if finite < MIN_POINTS_FOR_SUGGESTION:
            raise ValueError(
                f"suggest() needs at least {MIN_POINTS_FOR_SUGGESTION} finite smoothed losses, "
                f"got {finite}; run the range test with a larger num_iter or a lower end_lr"
            )
        lrs, losses = self.lrs[:finite], self.losses[:finite]
        low, high = float(lrs[0]), float(lrs[-1])
        x = np.log10(lrs) if self.mode == "exp" else lrs
        lowest = int(np.argmin(losses))
        min_loss_lr = float(lrs[lowest])
        ended_while_improving = finite == len(self.lrs) and not self.diverged  # no blow-up after the last point
        problems: list[str] = []
        max_lr = math.nan
        if metric == "accuracy":
            name = self.metric_name or "accuracy"
            accuracies = self.accuracies[:finite]
            usable = np.isfinite(accuracies)
            if not usable.any():
                problems.append(f"the smoothed {name} is NaN at all {finite} points of the curve, so max_lr "
                                "is read from the loss instead (max_lr_metric='loss')")
                metric = "loss"
            else:
                peak = int(np.argmax(np.where(usable, accuracies, -np.inf)))
                max_lr = float(lrs[peak])
                if peak == 0:
                    problems.append(f"the smoothed {name} never rises above its value at the first LR "
                                    f"({low:.3g}): the sweep shows no LR that improves training; start it lower "
                                    "or check the model and data")
                elif peak == finite - 1 and ended_while_improving:
                    problems.append(f"the smoothed {name} is still rising at the last LR swept ({high:.3g}): "
                                    "improvement had not stopped, so max_lr is only a lower bound; sweep to a "
                                    "larger end_lr")
        if metric == "loss":
            max_lr = min_loss_lr / MAX_LR_DIVISOR
            if lowest == 0:
                problems.append(f"the smoothed loss never falls below its value at the first LR ({low:.3g}): "
                                "the sweep shows no LR that improves training; start it lower or check the "
                                "model and data")
            elif lowest == finite - 1 and ended_while_improving:
                problems.append(f"the smoothed loss is still falling at the last LR swept ({high:.3g}): its "
                                "minimum, and max_lr = minimum / 10, may lie higher than the curve shows and the "
                                "suggestion may diverge; sweep to a larger end_lr")
            if max_lr < low:
                problems.append(f"max_lr = minimum / 10 = {max_lr:.3g} lies below the lowest LR swept "
                                f"({low:.3g}) and is raised to it; start the sweep at a lower start_lr")
                max_lr = low
        base_lr = max_lr / base_divisor
        min_over_10_lr = min_loss_lr / MAX_LR_DIVISOR
        for field, value in (("max_lr", max_lr), ("base_lr", base_lr), ("min_over_10_lr", min_over_10_lr)):
            if not low <= value <= high:
                problems.append(f"{field} = {value:.3g} lies outside the swept range [{low:.3g}, {high:.3g}], "
                                "where the curve says nothing about it")
        if problems:
            warnings.warn("RangeTestResult.suggest(): " + "; ".join(problems) + ".", UserWarning, stacklevel=2)
        return LRSuggestion(
            max_lr=max_lr,
            base_lr=base_lr,
            steepest_lr=float(lrs[_steepest_index(x, losses)]),
            valley_lr=float(lrs[_valley_index(losses)]),
            min_over_10_lr=min_over_10_lr,
            max_lr_metric=metric,
        )

    def _curve(self, metric: str) -> np.ndarray:
        """The smoothed curve named by metric; ValueError unless it is 'loss' or a recorded 'accuracy'."""
        if metric == "loss":
            return self.losses
        if metric == "accuracy" and self.accuracies is not None:
            return self.accuracies
        allowed = "'loss' or 'accuracy'" if self.accuracies is not None else "'loss' (no metric was recorded)"
        raise ValueError(f"metric must be {allowed}, got {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a dict of plain Python values (arrays become lists)."""
        return {
            name: value.tolist() if isinstance(value, np.ndarray) else value
            for name, value in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeTestResult:
        """Rebuild a result from :meth:`to_dict`'s output."""
        return cls(**data)

    def to_json(self, **json_kwargs: Any) -> str:
        """Serialise with :func:`json.dumps` (keyword arguments pass through).

        NaN and inf (a diverged last point) are written as ``NaN``/``Infinity``, which
        Python's json reads back; strict JSON parsers do not.
        """
        return json.dumps(self.to_dict(), **json_kwargs)

    @classmethod
    def from_json(cls, text: str) -> RangeTestResult:
        """Rebuild a result from :meth:`to_json`'s output."""
        return cls.from_dict(json.loads(text))

    def plot(self, ax: Optional[Axes] = None, metric: str = "loss", show_suggestions: bool = True) -> Axes:
        """Plot the smoothed loss or metric against the learning rate of group 0.

        The LR axis is logarithmic for the exponential sweep. With ``show_suggestions``
        the LRs of :meth:`suggest` are marked by vertical lines listed in the legend.

        Args:
            ax: matplotlib Axes to draw on; a new figure is created when None.
            metric: ``"loss"`` or ``"accuracy"`` (the recorded metric).
            show_suggestions: mark the suggested LRs (raises like :meth:`suggest` when the
                curve is too short); ``True`` or ``False``, not a truthy string.

        Returns:
            The matplotlib Axes.
        """
        from .plotting import new_axes

        require_flag("show_suggestions", show_suggestions)
        values = self._curve(metric)
        name = "loss" if metric == "loss" else self.metric_name
        units = {"loss": "criterion units", "accuracy": "fraction correct"}.get(name, "metric units")
        ax = new_axes(ax)
        finite = np.isfinite(values)
        ax.plot(self.lrs[finite], values[finite], color="black", label=f"smoothed {self.source} {name}")
        if self.mode == "exp":
            ax.set_xscale("log")
        ax.set_xlabel("learning rate of group 0" + (" (log scale)" if self.mode == "exp" else ""))
        ax.set_ylabel(f"smoothed {self.source} {name} ({units})")
        stop = f", diverged at iteration {self.stopped_at}" if self.diverged else ""
        ax.set_title(f"LR range test: {self.mode} sweep over {len(self.lrs)} iterations{stop}")
        if show_suggestions:
            suggestion = self.suggest()
            marks = [  # Okabe-Ito colours, as in clr_lib.plotting
                ("max_lr", suggestion.max_lr, "#D55E00", "-"),
                ("base_lr", suggestion.base_lr, "#0072B2", "-"),
                ("steepest", suggestion.steepest_lr, "#009E73", "--"),
                ("valley", suggestion.valley_lr, "#E69F00", "--"),
                ("min/10", suggestion.min_over_10_lr, "#CC79A7", ":"),
            ]
            for label, lr, color, style in marks:
                ax.axvline(lr, color=color, linestyle=style, label=f"{label} = {lr:.3g}")
        ax.legend()
        return ax


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: Callable[[Any, Any], torch.Tensor],
    train_loader: Loader,
    *,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    mode: str = "exp",
    val_loader: Optional[Loader] = None,
    smooth_factor: float = 0.98,
    diverge_threshold: float = 5.0,
    accuracy: Union[bool, Metric] = False,
    accumulation_steps: int = 1,
    device: Union[torch.device, str, None] = None,
    amp: bool = False,
    amp_dtype: Optional[torch.dtype] = None,
    batch_fn: Optional[Callable[[Any], tuple[Any, Any]]] = None,
    progress: bool = True,
    checkpoint: Optional[SweepCheckpoint] = None,
) -> RangeTestResult:
    r"""Run the LR range test and return the recorded curves.

    Iteration :math:`i = 0, \dots, N-1` (``N = num_iter``) trains with the learning rate

    .. math::
        \text{linear:}\ \ \eta_i = \eta_0 + (\eta_1 - \eta_0)\,\frac{i}{N-1}, \qquad
        \text{exp:}\ \ \eta_i = \eta_0 \left(\frac{\eta_1}{\eta_0}\right)^{i/(N-1)},

    with :math:`\eta_0` = ``start_lr``, :math:`\eta_1` = ``end_lr``, and
    :math:`\eta_{N-1}` set to exactly ``end_lr``. One iteration is ``accumulation_steps``
    batches (forward, backward, gradients accumulated) and one optimizer step. The loader is
    re-iterated whenever it runs out, so ``num_iter`` does not depend on its length.

    When the optimizer has several parameter groups, each keeps its ratio to group 0:
    group ``g`` gets :math:`\eta_i \cdot \text{lr}_g / \text{lr}_0`, the lrs being those the
    optimizer holds at the call (a group at lr 0 stays frozen). ``lrs`` records group 0.

    The loss :math:`\ell_i` of an iteration is the mean of its batch losses, or, with
    ``val_loader``, the loss over the whole validation set (batches weighted by size,
    evaluated in eval mode under ``torch.no_grad``). It is smoothed by the debiased
    exponential moving average (beta = ``smooth_factor``)

    .. math::
        a_i = \beta a_{i-1} + (1 - \beta)\,\ell_i,\quad a_{-1} = 0, \qquad
        \bar\ell_i = a_i / (1 - \beta^{i+1}),

    and the metric the same way. With :math:`b_i = \min_{j \le i} \bar\ell_j` and
    :math:`k` = ``diverge_threshold``, the test stops after iteration :math:`i` when
    :math:`\bar\ell_i` is NaN or infinite or

    .. math::
        \bar\ell_i - b_i > (k - 1) \max(|b_i|, 10^{-12}).

    For a positive best loss this is fast.ai's :math:`\bar\ell_i > k\,b_i`; measured as a
    rise relative to :math:`|b_i|` it also works for losses shifted to be negative, where
    :math:`\bar\ell_i > k\,b_i` would hold from the first iteration.

    Afterwards (also on an exception or KeyboardInterrupt, which propagate) the model's
    parameters, gradients, buffers and per-module train/eval flags, the optimizer's
    ``state`` and ``param_groups`` (every key, none added) and the torch (CPU and CUDA),
    ``random`` and numpy global RNG states are restored from in-memory deep copies.
    Training iterations run with ``model.train()``.

    Args:
        model: the network, already on ``device``; it is not moved.
        optimizer: optimizer over the model's parameters; its lrs are overwritten during the
            test and restored afterwards.
        criterion: ``criterion(outputs, targets)`` returning a scalar tensor.
        train_loader: an iterable of ``(inputs, targets)`` batches that can be iterated
            repeatedly (a DataLoader, a list), or a zero-argument callable returning a fresh
            iterable (e.g. a generator function).
        start_lr: learning rate of iteration 0; positive and finite.
        end_lr: learning rate of the last iteration; finite and greater than start_lr.
        num_iter: number of iterations (LR values), a whole number from 2 to
            :data:`MAX_RANGE_TEST_ITERATIONS` (1,000,000).
        mode: ``"exp"`` (fast.ai, geometric steps) or ``"linear"`` (Smith).
        val_loader: optional validation batches (same kinds as ``train_loader``), evaluated
            in full after every iteration; the recorded loss and metric are then validation ones.
        smooth_factor: EMA factor beta in [0, 1); 0 records the raw loss as the smoothed one.
        diverge_threshold: k > 1 of the divergence rule above (fast.ai uses 4, torch-lr-finder 5).
        accuracy: True records top-1 accuracy, ``mean(outputs.argmax(dim=1) == targets)``
            (outputs of shape (batch, classes, ...)); a callable ``metric(outputs, targets)
            -> float`` records that instead. Averaged like the loss.
        accumulation_steps: batches per iteration (>= 1); their gradients are accumulated on
            ``loss / accumulation_steps`` and the recorded loss is their mean.
        device: where batches are moved; default: the device of the model's first parameter.
        amp: run forward passes under ``torch.autocast`` (with a GradScaler for float16).
        amp_dtype: autocast dtype; default bfloat16 on CPU, float16 elsewhere. Only with amp.
        batch_fn: ``batch_fn(batch) -> (inputs, targets)`` for batches of another shape.
        progress: show a tqdm progress bar (``True`` or ``False``; so must ``amp`` be: a truthy
            string such as ``"False"`` raises ``ValueError``).
        checkpoint: resume a long sweep after a stop: an object with ``load() -> dict | None``,
            ``due() -> bool`` and ``save(state)`` (:class:`SweepCheckpoint`; the book's
            ``clr_book.checkpoint.Checkpoint`` is one). The sweep's state (iteration, model, optimizer,
            grad scaler, the curves so far, the smoothing, the random generators, and the loaders'
            positions) is saved whenever ``due()`` says so, and a saved state is continued from, so
            a resumed sweep gives the uninterrupted sweep's result. The loaders must then have
            ``state_dict()`` and ``load_state_dict()`` (their position in the data), and the model
            and optimizer passed in must be the ones the sweep started from (the state they are
            restored to at the end).

    Returns:
        A :class:`RangeTestResult`; call its ``suggest()`` for base_lr/max_lr and ``plot()``.

    Raises:
        ValueError: on a bad argument (naming it, its value and what is allowed; also a
            ``num_iter`` above 1,000,000, refused before anything is allocated, and a
            ``start_lr``/``end_lr`` pair whose ratio overflows), an empty loader, or a loader that
            cannot be iterated again when it runs out.

    Example::

        result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader,
                               start_lr=1e-6, end_lr=1.0, num_iter=100, accuracy=True)
        bounds = result.suggest()  # bounds.base_lr, bounds.max_lr
        result.plot()
    """
    _check_arguments(start_lr, end_lr, num_iter, mode, smooth_factor, diverge_threshold, accumulation_steps)
    require_callable("criterion", criterion, "a callable criterion(outputs, targets) -> loss tensor")
    if batch_fn is not None:
        require_callable("batch_fn", batch_fn, "None or a callable batch_fn(batch) -> (inputs, targets)")
    amp = require_flag("amp", amp)
    progress = require_flag("progress", progress)
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if _has_no_batches(loader):
            raise ValueError(f"{name} must yield at least one batch, got an empty {type(loader).__name__}")
    if amp_dtype is not None and (not amp or amp_dtype not in (torch.float16, torch.bfloat16)):
        raise ValueError(
            f"amp_dtype must be torch.float16 or torch.bfloat16 with amp=True, got {amp_dtype} with amp={amp}"
        )
    group_ratios = _group_ratios(optimizer)
    lrs = _sweep(start_lr, end_lr, num_iter, mode)
    device = torch.device(device) if device is not None else _model_device(model)
    if amp_dtype is None:
        amp_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    metric, metric_name = _resolve_metric(accuracy)
    if checkpoint is not None:
        for name in ("load", "due", "save"):
            require_callable(f"checkpoint.{name}", getattr(checkpoint, name, None),
                             "a method of a checkpoint (load, due and save)")
        for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
            if loader is not None and not all(callable(getattr(loader, method, None))
                                              for method in ("state_dict", "load_state_dict")):
                raise ValueError(f"{name} must have state_dict() and load_state_dict() to resume a sweep "
                                 f"with a checkpoint, got a {type(loader).__name__}")
    split = batch_fn or _split_pair
    autocast = partial(torch.autocast, device.type, dtype=amp_dtype) if amp else nullcontext

    def forward(batch: Any) -> tuple[torch.Tensor, float | None, int]:
        inputs, targets = _to_device(split(batch), device)
        with autocast():
            outputs = model(inputs)
            loss = criterion(outputs, targets)
        value = float(metric(outputs.detach(), targets)) if metric else None
        return loss, value, len(targets)

    losses, raw_losses, metrics, raw_metrics = [], [], [], []
    smooth_loss, smooth_metric = _DebiasedEMA(smooth_factor), _DebiasedEMA(smooth_factor)
    best, stopped_at = math.inf, None
    bar = tqdm(total=num_iter, desc="LR range test", disable=not progress)
    with _state_restored(model, optimizer), bar:
        scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)
        batches = _endless(train_loader, "train_loader")
        model.train()
        start = 0
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            if not np.array_equal(np.asarray(saved["lrs"]), lrs):
                raise ValueError("checkpoint holds a sweep over other learning rates than this one "
                                 f"({len(saved['lrs'])} from {saved['lrs'][0]:g} to {saved['lrs'][-1]:g})")
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scaler.load_state_dict(saved["scaler"])
            train_loader.load_state_dict(saved["train_loader"])  # type: ignore[union-attr]
            if val_loader is not None:
                val_loader.load_state_dict(saved["val_loader"])  # type: ignore[union-attr]
            losses, raw_losses = list(saved["losses"]), list(saved["raw_losses"])
            metrics, raw_metrics = list(saved["metrics"]), list(saved["raw_metrics"])
            smooth_loss.average, smooth_loss.count = saved["smooth_loss"]
            smooth_metric.average, smooth_metric.count = saved["smooth_metric"]
            best = saved["best"]
            _set_rng_state(saved["rng"])
            start = saved["iteration"]
            bar.update(start)
        for iteration, lr in enumerate(lrs.tolist()[start:], start=start):
            for group, ratio in zip(optimizer.param_groups, group_ratios):
                group["lr"] = lr * ratio
            optimizer.zero_grad(set_to_none=True)
            loss_sum, metric_sum = 0.0, 0.0
            for _ in range(accumulation_steps):
                loss, value, _size = forward(next(batches))
                loss_sum += loss.item()
                metric_sum += value or 0.0
                scaler.scale(loss / accumulation_steps if accumulation_steps > 1 else loss).backward()
            scaler.step(optimizer)
            scaler.update()
            raw_loss, raw_metric = loss_sum / accumulation_steps, metric_sum / accumulation_steps
            if val_loader is not None:
                raw_loss, raw_metric = _evaluate(model, forward, val_loader)
            raw_losses.append(raw_loss)
            losses.append(smooth_loss(raw_loss))
            if metric:
                raw_metrics.append(raw_metric)
                metrics.append(smooth_metric(raw_metric))
            best = min(best, losses[-1])
            bar.update()
            bar.set_postfix(lr=f"{lr:.3g}", loss=f"{losses[-1]:.4g}", refresh=False)
            if _has_diverged(losses[-1], best, diverge_threshold):
                stopped_at = iteration
                break
            if checkpoint is not None and iteration + 1 < num_iter and checkpoint.due():
                checkpoint.save({
                    "iteration": iteration + 1, "lrs": lrs, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                    "train_loader": train_loader.state_dict(),  # type: ignore[union-attr]
                    "val_loader": None if val_loader is None else val_loader.state_dict(),  # type: ignore[union-attr]
                    "losses": losses, "raw_losses": raw_losses, "metrics": metrics, "raw_metrics": raw_metrics,
                    "smooth_loss": (smooth_loss.average, smooth_loss.count),
                    "smooth_metric": (smooth_metric.average, smooth_metric.count), "best": best,
                    "rng": _rng_state(),
                })
    return RangeTestResult(
        lrs=lrs[: len(losses)],
        losses=losses,
        raw_losses=raw_losses,
        mode=mode,
        accuracies=metrics if metric else None,
        raw_accuracies=raw_metrics if metric else None,
        metric_name=metric_name,
        smooth_factor=smooth_factor,
        source="train" if val_loader is None else "validation",
        diverged=stopped_at is not None,
        stopped_at=stopped_at,
    )


def _check_arguments(
    start_lr: float,
    end_lr: float,
    num_iter: int,
    mode: str,
    smooth_factor: float,
    diverge_threshold: float,
    accumulation_steps: int,
) -> None:
    """Raise ValueError naming the first bad argument, its value and what is allowed."""
    _require("start_lr", start_lr, "a positive finite learning rate", lambda v: v > 0)
    _require("end_lr", end_lr, f"a finite learning rate greater than start_lr={start_lr!r}", lambda v: v > start_lr)
    _require("num_iter", num_iter, "a whole number of iterations >= 2",
             lambda v: v >= 2 and isinstance(num_iter, Integral))
    if num_iter > MAX_RANGE_TEST_ITERATIONS:
        raise ValueError(
            f"num_iter must be a whole number of iterations from 2 to {MAX_RANGE_TEST_ITERATIONS:,} (a range test "
            f"takes hundreds to thousands), got {describe_value(num_iter)}"
        )
    require_choice("mode", mode, ("exp", "linear"))
    if mode == "exp":  # the sweep multiplies start_lr by powers of end_lr / start_lr
        require_finite_result("start_lr", start_lr, end_lr / start_lr, "end_lr / start_lr")
    _require("smooth_factor", smooth_factor, "a number in [0, 1)", lambda v: 0 <= v < 1)
    _require("diverge_threshold", diverge_threshold, "a finite number > 1 (a multiple of the best loss)",
             lambda v: v > 1)
    require_positive_int("accumulation_steps", accumulation_steps, "batches")


def _require(name: str, value: Any, what: str, condition: Callable[[float], bool]) -> None:
    """ValueError "{name} must be {what}, got {value!r}" unless value is a finite real meeting condition."""
    if not condition(require_finite(name, value, what)):
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _sweep(start_lr: float, end_lr: float, num_iter: int, mode: str) -> np.ndarray:
    """The LR of each iteration (see :func:`lr_range_test`); the last one is exactly end_lr."""
    fraction = np.arange(num_iter) / (num_iter - 1)
    if mode == "exp":
        lrs = start_lr * (end_lr / start_lr) ** fraction
    else:
        lrs = start_lr + (end_lr - start_lr) * fraction
    lrs[-1] = end_lr
    return lrs


def _group_ratios(optimizer: torch.optim.Optimizer) -> list[float]:
    """lr_g / lr_0 for every parameter group at the start of the test."""
    group_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    if len(group_lrs) > 1 and not (math.isfinite(group_lrs[0]) and group_lrs[0] > 0):
        raise ValueError(
            "optimizer.param_groups[0]['lr'] must be a positive finite learning rate to scale the "
            f"other groups in proportion to it, got {group_lrs[0]!r}"
        )
    return [1.0] + [lr / group_lrs[0] for lr in group_lrs[1:]]


def _has_diverged(smoothed: float, best: float, threshold: float) -> bool:
    """smoothed is NaN/inf or rose above best by more than (threshold - 1) * max(|best|, 1e-12)."""
    if not math.isfinite(smoothed):
        return True
    return smoothed - best > (threshold - 1) * max(abs(best), _DIVERGENCE_SCALE_FLOOR)


class SweepCheckpoint(Protocol):
    """What :func:`lr_range_test` needs of a checkpoint to resume a sweep (see its ``checkpoint``)."""

    def load(self) -> Optional[dict[str, Any]]:
        """The saved state, or None when there is none."""

    def due(self) -> bool:
        """Whether to save now (after the current iteration)."""

    def save(self, state: dict[str, Any]) -> Any:
        """Keep ``state`` (it may raise afterwards, e.g. to stop on a signal)."""


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _DebiasedEMA:
    """Online a_i = beta a_{i-1} + (1 - beta) x_i, returning a_i / (1 - beta^(i+1))."""

    def __init__(self, beta: float) -> None:
        self.beta, self.average, self.count = beta, 0.0, 0

    def __call__(self, value: float) -> float:
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * value
        return self.average / (1 - self.beta**self.count)


def _model_device(model: torch.nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _split_pair(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        f"a batch must be an (inputs, targets) pair, got {type(batch).__name__}; pass batch_fn= to unpack it"
    )


def _to_device(data: Any, device: torch.device) -> Any:
    """Move tensors, also inside tuples, lists and dicts, to device."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, (tuple, list)):
        return type(data)(_to_device(item, device) for item in data)
    if isinstance(data, dict):
        return {key: _to_device(item, device) for key, item in data.items()}
    return data


def _resolve_metric(accuracy: Union[bool, Metric]) -> tuple[Optional[Metric], Optional[str]]:
    """The metric function and its name for lr_range_test's accuracy argument."""
    if accuracy is True:
        return _top1_accuracy, "accuracy"
    if accuracy is False:
        return None, None
    if callable(accuracy):
        return accuracy, getattr(accuracy, "__name__", "metric")
    raise ValueError(
        f"accuracy must be True, False or a callable metric(outputs, targets) -> float, got {accuracy!r}"
    )


def _top1_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return (outputs.argmax(dim=1) == targets).float().mean().item()


def _has_no_batches(loader: Optional[Loader]) -> bool:
    """True when the loader has a length of 0 (loaders without a length are checked as they run)."""
    try:
        return len(loader) == 0  # type: ignore[arg-type]
    except TypeError:
        return False


def _one_pass(loader: Loader) -> Iterable[Any]:
    return loader() if callable(loader) else loader


def _endless(loader: Loader, name: str) -> Iterator[Any]:
    """Yield the loader's batches forever, re-iterating it whenever it runs out."""
    batches_seen = 0
    while True:
        start = batches_seen
        for batch in _one_pass(loader):
            batches_seen += 1
            yield batch
        if batches_seen == start:
            raise _empty_pass_error(name)


def _evaluate(
    model: torch.nn.Module,
    forward: Callable[[Any], tuple[torch.Tensor, Optional[float], int]],
    loader: Loader,
) -> tuple[float, float]:
    """Loss and metric over one pass of loader, batches weighted by size, in eval mode."""
    model.eval()
    loss_sum, metric_sum, count = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in _one_pass(loader):
            loss, value, size = forward(batch)
            loss_sum += loss.item() * size
            metric_sum += (value or 0.0) * size
            count += size
    model.train()
    if count == 0:
        raise _empty_pass_error("val_loader")
    return loss_sum / count, metric_sum / count


def _empty_pass_error(name: str) -> ValueError:
    return ValueError(
        f"{name} must yield at least one batch every time it is iterated, got none; a generator "
        "cannot be re-iterated: pass a list, a DataLoader or a zero-argument callable returning "
        "a fresh iterable"
    )


@contextmanager
def _state_restored(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Deep-copy model, optimizer and RNG state; restore it on exit, also on an exception."""
    tensors = {name: t.detach().clone() for name, t in [*model.named_parameters(), *model.named_buffers()]}
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    modes = [(module, module.training) for module in model.modules()]
    groups = [{key: value if key == "params" else copy.deepcopy(value) for key, value in group.items()}
              for group in optimizer.param_groups]
    state = {param: copy.deepcopy(param_state) for param, param_state in optimizer.state.items()}
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    rng = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    try:
        yield
    finally:
        with torch.no_grad():
            for name, t in [*model.named_parameters(), *model.named_buffers()]:
                t.copy_(tensors[name])
        for name, p in model.named_parameters():
            p.grad = grads[name]
        for module, training in modes:
            module.training = training
        for group, saved in zip(optimizer.param_groups, groups):
            group.clear()
            group.update(saved)
        optimizer.state.clear()
        optimizer.state.update(state)
        torch.set_rng_state(rng[0])
        random.setstate(rng[1])
        np.random.set_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def _finite_prefix_length(values: np.ndarray) -> int:
    """Number of leading finite values."""
    not_finite = np.flatnonzero(~np.isfinite(values))
    return int(not_finite[0]) if not_finite.size else len(values)


def _steepest_index(x: np.ndarray, losses: np.ndarray) -> int:
    """Most negative slope of the moving-averaged losses on the way down to their minimum.

    Skips max(1, n // 10) points at each end; searches only up to the minimum of ``losses`` (a
    loss that shoots up past the minimum and falls back, as when a network forgets and returns
    to chance, has steep descents that are no advice), unless the minimum lies in the skipped start.
    """
    count = len(losses)
    half = max(1, count // 50)
    window = np.full(2 * half + 1, 1 / (2 * half + 1))
    slopes = np.gradient(np.convolve(np.pad(losses, half, mode="edge"), window, mode="valid"), x)
    skip = max(1, count // 10)
    stop = count - skip
    lowest = int(np.argmin(losses))
    if lowest > skip:
        stop = min(stop, lowest + 1)
    return skip + int(np.argmin(slopes[skip:stop]))


def _valley_index(losses: np.ndarray) -> int:
    """fast.ai's valley: about halfway down the longest strictly decreasing subsequence."""
    length = np.ones(len(losses), dtype=int)
    previous = np.full(len(losses), -1)
    for i in range(1, len(losses)):
        higher = np.flatnonzero(losses[:i] > losses[i])
        if higher.size:
            previous[i] = higher[np.argmax(length[higher])]
            length[i] = length[previous[i]] + 1
    end = start = int(np.argmax(length))
    while previous[start] >= 0:
        start = int(previous[start])
    return start + (end - start) // 3 + (end - start) // 6
