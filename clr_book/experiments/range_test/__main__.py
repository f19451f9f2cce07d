"""``python -m clr_book.experiments.range_test``: LR range tests on CIFAR-10, one results file per sweep."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

from ...cifar.precision import resolve_amp_dtype, resolve_compile
from ..common import experiment_parser, load_data, resolve_device, resolve_run_options, run_cli
from ..provenance import describe_device
from .config import MODES, RANGE_TEST_PROFILES, resolve_range_test_profile
from .run import run_range_test

PROG = "python -m clr_book.experiments.range_test"

__all__ = ["PROG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        PROG, "LR range test on CIFAR-10 with the Caffe cifar10_full net (Smith 2017): one JSON results file per sweep.",
        list(RANGE_TEST_PROFILES))
    parser.add_argument("--mode", default="both",
                        help="linear (Smith, held-out accuracy), exp (fast.ai, training loss) or both (default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and subset (default 0)")
    parser.add_argument("--num-iter", type=int, default=None, help="override the profile's iterations per sweep")
    parser.add_argument("--start-lr", type=float, default=None, help="override the profile's first LR")
    parser.add_argument("--end-lr", type=float, default=None, help="override the profile's last LR")
    parser.add_argument("--amp", default="none", help="autocast dtype: none (default, float32), bf16 or fp16")
    parser.add_argument("--channels-last", default="auto", help="auto (on for CPU, off for CUDA), on or off")
    parser.add_argument("--compile", default="none",
                        help="torch.compile mode: none (default), default, reduce-overhead, max-autotune, ...")
    return parser


def main(argv: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``argv``, run the chosen sweeps, print one summary line each; return the records.

    Raises:
        ValueError: a bad option value, naming the option (checked before any data is loaded).
    """
    args = build_parser().parse_args(argv)
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
    try:
        amp_dtype = resolve_amp_dtype(None if args.amp == "none" else args.amp)
    except ValueError as error:
        raise ValueError(f"--amp: {error}") from error
    try:
        compile_mode = resolve_compile(args.compile)
    except ValueError as error:
        raise ValueError(f"--compile: {error}") from error
    device = resolve_device(args.device)
    profile = resolve_range_test_profile(args.profile, device.type)
    options = resolve_run_options(args, PROG, argv)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once

    data = load_data(args.data, download=not args.no_download)
    print(f"profile {profile.name!r} on {describe_device(device)}: sweeps {', '.join(modes)}; "
          f"data: {data.source}", flush=True)
    records = []
    for mode in modes:
        record = run_range_test(
            profile, mode, data, device, seed=args.seed, options=options, start_lr=args.start_lr,
            end_lr=args.end_lr, num_iter=args.num_iter, amp_dtype=amp_dtype,
            channels_last=device.type == "cpu" if channels_last is None else channels_last, compile=compile_mode,
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
    sys.exit(run_cli(PROG, main))
