"""clr_book.experiments.time_to_accuracy: six schedules at an equal budget, one results file per run, time to target."""

from __future__ import annotations

import json
import math
import re
import shlex

import numpy as np
import pytest
import torch

import clr_book.experiments.time_to_accuracy.__main__ as tta_cli
import clr_lib
from clr_book.cifar.data import make_synthetic_cifar10
from clr_book.experiments.common import RunOptions
from clr_book.experiments.time_to_accuracy import config as equal_budget
from clr_book.experiments.time_to_accuracy import report as tta_report
from clr_book.experiments.time_to_accuracy import run as time_to_accuracy
from clr_book.experiments.time_to_accuracy.config import (
    PROFILES,
    SCHEDULE_NAMES,
    Recipe,
    equal_budget_schedules,
    resolve_tta_profile,
)
from clr_book.experiments.time_to_accuracy.run import SCHEMA, result_filename, run_comparison

CPU = torch.device("cpu")
SMOKE = PROFILES["smoke"]

# ----------------------------------------------------------------------------------------------
# The recipe and the schedules at an equal budget
# ----------------------------------------------------------------------------------------------


def test_recipe_scales_the_peak_lr_with_the_batch_and_takes_a_quarter_for_base():
    assert Recipe().max_lr == pytest.approx(0.4)  # Page's peak at batch 512
    assert Recipe(batch_size=64).max_lr == pytest.approx(0.05)
    assert Recipe().base_lr == pytest.approx(0.1)
    assert Recipe().to_dict()["max_lr"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"batch_size": 0}, "batch_size"), ({"base_lr_divisor": 0.5}, "base_lr_divisor"), ({"cycles": 0}, "cycles"),
     ({"momentum": 1.5}, "momentum"), ({"base_width": -1}, "base_width"),
     ({"amp_dtype": "fp8"}, "amp_dtype must be one of 'auto', 'bf16', 'fp16', None, got 'fp8'")],
)
def test_recipe_rejects_bad_values_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recipe(**kwargs)


def test_all_six_runs_share_the_budget_except_fixed_3x():
    runs = equal_budget_schedules(970, 0.4)
    assert tuple(runs) == SCHEDULE_NAMES
    assert {name: run.iterations for name, run in runs.items()} == {
        "fixed": 970, "triangular": 970, "triangular2": 970, "one_cycle": 970, "sgdr": 970, "fixed_3x": 2910}
    for run in runs.values():  # every schedule is defined over its whole run
        values = run.schedule(np.arange(run.iterations))
        assert np.all(values >= 0) and np.all(values <= 0.4 + 1e-12)


def test_fixed_runs_hold_base_lr_which_is_a_quarter_of_max_lr():
    runs = equal_budget_schedules(100, 0.4)
    assert runs["fixed"].schedule(0) == runs["fixed_3x"].schedule(299) == pytest.approx(0.1)


def test_triangles_are_whole_cycles_that_end_at_the_budget():
    runs = equal_budget_schedules(1000, 0.4, 0.1, cycles=2)
    triangular, triangular2 = runs["triangular"].schedule, runs["triangular2"].schedule
    assert triangular(0) == pytest.approx(0.1) and triangular(250) == pytest.approx(0.4)
    assert triangular(500) == pytest.approx(0.1) and triangular(750) == pytest.approx(0.4)
    assert triangular(999) == pytest.approx(0.1 + 0.3 / 250)  # one iteration before the end of cycle 2
    assert triangular2(750) == pytest.approx(0.1 + 0.3 / 2)  # the second peak is half as high


def test_triangles_with_a_fractional_step_size_still_end_at_base_lr():
    schedule = equal_budget_schedules(970, 0.4, 0.1, cycles=2)["triangular"].schedule
    assert schedule(970) == pytest.approx(0.1)  # 970 / 4 = 242.5 iterations per half cycle
    assert schedule(485) == pytest.approx(0.1)


def test_one_cycle_and_sgdr_peak_at_max_lr_and_end_near_zero():
    runs = equal_budget_schedules(1000, 0.4, cycles=2, pct_start=0.25)
    one_cycle, sgdr = runs["one_cycle"].schedule, runs["sgdr"].schedule
    assert one_cycle(0) == pytest.approx(0.4 / 25) and one_cycle(249) == pytest.approx(0.4)
    assert one_cycle(999) == pytest.approx(0.4 / 25 / 1e4)
    assert sgdr(0) == sgdr(500) == pytest.approx(0.4)  # restart after ceil(1000 / 2) iterations
    assert sgdr(499) < 0.4 * 1e-4


