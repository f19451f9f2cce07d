"""Time to accuracy: five LR schedules (and the fixed LR at three times the budget) on ResNet-9.

One run = one schedule at one profile and seed = one JSON results file (``SCHEMA``) with the curves
(iteration, test accuracy, LR, cumulative training seconds), the final numbers, the time to the
profile's target accuracy, timings, the device, library versions, git commit, data source and command
(:mod:`clr_book.experiments.provenance`).

Run from the shell::

    python -m clr_book.experiments.time_to_accuracy --profile full --out clr_book/results/time_to_accuracy

Profiles (``auto`` = ``full`` on CUDA, ``quick`` elsewhere; details in :data:`.config.PROFILES`):

* ``full``: Page's ResNet-9 (base width 64) on all 50,000 / 10,000 images, batch 512, a budget of
  10 epochs (970 iterations), bf16 autocast (fp16 on GPUs older than Ampere), channels_last, three
  seeds, target 90 % test accuracy.
  Design target on an H100 (not yet measured): the best schedule at 90 % in under 10 s of training,
  all 18 runs in under 10 minutes.
* ``cpu``: the real comparison sized for a 2-core CPU: all 50,000 / 10,000 images, a narrowed ResNet-9,
  LRs from a range test of that network (:mod:`.range_test`), two seeds, a target fixed in advance
  (:data:`.config.CPU_TARGET_ACCURACY`), read in iterations and epochs.
* ``quick``: a demonstration of the method for the chapter's live run: the ``cpu`` profile's schedules
  (8 epochs, cycles of 4) on a class-balanced 1,280 / 500 subset, a ResNet-9 of base width 8, batch 64,
  float32, one seed, a target set for the demonstration.
* ``smoke``: a few iterations of a width-4 net on a few hundred images, for the test suite.

Every run records the LRs it was built from (``"lr_bounds"``: the recipe's or the range test's, with
the results file of the range test), its budget in iterations and epochs, and the iterations and epochs
at which it first reached the target.

On CUDA the first run of a comparison is preceded by an untimed warm-up run (cuDNN's autotuner and, with
``--compile``, torch.compile's compilation), so that every timed run sees a warm device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from clr_lib._validation import require_non_negative_int

from ...checkpoint import Checkpoint
from ...cifar.data import CIFAR10, Augmentation
from ...cifar.models import ResNet9, count_parameters, resnet9_widths
from ...cifar.precision import autocast_dtype_for
from ...cifar.train import TrainResult, train
from .. import provenance
from ..common import RunOptions, checkpoint_for, data_settings, subset_for
from ..records import first_reaching, write_run_record
from .config import SCHEDULE_NAMES, LRBounds, ScheduleRun, TTAProfile, equal_budget_schedules
from .range_test import lr_bounds_for

__all__ = ["SCHEMA", "profile_data", "result_filename", "run_comparison", "run_schedule", "warm_up"]

SCHEMA = "clr_lib.experiments.time_to_accuracy/1"
"""The ``schema`` value of every results file this module writes (unchanged since the first files)."""


def result_filename(schedule: str, profile: str, seed: int) -> str:
    """``tta-<schedule>-<profile>-seed<seed>.json``: a rerun with the same settings replaces its file."""
    return f"tta-{schedule}-{profile}-seed{seed}.json"


def profile_data(data: CIFAR10, profile: TTAProfile) -> CIFAR10:
    """The profile's class-balanced subset (seed 0, the same for every run); all of ``data`` for ``full``."""
    return subset_for(data, profile.train_size, profile.test_size, seed=0)


def _train_once(
    run: ScheduleRun, profile: TTAProfile, data: CIFAR10, device: torch.device, seed: int, *,
    iterations: int | None = None, compile: str | None = None, progress: bool = False,
    checkpoint: Checkpoint | None = None,
) -> tuple[TrainResult, torch.nn.Module]:
    recipe = profile.recipe
    torch.manual_seed(seed)
    model = ResNet9(widths=resnet9_widths(recipe.base_width))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                weight_decay=recipe.weight_decay)
    train_images = len(data.train_labels)
    result = train(
        model, optimizer, run.schedule, data,
        iterations=iterations or run.iterations, batch_size=recipe.batch_size,
        eval_every=profile.eval_every(train_images), device=device, normalization="standard",
        augmentation=Augmentation(crop_padding=recipe.crop_padding, flip=recipe.flip, pad_mode="reflect"),
        eval_batch_size=min(profile.eval_batch_size, len(data.test_labels)),
        amp_dtype=autocast_dtype_for(recipe.amp_dtype, device) if device.type == "cuda" else None,
        channels_last=recipe.channels_last, compile=compile or False, seed=seed, progress=progress,
        label_smoothing=recipe.label_smoothing, test_time_flip=recipe.test_time_flip, checkpoint=checkpoint,
    )
    return result, model


