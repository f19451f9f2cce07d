"""clr_book.experiments.table1: the Table 1 policies, the profiles, the CLI end to end, results files and the table."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clr_book.cifar.data import make_synthetic_cifar10
from clr_book.experiments.common import RunOptions, load_data
from clr_book.experiments.provenance import checkout_state, describe_device, utc_now
from clr_book.experiments.table1.__main__ import main
from clr_book.experiments.table1.config import (
    DEMONSTRATION_NOTE,
    PAPER_TABLE_1,
    POLICIES,
    PROFILES,
    epoch_preserving_scale,
    get_policy,
    resolve_profile,
)
from clr_book.experiments.table1.report import (
    comparison_markdown,
    format_comparison,
    is_demonstration,
    iterations_to_reach,
    load_results,
    paper_comparison,
)
from clr_book.experiments.table1.run import RESULT_SCHEMA, default_eval_batch_size, run_name, run_policy

REPOSITORY = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------
# Policies and profiles
# ----------------------------------------------------------------------------------------------


def test_paper_table_1_numbers():
    assert PAPER_TABLE_1 == {
        "fixed": {"iterations": 70_000, "accuracy_percent": 81.4},
        "triangular2": {"iterations": 25_000, "accuracy_percent": 81.4},
        "decay": {"iterations": 25_000, "accuracy_percent": 78.5},
        "exp": {"iterations": 70_000, "accuracy_percent": 79.1},
        "exp_range": {"iterations": 42_000, "accuracy_percent": 82.2},
    }
    assert list(POLICIES) == list(PAPER_TABLE_1)
    assert all(POLICIES[name].budget() == PAPER_TABLE_1[name]["iterations"] for name in POLICIES)


def test_fixed_policy_steps_down_at_60k_and_65k():
    lr = get_policy("fixed").schedule()
    np.testing.assert_allclose(lr([0, 59_999, 60_000, 64_999, 65_000, 69_999]), [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])


def test_staged_triangular2_policy():
    lr = get_policy("triangular2").schedule()
    np.testing.assert_allclose(lr([0, 2000, 4000, 6000, 16_000, 17_000, 22_000, 22_500, 24_999]),
                               [1e-3, 5e-3, 1e-3, 3e-3, 1e-4, 5e-4, 1e-5, 5e-5, 1e-5 + 4e-5 / 500 / 4], rtol=1e-9)  # cycle 3: amplitude / 4


def test_decay_exp_and_exp_range_policies():
    decay = get_policy("decay").schedule()
    np.testing.assert_allclose(decay([0, 1000, 2000, 24_999]), [0.006, 0.0035, 0.001, 0.001])
    exp = get_policy("exp").schedule()
    assert exp(70_000 - 1) == pytest.approx(0.001 * 0.99994**69_999)
    exp_range = get_policy("exp_range").schedule()
    assert exp_range(2000) == pytest.approx(0.001 + 0.005 * 0.99994**2000)
    assert exp_range(4000) == pytest.approx(0.001)


def test_quick_profile_shrinks_the_data_and_keeps_every_count_in_epochs():
    quick = PROFILES["quick"]
    assert (quick.train_size, quick.test_size, quick.batch_size) == (2000, 1000, 100)
    assert quick.iteration_scale == epoch_preserving_scale(2000) == 2000 / 50_000
    assert quick.iterations_per_epoch == 20 and quick.eval_every == 20  # one evaluation per epoch
    budgets = {name: POLICIES[name].budget(quick.iteration_scale) for name in POLICIES}
    assert budgets == {"fixed": 2800, "triangular2": 1000, "decay": 1000, "exp": 2800, "exp_range": 1680}
    for name, policy in POLICIES.items():  # the paper's budgets in epochs: 140, 50, 50, 140, 84
        assert quick.epochs(budgets[name]) == policy.budget() / 500
    fixed = get_policy("fixed").schedule(quick.iteration_scale)
    np.testing.assert_allclose(fixed([2399, 2400, 2600]), [1e-3, 1e-4, 1e-5])  # epochs 120 and 130, as 60k and 65k
    exp = get_policy("exp").schedule(quick.iteration_scale)
    assert exp(2799) == pytest.approx(get_policy("exp").schedule()(69_975), rel=1e-9)


def _peaks_and_troughs(values: np.ndarray) -> np.ndarray:
    """Indices where a piecewise-linear wave turns (a peak or a trough), the ends excluded."""
    slope = np.sign(np.diff(values))
    return np.flatnonzero(slope[1:] != slope[:-1]) + 1


@pytest.mark.parametrize("name", ["triangular2", "exp_range"])
def test_quick_profile_keeps_cycles_of_at_least_two_epochs(name):
    """Every half cycle of every cyclical policy lasts at least one epoch, so every cycle at least two."""
    quick = PROFILES["quick"]
    schedule = get_policy(name).schedule(quick.iteration_scale)
    lr = schedule(np.arange(get_policy(name).budget(quick.iteration_scale)))
    turns = _peaks_and_troughs(lr)
    half_cycles = np.diff(np.concatenate([[0], turns]))
    assert len(half_cycles) >= 4 and half_cycles.min() >= quick.iterations_per_epoch
    assert quick.epochs(half_cycles[0]) == 4  # Smith's step size, 2,000 iterations = 4 epochs


def test_quick_triangular2_has_the_papers_three_stages_in_epochs():
    quick = PROFILES["quick"]
    triangular2 = get_policy("triangular2").schedule(quick.iteration_scale)
    # stage 1 peaks at epoch 4 and is back down at 8; stage 2 starts at epoch 32 and peaks at 34; stage 3 at 44, 45
    np.testing.assert_allclose(triangular2([0, 80, 160, 640, 680, 880, 900]),
                               [1e-3, 5e-3, 1e-3, 1e-4, 5e-4, 1e-5, 5e-5], rtol=1e-9)


def test_quick_fixed_and_triangular2_meet_at_equal_iterations():
    """triangular2's budget is a point of fixed's run too, before fixed's first step-down (Figure 1's comparison)."""
    quick = PROFILES["quick"]
    end = POLICIES["triangular2"].budget(quick.iteration_scale)
    assert end % quick.eval_every == 0 and end < POLICIES["fixed"].budget(quick.iteration_scale)
    assert get_policy("fixed").schedule(quick.iteration_scale)(end - 1) == pytest.approx(0.001)


def test_quick_profile_is_the_full_schedule_sampled_every_25_iterations():
    """25 divides every step size, boundary and budget of Table 1, so the sampling is exact."""
    scale = PROFILES["quick"].iteration_scale
    for policy in POLICIES.values():
        steps = np.arange(policy.budget(scale))
        assert len(steps) * 25 == policy.budget()
        np.testing.assert_allclose(policy.schedule(scale)(steps), policy.schedule()(25 * steps), rtol=1e-9)


def test_only_the_full_profile_is_the_papers_setting():
    assert not PROFILES["full"].demonstration
    assert PROFILES["quick"].demonstration and PROFILES["smoke"].demonstration
    assert "not comparable with the paper" in DEMONSTRATION_NOTE
    assert PROFILES["full"].iterations_per_epoch == 500 and PROFILES["full"].epochs(25_000) == 50


def test_full_profile_is_unchanged_so_running_checkpoints_resume():
    """The running full-scale jobs' checkpoints record exactly these settings (``dataclasses.asdict``)."""
    assert dataclasses.asdict(PROFILES["full"]) == {
        "name": "full", "train_size": None, "test_size": None, "iteration_scale": 1.0, "eval_every": 1000,
        "batch_size": 100}


