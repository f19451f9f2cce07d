"""``python -m clr_lib.experiments``: run Table 1 policies and write one results file per policy.

:func:`main` raises ``ValueError`` naming the bad option (unknown policy or profile, missing data path,
...); the ``__main__`` module turns that into a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data import load_cifar10
from .policies import POLICIES, get_policy
from .profiles import PROFILES, resolve_profile
from .runner import resolve_device, result_filename, run_policy

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clr_lib.experiments",
        description="Replicate Smith (2017), Table 1 (CIFAR-10, Caffe cifar10_full net): one JSON results file per policy.",
    )
    parser.add_argument("--policy", default="all", help=f"'all' or a comma-separated list of: {', '.join(POLICIES)}")
    parser.add_argument("--profile", default="auto", help=f"auto (GPU: full, CPU: quick) or one of: {', '.join(PROFILES)}")
    parser.add_argument("--data", default=None, help="CIFAR-10 folder or .tar.gz (default: $CLR_CIFAR10, then download, then a synthetic stand-in)")
    parser.add_argument("--out", required=True, help="folder for the results files (created if needed)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and subset (default 0)")
    parser.add_argument("--amp", default="none", help="autocast dtype: none (default), bf16 or fp16")
    parser.add_argument("--channels-last", default="auto", help="auto (on for CPU, off for CUDA), on or off")
    parser.add_argument("--compile", default="none", help="torch.compile mode: none (default), default, reduce-overhead, max-autotune, ...")
    parser.add_argument("--cuda-graph", default="off",
                        help="on: capture each iteration in a CUDA graph with the LR in a device tensor "
                             "(clr_lib.experiments.graphed; CUDA only, untested on a GPU so far); off (default)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="policies to run at once, each in its own process (default 1: one after another); "
                             "on a GPU the tiny net leaves room for several")
    parser.add_argument("--no-download", action="store_true", help="never try torchvision's download")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per policy")
    return parser


def _policies(value: str) -> list[str]:
    if value == "all":
        return list(POLICIES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ValueError(f"policy must be 'all' or policy names, got {value!r}")
    for name in names:
        get_policy(name)  # raises ValueError naming 'policy'
    return names


def _channels_last(value: str) -> bool | None:
    choices = {"auto": None, "on": True, "off": False}
    if value not in choices:
        raise ValueError(f"--channels-last must be 'auto', 'on' or 'off', got {value!r}")
    return choices[value]


def _on_off(option: str, value: str) -> bool:
    if value not in ("on", "off"):
        raise ValueError(f"{option} must be 'on' or 'off', got {value!r}")
    return value == "on"


def _child_argv(args: argparse.Namespace, policy: str) -> list[str]:
    """The command-line arguments that run ``policy`` alone with the other options of ``args``."""
    argv = ["--policy", policy, "--profile", args.profile, "--out", str(args.out), "--device", args.device,
            "--seed", str(args.seed), "--amp", args.amp, "--channels-last", args.channels_last,
            "--compile", args.compile, "--cuda-graph", args.cuda_graph, "--jobs", "1"]
    if args.data is not None:
        argv += ["--data", str(args.data)]
    if args.no_download:
        argv.append("--no-download")
    if args.progress:
        argv.append("--progress")
    return argv


def _run_in_processes(args: argparse.Namespace, policies: list[str], device: torch.device) -> list[dict[str, Any]]:
    """Run each policy in its own ``python -m clr_lib.experiments`` process, ``args.jobs`` at a time.

    Each child writes its own results file (and records its own command line, which reruns that policy
    alone). On the CPU each child gets ``cores // jobs`` threads so that they do not oversubscribe.

    Raises:
        RuntimeError: a child failed (its exit status and policy are named).
    """
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    if device.type == "cpu":
        environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.jobs))
    waiting = list(policies)
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            name = waiting.pop(0)
            command = [sys.executable, "-m", "clr_lib.experiments", *_child_argv(args, name)]
            running[name] = subprocess.Popen(command, env=environment)
        for name, process in list(running.items()):
            if process.poll() is not None:
                del running[name]
                if process.returncode != 0:
                    failed.append(f"{name} (exit status {process.returncode})")
        time.sleep(0.2)
    if failed:
        raise RuntimeError(f"policies failed in their processes: {', '.join(failed)}")
    profile = resolve_profile(args.profile, device.type)
    records = []
    for name in policies:
        path = Path(args.out) / result_filename(name, profile.name, args.seed)
        records.append({**json.loads(path.read_text(encoding="utf-8")), "path": str(path)})
    return records


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the chosen policies, print a summary; return the records (file order = policy order).

    Policies run one after another in this process, or with ``--jobs N`` (N > 1) in up to N child
    processes at once (:func:`_run_in_processes`); the data set is loaded (and cached) here first, so the
    children read the cache instead of decoding or downloading it N times over.

    Raises:
        ValueError: a bad option value, naming the option.
    """
    arguments = list(argv) if argv is not None else None
    args = build_parser().parse_args(arguments)
    policies = _policies(args.policy)
    device = resolve_device(args.device)
    profile = resolve_profile(args.profile, device.type)
    channels_last = _channels_last(args.channels_last)
    if args.data is not None and not Path(args.data).expanduser().exists():
        raise ValueError(f"--data must be an existing CIFAR-10 folder or .tar.gz, got {args.data!r} (not found)")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    cuda_graph = _on_off("--cuda-graph", args.cuda_graph)
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"--cuda-graph on needs a CUDA device, got --device {args.device} ({device})")
    if cuda_graph and args.compile != "none":
        raise ValueError(f"--cuda-graph on replaces torch.compile; use --compile none, got --compile {args.compile}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a whole number >= 1, got {args.jobs}")
    command = shlex.join(["python", "-m", "clr_lib.experiments", *(arguments if arguments is not None else sys.argv[1:])])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once

    data = load_cifar10(args.data, download=not args.no_download)
    if args.jobs > 1 and len(policies) > 1:
        started = time.perf_counter()
        print(f"profile {profile.name!r} on {device}: policies {', '.join(policies)} in up to {args.jobs} processes; "
              f"data: {data.source}", flush=True)
        records = _run_in_processes(args, policies, device)
        print(f"all {len(records)} policies: wall {time.perf_counter() - started:.1f} s", flush=True)
        return records
    print(f"profile {profile.name!r} on {device}: policies {', '.join(policies)}; data: {data.source}", flush=True)
    records = []
    for name in policies:
        started = time.perf_counter()
        record = run_policy(
            name, profile=profile, data=data, device=device, seed=args.seed, out_dir=args.out,
            amp_dtype=None if args.amp == "none" else args.amp, channels_last=channels_last,
            compile=False if args.compile == "none" else args.compile, cuda_graph=cuda_graph, progress=args.progress, command=command,
        )
        timing = record["timing"]
        print(
            f"{name:12s} {record['iterations']:6d} it  test acc {100 * record['final_test_accuracy']:5.1f} %  "
            f"train {timing['train_seconds']:7.1f} s  eval {timing['eval_seconds']:6.1f} s  "
            f"{1e3 * timing['seconds_per_iteration']:7.2f} ms/it  wall {time.perf_counter() - started:7.1f} s  -> {record['path']}",
            flush=True,
        )
        records.append(record)
    return records
