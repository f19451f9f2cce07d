"""``python -m clr_book.experiments.table1``: run Table 1 policies, one results file per policy.

Resolves the device, the profile, the output and checkpoint folders and the data once, here, and passes
the resolved objects to :func:`~clr_book.experiments.table1.run.run_policy`. Run the same command again
after a stop (Ctrl-C, SIGTERM, a lost machine) and each run resumes from its checkpoint; policies
already finished are not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ...cifar.precision import resolve_amp_dtype, resolve_compile
from ...cifar.train import STEPS
from ..common import experiment_parser, load_data, names_option, resolve_device, resolve_run_options, run_cli
from .config import POLICIES, PROFILES, Profile, get_policy, resolve_profile
from .run import default_eval_batch_size, result_filename, run_policy

PROG = "python -m clr_book.experiments.table1"

__all__ = ["PROG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        PROG, "Replicate Smith (2017), Table 1 (CIFAR-10, Caffe cifar10_full net): one JSON results file per policy.",
        list(PROFILES))
    parser.add_argument("--policy", default="all", help=f"'all' or a comma-separated list of: {', '.join(POLICIES)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and subset (default 0)")
    parser.add_argument("--amp", default="none", help="autocast dtype: none (default), bf16 or fp16")
    parser.add_argument("--channels-last", default="auto", help="auto (on for CPU, off for CUDA), on or off")
    parser.add_argument("--compile", default="none",
                        help="torch.compile mode: none (default), default, reduce-overhead, max-autotune, ...")
    parser.add_argument("--step", default="eager",
                        help="eager (default), tensor_lr, or cuda_graph (each iteration one CUDA graph with the LR "
                             "in a device tensor; CUDA only, untested on a GPU so far)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="policies to run at once, each in its own process (default 1: one after another)")
    return parser


def _channels_last(value: str, device: torch.device) -> bool:
    choices = {"auto": device.type == "cpu", "on": True, "off": False}
    if value not in choices:
        raise ValueError(f"--channels-last must be 'auto', 'on' or 'off', got {value!r}")
    return choices[value]


def _child_argv(argv: Sequence[str], policy: str) -> list[str]:
    """``argv`` with ``--policy`` replaced by ``policy`` and ``--jobs 1``: the command that runs it alone."""
    args: list[str] = []
    skip = False
    for index, item in enumerate(argv):
        if skip:
            skip = False
            continue
        if item in ("--policy", "--jobs"):
            skip = index + 1 < len(argv)
            continue
        if item.startswith(("--policy=", "--jobs=")):
            continue
        args.append(item)
    return [*args, "--policy", policy, "--jobs", "1"]


def _run_in_processes(argv: Sequence[str], policies: list[str], jobs: int, device: torch.device,
                      profile: Profile, seed: int, out: Path) -> list[dict[str, Any]]:
    """Run each policy in its own process, ``jobs`` at a time; read back their results files.

    On the CPU each child gets ``cores // jobs`` threads so that they do not oversubscribe.

    Raises:
        RuntimeError: a child failed (its exit status and policy are named).
    """
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    if device.type == "cpu":
        environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    waiting = list(policies)
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            command = [sys.executable, "-m", "clr_book.experiments.table1", *_child_argv(argv, name)]
            running[name] = subprocess.Popen(command, env=environment)
        for name, process in list(running.items()):
            if process.poll() is not None:
                del running[name]
                if process.returncode != 0:
                    failed.append(f"{name} (exit status {process.returncode})")
        time.sleep(0.2)
    if failed:
        raise RuntimeError(f"policies failed in their processes: {', '.join(failed)}")
    records = []
    for name in policies:
        path = out / result_filename(name, profile.name, seed)
        records.append({**json.loads(path.read_text(encoding="utf-8")), "path": str(path)})
    return records


def main(argv: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``argv``, run the chosen policies, print a summary line each; return the records.

    Raises:
        ValueError: a bad option value, naming the option (checked before any data is loaded).
        clr_book.checkpoint.RunInterrupted: stopped by SIGINT/SIGTERM after saving the checkpoint.
    """
    args = build_parser().parse_args(argv)
    policies = names_option("--policy", args.policy, list(POLICIES))
    device = resolve_device(args.device)
    profile = resolve_profile(args.profile, device.type)
    channels_last = _channels_last(args.channels_last, device)
    amp_dtype = resolve_amp_dtype(None if args.amp == "none" else args.amp)
    compile_mode = resolve_compile(args.compile)
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.step not in STEPS:
        raise ValueError(f"--step must be one of {', '.join(STEPS)}, got {args.step!r}")
    if args.step == "cuda_graph" and device.type != "cuda":
        raise ValueError(f"--step cuda_graph needs a CUDA device, got --device {args.device} ({device})")
    if args.step != "eager" and compile_mode is not None:
        raise ValueError(f"--step {args.step} replaces torch.compile; use --compile none, got --compile {args.compile}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a whole number >= 1, got {args.jobs}")
    options = resolve_run_options(args, PROG, argv)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once

    data = load_data(args.data, download=not args.no_download)  # loads (and caches) once for every child
    print(f"profile {profile.name!r} on {device}: policies {', '.join(policies)}; data: {data.source}", flush=True)
    if args.jobs > 1 and len(policies) > 1:
        started = time.perf_counter()
        records = _run_in_processes(argv, policies, args.jobs, device, profile, args.seed, options.out)
        print(f"all {len(records)} policies: wall {time.perf_counter() - started:.1f} s", flush=True)
        return records
    records = []
    for name in policies:
        started = time.perf_counter()
        record = run_policy(
            get_policy(name), profile, data, device, seed=args.seed, options=options, amp_dtype=amp_dtype,
            channels_last=channels_last, compile=compile_mode, step=args.step,
            eval_batch_size=default_eval_batch_size(device),
        )
        timing = record["timing"]
        print(
            f"{name:12s} {record['iterations']:6d} it  test acc {100 * record['final_test_accuracy']:5.1f} %  "
            f"train {timing['train_seconds']:7.1f} s  eval {timing['eval_seconds']:6.1f} s  "
            f"{1e3 * timing['seconds_per_iteration']:7.2f} ms/it  wall {time.perf_counter() - started:7.1f} s  "
            f"-> {record['path']}",
            flush=True,
        )
        records.append(record)
    return records


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