def test_the_schedules_are_clr_lib_schedules_with_the_same_values():
    runs = equal_budget_schedules(400, 0.2, 0.05)
    steps = np.arange(400)
    np.testing.assert_allclose(runs["triangular2"].schedule(steps),
                               clr_lib.cyclic(0.05, 0.2, 100, mode="triangular2")(steps))
    np.testing.assert_allclose(runs["sgdr"].schedule(steps), clr_lib.cosine_warm_restarts(0.2, 200)(steps))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"budget": 0}, "budget"), ({"budget": 3, "cycles": 2}, "budget must hold"), ({"max_lr": 0}, "max_lr"),
     ({"base_lr": 1.0}, "base_lr must be <= max_lr"), ({"names": ["cosine"]}, "names"), ({"cycles": 0}, "cycles")],
)
def test_equal_budget_schedules_rejects_bad_input(kwargs, message):
    arguments = {"budget": 100, "max_lr": 0.4, **kwargs}
    with pytest.raises(ValueError, match=message):
        equal_budget_schedules(**arguments)


# ----------------------------------------------------------------------------------------------
# Profiles
# ----------------------------------------------------------------------------------------------


def test_full_profile_is_pages_resnet9_for_ten_epochs_three_seeds_target_ninety():
    full = PROFILES["full"]
    assert full.recipe.base_width == 64 and full.recipe.batch_size == 512 and full.recipe.amp_dtype == "auto"
    assert full.budget(50_000) == 970 and full.seeds == (0, 1, 2) and full.target_accuracy == 0.90
    assert full.train_size is None and full.test_size is None


def test_auto_is_full_on_cuda_and_quick_elsewhere():
    assert resolve_tta_profile("auto", "cuda").name == "full"
    assert resolve_tta_profile("auto", "cpu").name == "quick"
    with pytest.raises(ValueError, match="profile must be"):
        resolve_tta_profile("huge", "cpu")


def test_quick_profile_is_small_enough_for_a_cpu_and_a_demonstration():
    quick = PROFILES["quick"]
    assert quick.recipe.base_width <= 8 and quick.recipe.amp_dtype is None and quick.seeds == (0,)
    total = 5 * quick.budget(quick.train_size) + 3 * quick.budget(quick.train_size)
    assert total <= 1_600  # iterations of all six runs together
    assert quick.target_accuracy < 0.9 and quick.demonstration and quick.range_test is None


def test_quick_profile_shrinks_the_data_not_the_schedule():
    # The live run keeps the cpu profile's schedule in epochs (issue: cycles of at least two epochs).
    quick, cpu = PROFILES["quick"], PROFILES["cpu"]
    assert quick.budget_epochs == cpu.budget_epochs and quick.recipe.cycles == cpu.recipe.cycles
    for profile, images in ((quick, quick.train_size), (cpu, 50_000)):
        per_epoch = profile.iterations_per_epoch(images)
        runs = equal_budget_schedules(profile.budget(images), 0.1, cycles=profile.recipe.cycles)
        step_size = profile.budget(images) / (2 * profile.recipe.cycles)
        assert step_size / per_epoch >= 2, profile.name  # Smith's lower guideline, 2 epochs per half cycle
        assert runs["triangular"].schedule(int(step_size)) == pytest.approx(0.1)  # a peak, where the epochs say
    assert quick.train_size < 50_000 and quick.budget(quick.train_size) == 160


# ----------------------------------------------------------------------------------------------
# Runs and results files (smoke profile on the synthetic stand-in)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in():
    return make_synthetic_cifar10(200, 100)


@pytest.fixture(scope="module")
def smoke_records(stand_in, tmp_path_factory):
    out = tmp_path_factory.mktemp("tta")
    options = RunOptions(out=out, checkpoint_dir=tmp_path_factory.mktemp("tta_ckpt"), command="pytest")
    records = run_comparison(SMOKE, stand_in, CPU, options=options, schedules=["triangular", "fixed_3x"], seeds=[0, 1],
                             verbose=False)
    return out, records


