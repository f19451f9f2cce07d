"""clr_book.experiments.range_test: profiles, the held-out rotation, results files, the CLI.

Runs use the smoke profile (12 iterations on 500 / 200 images) of the synthetic stand-in; the numbers
mean nothing, the shapes, the file and the provenance do.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import clr_book.experiments.range_test.__main__ as range_test_cli
from clr_book.cifar.data import CIFAR10, DeviceBatches, Normalization, make_synthetic_cifar10
from clr_book.experiments.common import RunOptions
from clr_book.experiments.range_test import run as rtc
from clr_book.experiments.range_test.__main__ import main
from clr_book.experiments.range_test.config import (
    PAPER_RANGE_TEST,
    RANGE_TEST_PROFILES,
    resolve_range_test_profile,
)
from clr_book.experiments.range_test.report import (
    band_means,
    load_range_tests,
    result_from_record,
    smoothing_lag,
)
from clr_book.experiments.range_test.run import (
    RESULT_SCHEMA,
    HeldOutRotation,
    range_test_filename,
    run_range_test,
    shuffled_test_split,
)

REPOSITORY = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
SMOKE = RANGE_TEST_PROFILES["smoke"]


@pytest.fixture(scope="module")
def stand_in():
    return make_synthetic_cifar10(500, 200)


@pytest.fixture(scope="module")
def linear_record(stand_in, tmp_path_factory):
    out = tmp_path_factory.mktemp("range_test")
    options = RunOptions(out=out, checkpoint_dir=tmp_path_factory.mktemp("range_test_ckpt"), command="pytest linear")
    return run_range_test(SMOKE, "linear", stand_in, CPU, options=options)


@pytest.fixture(scope="module")
def exp_record(stand_in):
    return run_range_test(SMOKE, "exp", stand_in, CPU)


# ----------------------------------------------------------------------------------------------
# Profiles
# ----------------------------------------------------------------------------------------------


def test_auto_profile_is_full_on_a_gpu_and_quick_elsewhere():
    assert resolve_range_test_profile("auto", "cuda").name == "full"
    assert resolve_range_test_profile("auto", "cpu").name == "quick"
    assert resolve_range_test_profile("smoke", "cuda") is RANGE_TEST_PROFILES["smoke"]


def test_unknown_profile_raises_naming_the_parameter():
    with pytest.raises(ValueError, match="profile must be 'auto' or one of 'full', 'quick', 'smoke', got 'huge'"):
        resolve_range_test_profile("huge", "cpu")


def test_full_linear_sweep_is_the_papers_8_epochs_from_nearly_0_to_0_02():
    full = RANGE_TEST_PROFILES["full"]
    linear = full.sweeps["linear"]
    assert (full.train_size, full.test_size, full.batch_size) == (None, None, 100)
    assert linear.num_iter == PAPER_RANGE_TEST["iterations"] == 8 * 50_000 // 100
    assert linear.held_out and linear.start_lr <= 1e-5 and linear.end_lr == 0.02
    exp = full.sweeps["exp"]
    assert not exp.held_out and (exp.start_lr, exp.end_lr) == (1e-5, 1.0)


def test_quick_profile_is_a_few_hundred_iterations_on_a_subset():
    quick = RANGE_TEST_PROFILES["quick"]
    assert (quick.train_size, quick.test_size) == (5000, 1000)
    assert all(100 <= sweep.num_iter <= 400 for sweep in quick.sweeps.values())


def test_paper_bounds():
    assert (PAPER_RANGE_TEST["base_lr"], PAPER_RANGE_TEST["max_lr"], PAPER_RANGE_TEST["epochs"]) == (0.001, 0.006, 8)


# ----------------------------------------------------------------------------------------------
# The held-out rotation
# ----------------------------------------------------------------------------------------------


def _held_out(count: int, batch_size: int, shuffle: bool = False) -> DeviceBatches:
    images = np.zeros((count, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(count)  # pixel (0, 0, red) numbers the image
    normalization = Normalization("channel_mean", np.zeros((3, 1, 1)), np.ones((3, 1, 1)))
    return DeviceBatches(images, np.zeros(count, dtype=np.int64), batch_size=batch_size, normalization=normalization,
                         shuffle=shuffle, drop_last=False)


def test_each_call_of_the_held_out_rotation_is_the_next_batch_wrapping_round():
    rotation = HeldOutRotation(_held_out(5, 2))
    seen = []
    for _ in range(4):
        (batch,) = rotation()
        seen.append(batch[0][:, 0, 0, 0].tolist())
    assert seen == [[0.0, 1.0], [2.0, 3.0], [4.0], [0.0, 1.0]]
    assert rotation.calls == 4


def test_test_split_is_shuffled_once_so_held_out_batches_mix_the_classes():
    by_class = make_synthetic_cifar10(50, 200)
    order = np.argsort(by_class.test_labels, kind="stable")  # class by class, as an image folder lists them
    sorted_data = CIFAR10(by_class.train_images, by_class.train_labels, by_class.test_images[order],
                          by_class.test_labels[order], by_class.classes, by_class.source)
    mixed = shuffled_test_split(sorted_data, seed=0)
    assert len(set(sorted_data.test_labels[:20].tolist())) == 1
    assert len(set(mixed.test_labels[:20].tolist())) >= 5
    assert sorted(mixed.test_labels.tolist()) == sorted(sorted_data.test_labels.tolist())
    assert mixed.train_images is sorted_data.train_images and mixed.source == sorted_data.source
    again = shuffled_test_split(sorted_data, seed=0)
    np.testing.assert_array_equal(again.test_images, mixed.test_images)


def test_held_out_rotation_rejects_a_shuffled_split():
    with pytest.raises(ValueError, match="shuffle=False"):
        HeldOutRotation(_held_out(4, 2, shuffle=True))


# ----------------------------------------------------------------------------------------------
# Runs and results files
# ----------------------------------------------------------------------------------------------


def test_linear_smoke_run_records_held_out_accuracy_and_writes_its_file(linear_record):
    path = Path(linear_record["path"])
    assert path.name == range_test_filename("linear", "smoke", 0) == "range-test-linear-smoke-seed0.json"
    on_disk = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"non-strict JSON: {name}"))
    assert on_disk == {key: value for key, value in linear_record.items() if key != "path"}
    assert on_disk["schema"] == RESULT_SCHEMA and on_disk["mode"] == "linear"
    assert on_disk["iterations"] == 12 and on_disk["iterations_per_epoch"] == 5
    assert on_disk["sweep"]["held_out"] and "held-out" in on_disk["sweep"]["read_on"]
    result = result_from_record(on_disk)
    assert result.source == "validation" and result.metric_name == "accuracy"
    np.testing.assert_allclose(result.lrs, np.linspace(1e-5, 0.02, 12))
    assert len(result.accuracies) == 12 and np.all((0 <= result.raw_accuracies) & (result.raw_accuracies <= 1))
    assert on_disk["suggestion"]["max_lr_metric"] == "accuracy"
    assert on_disk["suggestion"]["base_lr"] == pytest.approx(on_disk["suggestion"]["max_lr"] / 4)


def test_results_file_carries_model_solver_timing_and_provenance(linear_record):
    assert linear_record["model"] == {"name": "CaffeCIFAR10Full", "parameters": 89_578}
    optimizer = linear_record["optimizer"]
    assert (optimizer["momentum"], optimizer["base_weight_decay"], optimizer["batch_size"]) == (0.9, 0.004, 100)
    assert [group["lr_mult"] for group in optimizer["param_groups"]] == [1.0, 2.0, 1.0, 2.0]
    timing = linear_record["timing"]
    assert timing["test_seconds"] > 0 and timing["seconds_per_iteration"] == pytest.approx(timing["test_seconds"] / 12)
    assert timing["held_out_images_per_iteration"] == 50
    environment = linear_record["environment"]
    assert environment["device_type"] == "cpu" and environment["device"] and {"torch", "numpy", "python"} <= set(environment)
    provenance = linear_record["provenance"]
    assert provenance["command"] == "pytest linear" and provenance["seed"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", provenance["date_utc"])
    assert provenance["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", provenance["commit"])
    assert linear_record["data"]["synthetic"] and linear_record["data"]["train_images"] == 500
    assert any("SYNTHETIC" in note for note in linear_record["notes"])
    assert any("not comparable" in note for note in linear_record["notes"])
    assert linear_record["paper"]["max_lr"] == 0.006 and "Smith" in linear_record["paper"]["citation"]


def test_exp_smoke_run_reads_the_training_loss_on_a_geometric_sweep(exp_record):
    result = result_from_record(exp_record)
    assert result.source == "train" and result.accuracies is None and result.mode == "exp"
    assert "path" not in exp_record
    expected = 1e-5 * (1.0 / 1e-5) ** (np.arange(12) / 11)
    np.testing.assert_allclose(result.lrs, expected[: len(result.lrs)])
    assert exp_record["final"]["smoothed_accuracy"] is None
    assert exp_record["suggestion"] is None or exp_record["suggestion"]["max_lr_metric"] == "loss"
    assert exp_record["timing"]["held_out_images_per_iteration"] == 0


def test_bias_groups_get_twice_the_swept_lr_as_caffes_lr_mult(stand_in, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def spy(model, optimizer, *args, **kwargs):
        seen["lrs"] = [group["lr"] for group in optimizer.param_groups]
        seen["mults"] = [group["lr_mult"] for group in optimizer.param_groups]
        raise Stop  # before any training

    monkeypatch.setattr(rtc, "lr_range_test", spy)
    with pytest.raises(Stop):
        run_range_test(SMOKE, "exp", stand_in, CPU)
    assert seen["mults"] == [1.0, 2.0, 1.0, 2.0]
    assert [lr / seen["lrs"][0] for lr in seen["lrs"]] == seen["mults"]


def test_same_seed_gives_the_same_curves(stand_in, linear_record):
    again = run_range_test(SMOKE, "linear", stand_in, CPU)
    assert again["result"]["raw_losses"] == linear_record["result"]["raw_losses"]


def test_a_finished_sweep_is_read_back_from_its_checkpoint(stand_in, tmp_path, monkeypatch):
    options = RunOptions(out=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", command="first")
    first = run_range_test(SMOKE, "exp", stand_in, CPU, options=options, num_iter=4)
    assert (tmp_path / "ckpt" / "range-test-exp-smoke-custom-seed0.pt").is_file()

    def no_sweep(*args, **kwargs):
        raise AssertionError("swept again")

    monkeypatch.setattr(rtc, "lr_range_test", no_sweep)
    second = RunOptions(out=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", command="second")
    again = run_range_test(SMOKE, "exp", stand_in, CPU, options=second, num_iter=4)
    assert again == first  # the saved record, command included, rewritten to the same file
    with pytest.raises(ValueError, match="other settings .*smooth_factor: checkpoint has 0.98, this run has 0.9"):
        run_range_test(SMOKE, "exp", stand_in, CPU, options=options, num_iter=4, smooth_factor=0.9)
    monkeypatch.undo()
    fresh = run_range_test(SMOKE, "exp", stand_in, CPU, options=RunOptions(
        out=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", fresh=True, command="fresh"), num_iter=4)
    assert fresh["provenance"]["command"] == "fresh" and fresh["result"]["lrs"] == first["result"]["lrs"]


def test_overriding_the_sweep_marks_the_file_as_custom(stand_in, tmp_path):
    record = run_range_test(SMOKE, "linear", stand_in, CPU, options=RunOptions(out=tmp_path), num_iter=6, end_lr=0.01)
    assert Path(record["path"]).name == "range-test-linear-smoke-custom-seed0.json"
    assert record["profile"]["customised"] and record["sweep"]["num_iter"] == 6 and record["iterations"] == 6
    assert record["final"]["lr"] == 0.01
    assert load_range_tests(tmp_path) == []
    assert [r["iterations"] for r in load_range_tests(tmp_path, include_custom=True)] == [6]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "cosine"}, "mode must be one of 'linear', 'exp', got 'cosine'"),
        ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
        ({"amp_dtype": "int8"}, "amp_dtype must be"),
        ({"num_iter": 1}, "num_iter must be a whole number of iterations >= 2, got 1"),
        ({"start_lr": 0.1, "end_lr": 0.01}, "end_lr must be a finite learning rate greater than start_lr"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(stand_in, kwargs, message):
    arguments = {"mode": "linear", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        run_range_test(SMOKE, arguments.pop("mode"), stand_in, CPU, **arguments)


def test_load_range_tests_filters_by_profile_and_rejects_other_files(linear_record, tmp_path):
    folder = Path(linear_record["path"]).parent
    assert [r["mode"] for r in load_range_tests(folder)] == ["linear"]
    assert load_range_tests(folder, profile="full") == []
    assert load_range_tests(tmp_path / "missing") == []
    (tmp_path / "range-test-linear-full-seed0.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="must have schema"):
        load_range_tests(tmp_path)


def test_band_means_average_each_band_of_learning_rate_without_lag():
    lrs = np.linspace(0.0, 0.02, 4000)  # Smith's sweep: 200 iterations per 0.001
    bands = band_means(lrs, 100 * lrs, 0.001)
    assert len(bands.starts) == 20 and np.allclose(bands.starts, np.arange(20) * 0.001)
    assert bands.counts.sum() == 4000  # the last LR, 0.02, joins the last band
    assert np.allclose(bands.means, 100 * (bands.starts + 0.0005), atol=1e-3)  # the band's centre
    assert np.all(bands.standard_errors > 0)


def test_band_means_put_a_rate_on_a_band_edge_in_the_band_it_starts():
    bands = band_means([0.005, 0.006, 0.0065, 0.007], [1.0, 2.0, 4.0, 8.0], 0.001)
    assert bands.counts.tolist() == [0, 0, 0, 0, 0, 1, 3]  # 0.006 and 0.007 (the top) in band 6
    assert np.isnan(bands.means[0]) and bands.means[5] == 1.0
    assert math.isclose(bands.means[6], 14.0 / 3)


def test_band_means_leave_out_values_that_are_not_finite():
    bands = band_means([0.0, 0.1, 0.2, 0.3], [1.0, np.nan, 3.0, np.inf], 0.2)
    assert bands.counts.tolist() == [1, 1] and bands.means.tolist() == [1.0, 3.0]
    assert np.all(np.isnan(bands.standard_errors))  # one value per band: no spread to measure


@pytest.mark.parametrize(
    "lrs, values, width, message",
    [
        ([0.0, 0.1], [1.0, 2.0], 0.0, "width must be a finite learning-rate width > 0, got 0.0"),
        ([0.0, 0.1], [1.0, 2.0], float("nan"), "width must be a finite"),
        ([0.0, 0.1], [1.0, 2.0], True, "width must be a finite"),
        ([0.0, 0.1], [1.0], 0.1, "lrs and values must be 1-D and equally long"),
        ([], [], 0.1, "lrs must hold at least one finite learning rate >= 0"),
        ([-0.1, 0.1], [1.0, 2.0], 0.1, "lrs must hold at least one finite learning rate >= 0"),
    ],
)
def test_band_means_bad_arguments_raise_naming_them(lrs, values, width, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        band_means(lrs, values, width)


def test_smoothing_lag_is_a_distance_for_a_linear_sweep_and_a_factor_for_an_exp_one():
    full, quick = RANGE_TEST_PROFILES["full"].sweeps, RANGE_TEST_PROFILES["quick"].sweeps
    linear, exp = full["linear"], full["exp"]
    assert math.isclose(smoothing_lag(linear.start_lr, linear.end_lr, linear.num_iter, "linear"),
                        49 * (0.02 - 1e-5) / 3999)
    assert math.isclose(smoothing_lag(exp.start_lr, exp.end_lr, exp.num_iter, "exp"),
                        (1.0 / 1e-5) ** (49 / 1499))
    # the same range in fewer iterations: a longer lag
    for mode in ("linear", "exp"):
        sweeps = [(s.start_lr, s.end_lr, s.num_iter, mode) for s in (full[mode], quick[mode])]
        assert smoothing_lag(*sweeps[1]) > smoothing_lag(*sweeps[0])
    assert smoothing_lag(1e-5, 1.0, 1500, "exp", smooth_factor=0.0) == 1.0  # no smoothing, no lag
    assert smoothing_lag(0.0, 0.02, 4000, "linear", smooth_factor=0.0) == 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        ((1e-5, 1.0, 1500, "cosine"), "mode must be 'linear' or 'exp', got 'cosine'"),
        ((1e-5, 1.0, 1, "exp"), "num_iter must be a whole number of iterations >= 2, got 1"),
        ((1e-5, 1.0, 15.5, "exp"), "num_iter must be a whole number"),
        ((0.0, 1.0, 1500, "exp"), "start_lr and end_lr must be finite learning rates with 0 < start_lr < end_lr"),
        ((0.02, 0.01, 4000, "linear"), "with 0 <= start_lr < end_lr, got start_lr=0.02, end_lr=0.01"),
        ((1e-5, float("inf"), 1500, "exp"), "start_lr and end_lr must be finite"),
    ],
)
def test_smoothing_lag_bad_arguments_raise_naming_them(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        smoothing_lag(*args)


def test_smoothing_lag_rejects_a_smooth_factor_of_one():
    with pytest.raises(ValueError, match=re.escape("smooth_factor must be a number in [0, 1), got 1.0")):
        smoothing_lag(1e-5, 1.0, 1500, "exp", smooth_factor=1.0)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLR_CIFAR10", raising=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mode", "cosine"], "--mode must be 'linear', 'exp' or 'both', got 'cosine'"),
        (["--mode", "linear,linear"], "--mode must be 'linear', 'exp' or 'both', got 'linear,linear'"),
        (["--profile", "huge"], "profile must be"),
        (["--channels-last", "maybe"], "--channels-last must be"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--num-iter", "1"], "--num-iter must be a whole number of iterations >= 2"),
        (["--amp", "int8"], "--amp: amp_dtype must be"),
        (["--compile", "fastest"], "--compile: compile must be"),
        (["--device", "tpu"], "device must be"),
        (["--data", "/nonexistent/cifar"], "--data must be an existing"),
        (["--checkpoint-every", "-5"], "--checkpoint-every must be"),
    ],
)
def test_cli_bad_options_raise_naming_the_option(argv, message, tmp_path, isolated_env):
    with pytest.raises(ValueError, match=re.escape(message)):
        main([*argv, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert not (tmp_path / "cache").exists()


def test_cli_refuses_an_unwritable_out_before_loading_data(tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before --out was checked")

    monkeypatch.setattr(range_test_cli, "load_data", no_loading)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--out .* is not a writable folder"):
        main(["--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "file" / "out"),
              "--checkpoint-dir", str(tmp_path / "ckpt")])


@pytest.mark.parametrize("mode, expected", [("both", ["linear", "exp"]), ("exp", ["exp"])])
def test_cli_runs_the_chosen_sweeps_and_records_the_command(mode, expected, stand_in, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(range_test_cli, "load_data", lambda location, download: stand_in)
    argv = ["--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "out"), "--mode", mode,
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    records = main(argv)
    assert [r["mode"] for r in records] == expected
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == sorted(
        f"range-test-{name}-smoke-seed0.json" for name in expected)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == sorted(
        f"range-test-{name}-smoke-seed0.pt" for name in expected)
    assert records[0]["provenance"]["command"] == "python -m clr_book.experiments.range_test " + shlex.join(argv)
    assert records[0]["settings"]["channels_last"] is True  # auto: on for the CPU
    printed = capsys.readouterr().out
    assert "data: synthetic stand-in" in printed and "ms/it" in printed and printed.count("-> ") == len(expected)


def test_module_entry_point_exits_2_with_a_one_line_error(tmp_path):
    environment = {**os.environ, "CLR_CACHE": str(tmp_path / "cache")}
    completed = subprocess.run(
        [sys.executable, "-m", "clr_book.experiments.range_test", "--mode", "cosine", "--out", str(tmp_path / "out"),
         "--checkpoint-dir", str(tmp_path / "ckpt")],
        capture_output=True, text=True, cwd=REPOSITORY, env=environment, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr == ("python -m clr_book.experiments.range_test: error: "
                                "--mode must be 'linear', 'exp' or 'both', got 'cosine'\n")
    assert not list(tmp_path.iterdir())
