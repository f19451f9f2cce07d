"""Results of the Table 1 replication: read them back, compare them with the paper, draw them.

* :func:`load_results` reads every results file of a folder; :func:`paper_comparison` and
  :func:`format_comparison` build the paper-vs-ours table; :func:`iterations_to_reach`,
  :func:`accuracy_at` and :func:`half_cycle_changes` read a curve.
* :func:`plot_policy_schedules`: the five LR policies over their own iteration budgets (log LR axis).
* :func:`plot_accuracy_and_lr`: test accuracy against iterations with the LR under it on a shared x axis
  (the analogue of Smith's Figure 1), for any set of records (:func:`~clr_book.experiments.table1.run.run_policy`
  or :func:`load_results`).
* :func:`comparison_markdown`: the paper's Table 1 beside ours, with the caveat lines that say which
  data, profile and device produced it. Results of a profile other than the paper's setting
  (:func:`is_demonstration`: the quick and smoke profiles) are a **demonstration of the method**: they get
  a table of their own, labelled so, with no paper column and no difference from the paper.

matplotlib's object-oriented API only, imported inside the functions. Every figure labels its axes with
units (iterations are mini-batch updates), carries a title and a legend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clr_lib.plotting import RunCurves, color_for, new_axes, plot_runs_with_lr

from ..records import iterations_to_reach, read_records
from .config import DEMONSTRATION_NOTE, PAPER_TABLE_1, POLICIES, get_policy
from .run import RESULT_SCHEMA

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "accuracy_at",
    "comparison_markdown",
    "format_comparison",
    "format_demonstration",
    "half_cycle_changes",
    "is_demonstration",
    "iterations_to_reach",
    "load_results",
    "paper_comparison",
    "plot_accuracy_and_lr",
    "plot_policy_schedules",
    "record_lr_curve",
]

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


def is_demonstration(record: dict[str, Any]) -> bool:
    """Whether a record is a demonstration of the method rather than a run at the paper's setting.

    The record's ``profile["demonstration"]`` when it has one; otherwise (files written before that key)
    True unless its profile trained on all images (``train_size`` and ``test_size`` None) at
    ``iteration_scale`` 1, or, when the record names only its profile, unless that profile is ``full``.
    Runs on the synthetic stand-in are always demonstrations.
    """
    profile = record.get("profile", {})
    if record.get("data", {}).get("synthetic"):
        return True
    if "demonstration" in profile:
        return bool(profile["demonstration"])
    if "iteration_scale" in profile or "train_size" in profile:
        return not (profile.get("train_size") is None and profile.get("test_size") is None
                    and profile.get("iteration_scale", 1) == 1)
    return profile.get("name") != "full"


def accuracy_at(record: dict[str, Any], iteration: int) -> float:
    """The test accuracy (a fraction) of ``record`` at the evaluation after ``iteration`` iterations.

    >>> accuracy_at({"curves": {"iteration": [10, 20], "test_accuracy": [0.5, 0.75]}}, 20)
    0.75

    Raises:
        ValueError: the run was not evaluated at ``iteration`` (the message lists where it was).
    """
    curves = record["curves"]
    points = list(curves["iteration"])
    if iteration not in points:
        shown = ", ".join(f"{p:,}" for p in points[:5]) + (", ..." if len(points) > 5 else "")
        raise ValueError(f"iteration must be one at which the run was evaluated ({shown}), got {iteration!r}")
    return curves["test_accuracy"][points.index(iteration)]


def half_cycle_changes(record: dict[str, Any], step_size: int, end: int) -> list[dict[str, Any]]:
    """How the test accuracy moved over each half-cycle of a cyclical run whose first cycle starts at 0.

    Half-cycle ``k`` (1, 2, ...) covers iterations ``(k - 1) * step_size`` to ``k * step_size``; the LR climbs
    in the odd ones (``"rise"``, ending at a peak) and falls in the even ones (``"fall"``, ending at the
    bottom). The first rise has no accuracy at its start (iteration 0 is not evaluated) and is left out.

    Args:
        record: a results record evaluated at every multiple of ``step_size`` up to ``end``.
        step_size: iterations per half-cycle, > 0.
        end: the last iteration to read, a multiple of ``step_size``.

    Returns:
        One dict per half-cycle after the first: ``start``, ``end`` (iterations), ``phase`` (``"rise"`` or
        ``"fall"``), ``accuracy_start``, ``accuracy_end`` (fractions) and ``change_points``
        (100 x their difference).

    >>> curves = {"iteration": [1, 2, 3, 4], "test_accuracy": [0.5, 0.4, 0.6, 0.6]}
    >>> [(row["phase"], round(row["change_points"], 6)) for row in half_cycle_changes({"curves": curves}, 1, 4)]
    [('fall', -10.0), ('rise', 20.0), ('fall', 0.0)]

    Raises:
        ValueError: ``step_size`` is not a positive whole number, ``end`` is not a positive multiple of it,
            or the run was not evaluated at a half-cycle's end.
    """
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
        raise ValueError(f"step_size must be a whole number of iterations > 0, got {step_size!r}")
    if isinstance(end, bool) or not isinstance(end, int) or end <= 0 or end % step_size:
        raise ValueError(f"end must be a positive multiple of step_size={step_size}, got {end!r}")
    rows = []
    for k in range(2, end // step_size + 1):
        start, stop = (k - 1) * step_size, k * step_size
        before, after = accuracy_at(record, start), accuracy_at(record, stop)
        rows.append({"start": start, "end": stop, "phase": "rise" if k % 2 else "fall",
                     "accuracy_start": before, "accuracy_end": after, "change_points": 100 * (after - before)})
    return rows


def paper_comparison(records: list[dict[str, Any]], target_accuracy: float | None = None) -> list[dict[str, Any]]:
    """One row per record: the paper's Table 1 numbers beside ours.

    Args:
        records: from :func:`load_results`.
        target_accuracy: fraction for the ``iterations_to_target`` column; default: the final accuracy
            of our own ``fixed`` run of the same profile and seed (the paper's question: how soon does a
            policy match the fixed-LR baseline?), or None when there is none.

    Returns:
        Rows with keys ``policy``, ``profile``, ``seed``, ``demonstration`` (:func:`is_demonstration`),
        ``paper_iterations``, ``paper_accuracy_percent``, ``iterations``, ``epochs`` (None when the record
        does not say its iterations per epoch), ``accuracy_percent``, ``difference_points``,
        ``target_accuracy_percent``, ``iterations_to_target``, ``train_seconds``, ``device``,
        ``data_source``. A demonstration's row carries no paper numbers and no difference (all None):
        its accuracies are not comparable with the paper's.
    """
    def run_of(record: dict[str, Any]) -> tuple[str, Any]:
        return record["profile"]["name"], record["provenance"]["seed"]

    fixed = {run_of(r): r["final_test_accuracy"] for r in records if r["policy"] == "fixed"}
    rows = []
    for record in records:
        demonstration = is_demonstration(record)
        paper = {} if demonstration else PAPER_TABLE_1.get(record["policy"], {})
        target = target_accuracy if target_accuracy is not None else fixed.get(run_of(record))
        accuracy = 100 * record["final_test_accuracy"]
        paper_accuracy = paper.get("accuracy_percent")
        per_epoch = record.get("iterations_per_epoch")
        rows.append({
            "policy": record["policy"],
            "profile": record["profile"]["name"],
            "seed": record["provenance"]["seed"],
            "demonstration": demonstration,
            "paper_iterations": paper.get("iterations"),
            "paper_accuracy_percent": paper_accuracy,
            "iterations": record["iterations"],
            "epochs": record["iterations"] / per_epoch if per_epoch else None,
            "accuracy_percent": accuracy,
            "difference_points": None if paper_accuracy is None else accuracy - paper_accuracy,
            "target_accuracy_percent": None if target is None else 100 * target,
            "iterations_to_target": None if target is None else iterations_to_reach(record, target),
            "train_seconds": record["timing"]["train_seconds"],
            "device": record["environment"]["device"],
            "data_source": record["data"]["source"],
        })
    return rows


def _cell(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`paper_comparison` as Markdown tables (accuracies in percent).

    Rows at the paper's setting form the paper-vs-ours table; demonstration rows (``row["demonstration"]``)
    form a second table headed as a demonstration of the method, with iterations and epochs but no paper
    column, so that a demonstration is never read against the paper's numbers.
    """
    paper_rows = [row for row in rows if not row.get("demonstration")]
    demonstration_rows = [row for row in rows if row.get("demonstration")]
    tables = []
    if paper_rows:
        tables.append(_format_paper_table(paper_rows))
    if demonstration_rows:
        tables.append(format_demonstration(demonstration_rows))
    return "\n\n".join(tables)


