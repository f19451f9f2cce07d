r"""Seven learning-rate schedules trained at an equal budget: the trained comparison of chapter 4
(its section "Training with the schedules", ``book/04b_training_with_schedules.ipynb``).

One small network, a narrow :class:`~clr_book.cifar.models.ResNet9`, is trained on a class-balanced
subset of CIFAR-10 under seven schedules. Every run takes the same number of iterations :math:`B`,
starts from the same initial weights and sees the same images in the same order with the same
augmentation; only the learning rate differs.

**The bounds**, one rule fixed before any run (:func:`find_bounds`):

* ``max_lr``: an exponential LR range test (:func:`clr_lib.lr_range_test`) on the same network,
  optimizer, data and batch size, from ``1e-3`` to ``10``; fast.ai's reading, the LR at the minimum
  of the smoothed loss divided by 10 (:meth:`clr_lib.RangeTestResult.suggest`), rounded down to one
  significant figure. The test runs once per comparison (with the comparison's first seed), and
  every schedule and seed uses its result.
* ``base_lr = max_lr / 4``: Smith's rule of thumb (a third to a quarter of ``max_lr``).

**The schedules** at budget :math:`B` with :math:`c` cycles (:func:`equal_budget_schedules`):

=============  ===================================================================================
name           schedule
=============  ===================================================================================
fixed          ``constant(base_lr)``: the bottom of the cycles, held for the whole run
step           ``step_decay(max_lr, [B/2, 3B/4], 0.1)``: the step-down recipe of He et al.'s ResNets
triangular     ``cyclic(base_lr, max_lr, B / (2c))``: :math:`c` whole cycles, ending at ``base_lr``
triangular2    the same with ``mode="triangular2"`` (amplitude halved every cycle)
exp_range      the same with ``mode="exp_range"`` and :math:`\gamma = 0.1^{1/B}`: a tenth of the
               amplitude is left at the end, as in the paper's run (8 % after 42,000 iterations)
one_cycle      ``one_cycle(max_lr, B)`` with PyTorch's defaults: 30 % of the budget up from
               ``max_lr / 25``, then a cosine down to ``max_lr / 250,000``
sgdr           ``cosine_warm_restarts(max_lr, ceil(B / c), 1, min_lr=0)``: :math:`c` cosine periods
=============  ===================================================================================

**Training** (:func:`train_schedule`): :func:`clr_book.cifar.train.train` with SGD (Nesterov momentum
0.9, weight decay 5e-4), standard normalisation, random crops (2 pixels, reflect) and flips, plain
cross-entropy, on ``setup.threads`` CPU threads (one by default: two threads competing with another
process on a 2-core machine slow oneDNN's convolutions down far more than they gain).

**Profiles** (:data:`PROFILES`): ``live`` is what that section trains while the reader waits; ``long`` is
the same code on twice the images for several times the iterations and three seeds, whose results
files the chapter draws beside the live run; ``smoke`` is for the tests.

Run from the shell (writes one JSON results file per run and one for the range test)::

    python -m clr_book.experiments.schedule_comparison --profile long --out clr_book/results/schedule_comparison

References: Smith (2017) for the cyclical schedules, the range test and the bound rules; Smith & Topin
(2017) for one-cycle; Loshchilov & Hutter (2016) for SGDR; He et al. (2016) for step decay; the
"Learning Rate Scheduling" section of Dive into Deep Learning (Zhang et al.) for the idea of training
one small network under every schedule.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import clr_lib
from clr_lib import schedules
from clr_lib._validation import require_non_negative_int, require_positive
from clr_lib.plotting import SCHEDULE_COLORS

from ..chapter_parameters import require_between
from ..cifar.data import CIFAR10, Augmentation, to_device
from ..cifar.models import ResNet9, count_parameters, resnet9_widths
from ..cifar.train import train
from . import provenance
from .common import (
    checkpoint_for,
    experiment_parser,
    load_data,
    names_option,
    resolve_device,
    resolve_run_options,
    run_cli,
    seeds_option,
    subset_for,
)
from .records import read_records, write_record

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .common import RunOptions

__all__ = [
    "PROFILES",
    "RANGE_TEST_SCHEMA",
    "SCHEDULE_LABELS",
    "SCHEDULE_NAMES",
    "SCHEDULE_STYLES",
    "SCHEMA",
    "Bounds",
    "Setup",
    "equal_budget_schedules",
    "find_bounds",
    "load_results",
    "main",
    "plot_comparison",
    "run_comparison",
    "seed_spread",
    "subset",
    "summarize",
    "train_schedule",
]

SCHEMA = "clr_book.experiments.schedule_comparison/1"
"""The ``schema`` of every training-run results file this module writes."""

RANGE_TEST_SCHEMA = "clr_book.experiments.schedule_comparison.range_test/1"
"""The ``schema`` of the range-test results file (the bounds every run used)."""

SCHEDULE_NAMES = ("fixed", "step", "triangular", "triangular2", "exp_range", "one_cycle", "sgdr")
"""The seven schedules, in the order the chapter shows them."""

SCHEDULE_LABELS = {
    "fixed": "fixed",
    "step": "step decay",
    "triangular": "triangular",
    "triangular2": "triangular2",
    "exp_range": "exp_range",
    "one_cycle": "one-cycle",
    "sgdr": "SGDR",
}

SCHEDULE_STYLES: Mapping[str, Mapping[str, Any]] = {
    name: {"color": SCHEDULE_COLORS.get(name, "#000000"), "linestyle": "--" if name == "step" else "-"}
    for name in SCHEDULE_NAMES
}
"""Line styles: the book's colour of each family (:data:`clr_lib.plotting.SCHEDULE_COLORS`); step decay
has none of its own, so it is the fixed rate's black, dashed."""

