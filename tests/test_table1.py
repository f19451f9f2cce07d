"""clr_book.experiments.table1: the Table 1 policies, the profiles, the CLI end to end, results files and the table."""

from __future__ import annotations

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
from clr_book.experiments.table1.config import PAPER_TABLE_1, POLICIES, PROFILES, get_policy, resolve_profile
from clr_book.experiments.table1.report import format_comparison, iterations_to_reach, load_results, paper_comparison
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


def test_quick_profile_scales_iterations_by_1_500_and_keeps_the_overall_decay():
    quick = PROFILES["quick"]
    assert (quick.train_size, quick.test_size, quick.batch_size, quick.eval_every) == (5000, 500, 100, 10)
    assert quick.iteration_scale == 1 / 500
    assert [POLICIES[name].budget(quick.iteration_scale) for name in POLICIES] == [140, 50, 50, 140, 84]
    fixed = get_policy("fixed").schedule(quick.iteration_scale)
    np.testing.assert_allclose(fixed([119, 120, 130]), [1e-3, 1e-4, 1e-5])
    exp = get_policy("exp").schedule(quick.iteration_scale)
    assert exp(139) == pytest.approx(get_policy("exp").schedule()(69_500), rel=1e-9)
    exp_range = get_policy("exp_range").schedule(quick.iteration_scale)
    assert exp_range(4) == pytest.approx(0.001 + 0.005 * 0.99994**2000, rel=1e-9)  # first peak, as at 2,000
    triangular2 = get_policy("triangular2").schedule(quick.iteration_scale)
    np.testing.assert_allclose(triangular2([0, 4, 32, 34, 44, 45]), [1e-3, 5e-3, 1e-4, 5e-4, 1e-5, 5e-5], rtol=1e-9)


def test_quick_profile_is_the_full_schedule_sampled_every_500_iterations():
    """500 divides every step size, boundary and budget of Table 1, so the sampling is exact."""
    scale = PROFILES["quick"].iteration_scale
    for policy in POLICIES.values():
        steps = np.arange(policy.budget(scale))
        assert len(steps) * 500 == policy.budget()
        np.testing.assert_allclose(policy.schedule(scale)(steps), policy.schedule()(500 * steps), rtol=1e-9)


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
    assert rows[1]["paper_accuracy_percent"] == 82.2 and rows[1]["iterations"] == 42
    assert rows[1]["accuracy_percent"] == pytest.approx(100 * record["final_test_accuracy"])
    table = format_comparison(rows)
    assert table.count("\n") == 3 and "| exp_range | 42,000 | 82.2 | 42 |" in table

    # The same command again finds each run finished in its checkpoint: nothing is trained again.
    again = main(argv)
    assert [r["curves"] for r in again] == [r["curves"] for r in records]
    assert again[1]["timing"]["resumed_at_iterations"] == [42]
    assert again[1]["timing"]["train_seconds"] == timing["train_seconds"]


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


def test_run_policy_resumes_from_its_checkpoint_and_refuses_one_of_other_settings(tmp_path):
    data = make_synthetic_cifar10(500, 200)
    policy, profile, cpu = get_policy("decay"), PROFILES["smoke"], torch.device("cpu")
    options = RunOptions(out=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", command="pytest decay")
    first = run_policy(policy, profile, data, cpu, options=options, eval_batch_size=100)
    assert Path(first["path"]) == tmp_path / "out" / "table1-decay-smoke-seed0.json"
    assert (tmp_path / "ckpt" / (run_name("decay", "smoke", 0) + ".pt")).is_file()
    assert first["provenance"]["command"] == "pytest decay"
    again = run_policy(policy, profile, data, cpu, options=options, eval_batch_size=100)
    assert again["curves"] == first["curves"] and again["timing"]["resumed_at_iterations"] == [25]
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


def _fake_record(policy: str, accuracies: list[float], profile: str = "quick") -> dict:
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
