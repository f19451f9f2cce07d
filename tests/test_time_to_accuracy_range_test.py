"""clr_book.experiments.time_to_accuracy: the cpu profile, the range test that sets its LRs, iterations and epochs.

Runs use small profiles built from ``smoke`` (a width-4 ResNet-9, a few iterations) on the tiny image-folder
fixture (``tiny_cifar``: 500 / 200 images read through the real loader); the numbers mean nothing, the
files, the LRs each run was built from and the resumes do.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import clr_book.experiments.time_to_accuracy.__main__ as tta_cli
from clr_book.experiments.common import RunOptions, load_data
from clr_book.experiments.range_test.config import Sweep
from clr_book.experiments.range_test.report import result_from_record
from clr_book.experiments.time_to_accuracy import range_test as tta_range_test
from clr_book.experiments.time_to_accuracy import report as tta_report
from clr_book.experiments.time_to_accuracy import run as tta_run
from clr_book.experiments.time_to_accuracy.config import (
    CPU_TARGET_ACCURACY,
    DEMONSTRATION_NOTE,
    PROFILES,
    SCHEDULE_NAMES,
    LRBounds,
    LRRangeTest,
    Recipe,
    recipe_bounds,
)
from clr_book.experiments.time_to_accuracy.range_test import (
    RANGE_TEST_SCHEMA,
    held_out_split,
    lr_bounds_for,
    range_test_filename,
    run_lr_range_test,
)

pytestmark = pytest.mark.filterwarnings("ignore:RangeTestResult.suggest")  # a 12-iteration sweep's reading is doubtful

CPU = torch.device("cpu")
SMOKE = PROFILES["smoke"]
# The smoke profile with the cpu profile's kind of range test: a training-loss sweep, and a held-out one.
EXP_SWEEP = LRRangeTest("exp", Sweep(start_lr=1e-3, end_lr=1.0, num_iter=12, held_out=False))
HELD_OUT_SWEEP = LRRangeTest("linear", Sweep(start_lr=1e-3, end_lr=0.5, num_iter=12, held_out=True),
                             held_out_images=60, held_out_batch_size=20)
SWEPT = dataclasses.replace(SMOKE, name="swept", range_test=EXP_SWEEP)


@pytest.fixture(scope="module")
def tiny(tiny_cifar):
    return load_data(tiny_cifar, download=False, verbose=False)


# ----------------------------------------------------------------------------------------------
# The cpu profile
# ----------------------------------------------------------------------------------------------


def test_cpu_profile_trains_on_all_images_with_lrs_from_its_own_range_test():
    cpu = PROFILES["cpu"]
    assert cpu.train_size is None and cpu.test_size is None  # all 50,000 / 10,000 images
    assert cpu.range_test is not None and not cpu.demonstration
    assert len(cpu.seeds) >= 2 and cpu.target_accuracy == CPU_TARGET_ACCURACY
    assert cpu.recipe.base_width < 64 and cpu.recipe.amp_dtype is None  # a narrowed ResNet-9, float32 on the CPU
    budget = cpu.budget(50_000)
    assert cpu.epochs(budget, 50_000) == pytest.approx(cpu.budget_epochs, rel=1e-3)
    assert cpu.to_dict()["range_test"]["sweep"] == dataclasses.asdict(cpu.range_test.sweep)


def test_the_cpu_targets_docstring_says_it_was_fixed_before_the_runs():
    import clr_book.experiments.time_to_accuracy.config as config

    source = open(config.__file__, encoding="utf-8").read()
    docstring = source.split("CPU_TARGET_ACCURACY = ", 1)[1].split('"""')[1]
    assert "fixed before any run" in docstring and 0 < CPU_TARGET_ACCURACY < 1


def test_the_other_profiles_keep_the_recipes_lrs_and_quick_is_a_demonstration():
    for name in ("full", "quick", "smoke"):
        assert PROFILES[name].range_test is None
    assert PROFILES["quick"].demonstration and PROFILES["smoke"].demonstration and not PROFILES["full"].demonstration
    assert recipe_bounds(Recipe()) == LRBounds(0.4, 0.1, "recipe")


