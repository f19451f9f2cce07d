"""The comparison's first step: an LR range test of the network it trains, whose reading sets every run's LRs.

A profile with a :class:`~clr_book.experiments.time_to_accuracy.config.LRRangeTest` (the ``cpu`` profile)
takes ``max_lr`` and ``base_lr`` from a range test of its own ResNet-9, not from a recipe tuned for another
network: :func:`lr_bounds_for` runs the sweep once (or reads it back), writes its results file
(``tta-range-test-<profile>-seed<seed>.json``, :data:`RANGE_TEST_SCHEMA`), and returns the
:class:`~clr_book.experiments.time_to_accuracy.config.LRBounds` that every run of the comparison is built
from and records.

The sweep is the book's range test (:func:`clr_lib.lr_range_test`, the training stream and held-out
rotation of :mod:`clr_book.experiments.range_test.run`) on the runs' own set-up: the profile's network
width, batch size, SGD with Nesterov momentum and weight decay, label smoothing, crop-and-flip
augmentation and precision. A held-out sweep is read on training images kept out of the sweep, never on
the test split, so that nothing about the test images is used before the runs are evaluated on them.

Reading it back: a results file in ``--out`` made with the same settings (:func:`range_test_settings`)
is used as it is, so that a range test made once fixes the LRs of every later run with the same data
and device type; otherwise the sweep runs, checkpointed like every run (its finished record is kept in
the checkpoint too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import warnings
from typing import Any

import numpy as np
import torch

from clr_lib import lr_range_test

from ...checkpoint import Checkpoint, SweepCheckpoint
from ...cifar.data import CIFAR10, Augmentation, to_device
from ...cifar.models import ResNet9, count_parameters, resnet9_widths
from ...cifar.precision import autocast_dtype_for
from .. import provenance
from ..common import RunOptions, checkpoint_for, data_settings
from ..range_test.run import HeldOutRotation, TrainingStream
from ..records import finite_or_none, read_records, write_record
from .config import LRBounds, LRRangeTest, TTAProfile, recipe_bounds

__all__ = ["RANGE_TEST_SCHEMA", "bounds_from_record", "held_out_split", "load_range_tests", "lr_bounds_for",
           "range_test_filename", "range_test_settings", "run_lr_range_test"]

RANGE_TEST_SCHEMA = "clr_lib.experiments.time_to_accuracy.range_test/1"
"""The ``schema`` of the range-test results file of this experiment (runs' files have their own)."""


def range_test_filename(profile: str, seed: int) -> str:
    """``tta-range-test-<profile>-seed<seed>.json``."""
    return f"tta-range-test-{profile}-seed{seed}.json"


def held_out_split(data: CIFAR10, held_out_images: int, seed: int) -> CIFAR10:
    """``data``'s training split cut in two: ``held_out_images`` of it as the "test" split, the rest to train.

    The held-out images are picked by a permutation seeded with ``seed`` and kept in that (shuffled)
    order, so that consecutive held-out batches mix the classes. ``data``'s test split is not used.

    Raises:
        ValueError: ``held_out_images`` not fewer than the training images.
    """
    total = len(data.train_labels)
    if not 0 < held_out_images < total:
        raise ValueError(f"held_out_images must be between 1 and {total - 1} (the training images less one), "
                         f"got {held_out_images!r}")
    order = np.random.default_rng(seed).permutation(total)
    held, kept = order[:held_out_images], np.sort(order[held_out_images:])
    return CIFAR10(data.train_images[kept], data.train_labels[kept], data.train_images[held],
                   data.train_labels[held], data.classes,
                   f"{data.source} [training split: {total - held_out_images} to train the sweep, "
                   f"{held_out_images} held out, seed {seed}]")


def range_test_settings(profile: TTAProfile, data: CIFAR10, device: torch.device) -> dict[str, Any]:
    """Everything that defines the sweep: a results file or checkpoint made with other settings is not reused.

    Raises:
        ValueError: ``profile`` has no range test.
    """
    if profile.range_test is None:
        raise ValueError(f"profile {profile.name!r} takes its LRs from the recipe; it has no range test")
    recipe = profile.recipe.to_dict()
    for derived in ("max_lr", "base_lr", "max_lr_per_image"):  # the recipe's own LRs play no part in the sweep
        recipe.pop(derived)
    return {"experiment": "time_to_accuracy/range_test", "profile": profile.name,
            "range_test": profile.range_test.to_dict(), "recipe": recipe, "data": data_settings(data),
            "device_type": device.type}


def load_range_tests(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every range-test results file of this experiment (:data:`RANGE_TEST_SCHEMA`) in ``directory``.

    In file-name order, each with its ``"path"``; the runs' files and other JSON files are skipped.
    :func:`clr_book.experiments.range_test.report.result_from_record` turns a record's ``"result"`` back
    into a :class:`clr_lib.RangeTestResult`.

    Raises:
        ValueError: ``directory`` is not a folder, or a range-test file lacks a required key.
    """
    return read_records(directory, RANGE_TEST_SCHEMA, ("profile", "result", "suggestion", "bounds", "provenance"))


def _plain(value: Any) -> Any:
    """JSON's view of ``value`` (tuples as lists), for comparing settings with a file's."""
    return json.loads(json.dumps(value))


def bounds_from_record(record: dict[str, Any]) -> LRBounds:
    """The :class:`LRBounds` a range-test record sets (its ``"bounds"``)."""
    bounds = record["bounds"]
    return LRBounds(bounds["max_lr"], bounds["base_lr"], "range test", bounds["range_test"])


def run_lr_range_test(
    profile: TTAProfile, data: CIFAR10, device: torch.device, *, options: RunOptions = RunOptions(),
) -> dict[str, Any]:
    """Sweep the LR over the profile's network; return (and with ``options.out`` write) the range-test record.

    Args:
        profile: a profile with a ``range_test``.
        data: the data the runs train on (the profile's subset; all 50,000 images for ``cpu``); a held-out
            sweep trains on all but ``range_test.held_out_images`` of its training images and reads the rest.
        device: where to run.
        options: results folder, checkpoints, progress bar, the command line to record.

    Returns:
        The record: the sweep's curves (``"result"``, :meth:`clr_lib.RangeTestResult.to_dict`), the full
        ``"suggestion"`` and the ``"bounds"`` the runs use, with provenance; with ``options.out`` its
        ``"path"`` key names the file written.

    Raises:
        ValueError: no range test in ``profile``; a sweep too short to read (fewer than 5 finite points);
            a checkpoint made with other settings.
        clr_book.checkpoint.RunInterrupted: stopped by SIGINT/SIGTERM after saving the checkpoint.
    """
    settings = range_test_settings(profile, data, device)
    test = profile.range_test
    assert test is not None  # range_test_settings refused a profile without one
    name = range_test_filename(profile.name, test.seed).removesuffix(".json")
    checkpoint = checkpoint_for(options, name, settings)
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None and "record" in saved:
        record = saved["record"]
    else:
        record = _sweep(profile, test, data, device, settings, options, checkpoint)
        if checkpoint is not None:
            checkpoint.save({"record": record})
    if options.out is not None:
        path = write_record(record, options.out / range_test_filename(profile.name, test.seed), strict=True)
        record = {**record, "path": str(path)}
    return record


def _sweep(
    profile: TTAProfile, test: LRRangeTest, data: CIFAR10, device: torch.device, settings: dict[str, Any],
    options: RunOptions, checkpoint: Checkpoint | None,
) -> dict[str, Any]:
    recipe = profile.recipe
    started = time.perf_counter()
    split = held_out_split(data, test.held_out_images, test.seed) if test.sweep.held_out else data
    train_batches, held_out_batches = to_device(
        split, batch_size=recipe.batch_size, device=device, normalization="standard",
        augmentation=Augmentation(crop_padding=recipe.crop_padding, flip=recipe.flip, pad_mode="reflect"),
        seed=test.seed, channels_last=recipe.channels_last, eval_batch_size=test.held_out_batch_size,
    )
    torch.manual_seed(test.seed)
    model = ResNet9(widths=resnet9_widths(recipe.base_width)).to(
        device, memory_format=torch.channels_last if recipe.channels_last else torch.contiguous_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=test.sweep.start_lr, momentum=recipe.momentum,
                                nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    amp_dtype = autocast_dtype_for(recipe.amp_dtype, device) if device.type == "cuda" else None
    setup_seconds = time.perf_counter() - started
    timed = None if checkpoint is None else SweepCheckpoint(checkpoint)
    sweep_started = time.perf_counter()
    with checkpoint.guard() if checkpoint is not None else contextlib.nullcontext():
        result = lr_range_test(
            model, optimizer, torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
            TrainingStream(train_batches), start_lr=test.sweep.start_lr, end_lr=test.sweep.end_lr,
            num_iter=test.sweep.num_iter, mode=test.mode,
            val_loader=HeldOutRotation(held_out_batches) if test.sweep.held_out else None,
            smooth_factor=test.smooth_factor, accuracy=test.sweep.held_out, device=device,
            amp=amp_dtype is not None, amp_dtype=amp_dtype, progress=options.progress, checkpoint=timed,
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    sweep_seconds = time.perf_counter() - sweep_started if timed is None else timed.seconds()
    with warnings.catch_warnings(record=True) as caught:  # kept in the record, and shown as usual
        warnings.simplefilter("always")
        suggestion = result.suggest(base_divisor=recipe.base_lr_divisor)  # ValueError when too short to read
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    rule = ("max_lr at the peak of the smoothed held-out accuracy (Smith 2017)"
            if suggestion.max_lr_metric == "accuracy"
            else "max_lr = LR at the minimum of the smoothed training loss / 10 (fast.ai)")
    file = range_test_filename(profile.name, test.seed)
    bounds = LRBounds(suggestion.max_lr, suggestion.base_lr, "range test", {
        "file": file, "mode": test.mode, "sweep": dataclasses.asdict(test.sweep), "rule": rule,
        "base_lr_divisor": recipe.base_lr_divisor, "suggestion": dataclasses.asdict(suggestion),
    })
    iterations_per_epoch = len(split.train_labels) // recipe.batch_size
    notes = provenance.data_notes(data)
    if profile.demonstration:
        notes.append(f"Profile {profile.name!r} is a demonstration of the method; these bounds are not a result.")
    return {
        "schema": RANGE_TEST_SCHEMA,
        "experiment": "time-to-accuracy-range-test",
        "profile": profile.to_dict(),
        "settings": _plain(settings),
        "model": {"name": "ResNet9", "widths": list(resnet9_widths(recipe.base_width)),
                  "parameters": count_parameters(model)},
        "optimizer": {"name": "SGD", "momentum": recipe.momentum, "nesterov": recipe.nesterov,
                      "weight_decay": recipe.weight_decay},
        "batch_size": recipe.batch_size,
        "iterations": len(result.lrs),
        "iterations_per_epoch": iterations_per_epoch,
        "epochs": len(result.lrs) / iterations_per_epoch,
        "read_on": ("held-out accuracy on training images kept out of the sweep" if test.sweep.held_out
                    else "smoothed training loss"),
        "result": finite_or_none(result.to_dict()),
        "suggestion": dataclasses.asdict(suggestion),
        "suggestion_warnings": [str(warning.message) for warning in caught],
        "bounds": bounds.to_dict(),
        "final": {"lr": float(result.lrs[-1]), "diverged": result.diverged, "stopped_at": result.stopped_at},
        "timing": {"setup_seconds": setup_seconds, "sweep_seconds": sweep_seconds,
                   "seconds_per_iteration": sweep_seconds / len(result.lrs),
                   "resumed_at_iterations": [] if timed is None else timed.resumed_at},
        **provenance.run_context(device, split, test.seed, options.command),
        "notes": notes,
    }


def lr_bounds_for(
    profile: TTAProfile, data: CIFAR10, device: torch.device, *, options: RunOptions = RunOptions(),
    verbose: bool = False,
) -> LRBounds:
    """The LRs of the profile's runs: the recipe's, or the reading of the profile's range test.

    With a range test: a results file of it in ``options.out`` made with the same settings is read back
    (and not swept again, unless ``options.fresh``); otherwise :func:`run_lr_range_test` sweeps (resuming
    from, or reading back, its checkpoint) and writes the file.

    Args:
        data: the data the runs train on (the profile's subset).
        verbose: print one line saying where the bounds came from.

    Raises:
        ValueError: as :func:`run_lr_range_test`.
    """
    if profile.range_test is None:
        return recipe_bounds(profile.recipe)
    record = None
    if options.out is not None and not options.fresh:
        path = options.out / range_test_filename(profile.name, profile.range_test.seed)
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("schema") == RANGE_TEST_SCHEMA and stored.get("settings") == _plain(
                    range_test_settings(profile, data, device)):
                record = {**stored, "path": str(path)}
    if record is None:
        record = run_lr_range_test(profile, data, device, options=options)
    bounds = bounds_from_record(record)
    if verbose:
        print(f"LRs from the range test ({bounds.range_test['mode']} sweep, {bounds.range_test['rule']}): "
              f"max_lr {bounds.max_lr:.4g}, base_lr {bounds.base_lr:.4g}"
              + (f"; {record['path']}" if "path" in record else ""), flush=True)
    return bounds