@pytest.mark.parametrize("train_images, batch_size, message", [
    (2050, 100, "train_images must be a whole multiple of 100"), (0, 100, "train_images"),
    (60_000, 100, "train_images"), (2000, 128, "batch_size must be the paper's 100")])
def test_epoch_preserving_scale_rejects_counts_that_are_not_whole_epochs(train_images, batch_size, message):
    with pytest.raises(ValueError, match=message):
        epoch_preserving_scale(train_images, batch_size)


def test_profiles_resolve_and_reject_unknown_names():
    assert resolve_profile("auto", "cuda").name == "full" and resolve_profile("auto", "cpu").name == "quick"
    assert resolve_profile("smoke", "cpu") is PROFILES["smoke"]
    with pytest.raises(ValueError, match="profile must be"):
        resolve_profile("medium", "cpu")


@pytest.mark.parametrize("bad", ["triangular", "", "Fixed"])
def test_unknown_policy_raises_naming_the_parameter(bad):
    with pytest.raises(ValueError, match="policy must be one of"):
        get_policy(bad)


def test_bad_iteration_scale_raises():
    with pytest.raises(ValueError, match="iteration_scale"):
        get_policy("fixed").schedule(0)


# ----------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLR_CIFAR10", raising=False)


def test_cli_smoke_run_writes_valid_results_files(tiny_cifar, tmp_path, isolated_env, capsys):
    out = tmp_path / "results"
    argv = ["--policy", "decay,exp_range", "--profile", "smoke", "--data", str(tiny_cifar), "--out", str(out),
            "--device", "cpu", "--no-download", "--checkpoint-dir", str(tmp_path / "ckpt")]
    records = main(argv)
    assert [r["policy"] for r in records] == ["decay", "exp_range"]
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == ["table1-decay-smoke-seed0.json", "table1-exp_range-smoke-seed0.json"]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "table1-decay-smoke-seed0.pt", "table1-exp_range-smoke-seed0.pt"]
    summary = capsys.readouterr().out
    assert "decay" in summary and "ms/it" in summary

    record = json.loads(files[1].read_text())
    assert record["schema"] == RESULT_SCHEMA and record["policy"] == "exp_range"
    assert record["profile"]["name"] == "smoke" and record["iterations"] == 42 and record["batch_size"] == 100
    curves = record["curves"]
    assert curves["iteration"] == [10, 20, 30, 40, 42]
    assert set(curves) == {"iteration", "test_accuracy", "test_loss", "train_loss", "lr"}
    assert all(len(values) == 5 for values in curves.values())
    assert record["final_test_accuracy"] == curves["test_accuracy"][-1] and 0 <= record["final_test_accuracy"] <= 1
    assert record["schedule"].startswith("cyclic(base_lr=0.001, max_lr=0.006, step_size_up=2,")
    assert record["model"] == {"name": "CaffeCIFAR10Full", "parameters": 89_578}
    assert [g["lr_mult"] for g in record["optimizer"]["param_groups"]] == [1.0, 2.0, 1.0, 2.0]
    timing = record["timing"]
    assert timing["train_seconds"] > 0 and timing["eval_seconds"] > 0
    assert timing["seconds_per_iteration"] == pytest.approx(timing["train_seconds"] / 42)
    assert timing["resumed_at_iterations"] == []
    assert record["settings"]["step"] == "eager" and record["settings"]["eval_batch_size"] == 250
    environment = record["environment"]
    assert environment["device_type"] == "cpu" and environment["device"]
    assert {"torch", "numpy", "python", "torchvision"} <= set(environment)
    provenance = record["provenance"]
    assert provenance["command"] == "python -m clr_book.experiments.table1 " + shlex.join(argv)
    assert provenance["seed"] == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", provenance["date_utc"])
    assert provenance["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", provenance["commit"])
    assert provenance["dirty"] in (True, False, None)
    assert set(provenance["package"]) == {"version", "url", "vcs_commit", "editable"}
    assert record["data"]["source"].startswith(str(tiny_cifar.resolve())) and not record["data"]["synthetic"]
    assert record["data"]["train_images"] == 500 and record["data"]["test_images"] == 200
    assert any("scaled by 0.001" in note for note in record["notes"])
    assert record["paper"]["accuracy_percent"] == 82.2 and "Smith" in record["paper"]["citation"]

    loaded = load_results(out)
    assert [r["policy"] for r in loaded] == ["decay", "exp_range"]
    rows = paper_comparison(loaded)
    assert rows[1]["demonstration"] and rows[1]["iterations"] == 42 and rows[1]["epochs"] == 42 / 5
    assert rows[1]["paper_accuracy_percent"] is None and rows[1]["difference_points"] is None  # never beside the paper
    assert rows[1]["accuracy_percent"] == pytest.approx(100 * record["final_test_accuracy"])
    table = format_comparison(rows)
    assert table.startswith("**Demonstration of the method** (profile 'smoke').")
    assert "| exp_range | 0 | 42 | 8.4 |" in table and "82.2" not in table and "42,000" not in table

    # The same command again finds each run finished in its checkpoint: nothing is trained again, and
    # the results files keep the provenance of the runs that made them (not rewritten as "resumed").
    files = {path.name: path.read_bytes() for path in out.glob("*.json")}
    again = main(argv)
    assert [r["curves"] for r in again] == [r["curves"] for r in records]
    assert {path.name: path.read_bytes() for path in out.glob("*.json")} == files
    assert again[1]["timing"]["resumed_at_iterations"] == []  # the file's record, kept
    assert again[1]["timing"]["train_seconds"] == timing["train_seconds"]
    assert again[1]["provenance"] == record["provenance"]

    # A file that holds another run is replaced by the read-back record.
    (out / "table1-exp_range-smoke-seed0.json").write_text('{"schema": "other"}', encoding="utf-8")
    third = main(argv)
    assert third[1]["timing"]["resumed_at_iterations"] == [42]
    written = json.loads((out / "table1-exp_range-smoke-seed0.json").read_text(encoding="utf-8"))
    assert written["timing"]["resumed_at_iterations"] == [42] and written["curves"] == record["curves"]


