r"""The LR range test on CIFAR-10 with the paper's Caffe ``cifar10_full`` net (Smith 2017, section 3.3).

One run = one sweep (``linear`` or ``exp``) at one profile and seed = one JSON results file
(:data:`RESULT_SCHEMA`) with the curves, the suggested bounds, the wall time and the provenance
(device, versions, git commit, date, command, data source).

The set-up is the paper's Table 1 solver: :class:`clr_book.cifar.models.CaffeCIFAR10Full` with
:func:`clr_book.cifar.models.caffe_param_groups` (Caffe's ``lr_mult`` and ``decay_mult``), SGD with momentum 0.9
and base weight decay 0.004, batch 100, mean-image normalisation, no augmentation. The learning rate of
iteration :math:`i = 0, \dots, N-1` is set by :func:`clr_lib.lr_range_test`:

.. math::
    \text{linear:}\ \ \eta_i = \eta_0 + (\eta_1 - \eta_0)\,\frac{i}{N-1}, \qquad
    \text{exp:}\ \ \eta_i = \eta_0 \left(\frac{\eta_1}{\eta_0}\right)^{i/(N-1)},

for the parameter groups with ``lr_mult`` 1; the bias groups (``lr_mult`` 2) get :math:`2\eta_i`, as in
Caffe. Recorded LRs are those of ``lr_mult`` 1.

Two ways to read a sweep, one default per mode:

* ``linear`` (Smith): the paper's test, 8 epochs (4,000 iterations at batch 100) from nearly 0 to 0.02,
  read on **held-out accuracy**. After every iteration the model (in eval mode) classifies the next
  ``held_out_batch_size`` test images, taken in turn from a fixed rotation through the test split
  (shuffled once, seeded, so that every batch mixes the classes: :func:`shuffled_test_split`), so
  every evaluation is cheap and, over a few dozen iterations, the smoothed accuracy averages over
  thousands of different held-out images.
* ``exp`` (fast.ai's ``lr_find``): geometric steps from ``1e-5`` to ``1``, read on the **smoothed training
  loss** (the mean loss of each iteration's batch, before its update) against a log-LR axis.

A held-out sweep records loss and accuracy on the held-out batches; a training sweep records the
training loss only, so that every suggestion comes from the curve the sweep is read on.

Profiles: :mod:`.config` (``auto`` = ``full`` on a CUDA device, ``quick`` elsewhere).

Run from the shell::

    python -m clr_book.experiments.range_test --profile full --mode both --out clr_book/results/range_test

References:
    L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, section 3.3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from clr_lib import lr_range_test
from clr_lib._validation import require_non_negative_int
from clr_lib.range_test import RangeTestResult

from ...checkpoint import Checkpoint, SweepCheckpoint
from ...cifar.data import CIFAR10, DeviceBatches, to_device
from ...cifar.models import CaffeCIFAR10Full, caffe_param_groups, count_parameters
from ...cifar.precision import dtype_name
from .. import provenance
from ..common import RunOptions, checkpoint_for, data_settings, subset_for
from ..records import finite_or_none, write_record
from ..table1.config import SOLVER
from .config import PAPER_RANGE_TEST, RangeTestProfile, Sweep, sweep_for

__all__ = ["RESULT_SCHEMA", "HeldOutRotation", "TrainingStream", "range_test_filename", "run_range_test",
           "shuffled_test_split"]

RESULT_SCHEMA = "clr_lib.experiments.range_test/1"
"""The ``schema`` value of every results file this module writes (unchanged since the first files)."""


def range_test_filename(mode: str, profile: str, seed: int) -> str:
    """``range-test-<mode>-<profile>-seed<seed>.json``: a rerun with the same settings replaces its file."""
    return f"range-test-{mode}-{profile}-seed{seed}.json"


class HeldOutRotation:
    """A zero-argument callable for ``lr_range_test(val_loader=...)``: each call is the next held-out batch.

    ``lr_range_test`` evaluates its ``val_loader`` after every iteration. Rather than the whole test
    split (costly) or one fixed batch (few images), call ``k`` returns ``[batches[k mod B]]``, the
    ``k``-th batch of an in-order pass over the held-out split, wrapping round. Call ``k`` therefore
    classifies ``batch_size`` images, and ``B`` consecutive calls cover the split once.

    Args:
        batches: the held-out split on its device (not shuffled, any ``drop_last``).
    """

    def __init__(self, batches: DeviceBatches) -> None:
        if batches.shuffle:
            raise ValueError("batches must be an unshuffled held-out split (shuffle=False), got shuffle=True")
        self.batches = batches
        self.calls = 0
        self._iterator: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(())

    def __call__(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batch = next(self._iterator, None)
        if batch is None:
            self._iterator = self.batches.epoch()
            batch = next(self._iterator)
        self.calls += 1
        return [batch]

    def state_dict(self) -> dict[str, Any]:
        """How many batches have been served (the position in the rotation)."""
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the rotation after ``state["calls"]`` batches."""
        self.calls = state["calls"]
        position = self.calls % len(self.batches)
        self._iterator = iter(())
        if position:
            self._iterator = self.batches.epoch()
            for _ in range(position):
                next(self._iterator)


