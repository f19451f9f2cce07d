"""clr_book.cifar.train: the loop steps the schedule per iteration, evaluates on cadence, is deterministic on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import clr_lib
from clr_book.cifar.data import make_synthetic_cifar10, to_device
from clr_book.cifar.models import CaffeCIFAR10Full, ResNet9, caffe_param_groups, resnet9_widths
from clr_book.cifar.precision import autocast_dtype_for, resolve_amp_dtype
from clr_book.cifar.train import TrainResult, TrainStep, evaluate, group_schedules, train


@pytest.fixture(scope="module")
def tiny_data():
    return make_synthetic_cifar10(200, 40)


def _linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.AvgPool2d(4), nn.Flatten(), nn.Linear(3 * 8 * 8, 10))


def _sgd(model: nn.Module, momentum: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.0, momentum=momentum)


def _quick_train(data, model=None, schedule=None, **kwargs) -> TrainResult:
    model = model or _linear_model()
    options = {"iterations": 12, "batch_size": 20, "eval_every": 4, "normalization": "standard", **kwargs}
    return train(model, _sgd(model), schedule or clr_lib.constant(0.01), data, **options)


def test_loss_falls_on_the_stand_in_within_a_few_dozen_iterations():
    torch.manual_seed(0)
    model = CaffeCIFAR10Full()
    optimizer = torch.optim.SGD(caffe_param_groups(model), lr=0.0, momentum=0.9)
    result = train(model, optimizer, clr_lib.constant(0.002), make_synthetic_cifar10(640, 200), iterations=40,
                   batch_size=32, eval_every=10, channels_last=True)
    assert result.train_loss[0] > 2.2  # ~ln 10 at the start
    assert result.train_loss[-1] < result.train_loss[0] - 0.5
    assert result.final_test_accuracy > 0.3  # chance is 0.1


def test_recorded_lr_is_the_schedule_at_the_last_update(tiny_data):
    schedule = clr_lib.cyclic(0.001, 0.006, step_size_up=3)
    result = _quick_train(tiny_data, schedule=schedule, iterations=13, eval_every=1)
    assert result.iteration == list(range(1, 14))
    np.testing.assert_allclose(result.lr, schedule(np.arange(13)), rtol=1e-12)


def test_lr_mult_groups_get_scaled_lrs_and_the_schedule_is_not_stepped_past_the_end(tiny_data):
    torch.manual_seed(0)
    model = CaffeCIFAR10Full()
    optimizer = torch.optim.SGD(caffe_param_groups(model), lr=0.0, momentum=0.9)
    schedule = clr_lib.one_cycle(0.01, total_steps=6, pct_start=0.5)  # raises if stepped to iteration 6
    result = train(model, optimizer, schedule, tiny_data, iterations=6, batch_size=20, eval_every=3)
    last = schedule(5)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([last, 2 * last, last, 2 * last])
    assert result.lr[-1] == pytest.approx(last)
    assert result.settings["lr_mults"] == [1.0, 2.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="longer than the schedule"):
        train(model, optimizer, schedule, tiny_data, iterations=7, batch_size=20, eval_every=3)


def test_momentum_schedule_is_stepped_too(tiny_data):
    model = _linear_model()
    optimizer = _sgd(model)
    momentum = clr_lib.cyclic_momentum(0.8, 0.9, step_size_up=4)
    train(model, optimizer, clr_lib.cyclic(0.001, 0.01, 4), tiny_data, iterations=6, batch_size=20, eval_every=3,
          momentum_schedule=momentum, normalization="standard")
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(momentum(5))


def test_evaluation_cadence(tiny_data):
    assert _quick_train(tiny_data, iterations=25, eval_every=10).iteration == [10, 20, 25]
    with_start = _quick_train(tiny_data, iterations=8, eval_every=4, eval_at_start=True)
    assert with_start.iteration == [0, 4, 8] and with_start.train_loss[0] is None
    assert with_start.lr[0] == pytest.approx(0.01)
    assert len(with_start.test_accuracy) == len(with_start.test_loss) == 3


def test_training_is_deterministic_on_cpu_for_a_seed():
    data = make_synthetic_cifar10(300, 60)

    def run(seed: int):
        torch.manual_seed(0)
        model = CaffeCIFAR10Full()
        optimizer = torch.optim.SGD(caffe_param_groups(model), lr=0.0, momentum=0.9)
        result = train(model, optimizer, clr_lib.cyclic(0.001, 0.006, 4), data, iterations=8, batch_size=25,
                       eval_every=4, seed=seed, channels_last=True)
        return result, torch.cat([p.detach().flatten() for p in model.parameters()])

    (first, weights), (again, weights_again), (other, _) = run(1), run(1), run(2)
    assert first.curves() == again.curves()
    assert torch.equal(weights, weights_again)
    assert first.train_loss != other.train_loss  # the seed drives the shuffling


def test_result_holds_timings_and_serialises_to_json(tiny_data):
    result = _quick_train(tiny_data)
    assert result.train_seconds > 0 and result.eval_seconds > 0 and result.setup_seconds >= 0
    assert result.seconds_per_iteration == pytest.approx(result.train_seconds / 12)
    assert result.iterations_per_epoch == 200 // 20 and result.device == "cpu"
    assert result.schedule == repr(clr_lib.constant(0.01))
    record = json.loads(json.dumps(result.to_dict()))
    assert record["final_test_accuracy"] == result.final_test_accuracy
    assert set(record["settings"]) >= {"normalization", "augmentation", "amp_dtype", "channels_last", "compile", "seed"}


def test_model_is_left_in_train_mode_and_evaluate_restores_the_mode(tiny_data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10))
    model(torch.zeros(2, 3, 32, 32))
    result = train(model, _sgd(model), clr_lib.constant(0.01), tiny_data, iterations=4, batch_size=20, eval_every=2,
                   normalization="standard")
    assert model.training and len(result.iteration) == 2
    _, test = to_device(tiny_data, batch_size=20, normalization="standard")
    model.eval()
    accuracy, loss = evaluate(model, test)
    assert not model.training and 0 <= accuracy <= 1 and loss > 0


def test_bf16_autocast_runs_on_cpu(tiny_data):
    result = _quick_train(tiny_data, amp_dtype="bf16")
    assert result.settings["amp_dtype"] == "bfloat16" and np.isfinite(result.train_loss).all()


def test_a_pair_of_device_batches_can_be_passed(tiny_data):
    pair = to_device(tiny_data, batch_size=20, normalization="standard")
    assert _quick_train(pair, iterations=4).iterations == 4
    with pytest.raises(ValueError, match="batch_size=10 differs"):
        _quick_train(pair, batch_size=10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"iterations": 0}, "iterations must be a positive"),
        ({"batch_size": 0}, "batch_size must be a positive"),
        ({"eval_every": 0}, "eval_every must be a positive"),
        ({"eval_batch_size": -1}, "eval_batch_size must be a positive"),
        ({"amp_dtype": "fp8"}, "amp_dtype must be"),
        ({"compile": "fastest"}, "compile must be"),
        ({"normalization": "zca"}, "normalization must be one of"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(tiny_data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _quick_train(tiny_data, **kwargs)


def test_group_schedules_scale_by_each_groups_lr_mult():
    base = clr_lib.cyclic(0.001, 0.006, 2000)
    optimizer = torch.optim.SGD(caffe_param_groups(CaffeCIFAR10Full()), lr=0.1)
    schedules = group_schedules(optimizer, base)
    assert schedules[0] is base and schedules[2] is base  # lr_mult 1: the schedule itself
    assert [float(s(2000)) for s in schedules] == pytest.approx([0.006, 0.012, 0.006, 0.012])
    assert repr(schedules[1]) == f"2.0 * {base!r}"


def test_resolve_amp_dtype_spellings():
    assert resolve_amp_dtype(None) is None and resolve_amp_dtype("none") is None
    assert resolve_amp_dtype("bf16") is torch.bfloat16 and resolve_amp_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="amp_dtype must be None, 'bf16' or 'fp16'.*got 'int8'"):
        resolve_amp_dtype("int8")


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                      ((9, 0), torch.bfloat16), ((7, 0), torch.float16)])
def test_auto_autocast_is_bf16_where_the_gpu_computes_in_it_and_fp16_before_ampere(monkeypatch, capability, expected):
    queried = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: queried.append(device) or capability)
    assert autocast_dtype_for("auto", "cuda:0") is expected and queried == [torch.device("cuda:0")]
    assert autocast_dtype_for("AUTO", "cuda") is expected


def test_auto_autocast_is_full_precision_on_the_cpu_and_explicit_choices_are_kept():
    assert autocast_dtype_for("auto", "cpu") is None
    assert autocast_dtype_for("bf16", "cpu") is torch.bfloat16 and autocast_dtype_for(None, "cuda") is None
    assert autocast_dtype_for("fp16", torch.device("cuda")) is torch.float16
    with pytest.raises(ValueError, match="amp_dtype must be"):
        autocast_dtype_for("automatic", "cpu")


# ----------------------------------------------------------------------------------------------
# Time to accuracy: cumulative training seconds, label smoothing, test-time flips
# ----------------------------------------------------------------------------------------------


def test_cumulative_train_seconds_has_one_rising_value_per_evaluation_and_ends_at_train_seconds(tiny_data):
    result = _quick_train(tiny_data, iterations=12, eval_every=4, eval_at_start=True)
    seconds = result.cumulative_train_seconds
    assert len(seconds) == len(result.iteration) == 4 and seconds[0] == 0.0
    assert all(later > earlier for earlier, later in zip(seconds, seconds[1:]))
    assert seconds[-1] == pytest.approx(result.train_seconds)
    assert result.to_dict()["cumulative_train_seconds"] == seconds


def test_evaluation_time_is_not_counted_as_training_time(tiny_data, monkeypatch):
    import clr_book.cifar.train as train_module

    # A clock that jumps 1,000 s during every evaluation: any of it counted as training would show,
    # however loaded the machine (no real sleeping, no timing bound).
    real_clock, real_evaluate = train_module.time.perf_counter, train_module.evaluate
    jumped = [0.0]

    def slow_evaluate(*args, **kwargs):
        jumped[0] += 1000.0
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module.time, "perf_counter", lambda: real_clock() + jumped[0])
    monkeypatch.setattr(train_module, "evaluate", slow_evaluate)
    result = _quick_train(tiny_data, iterations=3, eval_every=1)
    assert jumped[0] == 3000.0 and result.eval_seconds >= 3000.0
    assert result.cumulative_train_seconds[-1] == pytest.approx(result.train_seconds)
    assert result.train_seconds < 1000.0


def test_curves_keep_their_keys_for_existing_results_files(tiny_data):
    assert set(_quick_train(tiny_data).curves()) == {"iteration", "test_accuracy", "test_loss", "train_loss", "lr"}


def test_seconds_to_reach_reads_the_clock_at_the_first_evaluation_at_or_above_the_target(tiny_data):
    result = _quick_train(tiny_data, iterations=8, eval_every=2)
    object.__setattr__(result, "test_accuracy", [0.1, 0.4, 0.3, 0.6])
    assert result.seconds_to_reach(0.35) == result.cumulative_train_seconds[1]
    assert result.seconds_to_reach(0.6) == result.cumulative_train_seconds[3]
    assert result.seconds_to_reach(0.9) is None
    with pytest.raises(ValueError, match="target_accuracy"):
        result.seconds_to_reach(60)


def test_label_smoothing_changes_the_training_loss_but_not_the_test_loss_definition(tiny_data):
    plain = _quick_train(tiny_data, iterations=1, eval_every=1)
    smooth = _quick_train(tiny_data, iterations=1, eval_every=1, label_smoothing=0.2)
    assert smooth.settings["label_smoothing"] == 0.2 and plain.settings["label_smoothing"] == 0.0
    assert smooth.train_loss[0] != pytest.approx(plain.train_loss[0])  # same model, same batch, smoothed targets


def test_train_step_uses_torchs_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    images, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    expected = torch.nn.functional.cross_entropy(model(images), labels, label_smoothing=0.2)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), device="cpu", label_smoothing=0.2)
    assert step(images, labels).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), device="cpu", label_smoothing=1.0)


def test_test_time_flip_averages_the_logits_of_each_image_and_its_mirror(tiny_data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    _, test = to_device(tiny_data, batch_size=20, normalization="standard", eval_batch_size=40)
    images, labels = next(iter(test.epoch()))
    with torch.inference_mode():
        averaged = (model(images) + model(images.flip(3))) / 2
    accuracy, loss = evaluate(model, test, test_time_flip=True)
    assert accuracy == pytest.approx((averaged.argmax(1) == labels).float().mean().item())
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(averaged, labels).item(), rel=1e-5)
    assert evaluate(model, test, test_time_flip=False) != (accuracy, loss)


def test_a_flip_invariant_model_scores_the_same_with_and_without_test_time_flip(tiny_data):
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
    _, test = to_device(tiny_data, batch_size=20, normalization="standard")
    plain, flipped = evaluate(model, test), evaluate(model, test, test_time_flip=True)
    assert plain[0] == flipped[0] and plain[1] == pytest.approx(flipped[1], rel=1e-5)


def test_train_records_the_time_to_accuracy_options(tiny_data):
    result = _quick_train(tiny_data, iterations=2, eval_every=2, test_time_flip=True, label_smoothing=0.1)
    assert result.settings["test_time_flip"] is True and result.settings["label_smoothing"] == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        _quick_train(tiny_data, label_smoothing=-0.1)


def test_compiled_training_matches_eager_training(tiny_data):
    """``compile=True`` runs the very same training through torch.compile (about a minute of compilation on
    2 CPU cores): same losses and accuracies, parameters equal to float32 rounding."""

    def run(compile: bool) -> tuple[TrainResult, nn.Module]:
        torch.manual_seed(0)
        model = ResNet9(widths=resnet9_widths(4))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        result = train(model, optimizer, clr_lib.cyclic(0.01, 0.05, step_size_up=2), tiny_data, iterations=4,
                       batch_size=20, eval_every=2, eval_batch_size=40, normalization="standard", channels_last=True,
                       compile=compile, label_smoothing=0.2, test_time_flip=True)
        return result, model

    eager, eager_model = run(False)
    compiled, compiled_model = run(True)
    assert compiled.settings["compile"] == "default" and eager.settings["compile"] is None
    np.testing.assert_allclose(compiled.train_loss, eager.train_loss, rtol=1e-5)
    np.testing.assert_allclose(compiled.test_loss, eager.test_loss, rtol=1e-5)
    assert compiled.test_accuracy == eager.test_accuracy
    for (name, expected), actual in zip(eager_model.named_parameters(), compiled_model.parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5, msg=name)


def test_progress_is_a_text_bar_on_stderr_not_a_widget(tiny_data, capsys, monkeypatch):
    """A text bar updates in place in a notebook too; a widget would put widget state into the built pages."""
    import tqdm.auto

    def widget_bar(*args, **kwargs):
        raise AssertionError("train() must not use tqdm.auto's widget bar")

    monkeypatch.setattr(tqdm.auto, "tqdm", widget_bar)
    _quick_train(tiny_data, iterations=6, progress=True)
    captured = capsys.readouterr()
    assert "6/6" in captured.err and "train (" in captured.err and "6/6" not in captured.out
