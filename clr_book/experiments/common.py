"""What every experiment shares: resolving the device, the profile, the data and the output folders
once, at the entry point; the checkpoint of each run; and the command line.

An experiment's ``__main__`` builds its parser with :func:`experiment_parser` (the shared flags), turns
the parsed options into objects with :func:`resolve_run_options` (which creates and probes ``--out`` and
the checkpoint folder *before* any data is loaded, so a bad folder fails in a second), loads the data
once with :func:`load_data`, and passes the resolved objects down. :func:`run_cli` turns a
``ValueError`` into one line on stderr and exit status 2, and a stop by SIGINT/SIGTERM (after the
checkpoint is saved) into a line that says how to resume, with the signal's usual exit status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..checkpoint import Checkpoint, RunInterrupted, default_checkpoint_dir, probe_writable
from ..cifar.data import CIFAR10, load_cifar10

__all__ = [
    "RunOptions",
    "checkpoint_for",
    "choose_profile",
    "data_settings",
    "experiment_parser",
    "load_data",
    "names_option",
    "resolve_device",
    "resolve_run_options",
    "run_cli",
    "seeds_option",
    "subset_for",
]

ProfileT = TypeVar("ProfileT")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA if available, else CPU; otherwise the named device.

    Raises:
        ValueError: an unknown device string, or a CUDA device without CUDA (naming ``device``).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:index]', got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but torch.cuda.is_available() is False")
    return resolved


def choose_profile(name: str, profiles: Mapping[str, ProfileT], device_type: str) -> ProfileT:
    """``profiles[name]``; ``"auto"`` is ``profiles["full"]`` on ``"cuda"`` and ``profiles["quick"]`` elsewhere.

    >>> choose_profile("auto", {"full": 1, "quick": 2}, "cpu")
    2

    Raises:
        ValueError: an unknown name (naming ``profile`` and the choices).
    """
    if name == "auto":
        return profiles["full" if device_type == "cuda" else "quick"]
    if name not in profiles:
        raise ValueError(f"profile must be 'auto' or one of {', '.join(map(repr, profiles))}, got {name!r}")
    return profiles[name]


def load_data(location: str | os.PathLike[str] | None = None, *, download: bool = True,
              verbose: bool = True) -> CIFAR10:
    """:func:`clr_book.cifar.data.load_cifar10` of ``location``, refusing a location that does not exist.

    Raises:
        ValueError: ``location`` names nothing (naming ``--data``), or the data cannot be read.
    """
    if location is not None and not Path(location).expanduser().exists():
        raise ValueError(f"--data must be an existing CIFAR-10 folder or .tar.gz, got {str(location)!r} (not found)")
    return load_cifar10(location, download=download, verbose=verbose)


def data_settings(data: CIFAR10) -> dict[str, Any]:
    """The data a run trains on, as checkpoint settings: its source and split sizes."""
    return {"source": data.source, "train_images": len(data.train_labels), "test_images": len(data.test_labels)}


def subset_for(data: CIFAR10, train_size: int | None, test_size: int | None, seed: int = 0) -> CIFAR10:
    """The class-balanced subset of ``train_size`` / ``test_size`` images (None: all of that split).

    All of ``data`` when both are None (the full profiles).
    """
    if train_size is None and test_size is None:
        return data
    return data.subset(train_size or len(data.train_labels), test_size or len(data.test_labels), seed=seed)


@dataclass(frozen=True)
class RunOptions:
    """The resolved options every experiment run shares.

    Attributes:
        out: the results folder (created and probed), or None to write no results file.
        checkpoint_dir: the checkpoint folder (created and probed), or None for no checkpoints.
        checkpoint_every: wall seconds between periodic checkpoints.
        fresh: discard an existing checkpoint and start the run afresh.
        progress: show progress bars.
        command: the command line recorded in each results file (None: this process's ``sys.argv``).
    """

    out: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_every: float = 300.0
    fresh: bool = False
    progress: bool = False
    command: str | None = None


def checkpoint_for(options: RunOptions, name: str, settings: Mapping[str, Any]) -> Checkpoint | None:
    """The :class:`Checkpoint` of run ``name`` in ``options.checkpoint_dir`` (None without a folder).

    With ``options.fresh`` an existing checkpoint of that run is deleted first.
    """
    if options.checkpoint_dir is None:
        return None
    checkpoint = Checkpoint(options.checkpoint_dir, name, settings, every_seconds=options.checkpoint_every)
    if options.fresh:
        checkpoint.delete()
    return checkpoint


def experiment_parser(prog: str, description: str, profiles: Sequence[str]) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the flags every experiment takes; add the experiment's own to it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--profile", default="auto",
                        help=f"auto (GPU: full, CPU: quick) or one of: {', '.join(profiles)}")
    parser.add_argument("--out", required=True, help="folder for the results files (created if needed)")
    parser.add_argument("--data", default=None,
                        help="CIFAR-10 folder or .tar.gz (default: $CLR_CIFAR10, then download, then a stand-in)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--no-download", action="store_true", help="never try torchvision's download")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per run")
    parser.add_argument("--checkpoint-dir", default=None,
                        help=f"folder for the runs' checkpoints (default {default_checkpoint_dir()}; "
                             "on Colab, a Google Drive folder); 'none' turns checkpoints off")
    parser.add_argument("--checkpoint-every", type=float, default=300.0,
                        help="seconds between checkpoints (default 300; one is also written on SIGINT/SIGTERM "
                             "and when a run ends). Run the same command again to resume.")
    parser.add_argument("--fresh", action="store_true", help="discard existing checkpoints of these runs")
    return parser


def resolve_run_options(args: argparse.Namespace, prog: str, argv: Sequence[str]) -> RunOptions:
    """The shared options as a :class:`RunOptions`; creates and probes ``--out`` and the checkpoint folder.

    Raises:
        ValueError: an unwritable ``--out`` or ``--checkpoint-dir``, or a bad ``--checkpoint-every``.
    """
    if not 0 <= args.checkpoint_every < float("inf"):
        raise ValueError(f"--checkpoint-every must be a number of seconds >= 0, got {args.checkpoint_every}")
    out = probe_writable(args.out, "--out")
    if args.checkpoint_dir == "none":
        checkpoint_dir = None
    else:
        checkpoint_dir = probe_writable(args.checkpoint_dir or default_checkpoint_dir(), "--checkpoint-dir")
    return RunOptions(out=out, checkpoint_dir=checkpoint_dir, checkpoint_every=args.checkpoint_every,
                      fresh=args.fresh, progress=args.progress, command=shlex.join([*shlex.split(prog), *argv]))


def names_option(option: str, value: str, choices: Sequence[str]) -> list[str]:
    """``"all"`` -> every choice; else the comma-separated names, each known and none repeated.

    >>> names_option("--policy", "fixed,exp", ["fixed", "exp", "decay"])
    ['fixed', 'exp']

    Raises:
        ValueError: an empty list, an unknown name or a name given twice (naming ``option``).
    """
    if value == "all":
        return list(choices)
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ValueError(f"{option} must be 'all' or names from {', '.join(choices)}, got {value!r}")
    unknown = [name for name in names if name not in choices]
    if unknown:
        raise ValueError(f"{option} must be 'all' or names from {', '.join(choices)}, got {', '.join(unknown)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{option} names {', '.join(repeated)} more than once; each run is made once")
    return names


def seeds_option(option: str, value: str) -> list[int]:
    """Comma-separated whole numbers >= 0, none repeated.

    Raises:
        ValueError: anything else (naming ``option``).
    """
    try:
        seeds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(seed < 0 for seed in seeds):
        raise ValueError(f"{option} must be comma-separated whole numbers >= 0, got {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{option} names a seed more than once, got {value!r}")
    return seeds


def run_cli(prog: str, main: Callable[[Sequence[str]], Any], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; return the exit status (0, 2 for a ``ValueError``, 130/143 for SIGINT/SIGTERM).

    A ``ValueError`` is printed as one line, ``<prog>: error: <message>``, on stderr; a run stopped by a
    signal prints where its checkpoint is and that the same command resumes it.
    """
    try:
        main(list(sys.argv[1:] if argv is None else argv))
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        return 128 + stop.signal_number
    return 0

