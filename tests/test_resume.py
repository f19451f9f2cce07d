"""Runs that stop and resume end exactly where an uninterrupted run ends (CPU, bit for bit).

Two levels:

* the training loop: a run that dies right after a checkpoint (as a SIGKILL between two checkpoints
  would leave it) and is called again gives the uninterrupted run's curves and parameters, with
  augmentation (random crops and flips) and with the tensor-LR step;
* the command line: ``python -m clr_book.experiments.table1`` killed with SIGKILL, or stopped with
  SIGINT, then started again with the same command, writes the same results file (timings,
  dates and the command's own provenance excepted) and ends with the same parameters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import clr_lib
from clr_book.checkpoint import Checkpoint
from clr_book.cifar.data import Augmentation, make_synthetic_cifar10
from clr_book.cifar.models import CaffeCIFAR10Full, ResNet9, caffe_param_groups, resnet9_widths
from clr_book.cifar.train import train

REPOSITORY = Path(__file__).resolve().parents[1]


class DiesAfterSave(Checkpoint):
    """A checkpoint whose process 'dies' (raises) right after its ``saves``-th save."""

    def __init__(self, *args, saves: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.saves_left = saves

    def save(self, state):
        path = super().save(state)
        self.saves_left -= 1
        if self.saves_left == 0:
            raise SystemExit("killed")
        return path


def _resnet_run(checkpoint=None):
    data = make_synthetic_cifar10(200, 100, seed=3)
    torch.manual_seed(0)
    model = ResNet9(widths=resnet9_widths(4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = clr_lib.cyclic(0.01, 0.1, step_size_up=5)
    result = train(model, optimizer, schedule, data, iterations=23, batch_size=20, eval_every=7,
                   augmentation=Augmentation(crop_padding=2), normalization="standard", seed=5,
                   momentum_schedule=clr_lib.cyclic_momentum(0.85, 0.95, step_size_up=5), checkpoint=checkpoint)
    return result, model


def _same_parameters(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


@pytest.mark.parametrize("saves_before_death", [1, 3, 9])
def test_a_run_that_dies_after_a_checkpoint_resumes_bit_for_bit(tmp_path, saves_before_death):
    expected, expected_model = _resnet_run()
    settings = {"test": "resnet"}
    with pytest.raises(SystemExit):
        _resnet_run(DiesAfterSave(tmp_path, "run", settings, every_seconds=0, saves=saves_before_death))
    resumed, resumed_model = _resnet_run(Checkpoint(tmp_path, "run", settings, every_seconds=0))
    assert resumed.curves() == expected.curves()
    assert resumed.resumed_at == [saves_before_death] and expected.resumed_at == []
    assert _same_parameters(resumed_model, expected_model)


def test_a_finished_run_called_again_returns_its_result_without_training(tmp_path):
    first, _ = _resnet_run(Checkpoint(tmp_path, "run", {"test": 1}))
    again, model = _resnet_run(Checkpoint(tmp_path, "run", {"test": 1}))
    assert again.curves() == first.curves() and again.resumed_at == [23]
    assert again.train_seconds == first.train_seconds  # nothing more was trained


def test_the_tensor_lr_step_resumes_bit_for_bit(tmp_path):
    def run(checkpoint=None):
        data = make_synthetic_cifar10(300, 100, seed=1)
        torch.manual_seed(0)
        model = CaffeCIFAR10Full()
        optimizer = torch.optim.SGD(caffe_param_groups(model), lr=0.001, momentum=0.9)
        result = train(model, optimizer, clr_lib.cyclic(0.001, 0.006, 4), data, iterations=17, batch_size=50,
                       eval_every=5, step="tensor_lr", seed=2, checkpoint=checkpoint)
        return result, model

    expected, expected_model = run()
    with pytest.raises(SystemExit):
        run(DiesAfterSave(tmp_path, "run", {}, every_seconds=0, saves=6))
    resumed, resumed_model = run(Checkpoint(tmp_path, "run", {}, every_seconds=0))
    assert resumed.curves() == expected.curves() and _same_parameters(resumed_model, expected_model)


# ----------------------------------------------------------------------------------------------
# The command line, killed and interrupted for real
# ----------------------------------------------------------------------------------------------


def _command(data: Path, out: Path, checkpoints: Path) -> list[str]:
    return [sys.executable, "-m", "clr_book.experiments.table1", "--policy", "fixed", "--profile", "smoke",
            "--device", "cpu", "--data", str(data), "--no-download", "--out", str(out),
            "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "0"]


def _environment(tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CLR_CACHE": str(tmp_path / "cache"),
                   "OMP_NUM_THREADS": "1"}
    environment.pop("CLR_CIFAR10", None)
    return environment


def _comparable(record: dict) -> dict:
    """A results record without what legitimately differs between two runs of the same command."""
    return {key: value for key, value in record.items() if key not in ("timing", "provenance", "environment")}


def _final_parameters(checkpoints: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoints / "table1-fixed-smoke-seed0.pt", weights_only=False)["state"]["model"]


def _wait_for_checkpoint(path: Path, process: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be stopped"
        if path.is_file():
            try:
                if torch.load(path, weights_only=False)["state"]["iteration"] >= at_least:
                    return
            except Exception:  # noqa: BLE001 - read while being replaced: look again
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tiny_cifar, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    completed = subprocess.run(_command(tiny_cifar, tmp_path / "out", tmp_path / "ckpt"), env=_environment(tmp_path),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    record = json.loads((tmp_path / "out" / "table1-fixed-smoke-seed0.json").read_text())
    return record, _final_parameters(tmp_path / "ckpt")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_a_stopped_command_run_again_gives_the_uninterrupted_results(tiny_cifar, tmp_path, uninterrupted, stop):
    command = _command(tiny_cifar, tmp_path / "out", tmp_path / "ckpt")
    environment = _environment(tmp_path)
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(tmp_path / "ckpt" / "table1-fixed-smoke-seed0.pt", process, at_least=20)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=300)
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:  # saved, then stopped with the signal's usual exit status and one line saying how to resume
        assert process.returncode == 128 + stop, stderr
        assert "Run the same command again to resume" in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "table1-fixed-smoke-seed0.json").exists()
    stopped_at = torch.load(tmp_path / "ckpt" / "table1-fixed-smoke-seed0.pt", weights_only=False)["state"]["iteration"]
    assert 20 <= stopped_at < 70

    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    record = json.loads((tmp_path / "out" / "table1-fixed-smoke-seed0.json").read_text())
    expected_record, expected_parameters = uninterrupted
    assert _comparable(record) == _comparable(expected_record)
    assert record["timing"]["resumed_at_iterations"] == [stopped_at]
    parameters = _final_parameters(tmp_path / "ckpt")
    assert parameters.keys() == expected_parameters.keys()
    assert all(torch.equal(parameters[name], expected_parameters[name]) for name in parameters)


def test_a_checkpoint_of_another_seed_is_not_continued(tiny_cifar, tmp_path, uninterrupted):
    checkpoints = tmp_path / "ckpt"
    Checkpoint(checkpoints, "table1-fixed-smoke-seed0", {"experiment": "table1", "seed": 3}).save({"iteration": 5})
    completed = subprocess.run(_command(tiny_cifar, tmp_path / "out", checkpoints), env=_environment(tmp_path),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "seed: checkpoint has 3, this run has 0" in completed.stderr


# ----------------------------------------------------------------------------------------------
# The range test: a sweep stopped half-way continues to the uninterrupted sweep's result
# ----------------------------------------------------------------------------------------------


def _range_test(tmp_path, checkpoint_dir=None, dies_after=None):
    from clr_book.experiments import common
    from clr_book.experiments.range_test.config import RANGE_TEST_PROFILES
    from clr_book.experiments.range_test.run import run_range_test

    options = common.RunOptions(checkpoint_dir=checkpoint_dir, checkpoint_every=0)
    if dies_after is not None:  # the run's checkpoint 'dies' right after its dies_after-th save
        original = common.checkpoint_for

        def dying(options, name, settings):
            checkpoint = original(options, name, settings)
            return DiesAfterSave(checkpoint.folder, checkpoint.name, settings, every_seconds=0, saves=dies_after)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("clr_book.experiments.range_test.run.checkpoint_for", dying)
            return run_range_test(RANGE_TEST_PROFILES["smoke"], "linear", make_synthetic_cifar10(500, 200, seed=4),
                                  torch.device("cpu"), seed=1, options=options, num_iter=16)
    return run_range_test(RANGE_TEST_PROFILES["smoke"], "linear", make_synthetic_cifar10(500, 200, seed=4),
                          torch.device("cpu"), seed=1, options=options, num_iter=16)


def test_a_range_test_sweep_resumes_mid_sweep_to_the_uninterrupted_result(tmp_path):
    expected = _range_test(tmp_path)
    with pytest.raises(SystemExit):
        _range_test(tmp_path, tmp_path / "ckpt", dies_after=7)  # killed after iteration 7 of 16
    resumed = _range_test(tmp_path, tmp_path / "ckpt")
    assert resumed["result"] == expected["result"] and resumed["suggestion"] == expected["suggestion"]
    assert resumed["timing"]["resumed_at_iterations"] == [7]
    again = _range_test(tmp_path, tmp_path / "ckpt")  # finished: read back, not swept again
    assert again["result"] == expected["result"] and again["timing"] == resumed["timing"]
