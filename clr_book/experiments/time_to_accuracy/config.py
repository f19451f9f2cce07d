r"""The time-to-accuracy comparison's settings: the recipe, the six schedules at an equal budget, the profiles.

Every schedule here is built from :mod:`clr_lib.schedules` (one formula, one place); this module only
chooses their parameters from three numbers: the budget :math:`B` (iterations), the largest learning
rate ``max_lr`` and the number of cycles.

=============  ==============================================================  ===========
name           schedule                                                        iterations
=============  ==============================================================  ===========
fixed          ``constant(base_lr)``                                           :math:`B`
triangular     ``cyclic(base_lr, max_lr, B / (2 c))``: ``c`` whole cycles      :math:`B`
triangular2    the same, amplitude halved every cycle                          :math:`B`
one_cycle      ``one_cycle(max_lr, B, pct_start, "linear")``                    :math:`B`
sgdr           ``cosine_warm_restarts(max_lr, ceil(B / c), min_lr=0)``          :math:`B`
fixed_3x       ``constant(base_lr)``                                           :math:`3B`
=============  ==============================================================  ===========

How the parameters are chosen (Smith's rules, stated once):

* ``max_lr`` is the largest rate that still trains well. A profile with a :class:`LRRangeTest` (``cpu``)
  reads it off an LR range test of the very network it trains (Smith 2017, section 3.3), run once
  before the comparison (:func:`~clr_book.experiments.time_to_accuracy.run.lr_bounds_for`). The
  others take it from the recipe: for ResNet-9 at batch 512, Page's tuned one-cycle peak, 0.4 with the
  mean loss, i.e. :math:`0.4 / 512` per image, scaled linearly with the batch size (Page writes it the
  same way, per image, with a summed loss).
* ``base_lr = max_lr / 4``: Smith's rule of thumb (``base_lr`` a third to a quarter of ``max_lr``).
  The fixed baseline uses ``base_lr``: the largest rate one would hold constant for a whole run.
* Cyclical schedules stop at the END of a cycle, where the rate is back at its minimum (Smith's
  guideline): ``c`` whole triangles of ``B / c`` iterations each, step size :math:`B / (2c)` (possibly
  fractional). SGDR gets ``c`` cosine periods of ``ceil(B / c)`` iterations, so its last period ends at
  (or one iteration after) the budget.
* One-cycle rises linearly from ``max_lr / 25`` to ``max_lr`` over the first ``pct_start`` of the budget
  and falls linearly to ``max_lr / 250,000`` (torch's defaults ``div_factor=25``,
  ``final_div_factor=1e4``), like Page's piecewise-linear schedule.
* Momentum is the same constant 0.9 (Nesterov) for every schedule, so only the LR differs.

References: Smith (2017) for the cyclical schedules and the bound rules; Smith & Topin (2017) for
one-cycle; Loshchilov & Hutter (2016) for SGDR; Page (2018), "How to train your ResNet", for the
ResNet-9 recipe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from clr_lib import schedules
from clr_lib._validation import require_positive, require_positive_int, require_unit_interval

from ..common import choose_profile
from ..range_test.config import MODES as RANGE_TEST_MODES
from ..range_test.config import Sweep

__all__ = ["CPU_TARGET_ACCURACY", "DEMONSTRATION_NOTE", "PROFILES", "SCHEDULE_LABELS", "SCHEDULE_NAMES",
           "LRBounds", "LRRangeTest", "Recipe", "ScheduleRun", "TTAProfile", "equal_budget_schedules",
           "recipe_bounds", "resolve_tta_profile"]

SCHEDULE_NAMES = ("fixed", "triangular", "triangular2", "one_cycle", "sgdr", "fixed_3x")
"""The six runs of the comparison, in the order the chapter shows them."""

SCHEDULE_LABELS = {
    "fixed": "fixed LR",
    "triangular": "triangular",
    "triangular2": "triangular2",
    "one_cycle": "one-cycle",
    "sgdr": "SGDR",
    "fixed_3x": "fixed LR, 3x budget",
}


AMP_DTYPES = ("auto", "bf16", "fp16", None)
"""Values of :attr:`Recipe.amp_dtype` (resolved per device by :func:`clr_book.cifar.precision.autocast_dtype_for`)."""


@dataclass(frozen=True)
class Recipe:
    """How ResNet-9 is trained fast; every schedule of the comparison shares it.

    Each choice, and why it makes training faster or better in a short budget:

    Attributes:
        base_width: ResNet-9's prep-layer channels (64 = Page's net, 6.57 M parameters); see
            :func:`clr_book.cifar.models.resnet9_widths`.
        batch_size: images per iteration. 512 keeps a large GPU busy; fewer, larger steps.
        max_lr_per_image: the peak LR per image of the batch; ``max_lr = max_lr_per_image * batch_size``
            (the linear scaling rule; Page's 0.4 at batch 512 with the mean loss).
        base_lr_divisor: ``base_lr = max_lr / base_lr_divisor`` (Smith: 3 to 4).
        momentum: SGD momentum, constant.
        nesterov: Nesterov momentum (Page, airbench).
        weight_decay: L2 coefficient of torch's SGD on every parameter (Page's 5e-4 per image with a
            summed loss is 5e-4 with the mean loss).
        label_smoothing: cross-entropy against smoothed targets (Page's 0.2): a cheap regulariser that
            helps short runs.
        crop_padding: random translation by up to this many pixels (reflect padding), on the device.
            airbench uses 2 for short runs: weaker augmentation suits a short budget.
        flip: random horizontal flips, on the device.
        test_time_flip: average the logits of each test image and its mirror image (twice the
            evaluation work, no training cost; evaluation time is not training time).
        amp_dtype: autocast dtype on CUDA: ``"auto"`` (bf16, which needs no gradient scaler, on GPUs that
            compute in it natively; fp16 with a scaler on older ones such as Colab's T4; see
            :func:`clr_book.cifar.precision.autocast_dtype_for`), ``"bf16"``, ``"fp16"`` or None. The CPU uses float32.
        channels_last: NHWC tensors, what cuDNN's and oneDNN's fast convolutions want.
        pct_start: one-cycle's rising fraction of the budget (Page: 5 of 24 epochs, ~0.2).
        cycles: whole cycles of the cyclical schedules and SGDR in the budget.
    """

    base_width: int = 64
    batch_size: int = 512
    max_lr_per_image: float = 0.4 / 512
    base_lr_divisor: float = 4.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    crop_padding: int = 2
    flip: bool = True
    test_time_flip: bool = True
    amp_dtype: str | None = "auto"
    channels_last: bool = True
    pct_start: float = 0.25
    cycles: int = 2

    def __post_init__(self) -> None:
        require_positive_int("base_width", self.base_width, unit="channels")
        require_positive_int("batch_size", self.batch_size, unit="images")
        require_positive("max_lr_per_image", self.max_lr_per_image)
        require_positive("base_lr_divisor", self.base_lr_divisor)
        if self.base_lr_divisor < 1:
            raise ValueError(f"base_lr_divisor must be >= 1 (base_lr <= max_lr), got {self.base_lr_divisor!r}")
        require_unit_interval("momentum", self.momentum)
        require_unit_interval("pct_start", self.pct_start)
        require_positive_int("cycles", self.cycles, unit="cycles")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {', '.join(map(repr, AMP_DTYPES))}, got {self.amp_dtype!r}")

    @property
    def max_lr(self) -> float:
        """The peak learning rate for the mean loss: ``max_lr_per_image * batch_size``."""
        return self.max_lr_per_image * self.batch_size

    @property
    def base_lr(self) -> float:
        """``max_lr / base_lr_divisor``: the bottom of the cycles and the fixed baseline's rate."""
        return self.max_lr / self.base_lr_divisor

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the derived ``max_lr`` and ``base_lr``."""
        return {**asdict(self), "max_lr": self.max_lr, "base_lr": self.base_lr}


@dataclass(frozen=True)
class LRRangeTest:
    """The LR range test that sets ``max_lr`` and ``base_lr`` of a profile's runs (Smith 2017, section 3.3).

    It trains the profile's own network (same width, batch, optimizer, weight decay, label smoothing and
    augmentation as the runs) from a fresh initialisation while the LR rises once per iteration from
    ``sweep.start_lr`` to ``sweep.end_lr`` (:func:`clr_lib.lr_range_test`), then reads the bounds with
    :meth:`clr_lib.RangeTestResult.suggest`:

    * a held-out sweep (``sweep.held_out``) records the accuracy on ``held_out_images`` training images
      kept out of the sweep (never the test set, which only the runs' evaluations see), a batch of
      ``held_out_batch_size`` of them after every iteration in rotation; ``max_lr`` is then Smith's
      reading, the LR at the peak of the smoothed held-out accuracy;
    * a training sweep reads the smoothed training loss; ``max_lr`` is its minimum's LR / 10 (fast.ai).

    ``base_lr = max_lr / recipe.base_lr_divisor`` in both cases.

    Attributes:
        mode: ``"linear"`` (Smith) or ``"exp"`` (fast.ai), how the LR rises.
        sweep: the LRs and iterations (:class:`clr_book.experiments.range_test.config.Sweep`).
        held_out_images: training images held out of a held-out sweep's training, its validation set.
        held_out_batch_size: held-out images classified after every iteration of a held-out sweep.
        seed: seeds the initialisation, the shuffling, the augmentation and the held-out split.
        smooth_factor: the EMA factor of the smoothed curves.
    """

    mode: str
    sweep: Sweep
    held_out_images: int = 5000
    held_out_batch_size: int = 250
    seed: int = 0
    smooth_factor: float = 0.98

    def __post_init__(self) -> None:
        if self.mode not in RANGE_TEST_MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, RANGE_TEST_MODES))}, got {self.mode!r}")
        require_positive_int("held_out_images", self.held_out_images, unit="images")
        require_positive_int("held_out_batch_size", self.held_out_batch_size, unit="images")
        require_positive_int("sweep.num_iter", self.sweep.num_iter)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LRBounds:
    """The two learning rates every schedule of a comparison is built from, and where they came from.

    Attributes:
        max_lr: the peak (triangular, triangular2, one-cycle, SGDR).
        base_lr: the bottom of the triangles and the fixed runs' rate.
        source: ``"recipe"`` (:class:`Recipe`'s per-image peak) or ``"range test"``.
        range_test: for ``"range test"``: the results file, the sweep, the reading rule and the full
            suggestion; None otherwise.
    """

    max_lr: float
    base_lr: float
    source: str
    range_test: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        require_positive("max_lr", self.max_lr)
        require_positive("base_lr", self.base_lr)
        if self.base_lr > self.max_lr:
            raise ValueError(f"base_lr must be <= max_lr, got base_lr={self.base_lr!r} > max_lr={self.max_lr!r}")
        if self.source not in ("recipe", "range test"):
            raise ValueError(f"source must be 'recipe' or 'range test', got {self.source!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_bounds(recipe: Recipe) -> LRBounds:
    """The recipe's own bounds: ``max_lr = max_lr_per_image * batch_size``, ``base_lr = max_lr / divisor``."""
    return LRBounds(recipe.max_lr, recipe.base_lr, "recipe")


@dataclass(frozen=True)
class ScheduleRun:
    """One run of the comparison: a name, its LR schedule and how many iterations it trains.

    Attributes:
        name: one of :data:`SCHEDULE_NAMES`.
        label: for legends and tables.
        schedule: the clr_lib schedule (iteration -> LR), defined for at least ``iterations`` steps.
        iterations: the run's budget in iterations (``B``, or ``3B`` for ``fixed_3x``).
        notes: how the parameters were chosen.
    """

    name: str
    label: str
    schedule: schedules.Schedule
    iterations: int
    notes: tuple[str, ...] = field(default=())


def equal_budget_schedules(
    budget: int,
    max_lr: float,
    base_lr: float | None = None,
    *,
    cycles: int = 2,
    pct_start: float = 0.25,
    names: tuple[str, ...] | list[str] | None = None,
) -> dict[str, ScheduleRun]:
    """The comparison's schedules at an equal budget of ``budget`` iterations (``fixed_3x``: three times it).

    Args:
        budget: :math:`B`, iterations of every run but ``fixed_3x``, >= 2 * ``cycles``.
        max_lr: the largest LR (peak of triangular, triangular2, one-cycle and SGDR).
        base_lr: bottom of the triangles and the fixed LR; default ``max_lr / 4`` (Smith's rule).
        cycles: whole triangles (and SGDR periods) in the budget, >= 1.
        pct_start: one-cycle's rising fraction, in (0, 1).
        names: which runs, in :data:`SCHEDULE_NAMES` order; default all six.

    Returns:
        name -> :class:`ScheduleRun`, in the order of ``names``.

    Raises:
        ValueError: a budget shorter than two iterations per cycle, bad LRs, an unknown name, a one-cycle
            phase shorter than one iteration (only when ``one_cycle`` is asked for).
    """
    require_positive_int("budget", budget)
    require_positive_int("cycles", cycles, unit="cycles")
    if budget < 2 * cycles:
        raise ValueError(f"budget must hold at least 2 iterations per cycle ({2 * cycles}), got {budget!r}")
    peak = require_positive("max_lr", max_lr)
    low = peak / 4 if base_lr is None else require_positive("base_lr", base_lr)
    if low > peak:
        raise ValueError(f"base_lr must be <= max_lr, got base_lr={base_lr!r} > max_lr={max_lr!r}")
    chosen = list(SCHEDULE_NAMES if names is None else names)
    unknown = [name for name in chosen if name not in SCHEDULE_NAMES]
    if unknown or not chosen:
        raise ValueError(f"names must be a non-empty selection of {', '.join(SCHEDULE_NAMES)}, got {names!r}")

    step_size = budget / (2 * cycles)  # iterations per half cycle: `cycles` whole triangles end at the budget
    period = math.ceil(budget / cycles)
    ratio = f"max_lr / base_lr = {peak / low:g}"
    one_cycle_steps = budget  # one_cycle raises ValueError itself when a phase would be under one iteration
    builders = {
        "fixed": lambda: ScheduleRun("fixed", SCHEDULE_LABELS["fixed"], schedules.constant(low), budget,
                                     (f"constant at base_lr = {low:g} ({ratio})",)),
        "triangular": lambda: ScheduleRun(
            "triangular", SCHEDULE_LABELS["triangular"], schedules.cyclic(low, peak, step_size), budget,
            (f"{cycles} whole cycles of {2 * step_size:g} iterations (step size {step_size:g}); ends at base_lr",)),
        "triangular2": lambda: ScheduleRun(
            "triangular2", SCHEDULE_LABELS["triangular2"], schedules.cyclic(low, peak, step_size, mode="triangular2"),
            budget, (f"{cycles} whole cycles of {2 * step_size:g} iterations, amplitude halved each cycle",)),
        "one_cycle": lambda: ScheduleRun(
            "one_cycle", SCHEDULE_LABELS["one_cycle"],
            schedules.one_cycle(peak, one_cycle_steps, pct_start=pct_start, anneal_strategy="linear"), budget,
            (f"linear up for {pct_start:.0%} of the budget to max_lr, then linearly down to max_lr / 250,000",)),
        "sgdr": lambda: ScheduleRun(
            "sgdr", SCHEDULE_LABELS["sgdr"], schedules.cosine_warm_restarts(peak, period, 1, 0.0), budget,
            (f"{cycles} cosine periods of {period} iterations from max_lr to 0, restarting at max_lr",)),
        "fixed_3x": lambda: ScheduleRun("fixed_3x", SCHEDULE_LABELS["fixed_3x"], schedules.constant(low), 3 * budget,
                                        (f"constant at base_lr = {low:g} for three times the budget",)),
    }
    return {name: builders[name]() for name in chosen}


@dataclass(frozen=True)
class TTAProfile:
    """A run size of the time-to-accuracy comparison.

    Attributes:
        name: ``full``, ``cpu``, ``quick`` or ``smoke``.
        train_size: training images (class-balanced subset, seed 0, the same for every seed), None = all.
        test_size: test images (class-balanced subset), None = all.
        budget_epochs: the budget ``B`` in epochs; ``B = round(budget_epochs * iterations_per_epoch)``
            iterations with ``iterations_per_epoch = train_images // batch_size``.
        evals_per_epoch: test evaluations per epoch (the resolution of the time to target).
        seeds: the seeds of each schedule's runs.
        target_accuracy: the accuracy whose time is measured (fraction).
        recipe: the training recipe (network width, batch size, LRs, regularisation, precision).
        eval_batch_size: test images per evaluation batch.
        warmup_iterations: untimed iterations before the first run (CUDA only; 0 = none).
        range_test: the LR range test whose reading sets ``max_lr`` and ``base_lr`` of every run, or None to
            take them from the recipe (:func:`recipe_bounds`).
        demonstration: the profile shows the method at work on too little data or time to say anything
            about the schedules (quick, smoke); its tables and figures say so (:data:`DEMONSTRATION_NOTE`).
    """

    name: str
    train_size: int | None
    test_size: int | None
    budget_epochs: float
    evals_per_epoch: int
    seeds: tuple[int, ...]
    target_accuracy: float
    recipe: Recipe
    eval_batch_size: int = 1000
    warmup_iterations: int = 0
    range_test: LRRangeTest | None = None
    demonstration: bool = False

    def iterations_per_epoch(self, train_images: int) -> int:
        """Full batches per pass over ``train_images`` (``drop_last``)."""
        return max(train_images // self.recipe.batch_size, 1)

    def budget(self, train_images: int) -> int:
        """``B`` in iterations for a training split of ``train_images``."""
        return max(round(self.budget_epochs * self.iterations_per_epoch(train_images)), 2 * self.recipe.cycles)

    def eval_every(self, train_images: int) -> int:
        """Iterations between evaluations."""
        return max(self.iterations_per_epoch(train_images) // self.evals_per_epoch, 1)

    def epochs(self, iterations: float, train_images: int) -> float:
        """``iterations`` as epochs of ``train_images`` (``iterations / iterations_per_epoch``)."""
        return iterations / self.iterations_per_epoch(train_images)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recipe"] = self.recipe.to_dict()
        out["seeds"] = list(self.seeds)
        return out


DEMONSTRATION_NOTE = (
    "A demonstration of the method: too little data or training to say which schedule is better; "
    "its numbers are not a result."
)
"""The label every table and figure of a demonstration profile (``quick``, ``smoke``) carries."""

CPU_TARGET_ACCURACY = 0.80
"""The ``cpu`` profile's target test accuracy, 80 %, fixed before any run of the profile was made.

Chosen from what the network can be expected to reach, not from its runs (none had been made): a
ResNet-9 of base width 16 (about 410,000 parameters) trained for 8 epochs on the 50,000 JPEG-recompressed
images (about 3 points below the originals) should end in the low-to-mid 80s with an annealed schedule
and lower with a constant rate. 80 % is then a level the better schedules pass in the second half of
the budget and a constant rate may not reach at all, so the iterations (and epochs) to it separate the
schedules, which a target every run passes early, or none reaches, would not. It is read at the
evaluations (four per epoch), so its resolution is a quarter of an epoch."""

PROFILES: dict[str, TTAProfile] = {
    "full": TTAProfile("full", None, None, budget_epochs=10, evals_per_epoch=2, seeds=(0, 1, 2),
                       target_accuracy=0.90, recipe=Recipe(), eval_batch_size=2000, warmup_iterations=50),
    "cpu": TTAProfile(
        "cpu", None, None, budget_epochs=8, evals_per_epoch=4, seeds=(0, 1), target_accuracy=CPU_TARGET_ACCURACY,
        recipe=Recipe(base_width=16, batch_size=256, amp_dtype=None, test_time_flip=False), eval_batch_size=250,
        range_test=LRRangeTest("exp", Sweep(start_lr=1e-3, end_lr=10.0, num_iter=800, held_out=False)),
    ),
    "quick": TTAProfile("quick", 1280, 500, budget_epochs=8, evals_per_epoch=2, seeds=(0,), target_accuracy=0.45,
                        recipe=Recipe(base_width=8, batch_size=64, amp_dtype=None), eval_batch_size=250,
                        demonstration=True),
    "smoke": TTAProfile("smoke", 200, 100, budget_epochs=0.8, evals_per_epoch=2, seeds=(0,), target_accuracy=0.2,
                        recipe=Recipe(base_width=4, batch_size=20, amp_dtype=None), eval_batch_size=100,
                        demonstration=True),
}
"""The four profiles.

* ``full`` (a GPU): Page's ResNet-9 for 10 epochs at batch 512, LRs from Page's recipe; the target is the
  issue's 90 %.
* ``cpu``: the real comparison on a 2-core CPU, sized so that one run of the budget ``B`` takes at most
  about 10 minutes on two idle cores (``fixed_3x`` three times that, by design): all 50,000 training and
  10,000 test images, ResNet-9 of base width 16 (widths 16, 32, 64, 128: 1/16 of Page's compute per
  image, 0.14 GFLOP per training image), batch 256 (the cheapest per image on the CPU), float32,
  ``B`` = 8 epochs = 1,560 iterations (195 per epoch; cycles of 4 epochs, step size 2), two seeds, four
  evaluations per epoch of all 10,000 test images without the flip (the flip would double the cost of
  an evaluation). ``max_lr`` and ``base_lr`` come from an LR range test of this very network
  (:class:`LRRangeTest`: an exponential sweep from 0.001 to 10 over 800 iterations, 200 per decade of LR
  and about 4 epochs, read on the smoothed training loss, ``max_lr`` = its minimum's LR / 10,
  ``base_lr = max_lr / 4``), run once before the comparison, never from the recipe's per-image peak
  (which the record of the recipe still carries, unused). The target is :data:`CPU_TARGET_ACCURACY`, fixed in advance. Its time to
  target is read in iterations and epochs: the runs share a busy machine, so their seconds are not
  comparable (a dedicated idle run measures seconds; see ``benchmarks/README.md``).
* ``quick``: a **demonstration of the method** for the chapter's live run. It shrinks the data, not the
  schedule: the ``cpu`` profile's 8-epoch budget with two cycles of 4 epochs (step size 2 epochs), on a
  class-balanced subset of 1,280 training and 500 test images, ResNet-9 of base width 8, batch 64
  (20 iterations per epoch, ``B`` = 160), float32, one seed, two evaluations per epoch. Its target, 45 %,
  was set after one trial run of the profile (seed 0, the JPEG copy) ended at 41 to 51 %, so that its
  time-to-target columns show the measurement at work; it says nothing about which schedule is better.
  Evaluations are in batches of 250 (faster than 1,000 with oneDNN on 2 cores).
* ``smoke``: a few iterations for the test suite; also a demonstration."""


def resolve_tta_profile(name: str, device_type: str) -> TTAProfile:
    """The profile called ``name``; ``"auto"`` is ``full`` on ``"cuda"`` and ``quick`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile``).
    """
    return choose_profile(name, PROFILES, device_type)
