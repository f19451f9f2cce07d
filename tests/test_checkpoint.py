"""clr_book.checkpoint: atomic saves, refusal of other settings, signals turned into a save and a stop."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from clr_book.checkpoint import Checkpoint, RunInterrupted, default_checkpoint_dir, probe_writable

SETTINGS = {"experiment": "table1", "policy": "fixed", "profile": {"name": "smoke", "eval_every": 10}, "seed": 0}


def test_a_saved_state_loads_back_with_tensors_intact(tmp_path):
    checkpoint = Checkpoint(tmp_path, "run-1", SETTINGS, every_seconds=0)
    assert checkpoint.load() is None and not checkpoint.exists()
    weights = torch.randn(3, 4)
    checkpoint.save({"iteration": 7, "weights": weights})
    state = Checkpoint(tmp_path, "run-1", SETTINGS).load()
    assert state["iteration"] == 7 and torch.equal(state["weights"], weights)
    assert [path.name for path in tmp_path.iterdir()] == ["run-1.pt"]  # no temporary file left behind


def test_a_checkpoint_of_other_settings_is_refused_naming_each_difference(tmp_path):
    Checkpoint(tmp_path, "run", SETTINGS).save({"iteration": 1})
    other = {**SETTINGS, "seed": 1, "profile": {"name": "quick", "eval_every": 10}}
    with pytest.raises(ValueError) as raised:
        Checkpoint(tmp_path, "run", other).load()
    message = str(raised.value)
    assert "seed: checkpoint has 0, this run has 1" in message
    assert "profile.name: checkpoint has 'smoke', this run has 'quick'" in message
    assert "eval_every" not in message and "--fresh" in message


def test_tuples_and_lists_in_settings_compare_equal(tmp_path):
    Checkpoint(tmp_path, "run", {"seeds": (0, 1)}).save({"iteration": 1})
    assert Checkpoint(tmp_path, "run", {"seeds": [0, 1]}).load() == {"iteration": 1}


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_an_unreadable_file_is_a_value_error_naming_the_file(tmp_path, content):
    (tmp_path / "run.pt").write_bytes(content)
    with pytest.raises(ValueError, match=r"checkpoint '.*run\.pt' cannot be read"):
        Checkpoint(tmp_path, "run", SETTINGS).load()


def test_a_foreign_torch_file_is_refused(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "run.pt")
    with pytest.raises(ValueError, match="not a clr_book checkpoint"):
        Checkpoint(tmp_path, "run", SETTINGS).load()


@pytest.mark.parametrize("name", ["", "a/b", "../up", "sp ace"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="name must be"):
        Checkpoint(tmp_path, name, SETTINGS)


@pytest.mark.parametrize("every", [-1, float("inf"), float("nan"), True, "5"])
def test_bad_cadences_are_refused(tmp_path, every):
    with pytest.raises(ValueError, match="every_seconds must be"):
        Checkpoint(tmp_path, "run", SETTINGS, every_seconds=every)


def test_due_follows_the_cadence(tmp_path):
    assert Checkpoint(tmp_path, "run", SETTINGS, every_seconds=0).due()
    assert not Checkpoint(tmp_path, "run", SETTINGS, every_seconds=3600).due()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_the_guard_becomes_a_save_then_run_interrupted(tmp_path, signal_number):
    checkpoint = Checkpoint(tmp_path, "run", SETTINGS, every_seconds=3600)
    previous = signal.getsignal(signal_number)
    with checkpoint.guard():
        os.kill(os.getpid(), signal_number)  # handled by the guard: no KeyboardInterrupt, no exit
        assert checkpoint.due()
        with pytest.raises(RunInterrupted) as raised:
            checkpoint.save({"iteration": 12})
    assert signal.getsignal(signal_number) is previous
    assert raised.value.iteration == 12 and raised.value.signal_number == signal_number
    assert isinstance(raised.value, KeyboardInterrupt) and "Run the same command again" in str(raised.value)
    assert Checkpoint(tmp_path, "run", SETTINGS).load() == {"iteration": 12}


def test_delete_removes_the_file_and_tolerates_none(tmp_path):
    checkpoint = Checkpoint(tmp_path, "run", SETTINGS)
    checkpoint.delete()
    checkpoint.save({"iteration": 1})
    checkpoint.delete()
    assert not checkpoint.exists()


def test_probe_writable_creates_the_folder(tmp_path):
    assert probe_writable(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())


def test_probe_writable_refuses_a_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out '.*file/sub' is not a writable folder"):
        probe_writable(tmp_path / "file" / "sub", "--out")


def test_default_folder_is_under_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CLR_CACHE", str(tmp_path))
    assert default_checkpoint_dir() == tmp_path / "checkpoints"