def format_demonstration(rows: list[dict[str, Any]]) -> str:
    """Demonstration rows as a Markdown table headed by :data:`~.config.DEMONSTRATION_NOTE`; no paper numbers."""
    lines = [
        f"**Demonstration of the method** (profile {', '.join(sorted({repr(row['profile']) for row in rows}))}). "
        + DEMONSTRATION_NOTE,
        "",
        "| policy (demonstration) | seed | iterations | epochs | test accuracy % | iterations to target |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['policy']} | {row['seed']} | {_cell(row['iterations'], ',')} | {_cell(row.get('epochs'), 'g')} | "
            f"{_cell(row['accuracy_percent'], '.1f')} | {_cell(row['iterations_to_target'], ',')} |"
        )
    return "\n".join(lines)


def _format_paper_table(rows: list[dict[str, Any]]) -> str:
    cell = _cell
    lines = [
        "| policy | seed | paper iterations | paper accuracy % | our iterations | our accuracy % | difference (points) "
        "| iterations to target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['policy']} | {row['seed']} | {cell(row['paper_iterations'], ',')} | {cell(row['paper_accuracy_percent'], '.1f')} | "
            f"{cell(row['iterations'], ',')} | {cell(row['accuracy_percent'], '.1f')} | {cell(row['difference_points'], '+.1f')} | "
            f"{cell(row['iterations_to_target'], ',')} |"
        )
    return "\n".join(lines)