def test_each_run_writes_one_results_file_with_provenance(smoke_records):
    out, records = smoke_records
    names = sorted(path.name for path in out.glob("*.json"))
    assert names == sorted(result_filename(s, "smoke", seed) for s in ("triangular", "fixed_3x") for seed in (0, 1))
    record = json.loads((out / result_filename("triangular", "smoke", 0)).read_text())
    assert record["schema"] == SCHEMA and record["schedule_name"] == "triangular"
    assert record["provenance"]["command"] == "pytest" and record["provenance"]["seed"] == 0
    assert {"commit", "dirty", "date_utc"} <= set(record["provenance"])
    assert {"device", "torch", "numpy", "python"} <= set(record["environment"])
    assert record["data"]["synthetic"] is True and "synthetic" in record["data"]["source"]
    assert record["model"]["widths"] == [4, 8, 16, 32]
    assert record["lr_bounds"] == {"max_lr": SMOKE.recipe.max_lr, "base_lr": SMOKE.recipe.base_lr, "source": "recipe",
                                   "range_test": None}
    assert record["demonstration"] is True and record["epochs"] == record["iterations"] / record["iterations_per_epoch"]
    assert not list(out.glob("*.partial"))


def test_curves_carry_iteration_accuracy_lr_and_cumulative_training_seconds(smoke_records):
    _, records = smoke_records
    smoke = PROFILES["smoke"]
    budget = smoke.budget(200)
    record = records[0]
    curves = record["curves"]
    assert record["budget"] == budget == 8 and record["iterations"] == budget and smoke.eval_every(200) == 5
    assert curves["iteration"] == [5, 8]  # every eval_every iterations, and the last one
    assert len(curves["cumulative_train_seconds"]) == len(curves["iteration"]) == len(curves["test_accuracy"])
    assert all(b >= a > 0 for a, b in zip(curves["cumulative_train_seconds"], curves["cumulative_train_seconds"][1:]))
    assert curves["cumulative_train_seconds"][-1] == pytest.approx(record["timing"]["train_seconds"])
    schedule = equal_budget_schedules(budget, smoke.recipe.max_lr, smoke.recipe.base_lr, cycles=smoke.recipe.cycles)
    np.testing.assert_allclose(curves["lr"], schedule["triangular"].schedule(np.array(curves["iteration"]) - 1))


def test_fixed_3x_trains_three_times_the_budget(smoke_records):
    _, records = smoke_records
    by_name = {r["schedule_name"]: r for r in records if r["provenance"]["seed"] == 0}
    assert by_name["fixed_3x"]["iterations"] == 3 * by_name["triangular"]["iterations"]


def test_time_to_target_is_the_clock_at_the_first_evaluation_at_or_above_target():
    record = {"curves": {"test_accuracy": [0.2, 0.5, 0.4, 0.7], "cumulative_train_seconds": [1.0, 2.0, 3.0, 4.0]}}
    assert tta_report.seconds_to_reach(record, 0.5) == 2.0
    assert tta_report.seconds_to_reach(record, 0.6) == 4.0
    assert tta_report.seconds_to_reach(record, 0.9) is None
    with pytest.raises(ValueError, match="target_accuracy"):
        tta_report.seconds_to_reach(record, 90)


def _fake(name: str, seed: int, final: float, seconds_to_half: float | None) -> dict:
    accuracies = [0.3, 0.5 if seconds_to_half is not None else 0.4, final]
    return {
        "schedule_name": name, "profile": {"name": "full"}, "iterations": 10, "target_accuracy": 0.5,
        "final_test_accuracy": final, "timing": {"train_seconds": 3.0}, "environment": {"device": "GPU"},
        "data": {"source": "x"}, "provenance": {"seed": seed},
        "curves": {"test_accuracy": accuracies, "cumulative_train_seconds": [1.0, seconds_to_half or 2.0, 3.0],
                   "iteration": [1, 2, 3]},
        "iterations_per_epoch": 4,
    }


