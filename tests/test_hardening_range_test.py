"""Hardening of the LR range test: suggestions that do not diverge, warnings instead of silent nonsense,
and arguments checked before anything is allocated.

The suggestion tests use least squares, where the largest stable learning rate is known exactly: with
MSELoss the Hessian of a batch is H = 2 X^T X / n, and gradient descent diverges above 2 / lambda_max(H).
Every batch here is built with the same Hessian (eigenvalues chosen, lambda_max = 1), so plain gradient
descent and SGD over the mini-batches share that threshold exactly: 2.0.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from clr_lib import cyclic, lr_range_test
from clr_lib.range_test import MAX_RANGE_TEST_ITERATIONS, RangeTestResult

N_FEATURES, BATCH, N_BATCHES = 8, 32, 8
CRITICAL_LR = 2.0  # 2 / lambda_max with lambda_max = 1


@pytest.fixture(autouse=True)
def one_thread():
    """These problems are tiny: one intra-op thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def least_squares(seed, condition_number, noise, full_batch, n_batches=N_BATCHES):
    """Batches (X_b, y_b) whose Hessians 2 X_b^T X_b / n_b all equal V diag(lambda) V^T, lambda from 1
    down to 1 / condition_number; y = X w* + noise."""
    generator = torch.Generator().manual_seed(seed)
    eigenvalues = torch.logspace(0, -math.log10(condition_number), N_FEATURES, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(N_FEATURES, N_FEATURES, generator=generator, dtype=torch.float64))
    w_star = torch.randn(N_FEATURES, 1, generator=generator, dtype=torch.float64)
    batches = []
    for _ in range(n_batches):
        q, _ = torch.linalg.qr(torch.randn(BATCH, N_FEATURES, generator=generator, dtype=torch.float64))
        inputs = (BATCH / 2) ** 0.5 * q * eigenvalues.sqrt() @ basis.T
        targets = inputs @ w_star + noise * torch.randn(BATCH, 1, generator=generator, dtype=torch.float64)
        batches.append((inputs, targets))
    if full_batch:
        batches = [(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))]
    return batches


def zero_model():
    model = nn.Linear(N_FEATURES, 1, bias=False).double()
    nn.init.zeros_(model.weight)
    return model


def sweep(batches, num_iter=300, **options):
    """fast.ai-style exponential sweep over six decades, from 1e-4 to 100 times the critical LR."""
    model = zero_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return lr_range_test(model, optimizer, nn.MSELoss(), batches, start_lr=1e-4 * CRITICAL_LR,
                         end_lr=100 * CRITICAL_LR, num_iter=num_iter, progress=False, **options)


def train_loss(batches, schedule, steps):
    """Plain SGD over the batches with lr = schedule(step); the final full-data loss."""
    model = zero_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule(0))
    for step in range(steps):
        inputs, targets = batches[step % len(batches)]
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
    with torch.no_grad():
        return float(sum(nn.functional.mse_loss(model(x), y) for x, y in batches) / len(batches))