RANGE_TEST_START_LR, RANGE_TEST_END_LR = 1e-3, 10.0
BASE_LR_DIVISOR = 4.0
EXP_RANGE_LEFT_AT_END = 0.1


@dataclass(frozen=True)
class Setup:
    """What one comparison trains: the data subset, the budget, the network and the optimizer.

    The checks in ``__post_init__`` serve the chapter's parameter cell too: a value outside the range
    the comparison can run raises ``ValueError`` with a sentence that names the range.

    Attributes:
        name: the profile's name (``live``, ``long``, ``smoke`` or the reader's own).
        train_images: training images, a class-balanced subset (subset seed 0 for every run).
        test_images: test images the accuracy and test loss are measured on (class-balanced).
        iterations: the budget :math:`B`: every schedule trains exactly this many iterations.
        batch_size: images per iteration.
        cycles: whole cycles of the cyclical schedules and SGDR periods in the budget.
        evaluations: test evaluations per run, evenly spaced (the last at iteration :math:`B`).
        base_width: ResNet-9's prep-layer channels (:func:`clr_book.cifar.models.resnet9_widths`).
        range_test_iterations: iterations of the LR range test that sets ``max_lr``.
        range_test_smoothing: the range test's EMA factor; a short test needs less smoothing than
            fast.ai's 0.98, whose moving average lags about 50 iterations.
        momentum: SGD's momentum (Nesterov), the same for every schedule.
        weight_decay: SGD's weight decay.
        crop_padding: random translation by up to this many pixels.
        threads: CPU threads torch uses while training (None: leave torch's setting alone).
        seeds: the seeds a comparison runs (initialisation, data order, augmentation).
    """

    name: str
    train_images: int
    test_images: int
    iterations: int
    batch_size: int
    cycles: int = 2
    evaluations: int = 8
    base_width: int = 8
    range_test_iterations: int = 80
    range_test_smoothing: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_padding: int = 2
    threads: int | None = 1
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        require_between("train_images", self.train_images, 100, 50_000, whole=True, unit="images")
        require_between("test_images", self.test_images, 10, 10_000, whole=True, unit="images")
        require_between("batch_size", self.batch_size, 2, min(1024, self.train_images), whole=True,
                        unit="images (at most the number of training images)")
        require_between("cycles", self.cycles, 1, 10, whole=True, unit="cycles")
        # one-cycle needs a rising phase of at least one iteration (0.3 B >= 2) and each cycle at
        # least 10 iterations to draw a triangle
        require_between("iterations", self.iterations, max(20, 10 * self.cycles), 100_000, whole=True,
                        unit=f"iterations (at least 10 per cycle with cycles = {self.cycles})")
        require_between("evaluations", self.evaluations, 1, self.iterations, whole=True,
                        unit="evaluations (at most one per iteration)")
        require_between("base_width", self.base_width, 1, 128, whole=True, unit="channels")
        require_between("range_test_iterations", self.range_test_iterations, 10, 10_000, whole=True,
                        unit="iterations")
        require_between("range_test_smoothing", self.range_test_smoothing, 0.0, 0.99)
        require_between("momentum", self.momentum, 0.0, 0.99)
        require_between("weight_decay", self.weight_decay, 0.0, 0.1)
        require_between("crop_padding", self.crop_padding, 0, 8, whole=True, unit="pixels")
        if self.threads is not None:
            require_between("threads", self.threads, 1, 256, whole=True, unit="threads")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be one or more whole numbers >= 0, got {self.seeds!r}")

    @property
    def eval_every(self) -> int:
        """Iterations between test evaluations: ``ceil(iterations / evaluations)``."""
        return math.ceil(self.iterations / self.evaluations)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seeds": list(self.seeds), "eval_every": self.eval_every}


