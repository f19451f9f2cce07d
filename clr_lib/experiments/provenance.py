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

__all__ = ["describe_device", "environment", "git_state", "utc_now"]

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