def test_summary_gives_mean_and_spread_over_seeds_and_counts_runs_that_reached_the_target():
    records = [_fake("one_cycle", 0, 0.60, 2.0), _fake("one_cycle", 1, 0.64, 2.5), _fake("fixed", 0, 0.45, None)]
    rows = tta_report.summarize(records)
    assert [row["schedule"] for row in rows] == ["fixed", "one_cycle"]  # the comparison's order
    fixed, one_cycle = rows
    assert one_cycle["runs"] == 2 and one_cycle["mean_accuracy"] == pytest.approx(0.62)
    assert one_cycle["std_accuracy"] == pytest.approx(math.sqrt(2) * 0.02)
    assert one_cycle["reached"] == 2 and one_cycle["mean_seconds_to_target"] == pytest.approx(2.25)
    assert fixed["std_accuracy"] is None and fixed["reached"] == 0 and fixed["mean_seconds_to_target"] is None
    assert one_cycle["mean_iterations_to_target"] == 2 and one_cycle["mean_epochs_to_target"] == pytest.approx(0.5)
    table = tta_report.format_summary(rows)
    assert "| one-cycle | 10 | 2.5 | 2 | 62.00 ± 2.83 | 60.0-64.0 | 50.00 | 2/2 | 2 | 0.50 |" in table and "0/1" in table
    assert "train s" not in table and "Demonstration" not in table  # seconds only when asked; a 'full' profile
    timed = tta_report.format_summary(rows, seconds=True)
    assert "train s to target (mean; GPU)" in timed and "| 2.25 | 3.00 |" in timed


def test_load_results_reads_this_experiments_files_only(smoke_records, tmp_path):
    out, _ = smoke_records
    loaded = tta_report.load_results(out)
    assert [r["schedule_name"] for r in loaded] == ["triangular", "triangular", "fixed_3x", "fixed_3x"]
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something else"}))
    assert tta_report.load_results(tmp_path) == []
    with pytest.raises(ValueError, match="directory"):
        tta_report.load_results(tmp_path / "missing")


def test_plot_curves_labels_axes_with_units(smoke_records):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, records = smoke_records
    figure = tta_report.plot_curves(records)
    accuracy_ax, lr_ax = figure.axes
    assert "iteration" in lr_ax.get_xlabel() and "%" in accuracy_ax.get_ylabel() and figure.get_suptitle()
    assert len(accuracy_ax.get_legend().get_texts()) == 3  # two schedules (seeds share a label) and the target
    seconds = tta_report.plot_curves(records, x="seconds")
    assert "seconds" in seconds.axes[1].get_xlabel()
    first = records[0]  # its LR line is placed at the interpolated training seconds of each iteration
    lr_x = seconds.axes[1].lines[0].get_xdata()
    assert len(lr_x) == first["iterations"] and np.all(np.diff(lr_x) > 0)
    assert lr_x[-1] == pytest.approx(first["curves"]["cumulative_train_seconds"][-1])
    plt.close("all")
    with pytest.raises(ValueError, match="x must be"):
        tta_report.plot_curves(records, x="epochs")


def test_run_schedule_rejects_bad_input(stand_in):
    with pytest.raises(ValueError, match="schedule must be one of"):
        time_to_accuracy.run_schedule("cosine", SMOKE, stand_in, CPU)
    with pytest.raises(ValueError, match="seed"):
        time_to_accuracy.run_schedule("fixed", SMOKE, stand_in, CPU, seed=-1)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"schedules": ["sgdr", "cosine"]}, "schedules must name runs from .*, got 'cosine'"),
     ({"schedules": ["sgdr", "sgdr"]}, "schedules and seeds must each name a run once"),
     ({"seeds": [1, 1]}, "schedules and seeds must each name a run once")],
)
def test_run_comparison_refuses_unknown_and_repeated_runs_before_training(stand_in, kwargs, message, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(time_to_accuracy, "run_schedule", no_training)
    with pytest.raises(ValueError, match=message):
        run_comparison(SMOKE, stand_in, CPU, verbose=False, **kwargs)


def test_run_schedule_without_out_writes_only_its_checkpoint_and_resumes_from_it(stand_in, tmp_path):
    options = RunOptions(checkpoint_dir=tmp_path)
    first = time_to_accuracy.run_schedule("one_cycle", SMOKE, stand_in, CPU, seed=4, options=options)
    assert "path" not in first and first["provenance"]["seed"] == 4
    assert first["provenance"]["command"] == first["environment"]["argv"]  # no command given: this process's
    assert [p.name for p in tmp_path.iterdir()] == ["tta-one_cycle-smoke-seed4.pt"]
    again = time_to_accuracy.run_schedule("one_cycle", SMOKE, stand_in, CPU, seed=4, options=options)
    assert again["curves"] == first["curves"] and again["timing"]["resumed_at_iterations"] == [8]
    assert again["timing"]["train_seconds"] == first["timing"]["train_seconds"]


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def test_cli_runs_the_smoke_profile_and_prints_the_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tta_cli, "load_data", lambda location, download: make_synthetic_cifar10(200, 100))
    argv = ["--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "out"), "--schedules", "one_cycle",
            "--seeds", "3", "--checkpoint-dir", str(tmp_path / "ckpt")]
    records = tta_cli.main(argv)
    assert len(records) == 1 and (tmp_path / "out" / result_filename("one_cycle", "smoke", 3)).exists()
    assert (tmp_path / "ckpt" / "tta-one_cycle-smoke-seed3.pt").exists()
    assert records[0]["provenance"]["command"] == "python -m clr_book.experiments.time_to_accuracy " + shlex.join(argv)
    assert "| one-cycle |" in capsys.readouterr().out


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLR_CIFAR10", raising=False)