def test_cli_jobs_run_policies_in_parallel_processes_with_the_same_results(tiny_cifar, tmp_path, isolated_env):
    common = ["--profile", "smoke", "--data", str(tiny_cifar), "--device", "cpu", "--no-download",
              "--checkpoint-dir", str(tmp_path / "ckpt")]
    parallel = main(["--policy", "decay,exp", "--jobs", "2", "--out", str(tmp_path / "parallel"), *common])
    assert [r["policy"] for r in parallel] == ["decay", "exp"]
    assert sorted(p.name for p in (tmp_path / "parallel").glob("*.json")) == [
        "table1-decay-smoke-seed0.json", "table1-exp-smoke-seed0.json"]
    assert "--policy exp " in parallel[1]["provenance"]["command"]  # each child records the command that reruns it
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "table1-decay-smoke-seed0.pt", "table1-exp-smoke-seed0.pt"]
    serial = main(["--policy", "decay", "--out", str(tmp_path / "serial"), "--fresh", *common])
    assert serial[0]["timing"]["resumed_at_iterations"] == []  # --fresh: trained again, not read back
    assert parallel[0]["curves"]["lr"] == serial[0]["curves"]["lr"]
    assert parallel[0]["iterations"] == serial[0]["iterations"] == 25


def test_run_policy_without_out_dir_writes_nothing(tiny_cifar, tmp_path, isolated_env):
    data = load_data(tiny_cifar, download=False)
    record = run_policy(get_policy("triangular2"), PROFILES["smoke"], data, torch.device("cpu"))
    assert "path" not in record and record["iterations"] == 25
    assert record["curves"]["lr"][-1] == pytest.approx(get_policy("triangular2").schedule(0.001)(24))
    assert record["provenance"]["command"] == record["environment"]["argv"]  # no command given: this process's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # the decoded images' cache only
    assert record["profile"]["demonstration"] is True and DEMONSTRATION_NOTE in record["notes"]


