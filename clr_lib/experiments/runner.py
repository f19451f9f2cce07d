"""Run one Table 1 policy on the Caffe net and write its results file.

One run = one policy at one profile and seed = one JSON file (``RESULT_SCHEMA``) holding the curves,
the final accuracy, timings, the schedule's description and everything needed to say where the
numbers came from. Files are written only when a run is made; none are part of the repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .._validation import require_non_negative_int
from ..data import CIFAR10, load_cifar10
from ..models import CaffeCIFAR10Full, caffe_param_groups, count_parameters
from ..train import TrainResult, train
from . import provenance
from .graphed import train_tensor_lr
from .policies import PAPER_CITATION, PAPER_TABLE_1, Policy, get_policy
from .profiles import Profile, resolve_profile
from .records import first_reaching, write_record

__all__ = ["RESULT_SCHEMA", "SOLVER", "prepare_data", "resolve_device", "result_filename", "run_policy"]

RESULT_SCHEMA = "clr_lib.experiments.table1/1"
"""The ``schema`` value of every results file this module writes."""

SOLVER = {"optimizer": "SGD", "momentum": 0.9, "base_weight_decay": 0.004, "batch_size": 100}
"""Caffe's ``cifar10_full_solver.prototxt`` (per-parameter multipliers: ``caffe_param_groups``)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA if available, else CPU. A CUDA device without CUDA raises ``ValueError``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:index]', got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but torch.cuda.is_available() is False")
    return resolved


def prepare_data(data: CIFAR10, profile: Profile, seed: int = 0) -> CIFAR10:
    """The profile's (class-balanced) subset of ``data``; all of it for the ``full`` profile."""
    if profile.train_size is None and profile.test_size is None:
        return data
    train_size = profile.train_size or len(data.train_labels)
    test_size = profile.test_size or len(data.test_labels)
    return data.subset(train_size, test_size, seed=seed)


def result_filename(policy: str, profile: str, seed: int) -> str:
    """``table1-<policy>-<profile>-seed<seed>.json``: a rerun with the same settings replaces its file."""
    return f"table1-{policy}-{profile}-seed{seed}.json"


def _record(
    policy: Policy, profile: Profile, result: TrainResult, data: CIFAR10, model: torch.nn.Module,
    optimizer: torch.optim.Optimizer, device: torch.device, seed: int, command: str | None,
) -> dict[str, Any]:
    paper = PAPER_TABLE_1[policy.name]
    target = paper["accuracy_percent"] / 100
    reached = first_reaching(result.iteration, result.test_accuracy, target)
    notes = [*policy.notes, *provenance.data_notes(data)]
    if profile.iteration_scale != 1:
        notes.append(
            f"Profile {profile.name!r}: iteration counts scaled by {profile.iteration_scale} and gamma raised to "
            f"1/{profile.iteration_scale}; not comparable with the paper's numbers."
        )
    return {
        "schema": RESULT_SCHEMA,
        "experiment": "smith2017-table1",
        "policy": policy.name,
        "policy_description": policy.description,
        "profile": {"name": profile.name, "train_size": profile.train_size, "test_size": profile.test_size,
                    "iteration_scale": profile.iteration_scale, "eval_every": profile.eval_every,
                    "batch_size": profile.batch_size},
        "schedule": result.schedule,
        "model": {"name": type(model).__name__, "parameters": count_parameters(model)},
        "optimizer": {
            **SOLVER,
            "param_groups": [
                {"param_names": list(group.get("param_names", [])), "lr_mult": group.get("lr_mult", 1.0),
                 "decay_mult": group.get("decay_mult"), "weight_decay": group["weight_decay"]}
                for group in optimizer.param_groups
            ],
        },
        "iterations": result.iterations,
        "batch_size": result.batch_size,
        "iterations_per_epoch": result.iterations_per_epoch,
        "eval_every": profile.eval_every,
        "curves": result.curves(),
        "final_test_accuracy": result.final_test_accuracy,
        "final_test_loss": result.final_test_loss,
        "iterations_to_paper_accuracy": reached,
        "paper": {**paper, "citation": PAPER_CITATION},
        "timing": {
            "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds,
            "setup_seconds": result.setup_seconds,
            "total_seconds": result.train_seconds + result.eval_seconds + result.setup_seconds,
            "seconds_per_iteration": result.seconds_per_iteration,
            "evaluations": len(result.iteration),
        },
        "settings": result.settings,
        **provenance.run_context(device, data, seed, command),
        "notes": notes,
    }


