"""Read time-to-accuracy results back, summarise them over seeds, and draw the curves.

:func:`load_results` reads a folder of results files; :func:`summarize` gives one row per schedule
(mean and spread of the final test accuracy over seeds, iterations and epochs to the target, training
seconds to it); :func:`format_summary` prints the rows as a Markdown table, in iterations and epochs,
with the seconds only when asked, and :func:`format_runs` one row per run (each seed on its own) (they mean something only for runs on a dedicated, idle machine); a
demonstration profile's table is headed as such. :func:`plot_curves` draws test accuracy against
iteration with the LR under it. matplotlib is imported inside the plotting function.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clr_lib.plotting import SCHEDULE_COLORS, RunCurves, plot_runs_with_lr

from ..records import first_reaching, iterations_to_reach, read_records
from .config import DEMONSTRATION_NOTE, SCHEDULE_LABELS, SCHEDULE_NAMES, ScheduleRun, equal_budget_schedules
from .run import SCHEMA

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "SCHEDULE_STYLES", "format_runs", "format_summary", "iterations_to_reach", "load_results", "plot_curves", "schedule_of",
    "seconds_to_reach", "summarize",
]

_REQUIRED = ("schedule_name", "profile", "curves", "final_test_accuracy", "timing", "environment", "provenance", "data")

SCHEDULE_STYLES: dict[str, dict[str, Any]] = {
    # The book's colours; the 3x fixed run is the fixed colour, dashed.
    **{name: {"color": SCHEDULE_COLORS[name]} for name in ("fixed", "triangular", "triangular2", "one_cycle")},
    "sgdr": {"color": "#9E8C00", "linestyle": "-."},  # the book's SGDR yellow, darkened to read on white, dash-dot to tell it from triangular2
    "fixed_3x": {"color": SCHEDULE_COLORS["fixed"], "linestyle": "--"},
}


def load_results(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every results file of this experiment (``*.json`` with its ``schema``) in ``directory``.

    Sorted by profile, schedule (in :data:`SCHEDULE_NAMES` order) and seed. Other JSON files are skipped.

    Raises:
        ValueError: ``directory`` is not a folder, or a results file lacks required keys.
    """
    records = read_records(directory, SCHEMA, _REQUIRED)
    order = {name: index for index, name in enumerate(SCHEDULE_NAMES)}
    return sorted(records, key=lambda r: (r["profile"]["name"], order.get(r["schedule_name"], 99), r["provenance"]["seed"]))


def seconds_to_reach(record: dict[str, Any], target_accuracy: float) -> float | None:
    """Cumulative training seconds at the first evaluation with test accuracy >= ``target_accuracy``, or None.

    Raises:
        ValueError: ``target_accuracy`` outside [0, 1].
    """
    curves = record["curves"]
    reached = first_reaching(curves["cumulative_train_seconds"], curves["test_accuracy"], target_accuracy)
    return None if reached is None else float(reached)


def schedule_of(record: dict[str, Any]) -> ScheduleRun:
    """The run's schedule, rebuilt from its budget and LRs (one formula, one place: clr_lib.schedules).

    The LRs are the record's ``lr_bounds`` (the range test's or the recipe's); files written before that
    key take the recipe's.
    """
    recipe = record["profile"]["recipe"]
    bounds = record.get("lr_bounds") or recipe
    return equal_budget_schedules(record["budget"], bounds["max_lr"], bounds["base_lr"], cycles=recipe["cycles"],
                                  pct_start=recipe["pct_start"], names=[record["schedule_name"]])[record["schedule_name"]]


def _is_demonstration(record: dict[str, Any]) -> bool:
    """The record's ``demonstration`` flag; files written before it: the quick and smoke profiles, and the stand-in."""
    if record.get("data", {}).get("synthetic"):
        return True
    if "demonstration" in record:
        return bool(record["demonstration"])
    return record["profile"].get("demonstration", record["profile"]["name"] in ("quick", "smoke"))


