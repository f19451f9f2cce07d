"""``python -m clr_book.experiments.time_to_accuracy``: six schedules on ResNet-9, one results file per run.

A profile whose LRs come from a range test (``cpu``) runs that test first, once, and writes its results
file beside the runs' (``tta-range-test-<profile>-seed<seed>.json``); a later command with the same
settings reads it back. ``--range-test-only`` runs (or reads) the range test, prints the LRs and stops.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from ...cifar.precision import resolve_compile
from ..common import (experiment_parser, load_data, names_option, resolve_device, resolve_run_options, run_cli,
                      seeds_option)
from ..provenance import describe_device
from .config import PROFILES, SCHEDULE_NAMES, resolve_tta_profile
from .range_test import lr_bounds_for
from .report import format_summary, summarize
from .run import profile_data, run_comparison

PROG = "python -m clr_book.experiments.time_to_accuracy"

__all__ = ["PROG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        PROG, "ResNet-9 on CIFAR-10: fixed, triangular, triangular2, one-cycle and SGDR at an equal budget "
              "(and fixed at 3x), time to a target accuracy; one JSON results file per run.", list(PROFILES))
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's; full: 0,1,2)")
    parser.add_argument("--schedules", default="all",
                        help=f"'all' or a comma-separated list of: {', '.join(SCHEDULE_NAMES)}")
    parser.add_argument("--compile", default="none",
                        help="torch.compile mode: none (default), default, max-autotune-no-cudagraphs, ...")
    parser.add_argument("--range-test-only", action="store_true",
                        help="run (or read back) the profile's LR range test, print the LRs it sets, and stop "
                             "(profiles with a range test only: cpu)")
    parser.add_argument("--seconds", action="store_true",
                        help="add training seconds to the summary table (meaningful on a dedicated, idle machine only)")
    return parser


def main(argv: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``argv``, run the comparison, print one line per run and the summary table.

    Raises:
        ValueError: a bad option value, naming the option (checked before any data is loaded).
    """
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    profile = resolve_tta_profile(args.profile, device.type)
    seeds = None if args.seeds is None else seeds_option("--seeds", args.seeds)
    names = names_option("--schedules", args.schedules, list(SCHEDULE_NAMES))
    try:
        compile_mode = resolve_compile(args.compile)
    except ValueError as error:
        raise ValueError(f"--compile: {error}") from error
    if args.range_test_only and profile.range_test is None:
        raise ValueError(f"--range-test-only: profile {profile.name!r} takes its LRs from the recipe, it has no range "
                         f"test (profiles with one: {', '.join(n for n, p in PROFILES.items() if p.range_test)})")
    options = resolve_run_options(args, PROG, argv)
    data = load_data(args.data, download=not args.no_download)
    print(f"profile {profile.name!r} on {device} ({describe_device(device)}); data: {data.source}", flush=True)
    if args.range_test_only:
        started = time.perf_counter()
        bounds = lr_bounds_for(profile, profile_data(data, profile), device, options=options, verbose=True)
        print(f"range test: {time.perf_counter() - started:.1f} s wall (data loading excluded)")
        return [bounds.to_dict()]
    started = time.perf_counter()
    records = run_comparison(profile, data, device, seeds=seeds, schedules=names, options=options,
                             compile=compile_mode)
    print(f"\nwhole comparison: {time.perf_counter() - started:.1f} s wall (data loading excluded)\n")
    print(format_summary(summarize(records), seconds=args.seconds))
    return records


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
