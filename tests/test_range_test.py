"""The LR range test: sweep, recording, divergence, restoration, suggestions, result object."""

from __future__ import annotations

import copy
import math
import random
import subprocess
import sys
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from clr_lib.range_test import LRSuggestion, RangeTestResult, lr_range_test

matplotlib.use("Agg")  # the plot tests need no display

# Many hand-made curves below end while still falling, or put base_lr below the swept range: suggest()
# rightly warns about that. The warnings themselves are tested in tests/test_hardening_range_test.py.
pytestmark = pytest.mark.filterwarnings("ignore:RangeTestResult.suggest:UserWarning")

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def target_as_loss(outputs, targets):
    """A loss equal to the batch's target value, with zero gradient: scripts the loss curve."""
    return outputs.sum() * 0 + targets.double().mean()


def scripted_batches(values):
    """One batch per value; with target_as_loss the loss of that batch is the value."""
    return [(torch.zeros(1, 2), torch.tensor([float(v)])) for v in values]


def quiet_test(model=None, loader=None, criterion=target_as_loss, **kwargs):
    """lr_range_test on a tiny model with a scripted loss, no smoothing and no progress bar."""
    model = model if model is not None else nn.Linear(2, 1)
    options = dict(start_lr=1e-3, end_lr=1.0, num_iter=5, smooth_factor=0.0, progress=False)
    options.update(kwargs)
    optimizer = options.pop("optimizer", None) or torch.optim.SGD(model.parameters(), lr=0.1)
    loader = loader if loader is not None else scripted_batches([1.0])
    return lr_range_test(model, optimizer, criterion, loader, **options)


def curve(losses, lrs=None, mode="exp", **fields):
    """A RangeTestResult with hand-made smoothed losses."""
    losses = np.asarray(losses, dtype=float)
    lrs = np.logspace(-4, 0, len(losses)) if lrs is None else lrs
    return RangeTestResult(lrs=lrs, losses=losses, raw_losses=losses, mode=mode, **fields)