class TrainingStream:
    """The training batches as one endless stream whose position survives a checkpoint.

    ``lr_range_test`` re-iterates its ``train_loader`` whenever a pass runs out; iterating this object
    continues :meth:`DeviceBatches.batches` (a new shuffled epoch whenever one ends), and
    :meth:`state_dict` / :meth:`load_state_dict` carry the generator and the position in the epoch.
    """

    def __init__(self, batches: DeviceBatches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches.batches(len(self.batches))  # one epoch's worth; lr_range_test asks again

    def state_dict(self) -> dict[str, Any]:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.load_state_dict(state)


def shuffled_test_split(data: CIFAR10, seed: int = 0) -> CIFAR10:
    """``data`` with its test split in a fixed random order (a permutation seeded with ``seed``).

    Image-folder sources list the test images class by class, so consecutive held-out batches of the
    split as loaded would each hold one class, and the held-out accuracy of a :class:`HeldOutRotation`
    would swing with the class of the batch. Shuffled once, every batch mixes the classes. The training
    split, the classes and the source are unchanged.
    """
    order = np.random.default_rng(seed).permutation(len(data.test_labels))
    return CIFAR10(data.train_images, data.train_labels, data.test_images[order], data.test_labels[order],
                   data.classes, data.source)


def run_range_test(
    profile: RangeTestProfile,
    mode: str,
    data: CIFAR10,
    device: torch.device,
    *,
    seed: int = 0,
    options: RunOptions = RunOptions(),
    start_lr: float | None = None,
    end_lr: float | None = None,
    num_iter: int | None = None,
    held_out: bool | None = None,
    smooth_factor: float = 0.98,
    diverge_threshold: float = 5.0,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    compile: str | None = None,
) -> dict[str, Any]:
    """Run one LR range test on the Caffe net over CIFAR-10 and return (and, with ``options.out``, write) its record.

    The model is built fresh (seeded), the optimizer is the paper's solver, and
    :func:`clr_lib.lr_range_test` raises the LR once per iteration (see the module docstring for the
    equations and :data:`~clr_book.experiments.range_test.config.RANGE_TEST_PROFILES` for the sweeps).
    The record's ``"result"`` is :meth:`RangeTestResult.to_dict` (rebuild it with
    :func:`~clr_book.experiments.range_test.report.result_from_record`) and ``"suggestion"`` is
    ``result.suggest()``, or None when the sweep stopped too early to read one.

    With a checkpoint folder in ``options``, the sweep saves its state every ``options.checkpoint_every``
    seconds and on SIGINT/SIGTERM (then stops with :class:`clr_book.checkpoint.RunInterrupted`), and the
    same call again continues it (``lr_range_test``'s ``checkpoint``) to the uninterrupted sweep's result;
    a finished sweep is remembered, and the same call returns (and rewrites) its record without sweeping.

    Args:
        profile: a :class:`~clr_book.experiments.range_test.config.RangeTestProfile`.
        mode: ``"linear"`` (Smith) or ``"exp"`` (fast.ai).
        data: the whole data set (the profile takes its class-balanced subset, seeded with ``seed``).
        device: where to run.
        seed: seeds the initialisation, the shuffling and the subset; a whole number >= 0.
        options: results folder, checkpoints, progress bar, the command line to record.
        start_lr, end_lr, num_iter: override the profile's sweep (LRs of ``lr_mult`` 1 groups; iterations).
        held_out: override where the sweep is read: held-out rotation (True) or training batches (False).
        smooth_factor: EMA factor of the smoothed curves (``lr_range_test``'s ``smooth_factor``).
        diverge_threshold: stop when the smoothed loss exceeds this multiple of its best (``lr_range_test``).
        amp_dtype: autocast dtype, or None (float32).
        channels_last: channels_last batches and weights (faster on the CPU with oneDNN).
        compile: a ``torch.compile`` mode, or None.

    Returns:
        The record (see :data:`RESULT_SCHEMA`); with ``options.out`` its ``"path"`` key holds the file written.

    Raises:
        ValueError: an unknown ``mode``, a bad ``seed``, a bad sweep (as :func:`clr_lib.lr_range_test`
            reports it), or a checkpoint made with other settings.
    """
    require_non_negative_int("seed", seed)
    sweep, customised = sweep_for(profile, mode, start_lr, end_lr, num_iter, held_out)
    settings = {"amp_dtype": dtype_name(amp_dtype), "channels_last": channels_last, "compile": compile,
                "smooth_factor": smooth_factor, "diverge_threshold": diverge_threshold}
    name = profile.name + ("-custom" if customised else "")
    subset = subset_for(data, profile.train_size, profile.test_size, seed)
    checkpoint = checkpoint_for(options, range_test_filename(mode, name, seed).removesuffix(".json"), {
        "experiment": "range_test", "mode": mode, "profile": dataclasses.asdict(profile),
        "sweep": dataclasses.asdict(sweep), "seed": seed, "device_type": device.type,
        "data": data_settings(subset), **settings,
    })
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None and "record" in saved:
        record = saved["record"]
    else:
        record = _sweep(profile, mode, sweep, customised, subset, device, seed, options, settings,
                        amp_dtype=amp_dtype, channels_last=channels_last, compile=compile, checkpoint=checkpoint)
        if checkpoint is not None:
            checkpoint.save({"record": record})
    if options.out is not None:
        path = write_record(record, options.out / range_test_filename(mode, name, seed), strict=True)
        record = {**record, "path": str(path)}
    return record


def _sweep(
    profile: RangeTestProfile, mode: str, sweep: Sweep, customised: bool, data: CIFAR10, device: torch.device,
    seed: int, options: RunOptions, settings: dict[str, Any], *, amp_dtype: torch.dtype | None,
    channels_last: bool, compile: str | None, checkpoint: Checkpoint | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    train_batches, test_batches = to_device(
        shuffled_test_split(data, seed), batch_size=profile.batch_size, device=device, normalization="mean_image",
        augmentation=None, seed=seed, channels_last=channels_last, eval_batch_size=profile.held_out_batch_size,
    )
    torch.manual_seed(seed)
    model = CaffeCIFAR10Full().to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    groups = caffe_param_groups(model, SOLVER["base_weight_decay"])
    for group in groups:  # lr_range_test keeps each group's ratio to group 0: Caffe's lr_mult
        group["lr"] = sweep.start_lr * group["lr_mult"]
    optimizer = torch.optim.SGD(groups, lr=sweep.start_lr, momentum=SOLVER["momentum"])
    forward = model if compile is None else torch.compile(model, mode=None if compile == "default" else compile)
    rotation = HeldOutRotation(test_batches) if sweep.held_out else None

    def synchronize() -> None:
        if device.type == "cuda":  # clocks must see finished GPU work
            torch.cuda.synchronize(device)

    synchronize()
    setup_seconds = time.perf_counter() - started
    timed = None if checkpoint is None else SweepCheckpoint(checkpoint)
    test_started = time.perf_counter()
    with checkpoint.guard() if checkpoint is not None else contextlib.nullcontext():
        result = lr_range_test(
            forward, optimizer, torch.nn.CrossEntropyLoss(), TrainingStream(train_batches),
            start_lr=sweep.start_lr, end_lr=sweep.end_lr, num_iter=sweep.num_iter, mode=mode,
            val_loader=rotation, smooth_factor=settings["smooth_factor"],
            diverge_threshold=settings["diverge_threshold"], accuracy=sweep.held_out,
            device=device, amp=amp_dtype is not None, amp_dtype=amp_dtype, progress=options.progress,
            checkpoint=timed,
        )
    synchronize()
    test_seconds = time.perf_counter() - test_started if timed is None else timed.seconds()
    return _record(
        result, mode=mode, sweep=sweep, customised=customised, profile=profile, data=data, model=model,
        optimizer=optimizer, device=device, seed=seed, command=options.command, settings=settings,
        timing={"setup_seconds": setup_seconds, "test_seconds": test_seconds,
                "seconds_per_iteration": test_seconds / len(result.lrs),  # held-out evaluation included
                "held_out_images_per_iteration": profile.held_out_batch_size if sweep.held_out else 0,
                "resumed_at_iterations": [] if timed is None else timed.resumed_at},
    )


def _record(
    result: RangeTestResult, *, mode: str, sweep: Sweep, customised: bool, profile: RangeTestProfile, data: CIFAR10,
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, seed: int,
    command: str | None, settings: dict[str, Any], timing: dict[str, float],
) -> dict[str, Any]:
    try:
        suggestion: dict[str, Any] | None = dataclasses.asdict(result.suggest())
    except ValueError:  # too few finite points (a sweep that diverged at once)
        suggestion = None
    iterations_per_epoch = len(data.train_labels) // profile.batch_size
    notes = provenance.data_notes(data)
    if profile.name != "full" or customised:
        notes.append(f"Profile {profile.name!r}{' with a customised sweep' if customised else ''}: not the paper's "
                     "8-epoch test on all 50,000 images; the suggested bounds are not comparable with the paper's.")
    return {
        "schema": RESULT_SCHEMA,
        "experiment": "smith2017-lr-range-test",
        "mode": mode,
        "profile": {"name": profile.name, "customised": customised, "train_size": profile.train_size,
                    "test_size": profile.test_size, "batch_size": profile.batch_size,
                    "held_out_batch_size": profile.held_out_batch_size},
        "sweep": {**dataclasses.asdict(sweep), "mode": mode,
                  "read_on": "held-out accuracy and loss (rotating test batches)" if sweep.held_out
                  else "training loss and training-batch accuracy"},
        "model": {"name": type(model).__name__, "parameters": count_parameters(model)},
        "optimizer": {
            **SOLVER,
            "param_groups": [
                {"param_names": list(group["param_names"]), "lr_mult": group["lr_mult"],
                 "decay_mult": group["decay_mult"], "weight_decay": group["weight_decay"]}
                for group in optimizer.param_groups
            ],
        },
        "iterations": len(result.lrs),
        "iterations_per_epoch": iterations_per_epoch,
        "epochs": len(result.lrs) / iterations_per_epoch,
        "result": finite_or_none(result.to_dict()),
        "suggestion": suggestion,
        "final": {"lr": float(result.lrs[-1]), "smoothed_loss": finite_or_none(float(result.losses[-1])),
                  "smoothed_accuracy": None if result.accuracies is None else finite_or_none(float(result.accuracies[-1])),
                  "diverged": result.diverged, "stopped_at": result.stopped_at},
        "paper": dict(PAPER_RANGE_TEST),
        "timing": timing,
        "settings": settings,
        **provenance.run_context(device, data, seed, command),
        "notes": notes,
    }
