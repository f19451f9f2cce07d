"""Read results files back and compare them with the paper's Table 1."""

from __future__ import annotations

import math
import os
from typing import Any

from .policies import PAPER_TABLE_1, POLICIES
from .records import first_reaching, read_records
from .runner import RESULT_SCHEMA

__all__ = ["format_comparison", "iterations_to_reach", "load_results", "paper_comparison"]

_REQUIRED = ("policy", "profile", "curves", "final_test_accuracy", "timing", "environment", "provenance", "data", "schedule")


def load_results(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every results file (``*.json`` with this module's ``schema``) in ``directory``, in Table 1 order.

    Files of another schema are skipped; a file of this schema without the required keys raises.

    Raises:
        ValueError: ``directory`` does not exist, or a results file is incomplete.
    """
    records = read_records(directory, RESULT_SCHEMA, _REQUIRED)
    order = {name: index for index, name in enumerate(POLICIES)}
    return sorted(records, key=lambda r: (order.get(r["policy"], len(order)), r["profile"]["name"], r["provenance"]["seed"]))


def iterations_to_reach(record: dict[str, Any], target_accuracy: float) -> int | None:
    """The first evaluated iteration whose test accuracy is >= ``target_accuracy`` (a fraction), or None.

    The resolution is the run's ``eval_every``.
    """
    curves = record["curves"]
    reached = first_reaching(curves["iteration"], curves["test_accuracy"], target_accuracy)
    return None if reached is None else int(reached)


def paper_comparison(records: list[dict[str, Any]], target_accuracy: float | None = None) -> list[dict[str, Any]]:
    """One row per record: the paper's Table 1 numbers beside ours.

    Args:
        records: from :func:`load_results`.
        target_accuracy: fraction for the ``iterations_to_target`` column; default: the final accuracy
            of our own ``fixed`` run of the same profile (the paper's question: how soon does a policy
            match the fixed-LR baseline?), or None when there is none.

    Returns:
        Rows with keys ``policy``, ``profile``, ``paper_iterations``, ``paper_accuracy_percent``,
        ``iterations``, ``accuracy_percent``, ``difference_points``, ``target_accuracy_percent``,
        ``iterations_to_target``, ``train_seconds``, ``device``, ``data_source``.
    """
    fixed = {r["profile"]["name"]: r["final_test_accuracy"] for r in records if r["policy"] == "fixed"}
    rows = []
    for record in records:
        paper = PAPER_TABLE_1.get(record["policy"], {})
        target = target_accuracy if target_accuracy is not None else fixed.get(record["profile"]["name"])
        accuracy = 100 * record["final_test_accuracy"]
        paper_accuracy = paper.get("accuracy_percent")
        rows.append({
            "policy": record["policy"],
            "profile": record["profile"]["name"],
            "paper_iterations": paper.get("iterations"),
            "paper_accuracy_percent": paper_accuracy,
            "iterations": record["iterations"],
            "accuracy_percent": accuracy,
            "difference_points": None if paper_accuracy is None else accuracy - paper_accuracy,
            "target_accuracy_percent": None if target is None else 100 * target,
            "iterations_to_target": None if target is None else iterations_to_reach(record, target),
            "train_seconds": record["timing"]["train_seconds"],
            "device": record["environment"]["device"],
            "data_source": record["data"]["source"],
        })
    return rows


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`paper_comparison` as a Markdown table (accuracies in percent)."""

    def cell(value: Any, spec: str = "") -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return format(value, spec)

    lines = [
        "| policy | paper iterations | paper accuracy % | our iterations | our accuracy % | difference (points) | iterations to target |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['policy']} | {cell(row['paper_iterations'], ',')} | {cell(row['paper_accuracy_percent'], '.1f')} | "
            f"{cell(row['iterations'], ',')} | {cell(row['accuracy_percent'], '.1f')} | {cell(row['difference_points'], '+.1f')} | "
            f"{cell(row['iterations_to_target'], ',')} |"
        )
    return "\n".join(lines)