def test_run_policy_resumes_from_its_checkpoint_and_refuses_one_of_other_settings(tmp_path):
    data = make_synthetic_cifar10(500, 200)
    policy, profile, cpu = get_policy("decay"), PROFILES["smoke"], torch.device("cpu")
    options = RunOptions(out=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", command="pytest decay")
    first = run_policy(policy, profile, data, cpu, options=options, eval_batch_size=100)
    assert Path(first["path"]) == tmp_path / "out" / "table1-decay-smoke-seed0.json"
    assert (tmp_path / "ckpt" / (run_name("decay", "smoke", 0) + ".pt")).is_file()
    assert first["provenance"]["command"] == "pytest decay"
    written = Path(first["path"]).read_bytes()
    again = run_policy(policy, profile, data, cpu, options=options, eval_batch_size=100)
    assert again["curves"] == first["curves"]  # read back whole from the checkpoint
    assert Path(again["path"]).read_bytes() == written  # and its results file kept as the first run wrote it
    assert again["timing"]["resumed_at_iterations"] == [] and again["provenance"] == first["provenance"]
    with pytest.raises(ValueError, match="other settings .*eval_batch_size: checkpoint has 100, this run has 50"):
        run_policy(policy, profile, data, cpu, options=options, eval_batch_size=50)


def test_default_eval_batch_size_is_smaller_on_the_cpu():
    assert default_eval_batch_size(torch.device("cpu")) == 250
    assert default_eval_batch_size(torch.device("cuda")) == 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policy", "cosine"], "--policy must be 'all' or names from"),
        (["--policy", "fixed,exp,fixed"], "--policy names fixed more than once"),
        (["--profile", "huge"], "profile must be"),
        (["--data", "/nonexistent/cifar"], "--data must be an existing"),
        (["--channels-last", "maybe"], "--channels-last must be"),
        (["--device", "tpu"], "device must be"),
        (["--seed", "-1"], "--seed must be"),
        (["--amp", "int8"], "amp_dtype must be"),
        (["--compile", "fastest"], "compile must be"),
        (["--step", "graph"], "--step must be one of eager, tensor_lr, cuda_graph, got 'graph'"),
        (["--step", "cuda_graph", "--device", "cpu"], "--step cuda_graph needs a CUDA device"),
        (["--step", "tensor_lr", "--compile", "default"], "--step tensor_lr replaces torch.compile"),
        (["--jobs", "0"], "--jobs must be"),
        (["--checkpoint-every", "-1"], "--checkpoint-every must be"),
    ],
)
def test_cli_bad_options_raise_naming_the_option(argv, message, tmp_path, isolated_env):
    with pytest.raises(ValueError, match=re.escape(message)):
        main([*argv, "--device", "cpu", "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt")]
             if "--device" not in argv else
             [*argv, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert not (tmp_path / "cache").exists()  # no data loaded, no default checkpoint folder


def test_cli_refuses_an_unwritable_out_before_loading_data(tmp_path, isolated_env):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--out .* is not a writable folder"):
        main(["--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "file" / "results"),
              "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert not (tmp_path / "cache").exists() and not (tmp_path / "ckpt").exists()


def test_cli_needs_out(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--policy", "fixed"])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err


def test_run_policy_rejects_bad_arguments_and_load_data_a_missing_folder(tmp_path):
    data = make_synthetic_cifar10(20, 10)
    policy, profile, cpu = get_policy("fixed"), PROFILES["smoke"], torch.device("cpu")
    with pytest.raises(ValueError, match="policy must be one of"):
        get_policy("sgdr")
    with pytest.raises(ValueError, match="seed must be a whole number >= 0, got -1"):
        run_policy(policy, profile, data, cpu, seed=-1)
    with pytest.raises(ValueError, match="step must be one of 'eager', 'tensor_lr', 'cuda_graph', got 'graph'"):
        run_policy(policy, profile, data, cpu, step="graph")
    with pytest.raises(ValueError, match="step='cuda_graph' needs a CUDA device"):
        run_policy(policy, profile, data, cpu, step="cuda_graph")
    with pytest.raises(ValueError, match="replaces torch.compile"):
        run_policy(policy, profile, data, cpu, step="tensor_lr", compile="default")
    with pytest.raises(ValueError, match="--data must be an existing"):
        load_data(tmp_path / "missing")


def test_module_entry_point_reports_bad_options_with_exit_status_2(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CLR_CACHE": str(tmp_path / "cache")}
    completed = subprocess.run(
        [sys.executable, "-m", "clr_book.experiments.table1", "--policy", "nope", "--out", str(tmp_path / "out"),
         "--checkpoint-dir", str(tmp_path / "ckpt")],
        capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        "python -m clr_book.experiments.table1: error: --policy must be 'all' or names from "
        "fixed, triangular2, decay, exp, exp_range, got nope\n")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


def _fake_record(policy: str, accuracies: list[float], profile: str = "full") -> dict:
    return {
        "schema": RESULT_SCHEMA, "policy": policy, "profile": {"name": profile}, "iterations": 10 * len(accuracies),
        "curves": {"iteration": [10 * (i + 1) for i in range(len(accuracies))], "test_accuracy": accuracies},
        "final_test_accuracy": accuracies[-1], "timing": {"train_seconds": 1.0}, "environment": {"device": "cpu"},
        "provenance": {"seed": 0}, "data": {"source": "test"}, "schedule": "constant(lr=0.001)",
    }


def test_iterations_to_reach():
    record = _fake_record("exp_range", [0.2, 0.5, 0.45, 0.7])
    assert iterations_to_reach(record, 0.5) == 20 and iterations_to_reach(record, 0.71) is None
    with pytest.raises(ValueError, match="target_accuracy"):
        iterations_to_reach(record, 50)


def test_comparison_targets_our_fixed_run_by_default():
    rows = paper_comparison([_fake_record("fixed", [0.3, 0.6]), _fake_record("triangular2", [0.62, 0.65])])
    assert rows[0]["target_accuracy_percent"] == pytest.approx(60) and rows[0]["iterations_to_target"] == 20
    assert rows[1]["iterations_to_target"] == 10 and rows[1]["difference_points"] == pytest.approx(65 - 81.4)
    assert paper_comparison([_fake_record("exp", [0.5])])[0]["iterations_to_target"] is None


def _with_seed(record: dict, seed: int) -> dict:
    return {**record, "provenance": {**record["provenance"], "seed": seed}}


def test_each_run_is_measured_against_the_fixed_run_of_its_own_seed():
    records = [_fake_record("fixed", [0.3, 0.6]), _with_seed(_fake_record("fixed", [0.4, 0.7]), 1),
               _fake_record("triangular2", [0.62, 0.65]), _with_seed(_fake_record("triangular2", [0.62, 0.65]), 1),
               _with_seed(_fake_record("exp", [0.9]), 2)]
    rows = paper_comparison(records)
    assert [(r["policy"], r["seed"], r["target_accuracy_percent"]) for r in rows] == [
        ("fixed", 0, pytest.approx(60)), ("fixed", 1, pytest.approx(70)),
        ("triangular2", 0, pytest.approx(60)), ("triangular2", 1, pytest.approx(70)), ("exp", 2, None)]
    assert [r["iterations_to_target"] for r in rows] == [20, 20, 10, None, None]
    table = format_comparison(rows)
    assert "| triangular2 | 1 | 25,000 | 81.4 | 20 | 65.0 | -16.4 | - |" in table


def _with_profile(record: dict, **profile) -> dict:
    return {**record, "profile": {**record["profile"], **profile}}


def test_a_record_is_a_demonstration_unless_it_ran_the_papers_setting():
    full = _with_profile(_fake_record("fixed", [0.8]), train_size=None, test_size=None, iteration_scale=1.0)
    assert not is_demonstration(full) and not is_demonstration(_fake_record("fixed", [0.8]))  # name only: 'full'
    assert is_demonstration(_with_profile(full, name="quick", train_size=2000, iteration_scale=0.04))
    assert is_demonstration(_with_profile(full, iteration_scale=0.5))  # a shortened budget, whatever its name
    assert is_demonstration(_fake_record("fixed", [0.8], profile="quick"))
    assert is_demonstration({**full, "data": {"source": "stand-in", "synthetic": True}})
    assert is_demonstration(_with_profile(full, demonstration=True))  # an explicit flag wins


def test_demonstration_results_are_never_set_beside_the_papers_numbers():
    quick = [_with_profile(_fake_record(name, [0.3, 0.4], profile="quick"), train_size=2000, iteration_scale=0.04)
             for name in ("fixed", "triangular2")]
    for record in quick:
        record["iterations_per_epoch"] = 20
    rows = paper_comparison(quick)
    assert all(row["demonstration"] and row["paper_accuracy_percent"] is None and row["difference_points"] is None
               for row in rows)
    text = comparison_markdown(quick)
    assert text.startswith("**Demonstration of the method** (profile 'quick'). " + DEMONSTRATION_NOTE)
    assert "| policy (demonstration) | seed | iterations | epochs | test accuracy % | iterations to target |" in text
    assert "| triangular2 | 0 | 20 | 1 | 40.0 | 20 |" in text  # 20 iterations = 1 epoch; reaches fixed's 40 % at 20
    assert "81.4" not in text and "paper accuracy" not in text


def test_a_table_of_full_and_demonstration_runs_keeps_them_apart():
    full = _fake_record("fixed", [0.7, 0.8])
    quick = _with_profile(_fake_record("fixed", [0.3, 0.4], profile="quick"), train_size=2000, iteration_scale=0.04)
    text = format_comparison(paper_comparison([full, quick]))
    paper_table, demonstration_table = text.split("\n\n", 1)
    assert "| fixed | 0 | 70,000 | 81.4 | 20 | 80.0 | -1.4 | 20 |" in paper_table
    assert demonstration_table.startswith("**Demonstration of the method**") and "81.4" not in demonstration_table


def test_load_results_orders_by_table_1_and_skips_foreign_json(tmp_path):
    for record in (_fake_record("exp_range", [0.5]), _fake_record("fixed", [0.4])):
        (tmp_path / f"{record['policy']}.json").write_text(json.dumps(record))
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something else"}))
    (tmp_path / "broken.json").write_text("{")
    assert [r["policy"] for r in load_results(tmp_path)] == ["fixed", "exp_range"]
    incomplete = {"schema": RESULT_SCHEMA, "policy": "fixed"}
    (tmp_path / "incomplete.json").write_text(json.dumps(incomplete))
    with pytest.raises(ValueError, match="lacks"):
        load_results(tmp_path)
    with pytest.raises(ValueError, match="directory must be an existing folder"):
        load_results(tmp_path / "missing")


def test_provenance_helpers():
    state = checkout_state(REPOSITORY)
    assert set(state) == {"commit", "dirty"}
    assert describe_device(torch.device("cpu"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())