def test_auto_still_picks_full_on_a_gpu_and_quick_on_a_cpu():
    assert tta_cli.resolve_tta_profile("auto", "cpu").name == "quick"
    assert tta_cli.resolve_tta_profile("cpu", "cpu") is PROFILES["cpu"]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "cosine"}, "mode must be one of 'linear', 'exp'"),
    ({"held_out_images": 0}, "held_out_images"), ({"held_out_batch_size": -1}, "held_out_batch_size"),
    ({"sweep": Sweep(1e-3, 1.0, 0, False)}, "sweep.num_iter")])
def test_lr_range_test_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LRRangeTest(**{"mode": "exp", "sweep": Sweep(1e-3, 1.0, 10, False), **kwargs})


@pytest.mark.parametrize("kwargs, message", [
    ({"max_lr": 0.0}, "max_lr"), ({"base_lr": 0.5}, "base_lr must be <= max_lr"),
    ({"source": "guess"}, "source must be 'recipe' or 'range test'")])
def test_lr_bounds_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LRBounds(**{"max_lr": 0.4, "base_lr": 0.1, "source": "recipe", **kwargs})


# ----------------------------------------------------------------------------------------------
# The range test
# ----------------------------------------------------------------------------------------------


def test_held_out_split_keeps_the_test_split_out_of_the_sweep(tiny):
    split = held_out_split(tiny, 60, seed=3)
    assert len(split.train_labels) == 440 and len(split.test_labels) == 60
    train_rows = {image.tobytes() for image in split.train_images}
    assert not any(image.tobytes() in train_rows for image in split.test_images)
    assert not {image.tobytes() for image in tiny.test_images} & (train_rows | {i.tobytes() for i in split.test_images})
    assert len(set(split.test_labels[:20].tolist())) > 3  # shuffled: a held-out batch mixes the classes
    with pytest.raises(ValueError, match="held_out_images must be between 1 and 499"):
        held_out_split(tiny, 500, seed=0)