def plot_policy_schedules(iteration_scale: float = 1.0, *, names: Sequence[str] | None = None,
                          ax: "Axes | None" = None) -> "Axes":
    """Each policy's LR over its own budget at ``iteration_scale`` (1: the paper's), on a log LR axis.

    Args:
        iteration_scale: see :meth:`clr_book.experiments.table1.config.Policy.schedule`.
        names: policies to draw (default: all five, in Table 1 order).
        ax: where to draw (default: a new figure).

    Returns:
        The Axes (x: iterations, y: learning rate, log scale).

    Raises:
        ValueError: an unknown policy name or a bad ``iteration_scale``.
    """
    chosen = [get_policy(name) for name in (names if names is not None else POLICIES)]
    ax = new_axes(ax, (8.0, 3.4))
    for policy in chosen:
        steps = np.arange(policy.budget(iteration_scale))
        ax.plot(steps, policy.schedule(iteration_scale)(steps), label=f"{policy.name} ({len(steps):,} it)",
                color=color_for(policy.name), linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (mini-batch updates)")
    ax.set_ylabel("learning rate (log scale)")
    scale = "the paper's budgets" if iteration_scale == 1 else f"iteration counts x {iteration_scale:g}"
    ax.set_title(f"The Table 1 learning-rate policies ({scale})")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def record_lr_curve(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(iterations, lr)`` at every iteration of a record's run, from its policy at its profile's scale.

    The schedule is recomputed from :data:`POLICIES` (exactly what the run used); a record of an unknown
    policy falls back to the LR points stored in its curves.
    """
    policy = POLICIES.get(record["policy"])
    scale = record.get("profile", {}).get("iteration_scale")
    if policy is None or scale is None:
        curves = record["curves"]
        return np.asarray(curves["iteration"], dtype=float), np.asarray(curves["lr"], dtype=float)
    steps = np.arange(int(record["iterations"]))
    return steps, np.asarray(policy.schedule(scale)(steps), dtype=float)


def plot_accuracy_and_lr(records: Sequence[dict[str, Any]], *, title: str | None = None,
                         figsize: tuple[float, float] = (8.0, 5.6)) -> "Figure":
    """Test accuracy against iterations (top) with each run's LR under it (bottom), x axis shared.

    The analogue of Smith (2017), Figure 1, for any number of runs: one colour per policy in both panels,
    drawn by :func:`clr_lib.plotting.plot_runs_with_lr` with the LR on a log axis.

    Args:
        records: results records (each needs ``policy``, ``iterations``, ``profile`` and ``curves``).
        title: the figure's title (default: says the profile of the first record, and that the runs are a
            demonstration when any is: :func:`is_demonstration`).

    Returns:
        The Figure; its two Axes are ``fig.axes[0]`` (accuracy, percent) and ``fig.axes[1]`` (LR, log scale).

    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("records must hold at least one results record, got none")
    runs = []
    for record in records:
        curves = record["curves"]
        steps, lr = record_lr_curve(record)
        runs.append(RunCurves(
            label=f"{record['policy']}: {100 * curves['test_accuracy'][-1]:.1f} % at {int(record['iterations']):,} it",
            x=curves["iteration"], accuracy=curves["test_accuracy"], lr_x=steps, lr=lr,
            style={"color": color_for(record["policy"])},
        ))
    first = records[0]
    eval_every = int(first.get("eval_every", first["profile"].get("eval_every", 0)))
    return plot_runs_with_lr(
        runs, title=title or (f"Profile {first['profile']['name']!r}"
                              + (" (a demonstration, not comparable with the paper)"
                                 if any(is_demonstration(record) for record in records) else "")
                              + ": accuracy and LR against iterations"),
        accuracy_title=f"Test accuracy (evaluated every {eval_every:,} iterations)", log_lr=True, markers=True,
        figsize=figsize,
    )


def comparison_markdown(records: Sequence[dict[str, Any]], target_accuracy: float | None = None) -> str:
    """The paper-vs-ours Markdown table of ``records`` followed by the caveats that qualify it.

    Records of a demonstration profile (:func:`is_demonstration`) are not set beside the paper: they form
    a table of their own, headed as a demonstration of the method (:func:`format_comparison`). The caveats
    name the profile(s), the data source(s), the device(s) and whether any run was synthetic, so a table can
    never be read without knowing which data produced it. ``iterations to target`` is the first evaluated
    iteration at which a run reached ``target_accuracy`` (default: the final accuracy of our fixed run with the
    same profile and seed; see :func:`paper_comparison`).

    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("records must hold at least one results record, got none")
    rows = paper_comparison(list(records), target_accuracy)
    lines = [format_comparison(rows), ""]
    profiles = sorted({row["profile"] for row in rows})
    sources = sorted({row["data_source"] for row in rows})
    devices = sorted({row["device"] for row in rows})
    targets = sorted({row["target_accuracy_percent"] for row in rows if row["target_accuracy_percent"] is not None})
    lines.append(f"Profile: {', '.join(profiles)}. Data: {'; '.join(sources)}. Device: {'; '.join(devices)}.")
    if targets:
        lines.append(f"Target for 'iterations to target': {', '.join(f'{t:.1f} %' for t in targets)} "
                     "(the final accuracy of our fixed run with the same seed).")
    else:
        lines.append("No fixed run among these records, so no target accuracy.")
    if any(record.get("data", {}).get("synthetic") for record in records):
        lines.append("SYNTHETIC stand-in data: these accuracies say nothing about CIFAR-10.")
    return "\n".join(lines)
