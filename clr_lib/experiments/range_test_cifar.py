r"""The LR range test on CIFAR-10 with the paper's Caffe ``cifar10_full`` net (Smith 2017, section 3.3).

One run = one sweep (``linear`` or ``exp``) at one profile and seed = one JSON results file
(:data:`RESULT_SCHEMA`) with the curves, the suggested bounds, the wall time and the provenance
(device, versions, git commit, date, command, data source).

The set-up is the paper's Table 1 solver: :class:`clr_lib.models.CaffeCIFAR10Full` with
:func:`clr_lib.models.caffe_param_groups` (Caffe's ``lr_mult`` and ``decay_mult``), SGD with momentum 0.9
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

Profiles (``auto`` = ``full`` on a CUDA device, ``quick`` elsewhere):

========  ===============  ============================  =========================  =========
profile   images (train /  linear sweep                  exp sweep                  held-out
          test)                                                                     batch
========  ===============  ============================  =========================  =========
full      50,000 / 10,000  1e-5 .. 0.02, 4,000 it (8 ep)  1e-5 .. 1, 1,500 it (3 ep)  500
quick     5,000 / 1,000    1e-5 .. 0.02, 250 it (5 ep)    1e-5 .. 1, 150 it (3 ep)    100
smoke     500 / 200        1e-5 .. 0.02, 12 it            1e-5 .. 1, 12 it            50
========  ===============  ============================  =========================  =========

The quick profile is for CPUs (CI, readers without a GPU); its curves are shaped by its few iterations
(see the chapter), so its suggestions are not the paper's. ``smoke`` exists for the test suite only.

Run from the shell::

    python -m clr_lib.experiments.range_test_cifar --profile full --mode both --out book/results/range_test

References:
    L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, section 3.3.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .._validation import require_non_negative_int
from ..data import CIFAR10, DeviceBatches, load_cifar10, to_device
from ..models import CaffeCIFAR10Full, caffe_param_groups, count_parameters
from ..range_test import RangeTestResult, lr_range_test
from ..train import _resolve_compile, resolve_amp_dtype
from . import provenance
from .records import choose_profile, write_record
from .runner import SOLVER, resolve_device

__all__ = [
    "MODES",
    "PAPER_RANGE_TEST",
    "RANGE_TEST_PROFILES",
    "RESULT_SCHEMA",
    "HeldOutRotation",
    "RangeTestProfile",
    "Sweep",
    "load_range_tests",
    "main",
    "range_test_filename",
    "resolve_range_test_profile",
    "result_from_record",
    "run_range_test",
    "shuffled_test_split",
]

RESULT_SCHEMA = "clr_lib.experiments.range_test/1"
"""The ``schema`` value of every results file this module writes."""

MODES = ("linear", "exp")
"""The two sweeps: Smith's linear one and fast.ai's exponential one."""

PAPER_RANGE_TEST: dict[str, Any] = {
    "base_lr": 0.001,
    "max_lr": 0.006,
    "epochs": 8,
    "iterations": 4000,
    "citation": (
        "Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV 2017, section 3.3 "
        "(CIFAR-10, Caffe cifar10_full net, batch 100: a linear LR range test over 8 epochs gave "
        "base_lr 0.001 and max_lr 0.006)."
    ),
}
"""The bounds Smith (2017) read off his CIFAR-10 range test."""


@dataclass(frozen=True)
class Sweep:
    """One range-test sweep: the LR of ``num_iter`` iterations from ``start_lr`` to ``end_lr``.

    Attributes:
        start_lr: LR of iteration 0 (``lr_mult`` 1 groups).
        end_lr: LR of the last iteration.
        num_iter: iterations (one batch and one optimizer step each).
        held_out: read the sweep on held-out batches (True, Smith) or on the training batches (False).
    """

    start_lr: float
    end_lr: float
    num_iter: int
    held_out: bool


@dataclass(frozen=True)
class RangeTestProfile:
    """How big a range test is.

    Attributes:
        name: ``full``, ``quick`` or ``smoke``.
        train_size: training images (class-balanced subset), or None for all 50,000.
        test_size: test images (class-balanced subset), or None for all 10,000.
        sweeps: the :class:`Sweep` of each mode.
        held_out_batch_size: test images classified after every iteration of a held-out sweep.
        batch_size: training images per iteration (the paper's 100).
    """

    name: str
    train_size: Optional[int]
    test_size: Optional[int]
    sweeps: dict[str, Sweep]
    held_out_batch_size: int
    batch_size: int = 100


RANGE_TEST_PROFILES: dict[str, RangeTestProfile] = {
    "full": RangeTestProfile(
        "full", None, None,
        {"linear": Sweep(1e-5, 0.02, 4000, True), "exp": Sweep(1e-5, 1.0, 1500, False)},
        held_out_batch_size=500,
    ),
    "quick": RangeTestProfile(
        "quick", 5000, 1000,
        {"linear": Sweep(1e-5, 0.02, 250, True), "exp": Sweep(1e-5, 1.0, 150, False)},
        held_out_batch_size=100,
    ),
    "smoke": RangeTestProfile(
        "smoke", 500, 200,
        {"linear": Sweep(1e-5, 0.02, 12, True), "exp": Sweep(1e-5, 1.0, 12, False)},
        held_out_batch_size=50,
    ),
}
"""The range-test profiles (see the module docstring)."""


def resolve_range_test_profile(name: str, device_type: str) -> RangeTestProfile:
    """The profile called ``name``; ``"auto"`` is ``full`` on ``"cuda"`` and ``quick`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile``).
    """
    return choose_profile(name, RANGE_TEST_PROFILES, device_type)


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


def _sweep_for(profile: RangeTestProfile, mode: str, start_lr: Optional[float], end_lr: Optional[float],
               num_iter: Optional[int], held_out: Optional[bool]) -> tuple[Sweep, bool]:
    """The profile's sweep for mode with any overrides applied, and whether anything was overridden."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    base = profile.sweeps[mode]
    overrides = {key: value for key, value in
                 (("start_lr", start_lr), ("end_lr", end_lr), ("num_iter", num_iter), ("held_out", held_out))
                 if value is not None}
    return replace(base, **overrides), any(getattr(base, key) != value for key, value in overrides.items())


def _finite_or_none(values: Any) -> Any:
    """Lists with NaN/inf replaced by None, so that the file is strict JSON (read back as NaN by numpy)."""
    if isinstance(values, list):
        return [_finite_or_none(value) for value in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def run_range_test(
    profile: str | RangeTestProfile = "auto",
    mode: str = "linear",
    *,
    data: CIFAR10 | None = None,
    data_location: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    start_lr: float | None = None,
    end_lr: float | None = None,
    num_iter: int | None = None,
    held_out: bool | None = None,
    smooth_factor: float = 0.98,
    diverge_threshold: float = 5.0,
    amp_dtype: str | None = None,
    channels_last: bool | None = None,
    compile: bool | str = False,
    progress: bool = False,
    command: str | None = None,
    download: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run one LR range test on the Caffe net over CIFAR-10 and return (and, with ``out_dir``, write) its record.

    The model is built fresh (seeded), the optimizer is the paper's solver, and
    :func:`clr_lib.lr_range_test` raises the LR once per iteration (see the module docstring for the
    equations and :data:`RANGE_TEST_PROFILES` for the sweeps). The record's ``"result"`` is
    :meth:`RangeTestResult.to_dict` (rebuild it with :func:`result_from_record`) and ``"suggestion"`` is
    ``result.suggest()`` (``max_lr`` at the peak of the smoothed held-out accuracy for a held-out sweep,
    else at the minimum of the smoothed training loss; ``base_lr = max_lr / 4``), or None when the sweep
    stopped too early to read one.

    Args:
        profile: ``"auto"``, ``"full"``, ``"quick"``, ``"smoke"`` or a :class:`RangeTestProfile`.
        mode: ``"linear"`` (Smith) or ``"exp"`` (fast.ai).
        data: the full data set (the profile takes its class-balanced subset); default
            :func:`clr_lib.data.load_cifar10` of ``data_location``.
        data_location: where to load the data when ``data`` is None (else ``$CLR_CIFAR10``, download, stand-in).
        device: ``"auto"``/None (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        seed: seeds the initialisation, the shuffling and the subset; a whole number >= 0.
        out_dir: folder for the results file (created); None writes nothing.
        start_lr, end_lr, num_iter: override the profile's sweep (LRs of ``lr_mult`` 1 groups; iterations).
        held_out: override where the sweep is read: held-out rotation (True) or training batches (False).
        smooth_factor: EMA factor of the smoothed curves (``lr_range_test``'s ``smooth_factor``).
        diverge_threshold: stop when the smoothed loss exceeds this multiple of its best (``lr_range_test``).
        amp_dtype: None (float32, default), ``"bf16"`` or ``"fp16"`` autocast.
        channels_last: channels_last batches and weights; None picks True on CPU (faster with oneDNN)
            and False on CUDA.
        compile: ``torch.compile`` the model: False, True or a mode from :data:`clr_lib.train.COMPILE_MODES`.
        progress: show ``lr_range_test``'s progress bar (on stderr).
        command: the command line to record (default: this process's ``sys.argv``).
        download: allow torchvision's download when no location is configured.
        verbose: let :func:`clr_lib.data.load_cifar10` print where it loads from.

    Returns:
        The record (see :data:`RESULT_SCHEMA`); with ``out_dir`` its ``"path"`` key holds the file written.

    Raises:
        ValueError: an unknown ``profile``, ``mode``, ``device``, ``amp_dtype`` or ``compile``, a bad
            ``seed``, or a bad sweep (as :func:`clr_lib.lr_range_test` reports it).
    """
    require_non_negative_int("seed", seed)
    torch_device = resolve_device(device)
    run_profile = profile if isinstance(profile, RangeTestProfile) else resolve_range_test_profile(profile, torch_device.type)
    sweep, customised = _sweep_for(run_profile, mode, start_lr, end_lr, num_iter, held_out)
    dtype = resolve_amp_dtype(amp_dtype)
    compile_mode = _resolve_compile(compile)
    if channels_last is None:
        channels_last = torch_device.type == "cpu"

    started = time.perf_counter()
    if data is None:
        data = load_cifar10(data_location, download=download, verbose=verbose)
    if run_profile.train_size is not None or run_profile.test_size is not None:
        data = data.subset(run_profile.train_size or len(data.train_labels),
                           run_profile.test_size or len(data.test_labels), seed=seed)
    train_batches, test_batches = to_device(
        shuffled_test_split(data, seed), batch_size=run_profile.batch_size, device=torch_device, normalization="mean_image",
        augmentation=None, seed=seed, channels_last=channels_last,
        eval_batch_size=run_profile.held_out_batch_size,
    )
    torch.manual_seed(seed)
    model = CaffeCIFAR10Full().to(torch_device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    groups = caffe_param_groups(model, SOLVER["base_weight_decay"])
    for group in groups:  # lr_range_test keeps each group's ratio to group 0: Caffe's lr_mult
        group["lr"] = sweep.start_lr * group["lr_mult"]
    optimizer = torch.optim.SGD(groups, lr=sweep.start_lr, momentum=SOLVER["momentum"])
    forward = model if compile_mode is None else torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
    rotation = HeldOutRotation(test_batches) if sweep.held_out else None

    def synchronize() -> None:
        if torch_device.type == "cuda":  # clocks must see finished GPU work
            torch.cuda.synchronize(torch_device)

    synchronize()
    setup_seconds = time.perf_counter() - started
    test_started = time.perf_counter()
    result = lr_range_test(
        forward, optimizer, torch.nn.CrossEntropyLoss(), train_batches,
        start_lr=sweep.start_lr, end_lr=sweep.end_lr, num_iter=sweep.num_iter, mode=mode,
        val_loader=rotation, smooth_factor=smooth_factor, diverge_threshold=diverge_threshold, accuracy=sweep.held_out,
        device=torch_device, amp=dtype is not None, amp_dtype=dtype, progress=progress,
    )
    synchronize()
    test_seconds = time.perf_counter() - test_started

    record = _record(
        result, mode=mode, sweep=sweep, customised=customised, profile=run_profile, data=data, model=model,
        optimizer=optimizer, device=torch_device, seed=seed, command=command,
        settings={"amp_dtype": None if dtype is None else str(dtype).removeprefix("torch."),
                  "channels_last": channels_last, "compile": compile_mode, "smooth_factor": smooth_factor,
                  "diverge_threshold": diverge_threshold},
        timing={"setup_seconds": setup_seconds, "test_seconds": test_seconds,
                "seconds_per_iteration": test_seconds / len(result.lrs),  # held-out evaluation included
                "held_out_images_per_iteration": run_profile.held_out_batch_size if sweep.held_out else 0},
    )
    if out_dir is not None:
        name = run_profile.name + ("-custom" if customised else "")
        path = write_record(record, Path(out_dir) / range_test_filename(mode, name, seed), strict=True)
        record = {**record, "path": str(path)}
    return record


def _record(
    result: RangeTestResult, *, mode: str, sweep: Sweep, customised: bool, profile: RangeTestProfile, data: CIFAR10,
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, seed: int,
    command: str | None, settings: dict[str, Any], timing: dict[str, float],
) -> dict[str, Any]:
    try:
        suggestion: dict[str, Any] | None = asdict(result.suggest())
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
        "sweep": {**asdict(sweep), "mode": mode,
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
        "result": _finite_or_none(result.to_dict()),
        "suggestion": suggestion,
        "final": {"lr": float(result.lrs[-1]), "smoothed_loss": _finite_or_none(float(result.losses[-1])),
                  "smoothed_accuracy": None if result.accuracies is None else _finite_or_none(float(result.accuracies[-1])),
                  "diverged": result.diverged, "stopped_at": result.stopped_at},
        "paper": dict(PAPER_RANGE_TEST),
        "timing": timing,
        "settings": settings,
        **provenance.run_context(device, data, seed, command),
        "notes": notes,
    }


def result_from_record(record: dict[str, Any]) -> RangeTestResult:
    """The :class:`clr_lib.RangeTestResult` stored in a record (None in the curves reads back as NaN)."""
    return RangeTestResult.from_dict(dict(record["result"]))


def load_range_tests(
    folder: str | os.PathLike[str], *, profile: str | None = None, include_custom: bool = False
) -> list[dict[str, Any]]:
    """The range-test records in ``folder`` (``range-test-*.json`` of :data:`RESULT_SCHEMA`), sorted by file name.

    Args:
        folder: where the results files are; a missing folder gives an empty list.
        profile: keep only records of this profile name (e.g. ``"full"``); None keeps all.
        include_custom: also keep runs whose sweep was overridden (``profile.customised``).

    Raises:
        ValueError: a file that is not valid JSON or not of :data:`RESULT_SCHEMA` (naming the file).
    """
    records = []
    for path in sorted(Path(folder).glob("range-test-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"results file {str(path)!r} is not valid JSON: {error}") from error
        if not isinstance(record, dict) or record.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"results file {str(path)!r} must have schema {RESULT_SCHEMA!r}")
        if (profile is None or record["profile"]["name"] == profile) and (include_custom or not record["profile"]["customised"]):
            records.append({**record, "path": str(path)})
    return records


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

_PROG = "python -m clr_lib.experiments.range_test_cifar"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="LR range test on CIFAR-10 with the Caffe cifar10_full net (Smith 2017): one JSON results file per sweep.",
    )
    parser.add_argument("--profile", default="auto", help=f"auto (GPU: full, CPU: quick) or one of: {', '.join(RANGE_TEST_PROFILES)}")
    parser.add_argument("--mode", default="both", help="linear (Smith, held-out accuracy), exp (fast.ai, training loss) or both (default)")
    parser.add_argument("--out", required=True, help="folder for the results files (created if needed)")
    parser.add_argument("--data", default=None, help="CIFAR-10 folder or .tar.gz (default: $CLR_CIFAR10, then download, then a synthetic stand-in)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and subset (default 0)")
    parser.add_argument("--num-iter", type=int, default=None, help="override the profile's iterations per sweep")
    parser.add_argument("--start-lr", type=float, default=None, help="override the profile's first LR")
    parser.add_argument("--end-lr", type=float, default=None, help="override the profile's last LR")
    parser.add_argument("--amp", default="none", help="autocast dtype: none (default, float32), bf16 or fp16")
    parser.add_argument("--channels-last", default="auto", help="auto (on for CPU, off for CUDA), on or off")
    parser.add_argument("--compile", default="none", help="torch.compile mode: none (default), default, reduce-overhead, max-autotune, ...")
    parser.add_argument("--no-download", action="store_true", help="never try torchvision's download")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per sweep")
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the chosen sweeps, print one summary line each; return the records.

    Raises:
        ValueError: a bad option value, naming the option.
    """
    arguments = list(argv) if argv is not None else None
    args = build_parser().parse_args(arguments)
    if args.mode != "both" and args.mode not in MODES:
        raise ValueError(f"--mode must be 'linear', 'exp' or 'both', got {args.mode!r}")
    modes = list(MODES) if args.mode == "both" else [args.mode]
    channels_last = {"auto": None, "on": True, "off": False}.get(args.channels_last, "bad")
    if channels_last == "bad":
        raise ValueError(f"--channels-last must be 'auto', 'on' or 'off', got {args.channels_last!r}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.num_iter is not None and args.num_iter < 2:
        raise ValueError(f"--num-iter must be a whole number of iterations >= 2, got {args.num_iter}")
    if args.data is not None and not Path(args.data).expanduser().exists():
        raise ValueError(f"--data must be an existing CIFAR-10 folder or .tar.gz, got {args.data!r} (not found)")
    try:
        resolve_amp_dtype(None if args.amp == "none" else args.amp)
        _resolve_compile(False if args.compile == "none" else args.compile)
    except ValueError as error:
        option = "--amp" if "amp_dtype" in str(error) else "--compile"
        raise ValueError(f"{option}: {error}") from error
    device = resolve_device(args.device)
    profile = resolve_range_test_profile(args.profile, device.type)
    command = shlex.join(["python", "-m", "clr_lib.experiments.range_test_cifar",
                          *(arguments if arguments is not None else sys.argv[1:])])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once

    data = load_cifar10(args.data, download=not args.no_download)
    print(f"profile {profile.name!r} on {provenance.describe_device(device)}: sweeps {', '.join(modes)}; "
          f"data: {data.source}", flush=True)
    records = []
    for mode in modes:
        record = run_range_test(
            profile, mode, data=data, device=device, seed=args.seed, out_dir=args.out,
            start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.num_iter,
            amp_dtype=None if args.amp == "none" else args.amp, channels_last=channels_last,
            compile=False if args.compile == "none" else args.compile, progress=args.progress, command=command,
        )
        bounds = record["suggestion"]
        read = "no suggestion (too few points)" if bounds is None else (
            f"base_lr {bounds['base_lr']:.2g}  max_lr {bounds['max_lr']:.2g} (from {bounds['max_lr_metric']})")
        stop = f", diverged at iteration {record['final']['stopped_at']}" if record["final"]["diverged"] else ""
        print(f"{mode:6s} {record['iterations']:5d} it{stop}  {read}  "
              f"{1e3 * record['timing']['seconds_per_iteration']:.2f} ms/it  "
              f"wall {record['timing']['setup_seconds'] + record['timing']['test_seconds']:.1f} s  -> {record['path']}",
              flush=True)
        records.append(record)
    return records


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