@pytest.fixture(scope="module")
def exp_record(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("tta_range_test")
    options = RunOptions(out=out, checkpoint_dir=tmp_path_factory.mktemp("tta_range_test_ckpt"), command="pytest")
    return run_lr_range_test(SWEPT, tiny, CPU, options=options)


def test_range_test_writes_its_results_file_with_the_bounds_it_sets(exp_record):
    record = json.loads(open(exp_record["path"], encoding="utf-8").read())
    assert exp_record["path"].endswith("tta-range-test-swept-seed0.json")
    assert record["schema"] == RANGE_TEST_SCHEMA and record["iterations"] == 12
    assert record["model"]["widths"] == [4, 8, 16, 32] and record["batch_size"] == SMOKE.recipe.batch_size
    assert record["read_on"] == "smoothed training loss" and record["result"]["source"] == "train"
    bounds, suggestion = record["bounds"], record["suggestion"]
    assert bounds["source"] == "range test" and bounds["max_lr"] == suggestion["max_lr"]
    assert isinstance(record["suggestion_warnings"], list)  # suggest()'s doubts, kept with the reading
    assert bounds["base_lr"] == pytest.approx(suggestion["max_lr"] / SMOKE.recipe.base_lr_divisor)
    assert bounds["range_test"]["file"] == "tta-range-test-swept-seed0.json" and "fast.ai" in bounds["range_test"]["rule"]
    assert 1e-3 <= bounds["max_lr"] <= 1.0
    assert record["provenance"]["command"] == "pytest" and record["timing"]["resumed_at_iterations"] == []


def test_range_test_files_are_read_back_beside_the_runs_files(exp_record, tmp_path):
    folder = Path(exp_record["path"]).parent
    (folder / "notes.json").write_text('{"schema": "something else"}', encoding="utf-8")
    (records,) = tta_range_test.load_range_tests(folder)
    assert records["path"] == exp_record["path"] and records["bounds"] == exp_record["bounds"]
    curve = result_from_record(records)
    assert len(curve.lrs) == exp_record["iterations"] == 12
    np.testing.assert_allclose(curve.lrs, exp_record["result"]["lrs"])
    broken = {k: v for k, v in json.loads(Path(exp_record["path"]).read_text(encoding="utf-8")).items()
              if k != "bounds"}
    (tmp_path / "broken.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.json lacks \['bounds'\]"):
        tta_range_test.load_range_tests(tmp_path)


def test_range_test_sweeps_the_runs_own_network_and_loss(tiny, monkeypatch):
    seen = {}

    def spy(model, optimizer, criterion, train_loader, **kwargs):
        seen.update(model=model, optimizer=optimizer, criterion=criterion, kwargs=kwargs)
        return real(model, optimizer, criterion, train_loader, **kwargs)

    real = tta_range_test.lr_range_test
    monkeypatch.setattr(tta_range_test, "lr_range_test", spy)
    run_lr_range_test(SWEPT, tiny, CPU)
    recipe = SMOKE.recipe
    assert [conv.out_channels for conv in (seen["model"].prep[0], seen["model"].layer3[0][0])] == [4, 32]
    group = seen["optimizer"].param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (recipe.momentum, True, recipe.weight_decay)
    assert seen["criterion"].label_smoothing == recipe.label_smoothing
    assert seen["kwargs"]["mode"] == "exp" and seen["kwargs"]["num_iter"] == 12 and seen["kwargs"]["val_loader"] is None


def test_held_out_sweep_reads_smiths_accuracy_peak_on_training_images(tiny):
    profile = dataclasses.replace(SMOKE, name="held", range_test=HELD_OUT_SWEEP)
    record = run_lr_range_test(profile, tiny, CPU)
    assert record["result"]["source"] == "validation" and record["suggestion"]["max_lr_metric"] == "accuracy"
    assert "Smith" in record["bounds"]["range_test"]["rule"] and record["data"]["test_images"] == 60
    assert "60 held out" in record["data"]["source"]


def test_a_finished_range_test_is_read_back_from_its_file_or_checkpoint(tiny, exp_record, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / range_test_filename("swept", 0)).write_text(open(exp_record["path"], encoding="utf-8").read())

    def no_sweep(*args, **kwargs):
        raise AssertionError("swept again")

    monkeypatch.setattr(tta_range_test, "lr_range_test", no_sweep)
    bounds = lr_bounds_for(SWEPT, tiny, CPU, options=RunOptions(out=out))
    assert bounds == tta_range_test.bounds_from_record(exp_record)
    # A file made with other settings is not reused: this profile sweeps further.
    other = dataclasses.replace(SWEPT, range_test=dataclasses.replace(EXP_SWEEP, sweep=Sweep(1e-3, 2.0, 12, False)))
    with pytest.raises(AssertionError, match="swept again"):
        lr_bounds_for(other, tiny, CPU, options=RunOptions(out=out))


def test_a_finished_range_test_is_kept_in_its_checkpoint(tiny, tmp_path, monkeypatch):
    options = RunOptions(checkpoint_dir=tmp_path)
    first = run_lr_range_test(SWEPT, tiny, CPU, options=options)
    assert [p.name for p in tmp_path.iterdir()] == ["tta-range-test-swept-seed0.pt"]
    monkeypatch.setattr(tta_range_test, "lr_range_test", lambda *a, **k: (_ for _ in ()).throw(AssertionError("swept")))
    again = run_lr_range_test(SWEPT, tiny, CPU, options=options)
    assert again["bounds"] == first["bounds"] and again["result"] == first["result"]


def test_an_interrupted_range_test_resumes_to_the_uninterrupted_result(tiny, tmp_path, monkeypatch):
    """Stop the sweep after a checkpoint at iteration 5 (as SIGTERM would), run it again: same curves."""
    uninterrupted = run_lr_range_test(SWEPT, tiny, CPU)
    saves = []
    original_save = tta_range_test.Checkpoint.save

    def save_then_stop(self, state):
        path = original_save(self, state)
        saves.append(state)
        if "sweep" in state and state["sweep"]["iteration"] == 5:
            raise KeyboardInterrupt("stopped for the test")
        return path

    monkeypatch.setattr(tta_range_test.Checkpoint, "save", save_then_stop)
    options = RunOptions(checkpoint_dir=tmp_path, checkpoint_every=0.0)
    with pytest.raises(KeyboardInterrupt):
        run_lr_range_test(SWEPT, tiny, CPU, options=options)
    monkeypatch.setattr(tta_range_test.Checkpoint, "save", original_save)
    resumed = run_lr_range_test(SWEPT, tiny, CPU, options=options)
    assert resumed["timing"]["resumed_at_iterations"] == [5]
    np.testing.assert_allclose(resumed["result"]["losses"], uninterrupted["result"]["losses"], rtol=1e-5)
    assert resumed["bounds"]["max_lr"] == pytest.approx(uninterrupted["bounds"]["max_lr"], rel=1e-5)


def test_a_profile_without_a_range_test_takes_the_recipes_lrs_without_sweeping(tiny, monkeypatch):
    monkeypatch.setattr(tta_range_test, "lr_range_test", lambda *a, **k: (_ for _ in ()).throw(AssertionError("swept")))
    assert lr_bounds_for(SMOKE, tiny, CPU) == recipe_bounds(SMOKE.recipe)
    with pytest.raises(ValueError, match="takes its LRs from the recipe"):
        run_lr_range_test(SMOKE, tiny, CPU)


# ----------------------------------------------------------------------------------------------
# The comparison built from the range test
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept_comparison(tiny, tmp_path_factory):
    out, checkpoints = tmp_path_factory.mktemp("swept_out"), tmp_path_factory.mktemp("swept_ckpt")
    options = RunOptions(out=out, checkpoint_dir=checkpoints, command="pytest swept")
    records = tta_run.run_comparison(SWEPT, tiny, CPU, schedules=["fixed", "triangular"], seeds=[0, 1],
                                     options=options, verbose=False)
    return out, checkpoints, records


def test_every_run_is_built_from_and_records_the_range_tests_lrs(swept_comparison):
    out, _, records = swept_comparison
    range_test = json.loads((out / range_test_filename("swept", 0)).read_text())
    assert len(records) == 4
    for record in records:
        assert record["lr_bounds"] == range_test["bounds"]
        budget = record["budget"]
        lr = tta_report.schedule_of(record).schedule(np.arange(budget))
        if record["schedule_name"] == "fixed":
            np.testing.assert_allclose(lr, range_test["bounds"]["base_lr"])
        else:
            assert lr.max() == pytest.approx(range_test["bounds"]["max_lr"], rel=0.35)
            assert lr.min() == pytest.approx(range_test["bounds"]["base_lr"])
        np.testing.assert_allclose(record["curves"]["lr"], lr[np.array(record["curves"]["iteration"]) - 1])


def test_runs_record_iterations_and_epochs_to_the_target(swept_comparison):
    _, _, records = swept_comparison
    record = records[0]
    per_epoch = record["iterations_per_epoch"]
    assert per_epoch == SMOKE.train_size // SMOKE.recipe.batch_size and record["epochs"] == record["iterations"] / per_epoch
    reached = record["iterations_to_target"]
    assert record["epochs_to_target"] == (None if reached is None else reached / per_epoch)
    assert record["demonstration"] is True  # built from smoke


def test_runs_resume_only_with_the_same_lrs(tiny, swept_comparison):
    _, checkpoints, records = swept_comparison
    options = RunOptions(checkpoint_dir=checkpoints)
    bounds = LRBounds(**records[0]["lr_bounds"])
    again = tta_run.run_schedule("fixed", SWEPT, tiny, CPU, seed=0, options=options, bounds=bounds)
    assert again["timing"]["resumed_at_iterations"] == [again["iterations"]] and again["curves"] == records[0]["curves"]
    other = LRBounds(bounds.max_lr * 2, bounds.base_lr * 2, "range test", bounds.range_test)
    with pytest.raises(ValueError, match="lr_bounds.max_lr: checkpoint has"):
        tta_run.run_schedule("fixed", SWEPT, tiny, CPU, seed=0, options=options, bounds=other)


# ----------------------------------------------------------------------------------------------
# Tables: iterations and epochs; seconds only when asked; demonstrations say so
# ----------------------------------------------------------------------------------------------


def test_summary_gives_iterations_and_epochs_to_target_and_seconds_only_when_asked(swept_comparison):
    _, _, records = swept_comparison
    record = {**records[0], "curves": {**records[0]["curves"], "test_accuracy": [0.1] * len(records[0]["curves"]["iteration"])}}
    record["curves"]["test_accuracy"][0] = 0.99  # reaches any target at the first evaluation
    rows = tta_report.summarize([record], target_accuracy=0.5)
    first = record["curves"]["iteration"][0]
    assert rows[0]["mean_iterations_to_target"] == first
    assert rows[0]["mean_epochs_to_target"] == pytest.approx(first / record["iterations_per_epoch"])
    table = tta_report.format_summary(rows)
    assert "iterations to target (mean) | epochs to target (mean) |" in table and "train s" not in table
    timed = tta_report.format_summary(rows, seconds=True)
    assert f"train s to target (mean; {record['environment']['device']})" in timed


def test_a_demonstrations_table_is_headed_as_one(swept_comparison):
    _, _, records = swept_comparison
    table = tta_report.format_summary(tta_report.summarize(records))
    assert table.startswith("**Demonstration of the method** (profile 'swept'). " + DEMONSTRATION_NOTE)
    real = [{**r, "demonstration": False} for r in records]
    assert "Demonstration" not in tta_report.format_summary(tta_report.summarize(real))


def test_files_without_lr_bounds_rebuild_their_schedule_from_the_recipe(swept_comparison):
    _, _, records = swept_comparison
    old = {key: value for key, value in records[0].items() if key != "lr_bounds"}
    assert tta_report.schedule_of(old).schedule(0) == pytest.approx(SMOKE.recipe.base_lr)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def test_cli_range_test_only_runs_the_sweep_and_stops(tiny_cifar, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(tta_cli.PROFILES, "swept", SWEPT)
    argv = ["--profile", "swept", "--device", "cpu", "--data", str(tiny_cifar), "--no-download",
            "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"), "--range-test-only"]
    (bounds,) = tta_cli.main(argv)
    assert bounds["source"] == "range test"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tta-range-test-swept-seed0.json"]
    assert re.search(r"LRs from the range test \(exp sweep, .*\): max_lr \S+, base_lr \S+", capsys.readouterr().out)
    with pytest.raises(ValueError, match="--range-test-only: profile 'smoke' takes its LRs from the recipe"):
        tta_cli.main([*argv[:1], "smoke", *argv[2:]])


def test_cli_comparison_reads_the_range_test_back_and_prints_epochs(tiny_cifar, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(tta_cli.PROFILES, "swept", SWEPT)
    argv = ["--profile", "swept", "--device", "cpu", "--data", str(tiny_cifar), "--no-download",
            "--out", str(tmp_path / "out"), "--checkpoint-dir", "none"]
    tta_cli.main([*argv, "--range-test-only"])
    monkeypatch.setattr(tta_range_test, "lr_range_test", lambda *a, **k: (_ for _ in ()).throw(AssertionError("swept")))
    records = tta_cli.main([*argv, "--schedules", "one_cycle", "--seeds", "0"])
    assert records[0]["lr_bounds"]["range_test"]["file"] == "tta-range-test-swept-seed0.json"
    out = capsys.readouterr().out
    assert "epochs to target (mean)" in out and "| one-cycle |" in out
    assert set(SCHEDULE_NAMES) >= {r["schedule_name"] for r in records}