def _record(
    run: ScheduleRun, profile: TTAProfile, budget: int, bounds: LRBounds, result: TrainResult, model: torch.nn.Module,
    data: CIFAR10, device: torch.device, seed: int, command: str | None, wall_seconds: float,
    warmup_seconds: float | None,
) -> dict[str, Any]:
    target = profile.target_accuracy
    notes = [*run.notes, *provenance.data_notes(data)]
    if device.type != "cuda":
        notes.append("Trained on a CPU: the seconds say nothing about GPU speed, and on a shared machine "
                     "nothing about this CPU's either; compare iterations and epochs.")
    if profile.demonstration:
        notes.append(f"Profile {profile.name!r}: a demonstration of the method, not a result about the schedules.")
    curves = {**result.curves(), "cumulative_train_seconds": list(result.cumulative_train_seconds)}
    iterations_to_target = first_reaching(result.iteration, result.test_accuracy, target)
    per_epoch = result.iterations_per_epoch
    return {
        "schema": SCHEMA,
        "experiment": "time-to-accuracy",
        "schedule_name": run.name,
        "label": run.label,
        "schedule": result.schedule,
        "budget": budget,
        "iterations": result.iterations,
        "epochs": result.iterations / per_epoch,
        "demonstration": profile.demonstration,
        "profile": profile.to_dict(),
        "lr_bounds": bounds.to_dict(),
        "model": {"name": "ResNet9", "widths": list(resnet9_widths(profile.recipe.base_width)),
                  "parameters": count_parameters(model)},
        "optimizer": {"name": "SGD", "momentum": profile.recipe.momentum, "nesterov": profile.recipe.nesterov,
                      "weight_decay": profile.recipe.weight_decay},
        "batch_size": result.batch_size,
        "iterations_per_epoch": result.iterations_per_epoch,
        "curves": curves,
        "final_test_accuracy": result.final_test_accuracy,
        "final_test_loss": result.final_test_loss,
        "best_test_accuracy": max(result.test_accuracy),
        "target_accuracy": target,
        "iterations_to_target": iterations_to_target,
        "epochs_to_target": None if iterations_to_target is None else iterations_to_target / per_epoch,
        "seconds_to_target": first_reaching(result.cumulative_train_seconds, result.test_accuracy, target),
        "timing": {
            "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds,
            "setup_seconds": result.setup_seconds,
            "wall_seconds": wall_seconds,
            "warmup_seconds_before_this_comparison": warmup_seconds,
            "seconds_per_iteration": result.seconds_per_iteration,
            "evaluations": len(result.iteration),
            "resumed_at_iterations": list(result.resumed_at),
        },
        "settings": result.settings,
        **provenance.run_context(device, data, seed, command),
        "notes": notes,
    }