def _spread(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def summarize(records: Sequence[dict[str, Any]], target_accuracy: float | None = None) -> list[dict[str, Any]]:
    """One row per (profile, schedule): final accuracy over seeds and the time to the target.

    Args:
        records: run records (from :func:`run_comparison` or :func:`load_results`).
        target_accuracy: fraction; default each record's own ``target_accuracy`` (the profile's).

    Returns:
        Rows with keys ``profile``, ``demonstration``, ``schedule``, ``label``, ``runs``, ``iterations``,
        ``epochs`` (None for files that lack ``iterations_per_epoch``), ``mean_accuracy``,
        ``std_accuracy`` (sample standard deviation, None for one run), ``min_accuracy``,
        ``max_accuracy``, ``target_accuracy``, ``reached`` (runs that reached the target),
        ``mean_iterations_to_target``, ``mean_epochs_to_target``, ``mean_seconds_to_target`` and
        ``median_seconds_to_target`` (over the runs that reached it, None if none did),
        ``mean_train_seconds``, ``device``, ``data_source``.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["profile"]["name"], record["schedule_name"]), []).append(record)
    order = {name: index for index, name in enumerate(SCHEDULE_NAMES)}
    rows = []
    for (profile, schedule), runs in sorted(groups.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))):
        target = target_accuracy if target_accuracy is not None else runs[0]["target_accuracy"]
        accuracies = [r["final_test_accuracy"] for r in runs]
        times = [t for t in (seconds_to_reach(r, target) for r in runs) if t is not None]
        reached_at = [(it, r.get("iterations_per_epoch")) for r in runs
                      if (it := iterations_to_reach(r, target)) is not None]
        epochs_at = [it / per_epoch for it, per_epoch in reached_at if per_epoch]
        per_epoch = runs[0].get("iterations_per_epoch")
        rows.append({
            "profile": profile,
            "demonstration": any(_is_demonstration(r) for r in runs),
            "schedule": schedule,
            "label": SCHEDULE_LABELS.get(schedule, schedule),
            "runs": len(runs),
            "iterations": runs[0]["iterations"],
            "epochs": runs[0]["iterations"] / per_epoch if per_epoch else None,
            "mean_accuracy": statistics.fmean(accuracies),
            "std_accuracy": _spread(accuracies),
            "min_accuracy": min(accuracies),
            "max_accuracy": max(accuracies),
            "target_accuracy": target,
            "reached": len(reached_at),
            "mean_iterations_to_target": statistics.fmean(it for it, _ in reached_at) if reached_at else None,
            "mean_epochs_to_target": (statistics.fmean(epochs_at) if epochs_at and len(epochs_at) == len(reached_at)
                                      else None),
            "mean_seconds_to_target": statistics.fmean(times) if times else None,
            "median_seconds_to_target": statistics.median(times) if times else None,
            "mean_train_seconds": statistics.fmean(r["timing"]["train_seconds"] for r in runs),
            "device": runs[0]["environment"]["device"],
            "data_source": runs[0]["data"]["source"],
        })
    return rows


def format_summary(rows: Sequence[dict[str, Any]], *, seconds: bool = False) -> str:
    """The rows of :func:`summarize` as a Markdown table (accuracies in percent).

    The time to the target is given in iterations and epochs (mean over the runs that reached it).
    Training seconds vary with the machine and whatever else runs on it, so they are columns only with
    ``seconds=True``, labelled with the device, for runs made on a dedicated, idle machine. When any row
    is a demonstration (the quick and smoke profiles), the table is headed by :data:`~.config.DEMONSTRATION_NOTE`.
    """

    def pct(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(100 * value, spec)

    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = []
    if any(row.get("demonstration") for row in rows):
        profiles = ", ".join(sorted({repr(row["profile"]) for row in rows if row.get("demonstration")}))
        lines += [f"**Demonstration of the method** (profile {profiles}). {DEMONSTRATION_NOTE}", ""]
    header = ("| schedule | iterations | epochs | runs | final test accuracy % (mean ± sd) | min-max % | target % | "
              "reached | iterations to target (mean) | epochs to target (mean) |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if seconds:
        devices = "; ".join(sorted({row["device"] for row in rows}))
        header += f" train s to target (mean; {devices}) | train s (whole run) |"
        rule += "---:|---:|"
    lines += [header, rule]
    for row in rows:
        spread = "" if row["std_accuracy"] is None else f" ± {pct(row['std_accuracy'], '.2f')}"
        line = (
            f"| {row['label']} | {row['iterations']:,} | {num(row.get('epochs'), '.3g')} | {row['runs']} | "
            f"{pct(row['mean_accuracy'], '.2f')}{spread} | "
            f"{pct(row['min_accuracy'])}-{pct(row['max_accuracy'])} | {pct(row['target_accuracy'], '.2f')} | "
            f"{row['reached']}/{row['runs']} | {num(row.get('mean_iterations_to_target'), ',.0f')} | "
            f"{num(row.get('mean_epochs_to_target'), '.2f')} |"
        )
        if seconds:
            line += f" {num(row['mean_seconds_to_target'], '.2f')} | {num(row['mean_train_seconds'], '.2f')} |"
        lines.append(line)
    return "\n".join(lines)


def format_runs(records: Sequence[dict[str, Any]], target_accuracy: float | None = None) -> str:
    """One Markdown row per run: schedule, seed, final and best test accuracy, iterations and epochs to the target.

    The rows follow :data:`SCHEDULE_NAMES`, then the seed. With two or three seeds a mean hides whether
    the seeds agree; this table shows each run. The target is ``target_accuracy`` (a fraction), default
    each record's own; it is read at the evaluations, so the iterations are evaluation points. A run
    that never reached it says "not reached". Headed by :data:`~.config.DEMONSTRATION_NOTE` when any run
    is a demonstration.

    Raises:
        ValueError: no records, or ``target_accuracy`` outside [0, 1].
    """
    if not records:
        raise ValueError("records must hold at least one run")
    order = {name: index for index, name in enumerate(SCHEDULE_NAMES)}
    lines = []
    if any(_is_demonstration(r) for r in records):
        lines += [f"**Demonstration of the method.** {DEMONSTRATION_NOTE}", ""]
    lines += ["| schedule | seed | iterations | final test accuracy % | best % | target % | "
              "iterations to target | epochs to target |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for record in sorted(records, key=lambda r: (order.get(r["schedule_name"], 99), r["provenance"]["seed"])):
        target = record["target_accuracy"] if target_accuracy is None else target_accuracy
        reached = iterations_to_reach(record, target)
        per_epoch = record.get("iterations_per_epoch")
        when = ("not reached", "-") if reached is None else (
            f"{reached:,}", "-" if not per_epoch else f"{reached / per_epoch:.2f}")
        accuracies = record["curves"]["test_accuracy"]
        lines.append(f"| {record.get('label', record['schedule_name'])} | {record['provenance']['seed']} | "
                     f"{record['iterations']:,} | {100 * record['final_test_accuracy']:.2f} | "
                     f"{100 * max(accuracies):.2f} | {100 * target:.1f} | {when[0]} | {when[1]} |")
    return "\n".join(lines)


def plot_curves(
    records: Sequence[dict[str, Any]],
    *,
    target_accuracy: float | None = None,
    title: str | None = None,
    x: str = "iteration",
    figsize: tuple[float, float] = (8.0, 6.0),
) -> Figure:
    """Test accuracy (top) and the LR (bottom) of every run against the iteration or training seconds.

    Drawn by :func:`clr_lib.plotting.plot_runs_with_lr`. The LR is drawn at every iteration from the
    rebuilt schedule (:func:`schedule_of`). Against seconds, iteration ``i`` is placed at the training time
    when it ended, interpolated linearly between the clock readings at the evaluations (the only ones there
    are).

    One colour per schedule (:data:`SCHEDULE_STYLES`); runs of the same schedule with different seeds
    share the colour, and only the first is labelled. A dotted line marks ``target_accuracy`` (default:
    the records' target).

    Args:
        title: the figure's title; default "Test accuracy and learning rate at an equal budget", followed by
            "(a demonstration of the method)" when any record is one.
        x: ``"iteration"`` (mini-batch updates) or ``"seconds"`` (cumulative training seconds).

    Raises:
        ValueError: no records, or an unknown ``x``.
    """
    if not records:
        raise ValueError("records must hold at least one run to plot")
    if x not in ("iteration", "seconds"):
        raise ValueError(f"x must be 'iteration' or 'seconds', got {x!r}")
    runs = []
    seen: set[str] = set()
    for record in records:
        name = record["schedule_name"]
        curves = record["curves"]
        steps = np.arange(record["iterations"])
        lr = schedule_of(record).schedule(steps)  # the LR at every iteration, from the schedule itself
        if x == "iteration":
            positions, lr_positions = curves["iteration"], steps
        else:  # the clock is read at evaluations only: place each iteration by linear interpolation
            positions = curves["cumulative_train_seconds"]
            lr_positions = np.interp(steps + 1, [0, *curves["iteration"]], [0.0, *positions])
        runs.append(RunCurves(label=None if name in seen else record.get("label", name), x=positions,
                              accuracy=curves["test_accuracy"], lr_x=lr_positions, lr=lr,
                              style=SCHEDULE_STYLES.get(name, {})))
        seen.add(name)
    target = target_accuracy if target_accuracy is not None else records[0].get("target_accuracy")
    if title is None:
        title = "Test accuracy and learning rate at an equal budget" + (
            " (a demonstration of the method)" if any(_is_demonstration(r) for r in records) else "")
    x_label = "iteration (mini-batch updates)" if x == "iteration" else "training time (seconds, evaluation excluded)"
    return plot_runs_with_lr(runs, title=title, x_label=x_label, target_accuracy=target, figsize=figsize)
