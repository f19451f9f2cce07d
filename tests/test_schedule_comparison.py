"""The trained schedule comparison of chapter 4 (Training with the schedules): budgets, bounds, records, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from clr_book.chapter_parameters import require_between, require_less
from clr_book.cifar.data import make_synthetic_cifar10
from clr_book.experiments import schedule_comparison as sc
from clr_book.experiments.common import RunOptions

BUDGET, MAX_LR = 160, 0.2


@pytest.fixture(scope="module")
def data():
    return make_synthetic_cifar10(400, 100)


@pytest.fixture(scope="module")
def smoke():
    return sc.PROFILES["smoke"]


@pytest.fixture(scope="module")
def bounds():
    return sc.Bounds(max_lr=0.1, base_lr=0.025, suggested_max_lr=0.12, min_loss_lr=1.2, lrs=[0.001, 0.01],
                     losses=[2.3, 2.2], seconds=0.0, seed=0)


# --- the schedules ---------------------------------------------------------------------------------


def test_there_are_seven_schedules_in_the_chapters_order():
    assert sc.SCHEDULE_NAMES == ("fixed", "step", "triangular", "triangular2", "exp_range", "one_cycle", "sgdr")
    assert list(sc.equal_budget_schedules(BUDGET, MAX_LR)) == list(sc.SCHEDULE_NAMES)


def test_every_schedule_is_defined_for_the_whole_budget():
    for name, schedule in sc.equal_budget_schedules(BUDGET, MAX_LR).items():
        values = schedule(np.arange(BUDGET))
        assert values.shape == (BUDGET,) and np.all(values >= 0), name


def test_base_lr_defaults_to_a_quarter_of_max_lr_and_fixed_holds_it():
    fixed = sc.equal_budget_schedules(BUDGET, MAX_LR, names=["fixed"])["fixed"]
    assert np.all(fixed(np.arange(BUDGET)) == MAX_LR / 4)


def test_step_decay_starts_at_max_lr_and_divides_by_ten_at_half_and_three_quarters():
    step = sc.equal_budget_schedules(BUDGET, MAX_LR, names=["step"])["step"]
    assert step(79) == MAX_LR
    assert step(80) == pytest.approx(MAX_LR / 10) and step(119) == pytest.approx(MAX_LR / 10)
    assert step(120) == pytest.approx(MAX_LR / 100)


@pytest.mark.parametrize("cycles", [1, 2, 3])
def test_triangles_peak_at_max_lr_and_end_a_whole_cycle_at_the_budget(cycles):
    budget = 120
    lrs = sc.equal_budget_schedules(budget, MAX_LR, cycles=cycles, names=["triangular", "triangular2"])
    for schedule in lrs.values():
        assert schedule(budget // (2 * cycles)) == pytest.approx(MAX_LR)
        assert schedule(budget) == pytest.approx(MAX_LR / 4)   # iteration B would start a new cycle


def test_triangular2_halves_the_amplitude_of_the_second_cycle():
    schedule = sc.equal_budget_schedules(BUDGET, MAX_LR, names=["triangular2"])["triangular2"]
    base = MAX_LR / 4
    assert schedule(120) - base == pytest.approx((MAX_LR - base) / 2)


def test_exp_range_keeps_a_tenth_of_its_amplitude_after_the_budget():
    schedule = sc.equal_budget_schedules(BUDGET, MAX_LR, names=["exp_range"])["exp_range"]
    gamma = 0.1 ** (1 / BUDGET)
    base = MAX_LR / 4
    assert schedule(40) - base == pytest.approx((MAX_LR - base) * gamma**40)


def test_one_cycle_uses_pytorchs_defaults_over_exactly_the_budget():
    schedule = sc.equal_budget_schedules(BUDGET, MAX_LR, names=["one_cycle"])["one_cycle"]
    assert schedule.total_steps == BUDGET
    assert schedule(0) == pytest.approx(MAX_LR / 25)
    assert max(schedule(np.arange(BUDGET))) == pytest.approx(MAX_LR)
    assert schedule(BUDGET - 1) == pytest.approx(MAX_LR / 25 / 1e4)


def test_sgdr_restarts_once_per_cycle_and_anneals_towards_zero():
    schedule = sc.equal_budget_schedules(BUDGET, MAX_LR, cycles=2, names=["sgdr"])["sgdr"]
    assert schedule(0) == MAX_LR and schedule(80) == MAX_LR
    assert schedule(79) < 1e-3 * MAX_LR


def test_a_budget_under_ten_iterations_per_cycle_is_refused_with_the_range():
    with pytest.raises(ValueError, match="iterations must be a whole number of iterations"):
        sc.equal_budget_schedules(19, MAX_LR, cycles=2)


def test_base_lr_above_max_lr_is_refused():
    with pytest.raises(ValueError, match="base_lr must be <= max_lr"):
        sc.equal_budget_schedules(BUDGET, 0.1, 0.2)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="names must be"):
        sc.equal_budget_schedules(BUDGET, MAX_LR, names=["cosine"])


# --- the setup and its checks ----------------------------------------------------------------------


def test_profiles_validate_and_live_trains_fewer_iterations_than_long():
    assert sc.PROFILES["live"].iterations < sc.PROFILES["long"].iterations
    assert len(sc.PROFILES["long"].seeds) >= 3
    assert sc.PROFILES["live"].eval_every * sc.PROFILES["live"].evaluations >= sc.PROFILES["live"].iterations


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("iterations", 5, "iterations must be a whole number of iterations"),
    ("batch_size", 10_000, "at most the number of training images"),
    ("train_images", 60_000, "from 100 to 50,000"),
    ("cycles", 0, "cycles must be a whole number of cycles from 1 to 10; got 0"),
    ("evaluations", 0, "evaluations"),
])
def test_a_setup_outside_what_can_run_stops_with_a_sentence(smoke, field, value, fragment):
    with pytest.raises(ValueError, match=fragment):
        replace(smoke, **{field: value})


def test_seeds_must_be_whole_numbers(smoke):
    with pytest.raises(ValueError, match="seeds"):
        replace(smoke, seeds=(-1,))


def test_chapter_parameter_checks_name_the_parameter_and_the_range():
    assert require_between("ITERATIONS", 128, 20, 2_000, whole=True) == 128
    with pytest.raises(ValueError, match=r"ITERATIONS must be a whole number from 20 to 2,000; got 128.0"):
        require_between("ITERATIONS", 128.0, 20, 2_000, whole=True)
    with pytest.raises(ValueError, match="MAX_LR must be a number above 0 and at most 10; got 0"):
        require_between("MAX_LR", 0, 0, 10, open_low=True)
    with pytest.raises(ValueError, match="must be below MAX_LR"):
        require_less("BASE_LR", 0.01, "MAX_LR", 0.006)


# --- bounds, training, records -----------------------------------------------------------------------


def test_round_down_keeps_one_significant_figure():
    assert sc._round_down(0.2197) == pytest.approx(0.2)
    assert sc._round_down(0.0864) == pytest.approx(0.08)
    assert sc._round_down(3.0) == pytest.approx(3.0)


def test_find_bounds_runs_a_range_test_and_applies_the_rule(smoke, data):
    threads = torch.get_num_threads()
    found = sc.find_bounds(smoke, data)
    assert torch.get_num_threads() == threads   # restored
    assert found.max_lr <= found.suggested_max_lr < 10 * found.max_lr
    assert found.base_lr == pytest.approx(found.max_lr / 4)
    assert found.suggested_max_lr == pytest.approx(found.min_loss_lr / 10)
    assert 5 <= len(found.lrs) == len(found.losses) <= smoke.range_test_iterations


def test_train_schedule_returns_a_record_with_curves_and_provenance(smoke, data, bounds):
    record = sc.train_schedule("triangular", smoke, data, bounds, seed=0)
    assert record["schema"] == sc.SCHEMA and record["schedule_name"] == "triangular"
    curves = record["curves"]
    assert curves["iteration"] == [10, 20]   # smoke: 20 iterations, 2 evaluations
    assert len(curves["lr_every_iteration"]) == smoke.iterations
    assert len(curves["train_loss"]) == len(curves["test_accuracy"]) == 2
    assert record["final_test_accuracy"] == curves["test_accuracy"][-1]
    assert record["bounds"]["max_lr"] == bounds.max_lr
    assert record["data"]["synthetic"] and "SYNTHETIC" in record["notes"][0]
    assert record["provenance"]["seed"] == 0 and "date_utc" in record["provenance"]
    json.dumps(record)   # JSON-ready


def test_the_same_seed_trains_the_same_curves(smoke, data, bounds):
    first = sc.train_schedule("fixed", smoke, data, bounds, seed=3)
    second = sc.train_schedule("fixed", smoke, data, bounds, seed=3)
    assert first["curves"]["train_loss"] == second["curves"]["train_loss"]


def test_train_schedule_refuses_an_unknown_name(smoke, data, bounds):
    with pytest.raises(ValueError, match="name must be one of"):
        sc.train_schedule("cosine", smoke, data, bounds)


def test_run_comparison_writes_files_that_load_back(tmp_path, smoke, data, bounds):
    options = RunOptions(out=tmp_path, command="test")
    used, records = sc.run_comparison(smoke, data, names=["fixed", "sgdr"], seeds=[0, 1], options=options,
                                      verbose=False)
    assert [r["schedule_name"] for r in records] == ["fixed", "sgdr", "fixed", "sgdr"]
    assert (tmp_path / "smoke-range-test.json").exists()
    assert (tmp_path / "smoke-sgdr-seed1.json").exists()
    test, loaded = sc.load_results(tmp_path, "smoke")
    assert test["bounds"]["max_lr"] == used.max_lr
    assert [r["schedule_name"] for r in loaded] == ["fixed", "sgdr", "fixed", "sgdr"]
    rows = sc.summarize(loaded)
    assert [row["schedule"] for row in rows] == ["fixed", "sgdr"] and all(row["seeds"] == 2 for row in rows)
    spread = sc.seed_spread(loaded)
    assert spread["largest_seed_range"] >= spread["mean_seed_range"] >= 0
    assert {spread["best"], spread["runner_up"]} == {"fixed", "sgdr"}
    figure = sc.plot_comparison(loaded, title="smoke")
    assert len(figure.axes) == 3
    plt.close(figure)


def test_seed_spread_needs_two_seeds(smoke, data, bounds):
    records = [sc.train_schedule(name, smoke, data, bounds) for name in ("fixed", "sgdr")]
    with pytest.raises(ValueError, match="at least two seeds"):
        sc.seed_spread(records)


def test_the_command_line_writes_one_file_per_run(tmp_path, monkeypatch, data):
    monkeypatch.setattr(sc, "load_data", lambda *args, **kwargs: data)
    records = sc.main(["--profile", "smoke", "--out", str(tmp_path), "--checkpoint-dir", "none",
                       "--schedules", "fixed,one_cycle"])
    assert [r["schedule_name"] for r in records] == ["fixed", "one_cycle"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "smoke-fixed-seed0.json", "smoke-one_cycle-seed0.json", "smoke-range-test.json"]
    assert "--profile smoke" in records[0]["provenance"]["command"]


def test_the_command_line_refuses_an_unknown_profile(tmp_path, data, monkeypatch):
    monkeypatch.setattr(sc, "load_data", lambda *args, **kwargs: data)
    with pytest.raises(ValueError, match="--profile must be one of"):
        sc.main(["--profile", "huge", "--out", str(tmp_path), "--checkpoint-dir", "none"])