def run_schedule(
    name: str,
    profile: TTAProfile,
    data: CIFAR10,
    device: torch.device,
    *,
    seed: int = 0,
    options: RunOptions = RunOptions(),
    compile: str | None = None,
    warmup_seconds: float | None = None,
    bounds: LRBounds | None = None,
) -> dict[str, Any]:
    """Train ResNet-9 with one schedule of the comparison; return (and with ``options.out`` write) its record.

    Args:
        name: one of :data:`~clr_book.experiments.time_to_accuracy.config.SCHEDULE_NAMES`.
        profile: a :class:`~clr_book.experiments.time_to_accuracy.config.TTAProfile`.
        data: the whole data set (the profile takes its subset).
        device: where to train.
        seed: seeds the initialisation, shuffling and augmentation.
        options: results folder, checkpoints, progress bar, the command line to record.
        compile: a ``torch.compile`` mode or None; compile time counts as training time unless a warm-up
            compiled the same graph first (:func:`run_comparison` does on CUDA).
        warmup_seconds: recorded as is (the comparison's warm-up time), None when there was none.
        bounds: the ``max_lr`` and ``base_lr`` to build the schedule from (:func:`run_comparison` resolves
            them once); None: :func:`~clr_book.experiments.time_to_accuracy.range_test.lr_bounds_for`
            (the recipe's, or the profile's range test, read back or run).

    Returns:
        The record (``SCHEMA``); with ``options.out`` its ``"path"`` key names the file written.

    Raises:
        ValueError: an unknown schedule, a negative seed, or a checkpoint made with other settings.
        clr_book.checkpoint.RunInterrupted: stopped by SIGINT/SIGTERM after saving the checkpoint.
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULE_NAMES)}, got {name!r}")
    require_non_negative_int("seed", seed)
    subset = profile_data(data, profile)
    recipe = profile.recipe
    if bounds is None:
        bounds = lr_bounds_for(profile, subset, device, options=options)
    budget = profile.budget(len(subset.train_labels))
    run = equal_budget_schedules(budget, bounds.max_lr, bounds.base_lr, cycles=recipe.cycles,
                                 pct_start=recipe.pct_start, names=[name])[name]
    checkpoint = checkpoint_for(options, result_filename(name, profile.name, seed).removesuffix(".json"), {
        "experiment": "time_to_accuracy", "schedule": name, "profile": profile.to_dict(), "seed": seed,
        "data": data_settings(subset), "lr_bounds": {"max_lr": bounds.max_lr, "base_lr": bounds.base_lr},
        "device_type": device.type, "compile": compile,
    })
    started = time.perf_counter()
    result, model = _train_once(run, profile, subset, device, seed, compile=compile, progress=options.progress,
                                checkpoint=checkpoint)
    wall = time.perf_counter() - started
    record = _record(run, profile, budget, bounds, result, model, subset, device, seed, options.command, wall,
                     warmup_seconds)
    if options.out is not None:
        record = write_run_record(record, options.out / result_filename(name, profile.name, seed))
    return record


def warm_up(profile: TTAProfile, data: CIFAR10, device: torch.device, compile: str | None = None,
            max_lr: float | None = None) -> float:
    """An untimed short run (``profile.warmup_iterations``) that pays cuDNN autotuning and compilation.

    ``max_lr``: the peak of its one-cycle schedule (default the recipe's).
    Returns its wall time in seconds (0 when the profile asks for none).
    """
    if profile.warmup_iterations <= 0:
        return 0.0
    subset = profile_data(data, profile)
    budget = profile.budget(len(subset.train_labels))
    run = equal_budget_schedules(budget, max_lr or profile.recipe.max_lr, names=["one_cycle"])["one_cycle"]
    started = time.perf_counter()
    _train_once(run, profile, subset, device, seed=10_000, iterations=min(profile.warmup_iterations, budget),
                compile=compile)
    return time.perf_counter() - started


def run_comparison(
    profile: TTAProfile,
    data: CIFAR10,
    device: torch.device,
    *,
    seeds: Sequence[int] | None = None,
    schedules: Sequence[str] | None = None,
    options: RunOptions = RunOptions(),
    compile: str | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Every schedule (default all six) at every seed (default the profile's); one record per run.

    The LRs are resolved once, first (:func:`~clr_book.experiments.time_to_accuracy.range_test.lr_bounds_for`:
    the profile's range test, run or read back, or the recipe's), and every run is built from them. On CUDA
    a warm-up run comes next (see :func:`warm_up`). With ``verbose`` one line per run is printed.

    Raises:
        ValueError: an unknown schedule name or a schedule or seed named twice.
    """
    names = list(SCHEDULE_NAMES if schedules is None else schedules)
    for name in names:
        if name not in SCHEDULE_NAMES:
            raise ValueError(f"schedules must name runs from {', '.join(SCHEDULE_NAMES)}, got {name!r}")
    run_seeds = list(profile.seeds if seeds is None else seeds)
    if len(set(names)) != len(names) or len(set(run_seeds)) != len(run_seeds):
        raise ValueError(f"schedules and seeds must each name a run once, got schedules={names}, seeds={run_seeds}")
    bounds = lr_bounds_for(profile, profile_data(data, profile), device, options=options, verbose=verbose)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once, in the warm-up
        warmup = warm_up(profile, data, device, compile, max_lr=bounds.max_lr)
    else:
        warmup = None
    records = []
    for seed in run_seeds:
        for name in names:
            record = run_schedule(name, profile, data, device, seed=seed, options=options, compile=compile,
                                  warmup_seconds=warmup, bounds=bounds)
            if verbose:
                iterations, seconds = record["iterations_to_target"], record["seconds_to_target"]
                reached = ("not reached" if iterations is None else
                           f"{iterations:5d} it = {record['epochs_to_target']:5.2f} epochs ({seconds:.1f} s)")
                print(f"{name:12s} seed {seed}  {record['iterations']:5d} it  "
                      f"test acc {100 * record['final_test_accuracy']:5.1f} %  "
                      f"train {record['timing']['train_seconds']:7.2f} s  "
                      f"to {100 * profile.target_accuracy:.0f} %: {reached}", flush=True)
            records.append(record)
    return records
