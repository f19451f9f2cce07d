"""Where and how a result was produced: device, library versions, git commit, date, command line."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["data_notes", "describe_device", "environment", "git_state", "run_context", "utc_now"]

_REPOSITORY = Path(__file__).resolve().parents[2]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-11-22T22:55:01Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device: str | torch.device) -> str:
    """``torch.cuda.get_device_name`` for CUDA devices, else the CPU model and the cores torch uses."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.get_num_threads()} torch threads)"


def git_state(directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding ``directory``
    (default: this checkout of clr_lib). ``dirty`` is True when files differ from the commit (untracked
    files that are not ignored included: new code counts)."""
    where = str(directory or _REPOSITORY)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def environment(device: str | torch.device) -> dict[str, Any]:
    """Device name and type, library versions, platform and the command line of this process."""
    try:
        import torchvision  # noqa: PLC0415

        torchvision_version = torchvision.__version__
    except ImportError:
        torchvision_version = None
    device = torch.device(device)
    return {
        "device": describe_device(device),
        "device_type": device.type,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "torch": torch.__version__,
        "torchvision": torchvision_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "argv": shlex.join(sys.argv),
    }


def data_notes(data: Any) -> list[str]:
    """Caveats about a :class:`clr_lib.data.CIFAR10`'s source that every results file must carry."""
    if data.is_synthetic:
        return ["Run on the SYNTHETIC stand-in, not CIFAR-10: its numbers say nothing about CIFAR-10."]
    if "jpeg" in data.source.lower():
        return ["Data: CIFAR-10 recompressed as JPEG (quality ~75); expect about 3 points below the original images."]
    return []


def run_context(device: str | torch.device, data: Any, seed: int, command: str | None) -> dict[str, Any]:
    """The ``environment``, ``provenance`` and ``data`` entries of a results record.

    ``provenance`` holds the git commit (and whether the tree was dirty), the UTC date, the command line
    (``command``, default this process's) and the seed; ``data`` the source and the split sizes.
    """
    env = environment(device)
    return {
        "environment": env,
        "provenance": {**git_state(), "date_utc": utc_now(),
                       "command": command if command is not None else env["argv"], "seed": seed},
        "data": {"source": data.source, "synthetic": data.is_synthetic, "classes": list(data.classes),
                 "train_images": len(data.train_labels), "test_images": len(data.test_labels)},
    }
