"""Where and how a result was produced: code version, device, library versions, date, command line.

The code version is told three ways, each only where it is true:

* ``package``: the installed distribution's version (``importlib.metadata``) and, for an install from
  a git URL, the commit pip recorded for it (PEP 610's ``direct_url.json``);
* ``commit`` and ``dirty``: the repository commit, only when the code runs from a git checkout of this
  project (the folder above ``clr_book/`` holds ``pyproject.toml``, ``clr_lib/`` and ``book/`` and is the
  top of a git work tree); elsewhere None, never some other repository's commit.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cifar.data import CIFAR10

__all__ = ["DISTRIBUTION", "checkout_state", "data_notes", "describe_device", "environment", "package_state",
           "run_context", "utc_now"]

DISTRIBUTION = "clr_lib"
"""The distribution that ships clr_lib and clr_book."""

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


def describe_device(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` for CUDA devices, else the CPU model and the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.get_num_threads()} torch threads)"


def package_state(distribution: str = DISTRIBUTION) -> dict[str, Any]:
    """``{"version", "url", "vcs_commit", "editable"}`` of the installed ``distribution`` (None where unknown).

    ``vcs_commit`` is the commit pip recorded for an install from a git URL (PEP 610); ``editable`` is
    True for ``pip install -e``.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return {"version": None, "url": None, "vcs_commit": None, "editable": None}
    direct: dict[str, Any] = {}
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (OSError, ValueError):
        direct = {}
    return {"version": dist.version, "url": direct.get("url"),
            "vcs_commit": direct.get("vcs_info", {}).get("commit_id"),
            "editable": direct.get("dir_info", {}).get("editable", False) if direct else None}


def _is_project_checkout(root: Path) -> bool:
    return all((root / name).exists() for name in ("pyproject.toml", "clr_lib", "clr_book", "book", ".git"))


def checkout_state(root: Path = _PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the checkout the code runs from; both None outside a checkout of this project.

    ``dirty`` is True when files differ from the commit (untracked files that are not ignored included:
    new code counts).
    """
    if not _is_project_checkout(root):
        return {"commit": None, "dirty": None}
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if Path(top).resolve() != root.resolve():
            return {"commit": None, "dirty": None}
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def environment(device: torch.device) -> dict[str, Any]:
    """Device name and type, library versions, platform and the command line of this process."""
    try:
        import torchvision  # noqa: PLC0415

        torchvision_version = torchvision.__version__
    except ImportError:
        torchvision_version = None
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


def data_notes(data: CIFAR10) -> list[str]:
    """Caveats about a data set's source that every results file must carry."""
    if data.is_synthetic:
        return ["Run on the SYNTHETIC stand-in, not CIFAR-10: its numbers say nothing about CIFAR-10."]
    if "jpeg" in data.source.lower():
        return ["Data: CIFAR-10 recompressed as JPEG (quality ~75); expect about 3 points below the original images."]
    return []


def run_context(device: torch.device, data: CIFAR10, seed: int, command: str | None) -> dict[str, Any]:
    """The ``environment``, ``provenance`` and ``data`` entries of a results record.

    ``provenance`` holds the package state (:func:`package_state`), the checkout's commit and whether it
    was dirty (:func:`checkout_state`), the UTC date, the command line (``command``, default this
    process's) and the seed; ``data`` the source and the split sizes.
    """
    env = environment(device)
    return {
        "environment": env,
        "provenance": {"package": package_state(), **checkout_state(), "date_utc": utc_now(),
                       "command": command if command is not None else env["argv"], "seed": seed},
        "data": {"source": data.source, "synthetic": data.is_synthetic, "classes": list(data.classes),
                 "train_images": len(data.train_labels), "test_images": len(data.test_labels)},
    }
