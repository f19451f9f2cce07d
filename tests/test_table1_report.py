"""clr_book.experiments.table1.report: the Figure 1 analogue, the schedules plot and the paper-vs-ours table."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from clr_book.experiments.table1.config import get_policy  # noqa: E402
from clr_book.experiments.table1.report import (  # noqa: E402
    comparison_markdown,
    plot_accuracy_and_lr,
    plot_policy_schedules,
    record_lr_curve,
)
from clr_book.experiments.table1.run import RESULT_SCHEMA  # noqa: E402


def _record(policy: str, accuracies: list[float], scale: float = 0.002, synthetic: bool = False) -> dict:
    iterations = get_policy(policy).budget(scale)
    points = np.linspace(iterations / len(accuracies), iterations, len(accuracies)).round().astype(int).tolist()
    return {
        "schema": RESULT_SCHEMA, "policy": policy, "iterations": iterations, "eval_every": 10,
        "profile": {"name": "quick", "iteration_scale": scale, "eval_every": 10},
        "curves": {"iteration": points, "test_accuracy": accuracies, "lr": [0.001] * len(accuracies)},
        "final_test_accuracy": accuracies[-1], "timing": {"train_seconds": 1.0},
        "environment": {"device": "a CPU"}, "provenance": {"seed": 0},
        "data": {"source": "cifar10-jpeg.tar.gz", "synthetic": synthetic}, "schedule": "",
    }


def test_record_lr_curve_is_the_policy_schedule_at_every_iteration():
    steps, lr = record_lr_curve(_record("exp_range", [0.2, 0.3]))
    assert steps.tolist() == list(range(84))
    np.testing.assert_array_equal(lr, get_policy("exp_range").schedule(0.002)(np.arange(84)))
    unknown = {**_record("fixed", [0.2, 0.3]), "policy": "custom"}
    steps, lr = record_lr_curve(unknown)
    assert steps.tolist() == unknown["curves"]["iteration"] and lr.tolist() == [0.001, 0.001]


def test_accuracy_and_lr_figure_shares_the_iteration_axis_and_labels_everything():
    records = [_record("fixed", [0.1, 0.3, 0.4]), _record("triangular2", [0.2, 0.35])]
    fig = plot_accuracy_and_lr(records, title="quick run")
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.get_ylabel() == "test accuracy (%)" and "iteration" in bottom.get_xlabel()
    assert bottom.get_yscale() == "log" and top.get_title() and bottom.get_title()
    assert fig._suptitle.get_text() == "quick run"
    labels = [text.get_text() for text in top.get_legend().get_texts()]
    assert labels == ["fixed: 40.0 % at 140 it", "triangular2: 35.0 % at 50 it"]
    np.testing.assert_allclose(top.lines[0].get_ydata(), [10, 30, 40])
    assert len(bottom.lines[1].get_xdata()) == 50
    with pytest.raises(ValueError, match="records must hold"):
        plot_accuracy_and_lr([])


def test_policy_schedules_plot_draws_each_budget():
    ax = plot_policy_schedules()
    assert [len(line.get_xdata()) for line in ax.lines] == [70_000, 25_000, 25_000, 70_000, 42_000]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None and "iteration" in ax.get_xlabel()
    with pytest.raises(ValueError, match="policy must be one of"):
        plot_policy_schedules(names=["cosine"])


def test_comparison_markdown_carries_the_caveats():
    text = comparison_markdown([_record("fixed", [0.3, 0.5]), _record("exp_range", [0.55, 0.52])])
    assert "| fixed | 0 | 140 | - | 50.0 | 140 |" in text   # a demonstration: no paper columns
    assert "| exp_range | 0 | 84 | - | 52.0 | 42 |" in text
    assert "**Demonstration of the method** (profile 'quick')" in text and "81.4" not in text
    assert "Data: cifar10-jpeg.tar.gz" in text and "not comparable with the paper" in text
    assert "50.0 % (the final accuracy of our fixed run with the same seed)" in text
    synthetic = comparison_markdown([_record("exp", [0.2], synthetic=True)])
    assert "SYNTHETIC" in synthetic and "No fixed run" in synthetic


def test_results_files_written_before_the_move_still_load(tmp_path):
    """The schema string is unchanged, so the book's existing results files keep loading."""
    import json

    from clr_book.experiments.table1.report import load_results

    assert RESULT_SCHEMA == "clr_lib.experiments.table1/1"
    for record in (_record("exp_range", [0.55, 0.52]), _record("fixed", [0.3, 0.5])):
        (tmp_path / f"table1-{record['policy']}-quick-seed0.json").write_text(json.dumps(record))
    records = load_results(tmp_path)
    assert [r["policy"] for r in records] == ["fixed", "exp_range"]
    assert "| fixed | 0 | 140 | - | 50.0 | 140 |" in comparison_markdown(records)


def test_accuracy_at_reads_an_evaluation_and_names_the_ones_there_are():
    from clr_book.experiments.table1.report import accuracy_at

    record = _record("fixed", [0.1, 0.3, 0.4])   # evaluated at 47, 93, 140
    assert accuracy_at(record, 93) == 0.3
    with pytest.raises(ValueError, match=r"iteration must be one at which the run was evaluated \(47, 93, 140\), got 94"):
        accuracy_at(record, 94)


def test_half_cycle_changes_pairs_each_rise_and_fall_with_its_accuracy_change():
    from clr_book.experiments.table1.report import half_cycle_changes

    curves = {"iteration": [10, 20, 30, 40, 50, 60], "test_accuracy": [0.5, 0.7, 0.65, 0.8, 0.8, 0.9]}
    rows = half_cycle_changes({"curves": curves}, 20, 60)
    assert [(r["start"], r["end"], r["phase"]) for r in rows] == [(20, 40, "fall"), (40, 60, "rise")]
    assert [r["accuracy_start"] for r in rows] == [0.7, 0.8] and [r["accuracy_end"] for r in rows] == [0.8, 0.9]
    np.testing.assert_allclose([r["change_points"] for r in rows], [10, 10])
    assert half_cycle_changes({"curves": curves}, 20, 20) == []   # only the first rise, which has no start
    for step_size, end, message in [(0, 60, "step_size must be"), (2.0, 60, "step_size must be"),
                                    (True, 60, "step_size must be"), (20, 50, "end must be a positive multiple"),
                                    (20, 0, "end must be")]:
        with pytest.raises(ValueError, match=message):
            half_cycle_changes({"curves": curves}, step_size, end)
    with pytest.raises(ValueError, match="got 80"):
        half_cycle_changes({"curves": curves}, 20, 80)   # no evaluation at 80