@pytest.mark.parametrize(
    "argv, message",
    [(["--profile", "huge"], "profile must be"), (["--schedules", "cosine"], "--schedules"),
     (["--schedules", "sgdr,fixed,sgdr"], "--schedules names sgdr more than once"),
     (["--seeds", "a,b"], "--seeds"), (["--seeds", "1,1"], "--seeds names a seed more than once"),
     (["--compile", "fastest"], "--compile: compile must be"),
     (["--data", "/no/such/cifar"], "--data"), (["--device", "tpu"], "device")],
)
def test_cli_errors_name_the_option(argv, message, tmp_path, isolated_env):
    shared = ["--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    with pytest.raises(ValueError, match=re.escape(message)):
        tta_cli.main([*shared, "--device", "cpu", *argv] if "--device" not in argv else [*shared, *argv])
    assert not (tmp_path / "cache").exists()


def test_cli_needs_out_and_refuses_an_unwritable_one_before_loading_data(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        tta_cli.main(["--profile", "smoke"])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before --out was checked")

    monkeypatch.setattr(tta_cli, "load_data", no_loading)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--out .* is not a writable folder"):
        tta_cli.main(["--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "file" / "out"),
                      "--checkpoint-dir", str(tmp_path / "ckpt")])


def test_equal_budget_module_documents_every_schedule():
    for name in SCHEDULE_NAMES:
        assert name in equal_budget.__doc__


def _run_record(name, seed, accuracies, *, every=10, per_epoch=20, demonstration=False):
    """A minimal results record: evaluations every ``every`` iterations."""
    iterations = [every * (i + 1) for i in range(len(accuracies))]
    return {"schedule_name": name, "label": equal_budget.SCHEDULE_LABELS[name], "iterations": iterations[-1],
            "iterations_per_epoch": per_epoch, "target_accuracy": 0.5, "final_test_accuracy": accuracies[-1],
            "curves": {"iteration": iterations, "test_accuracy": accuracies}, "provenance": {"seed": seed},
            "demonstration": demonstration, "profile": {"name": "cpu"}, "data": {}}


def test_format_runs_gives_each_seed_its_own_row_in_schedule_order():
    records = [_run_record("sgdr", 0, [0.2, 0.6, 0.55]), _run_record("fixed", 1, [0.3, 0.4, 0.45]),
               _run_record("fixed", 0, [0.3, 0.5, 0.49])]
    lines = tta_report.format_runs(records).splitlines()
    assert lines[0].startswith("| schedule | seed |") and "Demonstration" not in lines[0]
    assert lines[2] == "| fixed LR | 0 | 30 | 49.00 | 50.00 | 50.0 | 20 | 1.00 |"
    assert lines[3] == "| fixed LR | 1 | 30 | 45.00 | 45.00 | 50.0 | not reached | - |"
    assert lines[4] == "| SGDR | 0 | 30 | 55.00 | 60.00 | 50.0 | 20 | 1.00 |"
    lower = tta_report.format_runs(records, target_accuracy=0.3).splitlines()
    assert lower[3] == "| fixed LR | 1 | 30 | 45.00 | 45.00 | 30.0 | 10 | 0.50 |"


def test_format_runs_heads_a_demonstration_and_refuses_nothing_to_show():
    table = tta_report.format_runs([_run_record("fixed", 0, [0.3], demonstration=True)])
    assert table.startswith("**Demonstration of the method.** " + equal_budget.DEMONSTRATION_NOTE)
    with pytest.raises(ValueError, match="records must hold at least one run"):
        tta_report.format_runs([])
    with pytest.raises(ValueError, match="target_accuracy"):
        tta_report.format_runs([_run_record("fixed", 0, [0.3])], target_accuracy=1.5)
