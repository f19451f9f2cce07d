"""Range-test results files read back: the records of a folder and the result object of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clr_lib.range_test import RangeTestResult

from .run import RESULT_SCHEMA

__all__ = ["load_range_tests", "result_from_record"]


def result_from_record(record: dict[str, Any]) -> RangeTestResult:
    """The :class:`clr_lib.RangeTestResult` stored in a record (None in the curves reads back as NaN)."""
    return RangeTestResult.from_dict(dict(record["result"]))


def load_range_tests(
    folder: str | os.PathLike[str], *, profile: str | None = None, include_custom: bool = False
) -> list[dict[str, Any]]:
    """The range-test records in ``folder`` (``range-test-*.json`` of :data:`RESULT_SCHEMA`), sorted by file name.

    Args:
        folder: where the results files are; a missing folder gives an empty list.
        profile: keep only records of this profile name (e.g. ``"full"``); None keeps all.
        include_custom: also keep runs whose sweep was overridden (``profile.customised``).

    Raises:
        ValueError: a file that is not valid JSON or not of :data:`RESULT_SCHEMA` (naming the file).
    """
    records = []
    for path in sorted(Path(folder).glob("range-test-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"results file {str(path)!r} is not valid JSON: {error}") from error
        if not isinstance(record, dict) or record.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"results file {str(path)!r} must have schema {RESULT_SCHEMA!r}")
        if (profile is None or record["profile"]["name"] == profile) and (include_custom or not record["profile"]["customised"]):
            records.append({**record, "path": str(path)})
    return records
