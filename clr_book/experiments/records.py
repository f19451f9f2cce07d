"""Results files, the part every experiment shares.

* :func:`write_record` writes a record as JSON atomically (a reader sees the old file or the whole new
  one, never half of it; two writers never share a temporary file);
* :func:`read_records` reads back every record of one schema in a folder;
* :func:`first_reaching` finds where a curve first reaches a target accuracy, and
  :func:`iterations_to_reach` the first evaluated iteration of a results record that does.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["finite_or_none", "first_reaching", "iterations_to_reach", "read_records", "write_record", "write_run_record"]


def write_record(record: Mapping[str, Any], path: str | os.PathLike[str], *, strict: bool = False) -> Path:
    """Write ``record`` as indented JSON to ``path`` (folders created), atomically.

    The JSON goes to a temporary file with a unique name in the same folder, which then replaces
    ``path`` (``os.replace``): a reader, or a process killed mid-write, sees the old file or the new
    one, and concurrent writers never share a temporary file.

    Args:
        strict: refuse NaN and infinities (``ValueError``), so that the file is standard JSON; the
            default writes them as Python's ``json`` does (``NaN``, ``Infinity``).

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, allow_nan=not strict) + "\n"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; a results file is for everyone to read
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


def write_run_record(record: Mapping[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a training run's record to ``path``, unless it is a finished run read back whose file is there.

    A run called again after it finished is read back whole from its checkpoint: nothing is trained, and
    its record differs from the first only in when and from which commit it was read
    (``timing.resumed_at_iterations`` ends with its last iteration). If ``path`` already holds that run
    (same ``schema``, ``iterations`` and ``curves``), the file is kept as it is, with the provenance of
    the run that made it, and its record is returned; otherwise the record is written
    (:func:`write_record`).

    Returns:
        The record in the file, with its ``"path"``.
    """
    target = Path(path)
    resumed = record.get("timing", {}).get("resumed_at_iterations") or []
    if resumed and resumed[-1] == record.get("iterations") and target.is_file():
        try:
            stored = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = None
        if (isinstance(stored, dict) and stored.get("schema") == record.get("schema")
                and stored.get("iterations") == record.get("iterations")
                and stored.get("curves") == json.loads(json.dumps(record.get("curves")))):
            return {**stored, "path": str(target)}
    return {**record, "path": str(write_record(record, target))}


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


def iterations_to_reach(record: Mapping[str, Any], target_accuracy: float) -> int | None:
    """The first evaluated iteration of ``record`` whose test accuracy is >= ``target_accuracy``, or None.

    ``record["curves"]`` holds ``iteration`` and ``test_accuracy``; the resolution is the run's evaluation
    interval.

    >>> iterations_to_reach({"curves": {"iteration": [10, 20, 30], "test_accuracy": [0.2, 0.5, 0.45]}}, 0.5)
    20

    Raises:
        ValueError: ``target_accuracy`` not a fraction in [0, 1].
    """
    curves = record["curves"]
    reached = first_reaching(curves["iteration"], curves["test_accuracy"], target_accuracy)
    return None if reached is None else int(reached)


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float, inside lists and dicts too, replaced by None.

    A results file is strict JSON; numpy reads the None back as NaN.

    >>> finite_or_none({"loss": [1.0, float("nan")], "best": float("inf"), "n": 3})
    {'loss': [1.0, None], 'best': None, 'n': 3}
    """
    if isinstance(value, Mapping):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