def quietly_suggest(result, **options):
    """suggest(), failing the test on any warning (these sweeps are well-posed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return result.suggest(**options)


# --- the threshold is exact ----------------------------------------------------------------------------


@pytest.mark.parametrize("full_batch", [True, False], ids=["gradient descent", "SGD"])
def test_the_problem_diverges_just_above_two_over_lambda_max_and_converges_just_below(full_batch):
    batches = least_squares(0, 10, 0.1, full_batch)
    for inputs, _ in batches:
        hessian = 2 / len(inputs) * inputs.T @ inputs
        assert torch.linalg.eigvalsh(hessian).max().item() == pytest.approx(1.0, rel=1e-12)
    assert train_loss(batches, lambda step: 0.98 * CRITICAL_LR, 400) < 1.0
    assert train_loss(batches, lambda step: 1.02 * CRITICAL_LR, 400) > 1e2


# --- the default loss-based suggestion stays below the threshold ---------------------------------------

GRID = [
    (seed, condition_number, noise, full_batch, 300)
    for seed in (0, 1, 2)
    for condition_number in (1, 10, 100)
    for noise in (0.1, 1.0)
    for full_batch in (True, False)
]
GRID += [(0, condition_number, 0.0, full_batch, 300) for condition_number in (10, 100) for full_batch in (True, False)]
GRID += [(0, 10, 0.1, full_batch, num_iter) for num_iter in (100, 1000) for full_batch in (True, False)]


@pytest.mark.parametrize(
    ("seed", "condition_number", "noise", "full_batch", "num_iter"),
    GRID,
    ids=[f"seed{s}-cond{c}-noise{n}-{'full' if f else 'mini'}-{i}it" for s, c, n, f, i in GRID],
)
def test_both_default_bounds_lie_below_the_divergence_threshold(seed, condition_number, noise, full_batch, num_iter):
    result = sweep(least_squares(seed, condition_number, noise, full_batch), num_iter=num_iter)
    suggestion = quietly_suggest(result)
    assert suggestion.max_lr_metric == "loss"
    assert suggestion.max_lr == result.lrs[np.argmin(result.losses)] / 10 == suggestion.min_over_10_lr
    assert suggestion.base_lr == suggestion.max_lr / 4
    # measured over this grid: max_lr between 0.011 and 0.71 times the threshold, base_lr 0.003 to 0.18
    assert CRITICAL_LR / 200 < suggestion.max_lr < 0.75 * CRITICAL_LR
    assert suggestion.base_lr < suggestion.max_lr < CRITICAL_LR
    assert suggestion.steepest_lr < CRITICAL_LR and suggestion.valley_lr < CRITICAL_LR
    if full_batch:  # the old default, the minimum itself, lies past the threshold (2 to 7 times it here)
        assert result.lrs[np.argmin(result.losses)] > CRITICAL_LR


@pytest.mark.parametrize("full_batch", [True, False], ids=["gradient descent", "SGD"])
def test_training_between_the_suggested_bounds_converges(full_batch):
    batches = least_squares(1, 100, 0.1, full_batch)
    suggestion = quietly_suggest(sweep(batches))
    start = train_loss(batches, lambda step: 0.0, 1)
    assert train_loss(batches, lambda step: suggestion.max_lr, 300) < start / 10
    schedule = cyclic(suggestion.base_lr, suggestion.max_lr, step_size_up=25)
    assert train_loss(batches, schedule, 300) < start / 10
    assert train_loss(batches, lambda step: 10 * suggestion.max_lr, 300) > start  # the old default: diverges


def test_an_exactly_solvable_problem_whose_loss_never_turns_up_warns():
    # all eigenvalues 1 and no noise: at lr = 1 one step solves the problem exactly, the error is 0.0 and
    # stays 0.0, so nothing can diverge and the smoothed loss is still falling at end_lr
    result = sweep(least_squares(0, 1, 0.0, True))
    assert not result.diverged and int(np.argmin(result.losses)) == len(result.losses) - 1
    with pytest.warns(UserWarning, match="the smoothed loss is still falling at the last LR swept"):
        suggestion = result.suggest()
    assert suggestion.max_lr == result.lrs[-1] / 10


# --- the accuracy-based suggestion keeps its meaning ---------------------------------------------------


def r_squared(outputs, targets):
    """Held-out coefficient of determination: the "accuracy" of a regression (1 is perfect)."""
    return float(1 - ((outputs - targets) ** 2).mean() / ((targets - targets.mean()) ** 2).mean())


@pytest.mark.parametrize("condition_number", [1, 10, 100])
def test_the_accuracy_reading_is_the_peak_of_the_smoothed_held_out_metric(condition_number):
    batches = least_squares(2, condition_number, 0.5, False, n_batches=16)
    train, held_out = batches[:8], [(torch.cat([x for x, _ in batches[8:]]), torch.cat([y for _, y in batches[8:]]))]
    result = sweep(train, accuracy=r_squared, val_loader=held_out)
    suggestion = quietly_suggest(result)
    assert suggestion.max_lr_metric == "accuracy"
    assert suggestion.max_lr == result.lrs[np.argmax(result.accuracies)]
    assert result.lrs[0] <= suggestion.base_lr < suggestion.max_lr <= result.lrs[-1]
    # Smith's reading marks where improvement stops, which on least squares is past the threshold, like
    # the loss minimum: the loss rule (minimum / 10) is the one that stays below it
    by_loss = quietly_suggest(result, metric="loss")
    assert by_loss.max_lr < CRITICAL_LR < 10 * suggestion.max_lr
    assert suggestion.max_lr > by_loss.max_lr


# --- warnings instead of silent nonsense ------------------------------------------------------------------


def hand_made(losses, accuracies=None, lrs=None, **fields):
    losses = np.asarray(losses, dtype=float)
    lrs = np.logspace(-4, 0, len(losses)) if lrs is None else np.asarray(lrs, dtype=float)
    if accuracies is not None:
        accuracies = np.asarray(accuracies, dtype=float)
        fields.update(accuracies=accuracies, raw_accuracies=accuracies, metric_name="accuracy")
    return RangeTestResult(lrs=lrs, losses=losses, raw_losses=losses, mode="exp", **fields)


U_LRS = np.logspace(-4, 0, 81)
U_LOSSES = (np.log10(U_LRS) + 1.5) ** 2  # lowest at index 50


def test_a_clean_curve_gives_no_warning():
    suggestion = quietly_suggest(hand_made(U_LOSSES, lrs=U_LRS))
    assert suggestion.max_lr == U_LRS[50] / 10


def test_a_loss_that_never_falls_warns_and_keeps_max_lr_inside_the_sweep():
    result = hand_made(np.linspace(1.0, 3.0, 40))
    with pytest.warns(UserWarning, match="the smoothed loss never falls below its value at the first LR") as record:
        suggestion = result.suggest()
    assert suggestion.max_lr == result.lrs[0]  # minimum / 10 = lrs[0] / 10 is raised to the lowest LR swept
    message = str(record[0].message)
    assert "raised to it" in message and "base_lr = 2.5e-05 lies outside the swept range" in message


def test_a_minimum_within_a_decade_of_the_start_warns_that_max_lr_was_raised():
    losses = (np.log10(U_LRS) + 3.5) ** 2  # lowest at 10**-3.5: minimum / 10 = 10**-4.5 < 10**-4
    with pytest.warns(UserWarning, match=r"max_lr = minimum / 10 = 3.16e-05 lies below the lowest LR swept \(0.0001\)"):
        suggestion = hand_made(losses, lrs=U_LRS).suggest()
    assert suggestion.max_lr == U_LRS[0]


def test_a_base_lr_below_the_sweep_warns():
    losses = (np.log10(U_LRS) + 2.6) ** 2  # max_lr = 10**-3.6 in range, base_lr = max_lr / 4 below 1e-4
    with pytest.warns(UserWarning, match="base_lr = 6.28e-05 lies outside the swept range"):
        hand_made(losses, lrs=U_LRS).suggest()


def test_all_nan_accuracies_warn_and_fall_back_to_the_loss():
    result = hand_made(U_LOSSES, accuracies=np.full(81, np.nan), lrs=U_LRS)
    with pytest.warns(UserWarning, match="the smoothed accuracy is NaN at all 81 points"):
        suggestion = result.suggest()
    assert suggestion.max_lr_metric == "loss" and suggestion.max_lr == U_LRS[50] / 10


def test_nan_accuracies_are_skipped_not_taken_as_the_peak():
    accuracies = np.where(np.arange(81) <= 30, np.arange(81), 60 - np.arange(81)) / 100.0
    accuracies[10] = np.nan  # numpy's argmax would return the index of the NaN
    assert np.argmax(accuracies) == 10
    suggestion = quietly_suggest(hand_made(U_LOSSES, accuracies=accuracies, lrs=U_LRS))
    assert suggestion.max_lr == U_LRS[30]


def test_an_accuracy_that_never_rises_warns():
    with pytest.warns(UserWarning, match="the smoothed accuracy never rises above its value at the first LR"):
        suggestion = hand_made(U_LOSSES, accuracies=np.linspace(0.5, 0.1, 81), lrs=U_LRS).suggest()
    assert suggestion.max_lr == U_LRS[0]


def test_an_accuracy_still_rising_at_the_end_warns():
    with pytest.warns(UserWarning, match="the smoothed accuracy is still rising at the last LR swept"):
        suggestion = hand_made(U_LOSSES, accuracies=np.linspace(0.1, 0.9, 81), lrs=U_LRS).suggest()
    assert suggestion.max_lr == U_LRS[-1]


def test_a_peak_just_before_a_non_finite_blow_up_is_no_warning():
    losses = np.r_[np.linspace(3.0, 1.0, 60), np.nan]  # fell until the loss blew up to NaN: a real minimum
    suggestion = quietly_suggest(hand_made(losses, diverged=True, stopped_at=60))
    assert suggestion.max_lr == np.logspace(-4, 0, 61)[59] / 10


# --- arguments checked before anything is allocated ------------------------------------------------------


def scripted_loss(outputs, targets):
    return outputs.sum() * 0 + targets.double().mean()


def quick(**options):
    model = nn.Linear(2, 1)
    arguments = dict(criterion=scripted_loss, train_loader=[(torch.zeros(1, 2), torch.tensor([1.0]))],
                     start_lr=1e-3, end_lr=1.0, num_iter=5, smooth_factor=0.0, progress=False)
    arguments.update(options)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return lr_range_test(model, optimizer, **arguments)


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (dict(num_iter=10**13), ("num_iter must be a whole number of iterations from 2 to 1,000,000",
                                 "got 10000000000000")),
        (dict(num_iter=10**400), ("num_iter", "an integer of about 401 digits")),
        (dict(num_iter=MAX_RANGE_TEST_ITERATIONS + 1), ("num_iter", "got 1000001")),
        (dict(num_iter=True), ("num_iter", "got True")),
        (dict(amp="yes"), ("amp must be True or False", "'yes'")),
        (dict(progress="False"), ("progress must be True or False", "'False'")),
        (dict(criterion=None), ("criterion must be a callable", "got None")),
        (dict(batch_fn=3), ("batch_fn must be None or a callable", "got 3")),
        (dict(start_lr=1e-310, end_lr=1e10), ("start_lr=1e-310", "end_lr / start_lr = inf")),
        (dict(start_lr=10**400), ("start_lr", "an integer of about 401 digits")),
    ],
)
def test_bad_range_test_arguments_raise_value_error_naming_them(options, fragments):
    with pytest.raises(ValueError) as error:
        quick(**options)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_huge_num_iter_is_refused_at_once():
    with pytest.raises(ValueError, match="num_iter"):  # not MemoryError: refused before allocating
        quick(num_iter=10**13)  # np.arange(10**13) would need 80 TB


def test_the_largest_allowed_sweep_is_accepted_by_the_checks():
    result = quick(num_iter=MAX_RANGE_TEST_ITERATIONS, diverge_threshold=1.0 + 1e-9,
                   train_loader=[(torch.zeros(1, 2), torch.tensor([v])) for v in (1.0, 5.0)])
    assert result.diverged and len(result.lrs) == 2


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        (dict(mode="cosine"), ("mode must be one of 'exp', 'linear'", "'cosine'")),
        (dict(diverged="False"), ("diverged must be True or False", "'False'")),
        (dict(stopped_at=-1), ("stopped_at must be a whole number >= 0", "-1")),
        (dict(stopped_at=2.5), ("stopped_at", "2.5")),
        (dict(smooth_factor=1.0), ("smooth_factor must be a number in [0, 1)", "1.0")),
        (dict(source="test"), ("source must be one of 'train', 'validation'", "'test'")),
    ],
)
def test_a_result_object_checks_its_fields(fields, fragments):
    arguments = dict(lrs=U_LRS, losses=U_LOSSES, raw_losses=U_LOSSES, mode="exp")
    arguments.update(fields)
    with pytest.raises(ValueError) as error:
        RangeTestResult(**arguments)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(("divisor", "shown"), [(True, "True"), (math.inf, "inf"), (0.5, "0.5")])
def test_base_divisor_must_be_a_finite_number_above_one(divisor, shown):
    with pytest.raises(ValueError, match=f"base_divisor must be a finite number > 1.*got {shown}"):
        hand_made(U_LOSSES, lrs=U_LRS).suggest(base_divisor=divisor)


def test_plot_refuses_a_truthy_string_for_show_suggestions():
    with pytest.raises(ValueError, match="show_suggestions must be True or False, got 'False'"):
        hand_made(U_LOSSES, lrs=U_LRS).plot(show_suggestions="False")


# ----------------------------------------------------------------------------------------------
# Resuming a sweep from a checkpoint (lr_range_test's checkpoint argument)
# ----------------------------------------------------------------------------------------------


class _MemoryCheckpoint:
    """Keeps the last saved state in memory; 'dies' (raises) after ``saves`` saves when asked to."""

    def __init__(self, saves=None):
        self.state, self.saves = None, saves

    def load(self):
        return self.state

    def due(self):
        return True

    def save(self, state):
        self.state = copy.deepcopy(state)
        if self.saves is not None:
            self.saves -= 1
            if self.saves == 0:
                raise RuntimeError("killed")


class _Stream:
    """A resumable loader: batches of a fixed random regression problem, position in its state."""

    def __init__(self, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(64, 5, generator=generator)
        self.targets = self.inputs @ torch.randn(5, 1, generator=generator)
        self.position = 0

    def __iter__(self):
        while self.position < 8:
            start = 8 * self.position
            self.position += 1
            yield self.inputs[start:start + 8], self.targets[start:start + 8]
        self.position = 0

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def _sweep(checkpoint=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    result = lr_range_test(model, optimizer, torch.nn.MSELoss(), _Stream(), start_lr=1e-4, end_lr=1.0,
                           num_iter=20, progress=False, checkpoint=checkpoint)
    return result, model


def test_a_sweep_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result():
    expected, expected_model = _sweep()
    checkpoint = _MemoryCheckpoint(saves=9)
    with pytest.raises(RuntimeError, match="killed"):
        _sweep(checkpoint)
    checkpoint.saves = None
    assert checkpoint.state["iteration"] == 9
    resumed, resumed_model = _sweep(checkpoint)
    assert resumed.to_dict() == expected.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.parameters(), expected_model.parameters()))


def test_a_checkpoint_needs_a_loader_that_keeps_its_position():
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    batches = [(torch.randn(8, 5), torch.randn(8, 1))]
    with pytest.raises(ValueError, match="train_loader must have state_dict"):
        lr_range_test(model, optimizer, torch.nn.MSELoss(), batches, start_lr=1e-4, end_lr=1.0, num_iter=5,
                      progress=False, checkpoint=_MemoryCheckpoint())


def test_a_checkpoint_of_another_sweep_is_refused():
    checkpoint = _MemoryCheckpoint(saves=3)
    with pytest.raises(RuntimeError):
        _sweep(checkpoint)
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    with pytest.raises(ValueError, match="other learning rates"):
        lr_range_test(model, optimizer, torch.nn.MSELoss(), _Stream(), start_lr=1e-3, end_lr=1.0, num_iter=20,
                      progress=False, checkpoint=checkpoint)
