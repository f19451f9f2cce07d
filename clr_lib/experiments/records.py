"""Results files and run profiles, the parts every experiment shares.

* :func:`write_record` writes a record as JSON atomically (a reader sees the old file or the whole new
  one, never half of it);
* :func:`read_records` reads back every record of one schema in a folder;
* :func:`first_reaching` finds where a curve first reaches a target accuracy;
* :func:`choose_profile` resolves ``"auto"`` (``full`` on CUDA, ``quick`` elsewhere) or a profile name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["choose_profile", "first_reaching", "read_records", "write_record"]

ProfileT = TypeVar("ProfileT")


def choose_profile(name: str, profiles: Mapping[str, ProfileT], device_type: str) -> ProfileT:
    """``profiles[name]``; ``"auto"`` is ``profiles["full"]`` on ``"cuda"`` and ``profiles["quick"]`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile`` and the choices).
    """
    if name == "auto":
        return profiles["full" if device_type == "cuda" else "quick"]
    if name not in profiles:
        raise ValueError(f"profile must be 'auto' or one of {', '.join(map(repr, profiles))}, got {name!r}")
    return profiles[name]


def write_record(record: Mapping[str, Any], path: str | os.PathLike[str], *, strict: bool = False) -> Path:
    """Write ``record`` as indented JSON to ``path`` (folders created) via a ``.partial`` file and ``os.replace``.

    Args:
        strict: refuse NaN and infinities (``ValueError``), so that the file is standard JSON; the
            default writes them as Python's ``json`` does (``NaN``, ``Infinity``).

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    partial.write_text(json.dumps(record, indent=1, allow_nan=not strict) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


def read_records(directory: str | os.PathLike[str], schema: str, required: Iterable[str]) -> list[dict[str, Any]]:
    """Every ``*.json`` record of ``schema`` in ``directory``, in file-name order, each with its ``"path"``.

    Files that are not JSON objects of this schema are skipped (a folder may hold other files).

    Raises:
        ValueError: ``directory`` is not a folder, or a record of this schema lacks one of ``required``.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"directory must be an existing folder of results files, got {str(directory)!r}")
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or record.get("schema") != schema:
            continue
        missing = [key for key in required if key not in record]
        if missing:
            raise ValueError(f"results file {path} lacks {missing}")
        records.append({**record, "path": str(path)})
    return records


def first_reaching(points: Sequence[Any], accuracies: Sequence[float], target_accuracy: float) -> Any:
    """``points[i]`` for the first evaluation ``i`` with ``accuracies[i] >= target_accuracy``, or None.

    ``points`` are the evaluation points on any axis (iterations, cumulative training seconds), so the
    answer's resolution is the evaluation cadence.

    Raises:
        ValueError: ``target_accuracy`` not a fraction in [0, 1].
    """
    if isinstance(target_accuracy, bool) or not isinstance(target_accuracy, (int, float)) or not 0 <= target_accuracy <= 1:
        raise ValueError(f"target_accuracy must be a fraction in [0, 1], got {target_accuracy!r}")
    return next((point for point, accuracy in zip(points, accuracies) if accuracy >= target_accuracy), None)
