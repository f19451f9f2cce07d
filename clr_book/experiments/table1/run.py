"""Run one Table 1 policy on the Caffe net and write its results file.

One run = one policy at one profile and seed = one JSON file (:data:`RESULT_SCHEMA`) holding the curves,
the final accuracy, timings, the schedule's description and everything needed to say where the numbers
came from. With a checkpoint folder in the :class:`~clr_book.experiments.common.RunOptions`, a run
stopped at any point resumes where it was when called again with the same settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from clr_lib._validation import require_non_negative_int

from ...cifar.data import CIFAR10
from ...cifar.models import CaffeCIFAR10Full, caffe_param_groups, count_parameters
from ...cifar.precision import dtype_name
from ...cifar.train import STEPS, TrainResult, train
from .. import provenance
from ..common import RunOptions, checkpoint_for, data_settings, subset_for
from ..records import first_reaching, write_run_record
from .config import DEMONSTRATION_NOTE, PAPER_CITATION, PAPER_TABLE_1, SOLVER, Policy, Profile

__all__ = ["RESULT_SCHEMA", "default_eval_batch_size", "result_filename", "run_name", "run_policy"]

RESULT_SCHEMA = "clr_lib.experiments.table1/1"
"""The ``schema`` value of every results file this module writes (unchanged since the first files)."""


def run_name(policy: str, profile: str, seed: int) -> str:
    """``table1-<policy>-<profile>-seed<seed>``: the run's results file and checkpoint are named after it."""
    return f"table1-{policy}-{profile}-seed{seed}"


def result_filename(policy: str, profile: str, seed: int) -> str:
    """``table1-<policy>-<profile>-seed<seed>.json``: a rerun with the same settings replaces its file."""
    return run_name(policy, profile, seed) + ".json"


def default_eval_batch_size(device: torch.device) -> int:
    """Test images per evaluation batch: 250 on the CPU, 1000 on CUDA (see ``benchmarks/README.md``)."""
    return 250 if device.type == "cpu" else 1000


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
    if profile.demonstration:
        notes.append(DEMONSTRATION_NOTE)
    return {
        "schema": RESULT_SCHEMA,
        "experiment": "smith2017-table1",
        "policy": policy.name,
        "policy_description": policy.description,
        "profile": {"name": profile.name, "train_size": profile.train_size, "test_size": profile.test_size,
                    "iteration_scale": profile.iteration_scale, "eval_every": profile.eval_every,
                    "batch_size": profile.batch_size, "demonstration": profile.demonstration},
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
            "resumed_at_iterations": list(result.resumed_at),
        },
        "settings": result.settings,
        **provenance.run_context(device, data, seed, command),
        "notes": notes,
    }


def run_policy(
    policy: Policy,
    profile: Profile,
    data: CIFAR10,
    device: torch.device,
    *,
    seed: int = 0,
    options: RunOptions = RunOptions(),
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    compile: str | None = None,
    step: str = "eager",
    eval_batch_size: int = 1000,
) -> dict[str, Any]:
    """Train the Caffe net with one Table 1 policy and return (and, with ``options.out``, write) its record.

    Args:
        policy: from :data:`clr_book.experiments.table1.config.POLICIES`.
        profile: a :class:`~clr_book.experiments.table1.config.Profile`.
        data: the whole data set (the profile takes its class-balanced subset, seeded with ``seed``).
        device: where to train.
        seed: seeds the model's initialisation, the shuffling and the subset.
        options: results folder, checkpoints, progress bar, the command line to record.
        amp_dtype: autocast dtype, or None for float32.
        channels_last: channels_last batches and weights (faster on the CPU with oneDNN).
        compile: a ``torch.compile`` mode, or None.
        step: ``"eager"``, ``"tensor_lr"`` or ``"cuda_graph"`` (see :func:`clr_book.cifar.train.train`;
            the CUDA graph is CUDA only and cannot be combined with ``compile``).
        eval_batch_size: test images per evaluation batch (:func:`default_eval_batch_size`).

    Returns:
        The record (see :data:`RESULT_SCHEMA`); with ``options.out`` its ``"path"`` key holds the file written.

    Raises:
        ValueError: a negative ``seed``, an unknown ``step``, ``cuda_graph`` without CUDA or with
            ``compile``, or a checkpoint made with other settings.
        clr_book.checkpoint.RunInterrupted: stopped by SIGINT/SIGTERM after saving the checkpoint.
    """
    require_non_negative_int("seed", seed)
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(map(repr, STEPS))}, got {step!r}")
    if step == "cuda_graph" and device.type != "cuda":
        raise ValueError(f"step='cuda_graph' needs a CUDA device, got device={str(device)!r}")
    if step != "eager" and compile is not None:
        raise ValueError(f"step={step!r} replaces torch.compile; pass compile=None, got compile={compile!r}")
    subset = subset_for(data, profile.train_size, profile.test_size, seed)
    name = run_name(policy.name, profile.name, seed)
    checkpoint = checkpoint_for(options, name, {
        "experiment": "table1", "policy": policy.name, "profile": dataclasses.asdict(profile), "seed": seed,
        "data": data_settings(subset),
        "device_type": device.type, "amp_dtype": dtype_name(amp_dtype), "channels_last": channels_last,
        "compile": compile, "step": step, "eval_batch_size": eval_batch_size,
    })

    torch.manual_seed(seed)
    model = CaffeCIFAR10Full()
    optimizer = torch.optim.SGD(caffe_param_groups(model, SOLVER["base_weight_decay"]), lr=0.001,
                                momentum=SOLVER["momentum"])
    result = train(
        model, optimizer, policy.schedule(profile.iteration_scale), subset,
        iterations=policy.budget(profile.iteration_scale), batch_size=profile.batch_size,
        eval_every=profile.eval_every, device=device, normalization="mean_image", augmentation=None,
        amp_dtype=amp_dtype, channels_last=channels_last, compile=compile or False, step=step, seed=seed,
        progress=options.progress, eval_batch_size=eval_batch_size, checkpoint=checkpoint,
    )
    record = _record(policy, profile, result, subset, model, optimizer, device, seed, options.command)
    if options.out is not None:
        record = write_run_record(record, options.out / result_filename(policy.name, profile.name, seed))
    return record
