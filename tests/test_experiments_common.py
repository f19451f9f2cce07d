"""What the experiments share: clr_book.experiments.common (profiles, devices, options, folders, the CLI
wrapper), clr_book.experiments.records (atomic results files) and clr_book.experiments.provenance."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from clr_book.checkpoint import Checkpoint, RunInterrupted
from clr_book.cifar.data import make_synthetic_cifar10
from clr_book.experiments import provenance
from clr_book.experiments.common import (
    RunOptions,
    checkpoint_for,
    choose_profile,
    experiment_parser,
    load_data,
    names_option,
    resolve_device,
    resolve_run_options,
    run_cli,
    seeds_option,
)
from clr_book.experiments.provenance import (
    checkout_state,
    data_notes,
    describe_device,
    package_state,
    run_context,
    utc_now,
)
from clr_book.experiments.records import first_reaching, read_records, write_record

REPOSITORY = Path(__file__).resolve().parents[1]

PROFILES = {"full": "F", "quick": "Q", "smoke": "S"}


# ----------------------------------------------------------------------------------------------
# Profiles and devices
# ----------------------------------------------------------------------------------------------


def test_auto_profile_is_full_on_cuda_and_quick_elsewhere():
    assert choose_profile("auto", PROFILES, "cuda") == "F"
    assert choose_profile("auto", PROFILES, "cpu") == "Q"
    assert choose_profile("smoke", PROFILES, "cuda") == "S"


def test_unknown_profile_names_the_parameter_and_the_choices():
    with pytest.raises(ValueError, match="profile must be 'auto' or one of 'full', 'quick', 'smoke', got 'huge'"):
        choose_profile("huge", PROFILES, "cpu")


def test_resolve_device_gives_a_torch_device_and_names_bad_ones():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="asks for CUDA"):
            resolve_device("cuda")


def test_load_data_refuses_a_location_that_does_not_exist(tmp_path):
    with pytest.raises(ValueError, match="--data must be an existing CIFAR-10 folder"):
        load_data(tmp_path / "missing")


# ----------------------------------------------------------------------------------------------
# Command-line values
# ----------------------------------------------------------------------------------------------


def test_names_option_takes_all_or_a_comma_separated_list_in_the_order_given():
    choices = ["fixed", "exp", "decay"]
    assert names_option("--policy", "all", choices) == choices
    assert names_option("--policy", "decay,fixed", choices) == ["decay", "fixed"]
    assert names_option("--policy", " exp , decay ,", choices) == ["exp", "decay"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("cosine", "--policy must be 'all' or names from fixed, exp, decay, got cosine"),
        ("fixed,cosine,sgdr", "--policy must be 'all' or names from fixed, exp, decay, got cosine, sgdr"),
        ("Fixed", "got Fixed"),
        ("", "--policy must be 'all' or names from fixed, exp, decay, got ''"),
        (",,", "got ',,'"),
        ("fixed,fixed", "--policy names fixed more than once"),
        ("exp,fixed,exp,fixed", "--policy names exp, fixed more than once"),
    ],
)
def test_names_option_refuses_unknown_repeated_and_missing_names(value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        names_option("--policy", value, ["fixed", "exp", "decay"])


def test_seeds_option_takes_distinct_whole_numbers():
    assert seeds_option("--seeds", "3") == [3]
    assert seeds_option("--seeds", "2,0,1") == [2, 0, 1]
    assert seeds_option("--seeds", " 4, 5 ,") == [4, 5]


@pytest.mark.parametrize(
    "value, message",
    [
        ("a,b", "--seeds must be comma-separated whole numbers >= 0, got 'a,b'"),
        ("1.5", "--seeds must be comma-separated whole numbers >= 0"),
        ("", "--seeds must be comma-separated whole numbers >= 0, got ''"),
        ("0,-1", "--seeds must be comma-separated whole numbers >= 0, got '0,-1'"),
        ("1,1", "--seeds names a seed more than once, got '1,1'"),
        ("0,1,0", "--seeds names a seed more than once"),
    ],
)
def test_seeds_option_refuses_anything_else_naming_the_option(value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        seeds_option("--seeds", value)


# ----------------------------------------------------------------------------------------------
# The shared flags and the folders they name
# ----------------------------------------------------------------------------------------------


PROG = "python -m prog"  # what each experiment passes: the command that runs it


def _parse(argv):
    return experiment_parser(PROG, "test parser", ["full", "quick"]).parse_args(argv)


def test_experiment_parser_requires_out_and_has_the_shared_defaults(capsys):
    with pytest.raises(SystemExit) as stop:
        _parse([])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err
    args = _parse(["--out", "x"])
    assert (args.profile, args.device, args.data, args.checkpoint_dir) == ("auto", "auto", None, None)
    assert (args.checkpoint_every, args.fresh, args.progress, args.no_download) == (300.0, False, False, False)


def test_resolve_run_options_creates_and_probes_both_folders(tmp_path):
    out, checkpoints = tmp_path / "a" / "results", tmp_path / "b" / "ckpt"
    argv = ["--out", str(out), "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "5", "--fresh",
            "--progress"]
    options = resolve_run_options(_parse(argv), PROG, argv)
    assert options == RunOptions(out=out, checkpoint_dir=checkpoints, checkpoint_every=5.0, fresh=True,
                                 progress=True, command="python -m prog " + " ".join(argv))
    assert out.is_dir() and checkpoints.is_dir()
    assert list(out.iterdir()) == [] and list(checkpoints.iterdir()) == []  # the probe file is gone


def test_resolve_run_options_quotes_the_recorded_command(tmp_path):
    argv = ["--out", str(tmp_path / "with space"), "--checkpoint-dir", "none"]
    options = resolve_run_options(_parse(argv), PROG, argv)
    assert options.command == f"python -m prog --out '{tmp_path / 'with space'}' --checkpoint-dir none"


def test_checkpoint_dir_none_turns_checkpoints_off_and_the_default_is_in_the_cache(tmp_path, monkeypatch):
    argv = ["--out", str(tmp_path / "out"), "--checkpoint-dir", "none"]
    assert resolve_run_options(_parse(argv), PROG, argv).checkpoint_dir is None
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))
    argv = ["--out", str(tmp_path / "out")]
    assert resolve_run_options(_parse(argv), PROG, argv).checkpoint_dir == tmp_path / "cache" / "checkpoints"
    assert (tmp_path / "cache" / "checkpoints").is_dir()


def test_an_unwritable_out_fails_naming_out_before_the_checkpoint_folder_is_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a folder")
    argv = ["--out", str(blocker / "results"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    with pytest.raises(ValueError, match=re.escape(f"--out {str(blocker / 'results')!r} is not a writable folder")):
        resolve_run_options(_parse(argv), PROG, argv)
    assert not (tmp_path / "ckpt").exists()


def test_an_unwritable_checkpoint_dir_fails_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["--out", str(tmp_path / "out"), "--checkpoint-dir", str(blocker / "ckpt")]
    with pytest.raises(ValueError, match="--checkpoint-dir .* is not a writable folder"):
        resolve_run_options(_parse(argv), PROG, argv)


@pytest.mark.parametrize("every", ["-1", "inf", "nan"])
def test_a_bad_checkpoint_interval_fails_naming_it(every, tmp_path):
    argv = ["--out", str(tmp_path / "out"), "--checkpoint-dir", "none", "--checkpoint-every", every]
    with pytest.raises(ValueError, match="--checkpoint-every must be a number of seconds >= 0"):
        resolve_run_options(_parse(argv), PROG, argv)
    assert not (tmp_path / "out").exists()


def test_run_options_by_default_write_nothing():
    options = RunOptions()
    assert options.out is None and options.checkpoint_dir is None and not options.fresh
    assert checkpoint_for(options, "run", {"a": 1}) is None


def test_checkpoint_for_names_the_run_and_fresh_deletes_the_old_checkpoint(tmp_path):
    options = RunOptions(checkpoint_dir=tmp_path, checkpoint_every=7.0)
    checkpoint = checkpoint_for(options, "table1-fixed-smoke-seed0", {"a": 1})
    assert isinstance(checkpoint, Checkpoint) and checkpoint.every_seconds == 7.0
    assert checkpoint.path == tmp_path / "table1-fixed-smoke-seed0.pt"
    checkpoint.save({"iteration": 3})
    assert checkpoint_for(options, "table1-fixed-smoke-seed0", {"a": 1}).load() == {"iteration": 3}
    assert checkpoint_for(replace(options, fresh=True), "table1-fixed-smoke-seed0", {"a": 1}).load() is None
    assert not checkpoint.exists()


# ----------------------------------------------------------------------------------------------
# run_cli and the three entry points
# ----------------------------------------------------------------------------------------------


def test_run_cli_turns_a_value_error_into_one_line_and_exit_status_2(capsys):
    def main(argv):
        raise ValueError(f"--thing must be good, got {argv[0]!r}")

    assert run_cli("python -m prog", main, ["bad"]) == 2
    assert capsys.readouterr().err == "python -m prog: error: --thing must be good, got 'bad'\n"
    assert run_cli("python -m prog", lambda argv: None, []) == 0


def test_run_cli_reports_a_stop_by_signal_with_the_signals_exit_status(tmp_path, capsys):
    def main(argv):
        raise RunInterrupted(signal.SIGTERM, tmp_path / "run.pt", 12)

    assert run_cli("python -m prog", main, []) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.startswith("python -m prog: SIGTERM received: stopped after iteration 12") and "resume" in err


@pytest.mark.parametrize("experiment", ["table1", "range_test", "time_to_accuracy"])
def test_cli_with_an_unwritable_out_exits_2_at_once_before_loading_data(experiment, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CLR_CACHE": str(tmp_path / "cache")}
    environment.pop("CLR_CIFAR10", None)
    prog = f"clr_book.experiments.{experiment}"
    completed = subprocess.run(
        [sys.executable, "-m", prog, "--profile", "smoke", "--device", "cpu", "--no-download",
         "--out", str(blocker / "results"), "--checkpoint-dir", str(tmp_path / "ckpt")],
        capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.count("\n") == 1 and completed.stderr.endswith("\n")
    assert completed.stderr.startswith(f"python -m {prog}: error: --out ")
    assert "not a writable folder" in completed.stderr
    assert completed.stdout == ""  # the data loader would have printed its source
    # How fast it fails is a benchmark's business; what matters here is that nothing was loaded or made.
    assert not (tmp_path / "cache").exists() and not (tmp_path / "ckpt").exists()


# ----------------------------------------------------------------------------------------------
# Results files
# ----------------------------------------------------------------------------------------------


def test_write_record_creates_folders_replaces_the_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "a" / "b" / "run.json"
    assert write_record({"schema": "s", "x": 1}, path) == path
    write_record({"schema": "s", "x": 2}, path)
    assert json.loads(path.read_text()) == {"schema": "s", "x": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by everyone, not mkstemp's owner-only


def test_write_record_replaces_the_file_rather_than_rewriting_it(tmp_path):
    path = tmp_path / "run.json"
    write_record({"x": 1}, path)
    with open(path, encoding="utf-8") as old:  # a reader that opened the old file keeps reading it whole
        write_record({"x": 2, "padding": "y" * 10_000}, path)
        assert json.load(old) == {"x": 1}
    assert json.loads(path.read_text())["x"] == 2


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    write_record({"x": 1}, path)

    def failing_replace(source, target):
        assert Path(source).parent == tmp_path and Path(source).name.endswith(".partial")
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_record({"x": 2}, path)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_concurrent_writers_and_a_reader_never_see_half_a_file(tmp_path):
    path = tmp_path / "run.json"
    write_record({"writer": -1, "values": []}, path)
    errors = []

    def writer(number):
        try:
            for round_ in range(30):
                write_record({"writer": number, "values": list(range(2000 + round_))}, path)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    reads = 0
    while any(thread.is_alive() for thread in threads):
        json.loads(path.read_text())  # raises on a half-written file
        reads += 1
    for thread in threads:
        thread.join()
    assert not errors and reads > 0
    assert json.loads(path.read_text())["writer"] in (0, 1, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_strict_write_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.json"
    write_record({"x": 1.0}, path, strict=True)
    with pytest.raises(ValueError):
        write_record({"x": math.nan}, path, strict=True)
    assert json.loads(path.read_text()) == {"x": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    write_record({"x": math.nan}, path)  # not strict: Python's NaN spelling
    assert math.isnan(json.loads(path.read_text())["x"])


def test_read_records_keeps_only_this_schema_in_file_name_order(tmp_path):
    write_record({"schema": "mine", "k": 2}, tmp_path / "b.json")
    write_record({"schema": "mine", "k": 1}, tmp_path / "a.json")
    write_record({"schema": "other", "k": 3}, tmp_path / "c.json")
    (tmp_path / "d.json").write_text("not json")
    (tmp_path / "e.json").write_text("[1, 2]")
    records = read_records(tmp_path, "mine", ["k"])
    assert [r["k"] for r in records] == [1, 2]
    assert records[0]["path"] == str(tmp_path / "a.json")


def test_read_records_raises_for_an_incomplete_record_and_a_missing_folder(tmp_path):
    write_record({"schema": "mine"}, tmp_path / "a.json")
    with pytest.raises(ValueError, match=r"lacks \['k'\]"):
        read_records(tmp_path, "mine", ["k"])
    with pytest.raises(ValueError, match="directory must be an existing folder"):
        read_records(tmp_path / "nowhere", "mine", [])


def test_first_reaching_is_the_first_point_at_or_above_the_target_on_any_axis():
    accuracies = [0.2, 0.5, 0.4, 0.7]
    assert first_reaching([10, 20, 30, 40], accuracies, 0.5) == 20       # iterations
    assert first_reaching([1.5, 3.0, 4.5, 6.0], accuracies, 0.6) == 6.0  # seconds
    assert first_reaching([10, 20, 30, 40], accuracies, 0.8) is None
    with pytest.raises(ValueError, match="target_accuracy must be a fraction in \\[0, 1\\], got 81.4"):
        first_reaching([10], [0.9], 81.4)


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------


def test_every_record_notes_synthetic_and_jpeg_data_and_nothing_for_the_original():
    synthetic = make_synthetic_cifar10(20, 10)
    jpeg = replace(synthetic, source="/data/cifar10-jpeg.tar.gz")
    original = replace(synthetic, source="/data/cifar-10-batches-py")
    assert "SYNTHETIC" in data_notes(synthetic)[0]
    assert "JPEG" in data_notes(jpeg)[0]
    assert data_notes(original) == []


def test_run_context_records_where_when_how_and_on_what_data():
    data = make_synthetic_cifar10(20, 10)
    context = run_context(torch.device("cpu"), data, 7, "python -m clr_book.experiments.table1 --seed 7")
    assert set(context) == {"environment", "provenance", "data"}
    assert context["provenance"]["seed"] == 7 and context["provenance"]["command"].endswith("--seed 7")
    assert set(context["provenance"]) >= {"package", "commit", "dirty", "date_utc"}
    assert context["provenance"]["package"] == package_state()
    assert context["data"] == {"source": data.source, "synthetic": True, "classes": list(data.classes),
                               "train_images": 20, "test_images": 10}
    assert context["environment"]["device_type"] == "cpu"
    assert run_context(torch.device("cpu"), data, 0, None)["provenance"]["command"] == context["environment"]["argv"]


def test_describe_device_and_utc_now():
    assert describe_device(torch.device("cpu")).endswith("torch threads)")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())


def test_package_state_of_the_installed_distribution_and_of_a_missing_one():
    import importlib.metadata

    state = package_state()
    assert set(state) == {"version", "url", "vcs_commit", "editable"}
    try:
        assert state["version"] == importlib.metadata.version(provenance.DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        assert state["version"] is None
    assert package_state("no-such-distribution-clr") == {"version": None, "url": None, "vcs_commit": None,
                                                         "editable": None}


class _FakeDistribution:
    def __init__(self, direct_url):
        self.version = "9.9"
        self.direct_url = direct_url

    def read_text(self, name):
        assert name == "direct_url.json"
        return self.direct_url


@pytest.mark.parametrize(
    "direct_url, expected",
    [
        (json.dumps({"url": "https://github.com/x/clr.git", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}),
         {"version": "9.9", "url": "https://github.com/x/clr.git", "vcs_commit": "a" * 40, "editable": False}),
        (json.dumps({"url": "file:///src/clr", "dir_info": {"editable": True}}),
         {"version": "9.9", "url": "file:///src/clr", "vcs_commit": None, "editable": True}),
        (None, {"version": "9.9", "url": None, "vcs_commit": None, "editable": None}),  # no PEP 610 file
        ("{not json", {"version": "9.9", "url": None, "vcs_commit": None, "editable": None}),
    ],
)
def test_package_state_reads_pep_610_direct_url(direct_url, expected, monkeypatch):
    monkeypatch.setattr(provenance.importlib.metadata, "distribution", lambda name: _FakeDistribution(direct_url))
    assert package_state() == expected


def test_checkout_state_of_this_checkout_is_its_head_commit():
    state = checkout_state()
    assert set(state) == {"commit", "dirty"} and checkout_state(REPOSITORY)["commit"] == state["commit"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not running from a git checkout of the project (or git is missing)")
    assert state["commit"] == head and re.fullmatch(r"[0-9a-f]{40}", head)
    assert state["dirty"] in (True, False)


def test_checkout_state_is_none_outside_a_checkout_of_this_project(tmp_path):
    assert checkout_state(tmp_path) == {"commit": None, "dirty": None}
    assert checkout_state(REPOSITORY / "clr_book") == {"commit": None, "dirty": None}  # inside, not the top
    for name in ("clr_lib", "clr_book", "book", ".git"):  # the project's layout, but no git work tree
        (tmp_path / name).mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    assert checkout_state(tmp_path) == {"commit": None, "dirty": None}