def run_policy(
    policy: str,
    *,
    profile: str | Profile = "auto",
    data: CIFAR10 | None = None,
    data_location: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    amp_dtype: str | None = None,
    channels_last: bool | None = None,
    compile: bool | str = False,
    cuda_graph: bool = False,
    eval_batch_size: int | None = None,
    progress: bool = False,
    command: str | None = None,
    download: bool = True,
) -> dict[str, Any]:
    """Train the Caffe net with one Table 1 policy and return (and, with ``out_dir``, write) its record.

    Args:
        policy: a name from :data:`clr_lib.experiments.POLICIES`.
        profile: ``"auto"``, ``"full"``, ``"quick"``, ``"smoke"`` or a :class:`Profile`.
        data: the full data set (the profile takes its subset); default: :func:`clr_lib.data.load_cifar10`
            of ``data_location``.
        data_location: where to load the data from when ``data`` is None (else ``CLR_CIFAR10``, download, stand-in).
        device: ``"auto"`` (default: CUDA if available), ``"cpu"``, ``"cuda"``, ...
        seed: seeds the model's initialisation, the shuffling and the subset.
        out_dir: folder for the results file (created); None writes nothing.
        amp_dtype: None, ``"bf16"`` or ``"fp16"``.
        channels_last: None picks True on CPU (faster with oneDNN) and False on CUDA.
        compile: passed to :func:`clr_lib.train.train`.
        cuda_graph: train with :func:`clr_lib.experiments.graphed.train_tensor_lr` and capture each
            iteration into a CUDA graph (CUDA only, off by default, UNTESTED on a GPU so far; cannot be
            combined with ``compile``).
        eval_batch_size: test images per evaluation batch; None picks 250 on CPU (measured ~30 % faster
            than 1000 with oneDNN on 2 cores) and 1000 on CUDA.
        progress: show a progress bar.
        command: the command line to record (default: this process's ``sys.argv``).
        download: allow torchvision's download when no location is configured.

    Returns:
        The record (see ``RESULT_SCHEMA``); with ``out_dir`` its ``"path"`` key holds the file written.

    Raises:
        ValueError: an unknown ``policy``, ``profile`` or ``device``, a negative ``seed``, a missing
            data location, or ``cuda_graph`` without CUDA or together with ``compile``.
    """
    chosen = get_policy(policy)
    require_non_negative_int("seed", seed)
    torch_device = resolve_device(device)
    run_profile = profile if isinstance(profile, Profile) else resolve_profile(profile, torch_device.type)
    if cuda_graph and torch_device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got device={str(torch_device)!r}")
    if cuda_graph and compile not in (False, None, "none"):
        raise ValueError(f"cuda_graph=True replaces torch.compile; pass compile=False, got compile={compile!r}")
    if data is None:
        data = load_cifar10(data_location, download=download)
    subset = prepare_data(data, run_profile, seed)
    if channels_last is None:
        channels_last = torch_device.type == "cpu"
    if eval_batch_size is None:
        eval_batch_size = 250 if torch_device.type == "cpu" else 1000

    torch.manual_seed(seed)
    model = CaffeCIFAR10Full()
    optimizer = torch.optim.SGD(caffe_param_groups(model, SOLVER["base_weight_decay"]), lr=0.001, momentum=SOLVER["momentum"])
    common = {
        "iterations": chosen.budget(run_profile.iteration_scale), "batch_size": run_profile.batch_size,
        "eval_every": run_profile.eval_every, "device": torch_device, "normalization": "mean_image",
        "amp_dtype": amp_dtype, "channels_last": channels_last, "seed": seed, "progress": progress,
        "eval_batch_size": eval_batch_size,
    }
    schedule = chosen.schedule(run_profile.iteration_scale)
    if cuda_graph:
        result = train_tensor_lr(model, optimizer, schedule, subset, cuda_graph=True, **common)
    else:
        result = train(model, optimizer, schedule, subset, augmentation=None, compile=compile, **common)
    record = _record(chosen, run_profile, result, subset, model, optimizer, torch_device, seed, command)
    if out_dir is not None:
        path = write_record(record, Path(out_dir) / result_filename(chosen.name, run_profile.name, seed))
        record = {**record, "path": str(path)}
    return record