PROFILES: dict[str, Setup] = {
    "live": Setup("live", train_images=5_000, test_images=1_000, iterations=128, batch_size=64),
    "long": Setup("long", train_images=10_000, test_images=2_000, iterations=512, batch_size=64,
                  range_test_iterations=200, range_test_smoothing=0.95, seeds=(0, 1, 2)),
    "smoke": Setup("smoke", train_images=200, test_images=50, iterations=20, batch_size=20, evaluations=2,
                   base_width=2, range_test_iterations=12),
}
"""The comparison's sizes. ``live`` (the chapter, one seed) is sized to train all seven schedules in
under two minutes on a 2-core CPU; ``long`` (twice the images, four times the iterations, three seeds)
is the committed run; ``smoke`` is for the tests."""


# ----------------------------------------------------------------------------------------------
# The schedules and their bounds
# ----------------------------------------------------------------------------------------------


def equal_budget_schedules(
    iterations: int, max_lr: float, base_lr: float | None = None, *, cycles: int = 2,
    names: Sequence[str] | None = None,
) -> dict[str, schedules.Schedule]:
    r"""The comparison's schedules, each defined for (at least) ``iterations`` iterations.

    See the module docstring for the table. Every schedule is built by a :mod:`clr_lib.schedules`
    factory; this function only chooses their arguments from :math:`B` = ``iterations``, the bounds
    and :math:`c` = ``cycles``.

    Args:
        iterations: the budget :math:`B`, at least 10 per cycle.
        max_lr: the largest LR.
        base_lr: the bottom of the cycles and the fixed rate; default ``max_lr / 4``.
        cycles: whole cycles of triangular, triangular2 and exp_range, and SGDR periods.
        names: which schedules, in :data:`SCHEDULE_NAMES` order; default all seven.

    Returns:
        name -> schedule, in the order of ``names``.

    Raises:
        ValueError: a budget under 10 iterations per cycle, ``base_lr`` above ``max_lr``, bad learning
            rates, an unknown name.

    >>> lrs = equal_budget_schedules(160, 0.2)
    >>> [round(lrs[name](0), 4) for name in ("fixed", "step", "triangular", "one_cycle", "sgdr")]
    [0.05, 0.2, 0.05, 0.008, 0.2]
    >>> round(lrs["triangular"](40), 4), round(lrs["step"](120), 4)
    (0.2, 0.002)
    """
    require_between("cycles", cycles, 1, 10, whole=True, unit="cycles")
    require_between("iterations", iterations, 10 * cycles, 10**9, whole=True,
                    unit=f"iterations (at least 10 per cycle with cycles = {cycles})")
    peak = require_positive("max_lr", max_lr)
    low = peak / BASE_LR_DIVISOR if base_lr is None else require_positive("base_lr", base_lr)
    if low > peak:
        raise ValueError(f"base_lr must be <= max_lr, got base_lr={base_lr!r} > max_lr={max_lr!r}")
    chosen = list(SCHEDULE_NAMES if names is None else names)
    unknown = [name for name in chosen if name not in SCHEDULE_NAMES]
    if unknown or not chosen:
        raise ValueError(f"names must be a non-empty selection of {', '.join(SCHEDULE_NAMES)}, got {names!r}")
    step_size = iterations / (2 * cycles)  # c whole triangles end exactly at the budget
    builders = {
        "fixed": lambda: schedules.constant(low),
        "step": lambda: schedules.step_decay(peak, [iterations // 2, (3 * iterations) // 4], 0.1),
        "triangular": lambda: schedules.cyclic(low, peak, step_size),
        "triangular2": lambda: schedules.cyclic(low, peak, step_size, mode="triangular2"),
        "exp_range": lambda: schedules.cyclic(low, peak, step_size, mode="exp_range",
                                              gamma=EXP_RANGE_LEFT_AT_END ** (1 / iterations)),
        "one_cycle": lambda: schedules.one_cycle(peak, iterations),
        "sgdr": lambda: schedules.cosine_warm_restarts(peak, math.ceil(iterations / cycles), 1, 0.0),
    }
    return {name: builders[name]() for name in chosen}


@dataclass(frozen=True)
class Bounds:
    """The learning-rate bounds of a comparison and the range test they came from.

    Attributes:
        max_lr: the range test's ``max_lr`` (minimum of the smoothed loss / 10), rounded down to one
            significant figure.
        base_lr: ``max_lr / 4``.
        suggested_max_lr: the range test's ``max_lr`` before rounding.
        min_loss_lr: the LR at the minimum of the smoothed loss.
        lrs, losses: the range test's curve (LR and smoothed training loss at each iteration).
        seconds: the range test's wall time.
        seed: the seed of the network and data stream the test ran with.
    """

    max_lr: float
    base_lr: float
    suggested_max_lr: float
    min_loss_lr: float
    lrs: list[float]
    losses: list[float]
    seconds: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _round_down(value: float) -> float:
    """``value`` rounded down to one significant figure (0.2197 -> 0.2, 0.0864 -> 0.08)."""
    exponent = math.floor(math.log10(value))
    return math.floor(value / 10**exponent) * 10**exponent


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (None: unchanged), then restore the setting."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _model_and_optimizer(setup: Setup, seed: int) -> tuple[ResNet9, torch.optim.SGD]:
    torch.manual_seed(seed)
    model = ResNet9(widths=resnet9_widths(setup.base_width))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=setup.momentum, nesterov=setup.momentum > 0,
                                weight_decay=setup.weight_decay)
    return model, optimizer


def _augmentation(setup: Setup) -> Augmentation:
    return Augmentation(crop_padding=setup.crop_padding, flip=True, pad_mode="reflect")


def subset(setup: Setup, data: CIFAR10) -> CIFAR10:
    """The class-balanced ``train_images`` / ``test_images`` subset of ``data`` (subset seed 0)."""
    return subset_for(data, setup.train_images, setup.test_images, seed=0)


def find_bounds(setup: Setup, data: CIFAR10, device: torch.device | str = "cpu", *, seed: int = 0) -> Bounds:
    """Run the LR range test that sets ``max_lr`` (see the module docstring) on ``setup``'s subset of ``data``.

    An exponential sweep from 1e-3 to 10 over ``setup.range_test_iterations`` iterations of the same
    network, optimizer, batch size and augmentation the runs use, read with fast.ai's minimum / 10
    rule. The model and optimizer are built for the test and thrown away.

    Returns:
        The :class:`Bounds`.
    """
    device = torch.device(device)
    images = subset(setup, data)
    started = time.perf_counter()
    with _torch_threads(setup.threads):
        model, optimizer = _model_and_optimizer(setup, seed)
        model.to(device=device, memory_format=torch.channels_last)
        train_batches, _ = to_device(images, batch_size=setup.batch_size, device=device, normalization="standard",
                                     augmentation=_augmentation(setup), seed=seed, channels_last=True)
        result = clr_lib.lr_range_test(
            model, optimizer, torch.nn.CrossEntropyLoss(), train_batches.epoch,
            start_lr=RANGE_TEST_START_LR, end_lr=RANGE_TEST_END_LR, num_iter=setup.range_test_iterations,
            smooth_factor=setup.range_test_smoothing, progress=False,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a doubtful curve still gives a number; the record keeps the curve
        suggestion = result.suggest(base_divisor=BASE_LR_DIVISOR, metric="loss")
    finite = np.isfinite(result.losses)
    max_lr = _round_down(suggestion.max_lr)
    return Bounds(
        max_lr=max_lr, base_lr=max_lr / BASE_LR_DIVISOR, suggested_max_lr=suggestion.max_lr,
        min_loss_lr=suggestion.min_over_10_lr * 10, lrs=[float(v) for v in result.lrs[finite]],
        losses=[float(v) for v in result.losses[finite]], seconds=time.perf_counter() - started, seed=seed,
    )


# ----------------------------------------------------------------------------------------------
# Training one schedule
# ----------------------------------------------------------------------------------------------


def train_schedule(
    name: str,
    setup: Setup,
    data: CIFAR10,
    bounds: Bounds,
    device: torch.device | str = "cpu",
    *,
    seed: int = 0,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Train the network with one schedule of the comparison; return its record (and write it with ``options.out``).

    Args:
        name: one of :data:`SCHEDULE_NAMES`.
        setup: the comparison's :class:`Setup`.
        data: the whole data set (the setup takes its class-balanced subset).
        bounds: the comparison's :class:`Bounds` (from :func:`find_bounds`).
        device: where to train.
        seed: seeds the initialisation, the data order and the augmentation.
        options: results folder, checkpoints and the command line to record; None: no file.

    Returns:
        A JSON-ready record (:data:`SCHEMA`): curves (iteration, training loss, test loss, test
        accuracy at each evaluation; the LR at every iteration), final numbers, timings, the setup,
        the bounds, and :func:`clr_book.experiments.provenance.run_context`. With ``options.out``
        its ``"path"`` names the file written. ``timing.threads`` is the number of threads training
        used; ``environment.torch_threads`` is the process's setting when the record was made.

    Raises:
        ValueError: an unknown schedule or a bad seed.
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"name must be one of {', '.join(SCHEDULE_NAMES)}, got {name!r}")
    require_non_negative_int("seed", seed)
    device = torch.device(device)
    images = subset(setup, data)
    schedule = equal_budget_schedules(setup.iterations, bounds.max_lr, bounds.base_lr, cycles=setup.cycles,
                                      names=[name])[name]
    checkpoint = None
    if options is not None:
        checkpoint = checkpoint_for(options, _stem(name, setup.name, seed), {
            "experiment": "schedule_comparison", "schedule": name, "setup": setup.to_dict(), "seed": seed,
            "max_lr": bounds.max_lr, "source": images.source, "device_type": device.type,
        })
    started = time.perf_counter()
    with _torch_threads(setup.threads):
        model, optimizer = _model_and_optimizer(setup, seed)
        result = train(
            model, optimizer, schedule, images, iterations=setup.iterations, batch_size=setup.batch_size,
            eval_every=setup.eval_every, device=device, normalization="standard",
            augmentation=_augmentation(setup), eval_batch_size=min(500, setup.test_images), channels_last=True,
            seed=seed, checkpoint=checkpoint, progress=bool(options and options.progress),
        )
    wall = time.perf_counter() - started
    record = {
        "schema": SCHEMA,
        "experiment": "schedule-comparison",
        "schedule_name": name,
        "label": SCHEDULE_LABELS[name],
        "schedule": repr(schedule),
        "setup": setup.to_dict(),
        "bounds": {"max_lr": bounds.max_lr, "base_lr": bounds.base_lr, "suggested_max_lr": bounds.suggested_max_lr,
                   "rule": "max_lr: range-test minimum / 10, rounded down to one significant figure; "
                           "base_lr = max_lr / 4", "range_test_seed": bounds.seed},
        "model": {"name": "ResNet9", "widths": list(resnet9_widths(setup.base_width)),
                  "parameters": count_parameters(model)},
        "optimizer": {"name": "SGD", "momentum": setup.momentum, "nesterov": setup.momentum > 0,
                      "weight_decay": setup.weight_decay},
        "curves": {**result.curves(), "lr_every_iteration": [float(v) for v in schedule(np.arange(setup.iterations))]},
        "final_test_accuracy": result.final_test_accuracy,
        "final_test_loss": result.final_test_loss,
        "final_train_loss": result.train_loss[-1],
        "timing": {"train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds,
                   "setup_seconds": result.setup_seconds, "wall_seconds": wall,
                   "seconds_per_iteration": result.seconds_per_iteration, "threads": setup.threads,
                   "resumed_at_iterations": list(result.resumed_at)},
        "settings": result.settings,
        **provenance.run_context(device, images, seed, None if options is None else options.command),
        "notes": provenance.data_notes(images),
    }
    if options is not None and options.out is not None:
        path = write_record(record, Path(options.out) / f"{_stem(name, setup.name, seed)}.json")
        record = {**record, "path": str(path)}
    return record


def _stem(name: str, profile: str, seed: int) -> str:
    return f"{profile}-{name}-seed{seed}"


def _range_test_record(setup: Setup, data: CIFAR10, bounds: Bounds, device: torch.device,
                       command: str | None) -> dict[str, Any]:
    images = subset(setup, data)
    return {"schema": RANGE_TEST_SCHEMA, "experiment": "schedule-comparison range test", "setup": setup.to_dict(),
            "start_lr": RANGE_TEST_START_LR, "end_lr": RANGE_TEST_END_LR, "bounds": bounds.to_dict(),
            **provenance.run_context(device, images, bounds.seed, command), "notes": provenance.data_notes(images)}


def run_comparison(
    setup: Setup,
    data: CIFAR10,
    device: torch.device | str = "cpu",
    *,
    seeds: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    bounds: Bounds | None = None,
    options: RunOptions | None = None,
    verbose: bool = True,
) -> tuple[Bounds, list[dict[str, Any]]]:
    """The range test (unless ``bounds`` is given), then every schedule at every seed.

    Args:
        setup: sizes and settings.
        data: the whole data set (the setup takes its subset).
        device: where to train.
        seeds: default ``setup.seeds``; the range test uses the first.
        names: which schedules, default all seven.
        bounds: skip the range test and use these.
        options: results folder (one file per run, ``<profile>-<schedule>-seed<seed>.json``, and
            ``<profile>-range-test.json``), checkpoints and the command line; None writes nothing.
        verbose: print one line per run.

    Returns:
        ``(bounds, records)``, records in seed-major, :data:`SCHEDULE_NAMES` order.
    """
    device = torch.device(device)
    run_seeds = list(setup.seeds if seeds is None else seeds)
    chosen = list(SCHEDULE_NAMES if names is None else names)
    if bounds is None:
        bounds = find_bounds(setup, data, device, seed=run_seeds[0])
        if verbose:
            print(f"range test ({setup.range_test_iterations} iterations, {bounds.seconds:.1f} s): "
                  f"max_lr {bounds.max_lr:g}, base_lr {bounds.base_lr:g}", flush=True)
        if options is not None and options.out is not None:
            write_record(_range_test_record(setup, data, bounds, device, options.command),
                         Path(options.out) / f"{setup.name}-range-test.json")
    records = []
    for seed in run_seeds:
        for name in chosen:
            record = train_schedule(name, setup, data, bounds, device, seed=seed, options=options)
            if verbose:
                print(f"{name:12s} seed {seed}: test accuracy {100 * record['final_test_accuracy']:5.1f} %, "
                      f"training loss {record['final_train_loss']:.3f}, "
                      f"{record['timing']['wall_seconds']:5.1f} s", flush=True)
            records.append(record)
    return bounds, records


# ----------------------------------------------------------------------------------------------
# Reading, summarising and drawing
# ----------------------------------------------------------------------------------------------


def load_results(folder: str | Path, profile: str | None = None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The range-test record (or None) and the run records in ``folder``, optionally of one profile only.

    Raises:
        ValueError: ``folder`` is not a folder, or a record lacks a required key.
    """
    runs = read_records(folder, SCHEMA, ("schedule_name", "setup", "curves", "final_test_accuracy", "provenance"))
    tests = read_records(folder, RANGE_TEST_SCHEMA, ("bounds", "setup", "provenance"))
    if profile is not None:
        runs = [r for r in runs if r["setup"]["name"] == profile]
        tests = [r for r in tests if r["setup"]["name"] == profile]
    order = {name: index for index, name in enumerate(SCHEDULE_NAMES)}
    runs.sort(key=lambda r: (r["provenance"]["seed"], order.get(r["schedule_name"], len(order))))
    return (tests[0] if tests else None), runs


def _by_schedule(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for name in SCHEDULE_NAMES:
        members = [r for r in records if r["schedule_name"] == name]
        if members:
            grouped[name] = members
    return grouped


def summarize(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per schedule: final test accuracy (mean, lowest, highest over seeds) and training loss.

    Accuracies are fractions; ``seeds`` counts the runs averaged. Rows in :data:`SCHEDULE_NAMES` order.
    """
    rows = []
    for name, members in _by_schedule(records).items():
        accuracies = np.array([r["final_test_accuracy"] for r in members])
        losses = np.array([r["final_train_loss"] for r in members])
        rows.append({"schedule": name, "label": SCHEDULE_LABELS[name], "seeds": len(members),
                     "accuracy_mean": float(accuracies.mean()), "accuracy_min": float(accuracies.min()),
                     "accuracy_max": float(accuracies.max()), "train_loss_mean": float(losses.mean())})
    return rows


def seed_spread(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """How far seeds scatter against how far schedules differ, in final test accuracy (fractions).

    Returns:
        ``largest_seed_range``: the largest (highest - lowest over seeds) of any schedule;
        ``mean_seed_range``: that range averaged over schedules;
        ``schedule_range``: highest minus lowest schedule mean;
        ``best``, ``runner_up``: the two best schedules by mean, and ``best_margin`` between their means.

    Raises:
        ValueError: fewer than two seeds of some schedule (no spread to measure) or fewer than two schedules.
    """
    rows = summarize(records)
    if len(rows) < 2 or any(row["seeds"] < 2 for row in rows):
        raise ValueError("seed_spread needs at least two schedules with at least two seeds each")
    ranges = [row["accuracy_max"] - row["accuracy_min"] for row in rows]
    ranked = sorted(rows, key=lambda row: row["accuracy_mean"], reverse=True)
    return {"largest_seed_range": max(ranges), "mean_seed_range": float(np.mean(ranges)),
            "schedule_range": ranked[0]["accuracy_mean"] - ranked[-1]["accuracy_mean"],
            "best": ranked[0]["schedule"], "runner_up": ranked[1]["schedule"],
            "best_margin": ranked[0]["accuracy_mean"] - ranked[1]["accuracy_mean"]}


def plot_comparison(records: Sequence[Mapping[str, Any]], *, title: str,
                    figsize: tuple[float, float] = (9.0, 8.0)) -> Figure:
    """Training loss, test accuracy and the learning rate of every schedule, on one iteration axis.

    With several seeds per schedule each panel draws the mean over seeds and shades the range
    between the lowest and the highest seed.

    Returns:
        The Figure; its axes are the training loss, the test accuracy (percent) and the LR, top to bottom.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 - optional, heavy

    grouped = _by_schedule(records)
    if not grouped:
        raise ValueError("records must hold at least one run to draw, got none")
    figure, (loss_ax, accuracy_ax, lr_ax) = plt.subplots(
        3, 1, sharex=True, figsize=figsize, layout="constrained", height_ratios=(2, 2, 1.4))
    for name, members in grouped.items():
        style = dict(SCHEDULE_STYLES[name])
        x = np.asarray(members[0]["curves"]["iteration"])
        for ax, key, scale in ((loss_ax, "train_loss", 1.0), (accuracy_ax, "test_accuracy", 100.0)):
            values = scale * np.array([[np.nan if v is None else v for v in r["curves"][key]] for r in members],
                                      dtype=float)
            ax.plot(x, values.mean(axis=0), label=SCHEDULE_LABELS[name], linewidth=1.6, **style)
            if len(members) > 1:
                ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=style["color"], alpha=0.15,
                                linewidth=0)
        lr = np.asarray(members[0]["curves"]["lr_every_iteration"])
        lr_ax.plot(np.arange(1, len(lr) + 1), lr, linewidth=1.2, **style)
    loss_ax.set_ylabel("training loss\n(mean since the last point)")
    accuracy_ax.set_ylabel("test accuracy (%)")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("iteration (mini-batch updates)")
    accuracy_ax.legend(fontsize="small", ncols=2, loc="lower right")
    for ax in (loss_ax, accuracy_ax, lr_ax):
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

PROG = "python -m clr_book.experiments.schedule_comparison"


def main(argv: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``argv``, run the comparison, write the results files; return the run records."""
    parser = experiment_parser(PROG, "Seven LR schedules at an equal budget on a narrow ResNet-9 (chapter 4).",
                               list(PROFILES))
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's)")
    parser.add_argument("--schedules", default="all", help=f"'all' or names from {', '.join(SCHEDULE_NAMES)}")
    args = parser.parse_args(list(argv))
    options = resolve_run_options(args, PROG, argv)
    device = resolve_device(args.device)
    if args.profile == "auto":
        args.profile = "live"
    if args.profile not in PROFILES:
        raise ValueError(f"--profile must be one of {', '.join(PROFILES)}, got {args.profile!r}")
    setup = PROFILES[args.profile]
    if args.seeds is not None:
        setup = replace(setup, seeds=tuple(seeds_option("--seeds", args.seeds)))
    names = names_option("--schedules", args.schedules, SCHEDULE_NAMES)
    data = load_data(args.data, download=not args.no_download)
    _, records = run_comparison(setup, data, device, names=names, options=options)
    return records


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