class ModeSpy(nn.Module):
    """Identity with one parameter; records (training, grad enabled, autocast dtype) per call."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, inputs):
        autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        self.calls.append((self.training, torch.is_grad_enabled(), autocast))
        return inputs + self.weight * 0


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def test_exponential_sweep_reaches_end_lr_exactly_at_last_iteration():
    result = quiet_test(start_lr=1e-5, end_lr=3.0, num_iter=37, mode="exp")
    i = np.arange(37)
    np.testing.assert_allclose(result.lrs, 1e-5 * (3.0 / 1e-5) ** (i / 36), rtol=1e-12)
    assert result.lrs[-1] == 3.0
    assert result.mode == "exp"


def test_linear_sweep_rises_in_equal_steps_and_reaches_end_lr_exactly():
    result = quiet_test(start_lr=0.01, end_lr=0.7, num_iter=23, mode="linear")
    i = np.arange(23)
    np.testing.assert_allclose(result.lrs, 0.01 + (0.7 - 0.01) * i / 22, rtol=1e-12)
    assert result.lrs[-1] == 0.7


def test_each_iteration_trains_at_the_recorded_lr():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def spy(outputs, targets):
        seen.append(optimizer.param_groups[0]["lr"])
        return target_as_loss(outputs, targets)

    result = quiet_test(model, criterion=spy, optimizer=optimizer, num_iter=9)
    assert seen == list(result.lrs)


def test_loader_is_cycled_when_num_iter_exceeds_its_length():
    result = quiet_test(loader=scripted_batches([1, 2, 3]), num_iter=7)
    assert list(result.raw_losses) == [1, 2, 3, 1, 2, 3, 1]


def test_a_generator_function_is_called_again_for_every_pass():
    batches = scripted_batches([1, 2, 3])
    result = quiet_test(loader=lambda: (batch for batch in batches), num_iter=5)
    assert list(result.raw_losses) == [1, 2, 3, 1, 2]


def test_a_generator_that_cannot_be_reiterated_raises_when_it_runs_out():
    batches = scripted_batches([1, 2, 3])
    with pytest.raises(ValueError, match="train_loader must yield at least one batch"):
        quiet_test(loader=(batch for batch in batches), num_iter=5)


def test_batch_fn_unpacks_batches_of_another_shape():
    batches = [{"x": torch.zeros(1, 2), "y": torch.tensor([4.0])}]
    result = quiet_test(loader=batches, batch_fn=lambda batch: (batch["x"], batch["y"]))
    assert list(result.raw_losses) == [4.0] * 5


def test_accumulation_averages_the_batch_losses_and_steps_once_per_iteration():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    handle = optimizer.register_step_post_hook(lambda *args: steps.append(1))
    result = quiet_test(model, loader=scripted_batches(range(6)), optimizer=optimizer,
                        num_iter=2, accumulation_steps=3)
    handle.remove()
    assert list(result.raw_losses) == [1.0, 4.0]  # means of batches 0-2 and 3-5
    assert len(steps) == 2


def test_accumulated_gradient_is_the_gradient_of_the_mean_batch_loss():
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    batches = [(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64))
               for _ in range(2)]
    expected = torch.autograd.grad(
        sum(nn.functional.mse_loss(model(x), y) for x, y in batches) / 2, model.weight
    )[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    grads = []
    handle = optimizer.register_step_pre_hook(lambda *args: grads.append(model.weight.grad.clone()))
    quiet_test(model, loader=batches, criterion=nn.MSELoss(), optimizer=optimizer,
               num_iter=2, accumulation_steps=2)
    handle.remove()
    torch.testing.assert_close(grads[0], expected, rtol=1e-12, atol=0)


def test_every_param_group_keeps_its_ratio_to_group_0_and_lrs_records_group_0():
    first, second, frozen = nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1)
    optimizer = torch.optim.SGD(
        [{"params": first.parameters(), "lr": 0.1},
         {"params": second.parameters(), "lr": 0.025},
         {"params": frozen.parameters(), "lr": 0.0}]
    )
    seen = []

    def spy(outputs, targets):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return target_as_loss(outputs, targets)

    result = quiet_test(first, criterion=spy, optimizer=optimizer, num_iter=6)
    np.testing.assert_allclose(np.array(seen), np.outer(result.lrs, [1.0, 0.25, 0.0]), rtol=1e-12)
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.025, 0.0]


def test_validation_loss_is_recorded_from_eval_mode_without_grad_and_train_mode_resumes():
    model = ModeSpy()
    val_batches = [(torch.zeros(1, 2), torch.tensor([2.0])), (torch.zeros(3, 2), torch.full((3,), 5.0))]
    result = quiet_test(model, val_loader=val_batches, num_iter=3)
    assert result.source == "validation"
    assert list(result.raw_losses) == [4.25] * 3  # (1 * 2 + 3 * 5) / 4: batches weighted by size
    train_call, val_call = (True, True, None), (False, False, None)
    assert model.calls == [train_call, val_call, val_call] * 3
    assert model.training


def test_accuracy_is_the_fraction_of_argmax_predictions_that_match_the_targets():
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [1.0, 0.0]])
    batches = [(logits, torch.tensor([0, 1, 1, 1])), (logits, torch.tensor([0, 1, 0, 0]))]
    result = quiet_test(ModeSpy(), loader=batches, criterion=lambda outputs, targets: outputs.sum() * 0 + 1,
                        accuracy=True, num_iter=4)
    assert list(result.raw_accuracies) == [0.5, 1.0, 0.5, 1.0]
    assert result.metric_name == "accuracy"


def test_a_callable_metric_is_recorded_smoothed_and_under_its_name():
    def half(outputs, targets):
        return 0.5

    result = quiet_test(accuracy=half, smooth_factor=0.9)
    np.testing.assert_allclose(result.accuracies, 0.5, rtol=1e-12)
    assert result.metric_name == "half"


def test_no_metric_is_recorded_unless_asked_for():
    result = quiet_test()
    assert result.accuracies is None and result.raw_accuracies is None


def test_smoothed_loss_is_the_debiased_exponential_moving_average():
    raw = [3.0, 1.0, 4.0, 1.0, 5.0]
    result = quiet_test(loader=scripted_batches(raw), smooth_factor=0.9)
    beta, average, expected = 0.9, 0.0, []
    for i, loss in enumerate(raw):
        average = beta * average + (1 - beta) * loss
        expected.append(average / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    assert list(result.raw_losses) == raw


@pytest.mark.parametrize("amp_dtype, expected", [(None, torch.bfloat16), (torch.float16, torch.float16)])
def test_amp_runs_forward_passes_under_autocast(amp_dtype, expected):
    model = ModeSpy()
    quiet_test(model, criterion=lambda outputs, targets: (outputs.float() - targets).pow(2).mean(),
               amp=True, amp_dtype=amp_dtype, num_iter=3)
    assert [call[2] for call in model.calls] == [expected] * 3


@pytest.mark.parametrize("amp_dtype, scaled", [(torch.float16, True), (torch.bfloat16, False)])
def test_float16_amp_scales_the_loss_with_a_grad_scaler(monkeypatch, amp_dtype, scaled):
    uses = []

    class RecordingScaler(torch.amp.GradScaler):
        def scale(self, outputs):
            uses.append(self.is_enabled())
            return super().scale(outputs)

    monkeypatch.setattr(torch.amp, "GradScaler", RecordingScaler)
    quiet_test(ModeSpy(), criterion=lambda outputs, targets: (outputs.float() - targets).pow(2).mean(),
               amp=True, amp_dtype=amp_dtype, num_iter=3)
    assert uses == [scaled] * 3


# --------------------------------------------------------------------------------------------
# Divergence
# --------------------------------------------------------------------------------------------


def test_a_completed_run_reports_no_divergence():
    result = quiet_test(num_iter=6)
    assert not result.diverged and result.stopped_at is None and len(result.lrs) == 6


def test_loss_above_threshold_times_best_stops_the_test():
    result = quiet_test(loader=scripted_batches([10, 10, 49, 51, 1, 1]), num_iter=6,
                        diverge_threshold=5)
    assert result.diverged and result.stopped_at == 3
    assert len(result.lrs) == len(result.losses) == 4 and result.losses[-1] == 51


def test_loss_shifted_to_be_negative_diverges_only_after_rising_k_minus_1_times_its_magnitude():
    # best = -10, k = 5: diverged when loss - (-10) > 4 * |-10|, i.e. loss > 30
    result = quiet_test(loader=scripted_batches([-10, -10, 29, 31, -10, -10]), num_iter=6,
                        diverge_threshold=5)
    assert result.diverged and result.stopped_at == 3


def test_a_steady_negative_loss_is_not_divergence():
    result = quiet_test(loader=scripted_batches([-10.0, -10.5, -9.5]), num_iter=9, smooth_factor=0.98)
    assert not result.diverged


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_stops_the_test(bad):
    result = quiet_test(loader=scripted_batches([1, 1, bad, 1]), num_iter=4)
    assert result.diverged and result.stopped_at == 2


# --------------------------------------------------------------------------------------------
# A problem with a known critical learning rate: least squares, SGD diverges above 2 / lambda
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def least_squares():
    """X w ~ y, MSELoss (mean over N): L(w) = |X w - y|^2 / N, Hessian H = 2 X^T X / N."""
    generator = torch.Generator().manual_seed(0)
    n_samples, n_features = 256, 8
    feature_scales = torch.logspace(0, 0.5, n_features, dtype=torch.float64)  # condition number 10
    X = torch.randn(n_samples, n_features, generator=generator, dtype=torch.float64) * feature_scales
    y = X @ torch.randn(n_features, 1, generator=generator, dtype=torch.float64)
    y += 0.5 * torch.randn(n_samples, 1, generator=generator, dtype=torch.float64)
    hessian = 2 / n_samples * X.T @ X
    critical_lr = 2 / torch.linalg.eigvalsh(hessian).max().item()
    return X, y, critical_lr


def linear_model(n_features):
    model = nn.Linear(n_features, 1, bias=False).double()
    nn.init.zeros_(model.weight)
    return model


@pytest.mark.parametrize("factor, diverges", [(0.95, False), (1.05, True)])
def test_full_batch_gradient_descent_diverges_just_above_two_over_lambda(least_squares, factor, diverges):
    X, y, critical_lr = least_squares
    model = linear_model(X.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=factor * critical_lr)
    for _ in range(400):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
        optimizer.step()
    assert (loss.item() > 1e6) == diverges


@pytest.fixture(scope="module")
def least_squares_range_test(least_squares):
    X, y, critical_lr = least_squares
    model = linear_model(X.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(X[i : i + 32], y[i : i + 32]) for i in range(0, len(X), 32)]
    result = lr_range_test(model, optimizer, nn.MSELoss(), loader, start_lr=1e-3 * critical_lr,
                           end_lr=10 * critical_lr, num_iter=1000, progress=False)
    return result, critical_lr


def test_suggested_bounds_lie_below_the_critical_lr(least_squares_range_test):
    # The default loss rule is now fast.ai's minimum / 10 (it used to be the minimum itself, which on a
    # full-batch sweep lies ~5x above the critical LR). This mini-batch sweep's noise floor puts the
    # minimum at ~0.43x the critical LR, so max_lr = minimum / 10 lands at ~0.043x: below the critical
    # LR, as required, but no longer within a factor of ten of it (see test_hardening_range_test.py).
    result, critical_lr = least_squares_range_test
    suggestion = result.suggest()
    assert critical_lr / 100 < suggestion.max_lr < critical_lr
    assert suggestion.max_lr == suggestion.min_over_10_lr == result.lrs[np.argmin(result.losses)] / 10
    assert suggestion.base_lr == suggestion.max_lr / 4 < critical_lr


def test_sweeping_well_past_the_critical_lr_reports_divergence(least_squares_range_test):
    result, critical_lr = least_squares_range_test
    assert result.diverged
    assert result.stopped_at == len(result.lrs) - 1 < 999
    assert critical_lr < result.lrs[-1] < 10 * critical_lr


# --------------------------------------------------------------------------------------------
# Restoration of model, optimizer and random-number state
# --------------------------------------------------------------------------------------------


def batchnorm_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    model[3].eval()  # a submodule in eval mode must stay so
    return model


def sgd_momentum(model):
    return torch.optim.SGD(
        [{"params": model[0].parameters(), "initial_lr": 0.05, "max_momentum": 0.95},
         {"params": [*model[1].parameters(), *model[4].parameters()], "lr": 0.01}],
        lr=0.05, momentum=0.9,
    )


def adam(model):
    return torch.optim.Adam(
        [{"params": model[0].parameters(), "initial_lr": 0.001},
         {"params": [*model[1].parameters(), *model[4].parameters()]}],
        lr=0.001,
    )


def warmed_up(make_optimizer):
    """Model and optimizer after three training steps, so the optimizer has state and grads exist."""
    model = batchnorm_model()
    optimizer = make_optimizer(model)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 3, (16,))).backward()
        optimizer.step()
    return model, optimizer


def noisy_batch(batch):
    """Consumes every random-number generator, so that restoring them is tested."""
    inputs, targets = batch
    noise = random.random() + np.random.rand() + torch.rand(()).item()
    return inputs + 1e-3 * noise, targets


def capture(model, optimizer):
    return {
        "tensors": {name: t.clone() for name, t in model.state_dict().items()},
        "grads": {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()},
        "modes": {name: module.training for name, module in model.named_modules()},
        "optimizer_state": copy.deepcopy(optimizer.state_dict()["state"]),
        "param_groups": [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
                         for g in optimizer.param_groups],
        "params": [list(g["params"]) for g in optimizer.param_groups],
        "torch_rng": torch.get_rng_state(),
        "random_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
    }


def assert_same_tensors(before, after):
    assert before.keys() == after.keys()
    for key in before:
        if isinstance(before[key], dict):
            assert_same_tensors(before[key], after[key])
        elif isinstance(before[key], torch.Tensor):
            assert torch.equal(before[key], after[key]), key
        else:
            assert before[key] == after[key], key


def assert_restored(before, after):
    assert_same_tensors(before["tensors"], after["tensors"])
    assert_same_tensors(before["grads"], after["grads"])
    assert_same_tensors(before["optimizer_state"], after["optimizer_state"])
    assert before["modes"] == after["modes"]
    assert before["param_groups"] == after["param_groups"]
    assert all(a is b for old, new in zip(before["params"], after["params"]) for a, b in zip(old, new))
    assert torch.equal(before["torch_rng"], after["torch_rng"])
    assert before["random_rng"] == after["random_rng"]
    old_numpy, new_numpy = before["numpy_rng"], after["numpy_rng"]
    assert old_numpy[0] == new_numpy[0] and old_numpy[2:] == new_numpy[2:]
    np.testing.assert_array_equal(old_numpy[1], new_numpy[1])


def failing_on_call(exception, call):
    calls = []

    def criterion(outputs, targets):
        calls.append(1)
        if len(calls) == call:
            raise exception("raised inside the loss")
        return nn.functional.cross_entropy(outputs, targets)

    return criterion


SCENARIOS = {
    "completed": dict(end_lr=1e-2),
    "diverged": dict(end_lr=1e5),
    "exception": dict(end_lr=1e-2, criterion=lambda: failing_on_call(RuntimeError, 4), raises=RuntimeError),
    "interrupt": dict(end_lr=1e-2, criterion=lambda: failing_on_call(KeyboardInterrupt, 4),
                      raises=KeyboardInterrupt),
}


@pytest.mark.parametrize("make_optimizer", [sgd_momentum, adam])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_model_optimizer_modes_and_rngs_are_restored_exactly(scenario, make_optimizer):
    options = dict(SCENARIOS[scenario])
    raises = options.pop("raises", None)
    criterion = options.pop("criterion", nn.CrossEntropyLoss)()
    model, optimizer = warmed_up(make_optimizer)
    generator = torch.Generator().manual_seed(1)
    loader = [(torch.randn(16, 4, generator=generator), torch.randint(0, 3, (16,), generator=generator))
              for _ in range(4)]
    before = capture(model, optimizer)
    keys_before = [set(group) for group in optimizer.param_groups]
    # something that adds a key during the test, as a scheduler created in a hook would
    handle = optimizer.register_step_post_hook(lambda opt, *args: opt.param_groups[1].setdefault("initial_lr", 1))

    def run():
        return lr_range_test(model, optimizer, criterion, loader, start_lr=1e-4, num_iter=30,
                             batch_fn=noisy_batch, accuracy=True, progress=False, **options)

    if raises:
        with pytest.raises(raises, match="raised inside the loss"):
            run()
    else:
        assert run().diverged == (scenario == "diverged")
    handle.remove()
    assert_restored(before, capture(model, optimizer))
    assert [set(group) for group in optimizer.param_groups] == keys_before
    assert "initial_lr" not in optimizer.param_groups[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float16_amp_run_moves_batches_to_the_model_and_restores_it():
    model = batchnorm_model().cuda()
    optimizer = sgd_momentum(model)
    loader = [(torch.randn(16, 4), torch.randint(0, 3, (16,))) for _ in range(4)]  # CPU batches
    before = capture(model, optimizer)
    cuda_rng = torch.cuda.get_rng_state()
    result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, start_lr=1e-4, end_lr=1e-2,
                           num_iter=20, amp=True, progress=False)
    assert len(result.lrs) == 20 and np.isfinite(result.raw_losses).all()
    assert_restored(before, capture(model, optimizer))
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())


# --------------------------------------------------------------------------------------------
# Suggestions on hand-made curves
# --------------------------------------------------------------------------------------------

U_LRS = np.logspace(-4, 0, 81)  # log10 steps of 0.05
U_LOSSES = (np.log10(U_LRS) + 1.5) ** 2  # minimum at log10(lr) = -1.5, index 50


def test_max_lr_is_a_tenth_of_the_lr_at_the_minimum_of_the_smoothed_loss_and_base_lr_a_quarter_of_it():
    # The default loss rule changed from the minimum itself to fast.ai's minimum / 10: the minimum lies
    # past the largest LR that converges (see RangeTestResult.suggest and test_hardening_range_test.py).
    suggestion = curve(U_LOSSES, U_LRS).suggest()
    assert suggestion.max_lr == U_LRS[50] / 10 and suggestion.max_lr_metric == "loss"
    assert suggestion.base_lr == U_LRS[50] / 10 / 4


def test_base_divisor_sets_base_lr():
    assert curve(U_LOSSES, U_LRS).suggest(base_divisor=3).base_lr == U_LRS[50] / 10 / 3


def test_max_lr_is_at_the_maximum_of_the_smoothed_accuracy_when_it_was_recorded():
    accuracies = np.where(np.arange(81) <= 30, np.arange(81), 60 - np.arange(81)) / 100.0
    result = curve(U_LOSSES, U_LRS, accuracies=accuracies, raw_accuracies=accuracies, metric_name="accuracy")
    assert result.suggest().max_lr == U_LRS[30] and result.suggest().max_lr_metric == "accuracy"
    assert result.suggest(metric="loss").max_lr == U_LRS[50] / 10  # the loss rule: minimum / 10


def test_minimum_over_10_is_the_lr_of_the_lowest_loss_divided_by_10():
    assert curve(U_LOSSES, U_LRS).suggest().min_over_10_lr == U_LRS[50] / 10


def test_valley_is_about_halfway_down_the_longest_descent():
    # descent from index 0 to 50: s + floor(50 / 3) + floor(50 / 6) = 24
    assert curve(U_LOSSES, U_LRS).suggest().valley_lr == U_LRS[24]


def test_valley_of_a_two_point_descent_is_its_first_point_not_the_last_lr():
    losses = np.array([2.0, 1.0, 2.0, 3.0, 4.0])  # fast.ai's start index would be -1 here
    assert curve(losses).suggest().valley_lr == curve(losses).lrs[0]


def test_valley_skips_a_bump_inside_a_longer_descent():
    losses = np.array([9, 8, 7, 7.5, 6, 5, 4, 3, 2, 1, 2, 3.0])  # longest descent 9..1 without 7.5
    assert curve(losses).suggest().valley_lr == curve(losses).lrs[0 + 9 // 3 + 9 // 6]


def test_steepest_is_the_most_negative_slope_against_log10_lr_in_exp_mode():
    losses = -np.tanh(2 * (np.log10(U_LRS) + 2))  # steepest at log10(lr) = -2, index 40
    assert curve(losses, U_LRS).suggest().steepest_lr == U_LRS[40]


def test_steepest_is_the_most_negative_slope_against_lr_in_linear_mode():
    lrs = np.linspace(0.1, 0.9, 81)
    losses = -np.tanh(10 * (lrs - 0.5))  # steepest against lr at 0.5, index 40
    assert curve(losses, lrs, mode="linear").suggest().steepest_lr == lrs[40]
    assert curve(losses, lrs, mode="exp").suggest().steepest_lr > lrs[40]  # against log10(lr) it moves


def test_steepest_ignores_the_first_and_last_tenth_of_the_curve():
    losses = -np.tanh((np.arange(41) - 20) / 4)  # steepest at index 20; 41 points: skip 4 at each end
    losses[:2], losses[-2:] = [100, 50], [-50, -100]  # much steeper drops inside the skipped ends
    lrs = np.logspace(-4, 0, 41)
    assert curve(losses, lrs).suggest().steepest_lr == lrs[20]


def test_steepest_is_on_the_descent_to_the_minimum_not_after_a_blow_up():
    # falls (steepest at 30), bottoms out at 50, jumps up at 61 and drops back part way, more steeply
    lrs = np.logspace(-5, 0, 101)
    index = np.arange(101)
    descent = 2.3 - 0.25 * (1 + np.tanh((index - 30) / 6))
    after = descent[50] + 0.4 - 0.1 * np.clip(index - 70, 0, 3)  # 0.1 per point: steeper than the descent
    losses = np.where(index <= 60, np.maximum(descent, descent[50]), after)
    assert int(np.argmin(losses)) <= 50 and np.min(np.diff(losses[60:])) < np.min(np.diff(losses[:51]))
    suggestion = curve(losses, lrs).suggest()
    assert suggestion.steepest_lr == lrs[30]
    assert suggestion.steepest_lr < lrs[np.argmin(losses)]  # before the minimum (max_lr is now minimum / 10)


def test_steepest_is_not_captured_by_one_outlier():
    losses = -np.tanh((np.arange(121) - 60) / 15)  # steepest at index 60
    losses[20] += 0.3  # one bad batch: the unsmoothed slope is steepest just after it
    lrs = np.logspace(-4, 0, 121)
    assert np.argmin(np.gradient(losses)) == 21
    assert curve(losses, lrs).suggest().steepest_lr == lrs[60]


def test_suggestions_ignore_a_non_finite_diverged_last_point():
    losses = np.r_[U_LOSSES[:60], np.nan]
    assert curve(losses, U_LRS[:61]).suggest().max_lr == U_LRS[50] / 10


@pytest.mark.parametrize("losses", [[3, 2, 1, 2], [3, 2, 1, 2, np.inf, np.nan], [np.nan] * 8])
def test_too_few_finite_points_raise_value_error(losses):
    with pytest.raises(ValueError, match="at least 5 finite smoothed losses"):
        curve(losses).suggest()


def test_five_points_are_enough():
    assert isinstance(curve([5.0, 4.0, 3.0, 2.0, 3.0]).suggest(), LRSuggestion)


@settings(max_examples=80, deadline=None, database=None)
@given(
    losses=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=60),
    mode=st.sampled_from(["exp", "linear"]),
)
def test_every_suggestion_comes_from_the_curve_on_any_noisy_curve(losses, mode):
    lrs = np.logspace(-5, 1, len(losses)) if mode == "exp" else np.linspace(0.01, 1, len(losses))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suggestion = curve(losses, lrs, mode=mode).suggest()
    for lr in (suggestion.steepest_lr, suggestion.valley_lr):
        assert lr in lrs
    assert suggestion.min_over_10_lr in lrs / 10
    # max_lr (the loss rule) is minimum / 10, raised to the lowest LR swept: never outside the sweep
    assert suggestion.max_lr == max(suggestion.min_over_10_lr, lrs[0]) and lrs[0] <= suggestion.max_lr <= lrs[-1]
    assert suggestion.steepest_lr not in (lrs[0], lrs[-1])
    outside = not all(lrs[0] <= lr <= lrs[-1] for lr in (suggestion.base_lr, suggestion.min_over_10_lr))
    if outside or suggestion.max_lr != suggestion.min_over_10_lr:  # never outside the sweep silently
        assert any("outside the swept range" in str(warning.message) for warning in caught)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [(dict(base_divisor=1.0), "base_divisor must be a finite number > 1"),
     (dict(base_divisor=math.nan), "base_divisor"),
     (dict(metric="accuracy"), "metric must be 'loss' (no metric was recorded), got 'accuracy'"),
     (dict(metric="lr"), "metric must be")],
)
def test_bad_suggest_arguments_raise_value_error(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        curve(U_LOSSES, U_LRS).suggest(**kwargs)


# --------------------------------------------------------------------------------------------
# The result object: serialisation and plot
# --------------------------------------------------------------------------------------------


def assert_same_result(a, b):
    for name in ("lrs", "losses", "raw_losses", "accuracies", "raw_accuracies"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("mode", "metric_name", "smooth_factor", "source", "diverged", "stopped_at"):
        assert getattr(a, name) == getattr(b, name)


def test_to_json_and_from_json_round_trip_exactly():
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    result = quiet_test(ModeSpy(), loader=[(logits, torch.tensor([0, 0]))], criterion=nn.CrossEntropyLoss(),
                        accuracy=True, num_iter=7, smooth_factor=0.9)
    assert_same_result(RangeTestResult.from_json(result.to_json()), result)
    assert_same_result(RangeTestResult.from_dict(result.to_dict()), result)


def test_to_json_round_trips_a_diverged_run_ending_on_nan():
    result = quiet_test(loader=scripted_batches([1, 1, math.nan]), num_iter=4)
    assert result.diverged
    assert_same_result(RangeTestResult.from_json(result.to_json()), result)


def test_plot_returns_axes_with_labelled_log_lr_axis_and_marked_suggestions():
    ax = curve(U_LOSSES, U_LRS).plot()
    try:
        assert isinstance(ax, plt.Axes)
        assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
        assert ax.get_ylabel() == "smoothed train loss (criterion units)" and ax.get_title()
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert [label.split(" =")[0] for label in labels] == [
            "smoothed train loss", "max_lr", "base_lr", "steepest", "valley", "min/10"
        ]
        assert len(ax.lines) == 6
    finally:
        plt.close(ax.figure)


def test_plot_of_accuracy_on_given_axes_with_linear_lr_axis_and_no_suggestions():
    lrs = np.linspace(0.1, 1.0, 10)
    result = curve(np.ones(10), lrs, mode="linear", accuracies=np.linspace(0, 1, 10),
                   raw_accuracies=np.linspace(0, 1, 10), metric_name="accuracy")
    figure, given_ax = plt.subplots()
    try:
        ax = result.plot(ax=given_ax, metric="accuracy", show_suggestions=False)
        assert ax is given_ax and ax.get_xscale() == "linear"
        assert ax.get_ylabel() == "smoothed train accuracy (fraction correct)" and len(ax.lines) == 1
    finally:
        plt.close(figure)


@pytest.mark.parametrize("metric", ["accuracy", "lr"])
def test_plot_of_an_unknown_or_unrecorded_metric_raises_value_error(metric):
    with pytest.raises(ValueError, match="metric must be"):
        curve(U_LOSSES, U_LRS).plot(metric=metric)


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, clr_lib.range_test; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------------------------


def test_progress_false_prints_nothing(capsys):
    quiet_test(progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_is_shown_by_default(capsys):
    model = nn.Linear(2, 1)
    lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), target_as_loss, scripted_batches([1]),
                  start_lr=1e-3, end_lr=1.0, num_iter=3)
    assert "LR range test" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(start_lr=0), "start_lr must be a positive finite learning rate, got 0"),
        (dict(start_lr=-1e-3), "start_lr must be a positive"),
        (dict(start_lr="1e-3"), "start_lr must be a positive finite learning rate, got '1e-3'"),
        (dict(start_lr=math.nan), "start_lr must be a positive finite learning rate, got nan"),
        (dict(start_lr=math.inf, end_lr=math.inf), "start_lr"),
        (dict(start_lr=1e-3, end_lr=1e-3), "end_lr must be a finite learning rate greater than start_lr"),
        (dict(start_lr=1e-3, end_lr=1e-4), "end_lr must be"),
        (dict(end_lr=math.inf), "end_lr must be a finite"),
        (dict(num_iter=1), "num_iter must be a whole number of iterations >= 2, got 1"),
        (dict(num_iter=2.5), "num_iter must be a whole number"),
        (dict(num_iter=True), "num_iter"),
        (dict(mode="cosine"), "mode must be one of 'exp', 'linear', got 'cosine'"),
        (dict(smooth_factor=1.0), r"smooth_factor must be a number in \[0, 1\), got 1.0"),
        (dict(smooth_factor=-0.1), "smooth_factor"),
        (dict(smooth_factor=math.nan), "smooth_factor"),
        (dict(diverge_threshold=1.0), "diverge_threshold must be a finite number > 1"),
        (dict(diverge_threshold=math.inf), "diverge_threshold"),
        (dict(diverge_threshold=math.nan), "diverge_threshold"),
        (dict(accumulation_steps=0), "accumulation_steps must be a positive whole number of batches, got 0"),
        (dict(accumulation_steps=1.5), "accumulation_steps"),
        (dict(loader=[]), "train_loader must yield at least one batch, got an empty list"),
        (dict(loader=lambda: iter([])), "train_loader must yield at least one batch"),
        (dict(val_loader=[]), "val_loader must yield at least one batch"),
        (dict(val_loader=lambda: iter([])), "val_loader must yield at least one batch"),
        (dict(accuracy="top1"), "accuracy must be True, False or a callable"),
        (dict(amp_dtype=torch.float16), "amp_dtype must be torch.float16 or torch.bfloat16 with amp=True"),
        (dict(amp=True, amp_dtype=torch.float32), "amp_dtype"),
        (dict(loader=[torch.zeros(1, 2)]), "a batch must be an \\(inputs, targets\\) pair"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        quiet_test(**kwargs)


def test_several_param_groups_need_a_positive_lr_in_group_0():
    first, second = nn.Linear(2, 1), nn.Linear(2, 1)
    optimizer = torch.optim.SGD([{"params": first.parameters(), "lr": 0.0},
                                 {"params": second.parameters(), "lr": 0.1}])
    with pytest.raises(ValueError, match=r"optimizer.param_groups\[0\]\['lr'\] must be a positive"):
        quiet_test(first, optimizer=optimizer)
