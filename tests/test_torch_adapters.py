"""The torch adapters: PyTorch's own test vectors, a randomised cross-check against torch's classes,
exact resume, and the places where clr_lib is deliberately stricter than torch."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clr_lib
from clr_lib import CyclicLR, OneCycleLR, ScheduleLR

TORCH_CYCLIC = torch.optim.lr_scheduler.CyclicLR
TORCH_ONE_CYCLE = torch.optim.lr_scheduler.OneCycleLR
EPS = np.finfo(np.float64).eps
ULPS = 4 * EPS  # the relative tolerance for values computed by different but equivalent operations


def two_group_optimizer(kind: str = "sgd", momentum: float = 0.9) -> torch.optim.Optimizer:
    """Like the fixture of PyTorch's own scheduler tests: two param groups with different LRs."""
    torch.manual_seed(0)
    first, second = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    groups = [{"params": first.parameters()}, {"params": second.parameters(), "lr": 0.5}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.05)
    return torch.optim.SGD(groups, lr=0.05, momentum=momentum)


def momentum_of(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group["momentum"]


def record(optimizer, scheduler, values: int) -> tuple[np.ndarray, np.ndarray]:
    """LR and momentum of every group at iterations 0 .. values-1 (step() between them, values-1 times)."""
    lrs, momenta = [], []
    for index in range(values):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        momenta.append([momentum_of(group) for group in optimizer.param_groups])
        if index < values - 1:
            optimizer.step()
            scheduler.step()
    return np.array(lrs).T, np.array(momenta).T


# --- PyTorch's own CyclicLR and OneCycleLR test vectors (test/optim/test_lrscheduler.py) ----------

TRIANGULAR = [1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]
TRIANGULAR2 = [1, 2, 3, 4, 5, 4, 3, 2, 1, 1.5, 2.0, 2.5, 3.0, 2.5, 2.0, 1.5, 1, 1.25, 1.50, 1.75, 2.00, 1.75]
EXP_XS = [0, 0.25, 0.5, 0.75, 1, 0.75, 0.50, 0.25, 0, 0.25, 0.5, 0.75, 1]
UP_DOWN_XS = [0.0, 0.5, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0, 0.5, 1.0, 5 / 6, 4 / 6]


def exp_range_targets(base: float, peak: float, xs: list[float], gamma: float = 0.9):
    lr = [base + x * (peak - base) * gamma**i for i, x in enumerate(xs)]
    momentum = [peak - x * (peak - base) * gamma**i for i, x in enumerate(xs)]
    return lr, momentum


CYCLIC_CASES = {
    "triangular_one_lr": (
        dict(base_lr=1, max_lr=5, step_size_up=4, base_momentum=1, max_momentum=5),
        [TRIANGULAR] * 2,
        [[6 - x for x in TRIANGULAR]] * 2,
    ),
    "triangular2_one_lr": (
        dict(base_lr=1, max_lr=5, step_size_up=4, base_momentum=1, max_momentum=5, mode="triangular2"),
        [TRIANGULAR2] * 2,
        [[6 - x for x in TRIANGULAR2]] * 2,
    ),
    "exp_range_one_lr": (
        dict(base_lr=1, max_lr=5, step_size_up=4, base_momentum=1, max_momentum=5, mode="exp_range", gamma=0.9),
        [exp_range_targets(1, 5, EXP_XS)[0]] * 2,
        [exp_range_targets(1, 5, EXP_XS)[1]] * 2,
    ),
    "triangular_per_group": (
        dict(base_lr=[1, 2], max_lr=[5, 6], step_size_up=4, base_momentum=[1, 2], max_momentum=[5, 6]),
        [TRIANGULAR, [x + 1 for x in TRIANGULAR]],
        [[6 - x for x in TRIANGULAR], [7 - x for x in TRIANGULAR]],
    ),
    "triangular2_per_group": (
        dict(base_lr=[1, 3], max_lr=[5, 7], step_size_up=4, base_momentum=[1, 3], max_momentum=[5, 7],
             mode="triangular2"),
        [TRIANGULAR2, [x + 2 for x in TRIANGULAR2]],
        [[6 - x for x in TRIANGULAR2], [8 - x for x in TRIANGULAR2]],
    ),
    "exp_range_per_group": (
        dict(base_lr=[1, 5], max_lr=[5, 12], step_size_up=4, base_momentum=[1, 5], max_momentum=[5, 12],
             mode="exp_range", gamma=0.9),
        [exp_range_targets(1, 5, EXP_XS)[0], exp_range_targets(5, 12, EXP_XS)[0]],
        [exp_range_targets(1, 5, EXP_XS)[1], exp_range_targets(5, 12, EXP_XS)[1]],
    ),
    "triangular_step_size_up_down": (
        dict(base_lr=1, max_lr=5, step_size_up=4, step_size_down=6, base_momentum=1, max_momentum=5),
        [[1.0, 2.0, 3.0, 4.0, 5.0, 13 / 3, 11 / 3, 9 / 3, 7 / 3, 5 / 3, 1.0]] * 2,
        [[5.0, 4.0, 3.0, 2.0, 1.0, 5 / 3, 7 / 3, 3.0, 11 / 3, 13 / 3, 5.0]] * 2,
    ),
    "triangular2_step_size_up_down": (
        dict(base_lr=[1, 3], max_lr=[5, 7], step_size_up=2, step_size_down=6, base_momentum=[1, 3],
             max_momentum=[5, 7], mode="triangular2"),
        [[x + delta for x in [1.0, 3.0, 5.0, 13 / 3, 11 / 3, 9 / 3, 7 / 3, 5 / 3, 1.0, 2.0, 3.0, 8 / 3, 7 / 3,
                              6 / 3, 5 / 3, 4 / 3, 1.0, 3 / 2, 2.0, 11 / 6, 10 / 6, 9 / 6, 8 / 6, 7 / 6]]
         for delta in (0, 2)],
        [[x + delta for x in [5.0, 3.0, 1.0, 5 / 3, 7 / 3, 3.0, 11 / 3, 13 / 3, 5.0, 4.0, 3.0, 10 / 3, 11 / 3,
                              4.0, 13 / 3, 14 / 3, 5.0, 4.5, 4.0, 25 / 6, 13 / 3, 4.5, 14 / 3, 29 / 6]]
         for delta in (0, 2)],
    ),
    "exp_range_step_size_up_down": (
        dict(base_lr=1, max_lr=5, step_size_up=2, step_size_down=6, base_momentum=1, max_momentum=5,
             mode="exp_range", gamma=0.9),
        [exp_range_targets(1, 5, UP_DOWN_XS)[0]] * 2,
        [exp_range_targets(1, 5, UP_DOWN_XS)[1]] * 2,
    ),
}


def momenta_divided_by(arguments: dict, scale: float) -> dict:
    """torch's vectors use momenta such as 5 or 22, which clr_lib rejects (a momentum or beta1 must lie in
    [0, 1)); the same vectors with the momenta divided by ``scale`` exercise the same arithmetic."""
    scaled = dict(arguments)
    for key in ("base_momentum", "max_momentum"):
        value = arguments[key]
        scaled[key] = [v / scale for v in value] if isinstance(value, list) else value / scale
    return scaled


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("case", list(CYCLIC_CASES))
def test_cyclic_lr_reproduces_pytorch_s_test_vectors(case, kind):
    arguments, lr_targets, momentum_targets = CYCLIC_CASES[case]
    optimizer = two_group_optimizer(kind)
    scheduler = CyclicLR(optimizer, **momenta_divided_by(arguments, 20))
    lrs, momenta = record(optimizer, scheduler, len(lr_targets[0]))
    np.testing.assert_allclose(lrs, lr_targets, rtol=1e-12)
    np.testing.assert_allclose(momenta, np.asarray(momentum_targets) / 20, rtol=1e-12)


def test_cyclic_lr_without_momentum_cycling_leaves_momentum_alone():
    optimizer = two_group_optimizer("sgd", momentum=0.3)
    scheduler = CyclicLR(optimizer, base_lr=1, max_lr=5, step_size_up=4, cycle_momentum=False)
    lrs, momenta = record(optimizer, scheduler, len(TRIANGULAR))
    np.testing.assert_array_equal(lrs, [TRIANGULAR] * 2)
    assert np.all(momenta == 0.3)
    assert "max_momentum" not in optimizer.param_groups[0]


def annealing_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


ONE_CYCLE_CASES = {
    "linear": (
        dict(max_lr=25, final_div_factor=2, base_momentum=1, max_momentum=22, total_steps=10, anneal_strategy="linear"),
        [1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5],
        [22, 11.5, 1, 4, 7, 10, 13, 16, 19, 22],
    ),
    "linear_three_phases": (
        dict(max_lr=25, div_factor=25, base_momentum=1, max_momentum=22, total_steps=10, anneal_strategy="linear",
             pct_start=0.4, final_div_factor=4, three_phase=True),
        [1, 9, 17, 25, 17, 9, 1, 0.75, 0.5, 0.25],
        [22, 15, 8, 1, 8, 15, 22, 22, 22, 22],
    ),
    "cosine": (
        dict(max_lr=25, final_div_factor=2, base_momentum=1, max_momentum=22, total_steps=10),
        [1, 13, 25, *[annealing_cos(25, 0.5, k / 7) for k in range(1, 7)], 0.5],
        [22, 11.5, 1, *[annealing_cos(1, 22, k / 7) for k in range(1, 7)], 22],
    ),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("case", list(ONE_CYCLE_CASES))
def test_one_cycle_lr_reproduces_pytorch_s_test_vectors(case, kind):
    arguments, lr_target, momentum_target = ONE_CYCLE_CASES[case]
    optimizer = two_group_optimizer(kind)
    scheduler = OneCycleLR(optimizer, **momenta_divided_by(arguments, 100))
    lrs, momenta = record(optimizer, scheduler, 10)
    np.testing.assert_allclose(lrs, [lr_target] * 2, rtol=1e-12)
    np.testing.assert_allclose(momenta, np.asarray([momentum_target] * 2) / 100, rtol=1e-12)


def test_one_cycle_sets_the_same_param_group_keys_as_torch():
    ours, theirs = two_group_optimizer(), two_group_optimizer()
    OneCycleLR(ours, max_lr=[0.1, 0.2], total_steps=100)
    TORCH_ONE_CYCLE(theirs, max_lr=[0.1, 0.2], total_steps=100)
    for mine, reference in zip(ours.param_groups, theirs.param_groups):
        assert {k: v for k, v in mine.items() if k != "params"} == {k: v for k, v in reference.items() if k != "params"}


# --- randomised cross-check against torch's classes ----------------------------------------------

def build_pair(kind: str, groups: int):
    """The same optimizer twice, for a torch scheduler and a clr_lib one."""
    def make():
        torch.manual_seed(0)
        layers = [torch.nn.Linear(2, 2) for _ in range(groups)]
        param_groups = [{"params": layer.parameters()} for layer in layers]
        if kind == "adam":
            return torch.optim.Adam(param_groups, lr=0.01)
        return torch.optim.SGD(param_groups, lr=0.01, momentum=0.9)
    return make(), make()


per_group_lrs = st.lists(st.tuples(st.floats(1e-6, 1.0), st.floats(0.0, 5.0)), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bounds=per_group_lrs,
    up=st.integers(1, 60) | st.integers(1, 60).map(float),  # whole numbers of iterations, also as 7.0
    down=st.none() | st.integers(1, 60),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.9, 1.0),
    momentum=st.tuples(st.floats(0.5, 0.9), st.floats(0.0, 0.09)),
    cycle_momentum=st.booleans(),
    kind=st.sampled_from(["sgd", "adam"]),
)
def test_cyclic_lr_matches_torch_on_random_configurations(bounds, up, down, mode, gamma, momentum, cycle_momentum, kind):
    base_lrs = [base for base, _ in bounds]
    max_lrs = [base + span for base, span in bounds]
    base_momentum, max_momentum = momentum[0], momentum[0] + momentum[1]
    arguments = dict(base_lr=base_lrs, max_lr=max_lrs, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
                     cycle_momentum=cycle_momentum, base_momentum=base_momentum, max_momentum=max_momentum)
    theirs, ours = build_pair(kind, len(bounds))
    steps = int(3 * (up + (down or up))) + 2
    expected = record(theirs, TORCH_CYCLIC(theirs, **arguments), steps)
    actual = record(ours, CyclicLR(ours, **arguments), steps)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-12, atol=0)


@st.composite
def one_cycle_configurations(draw):
    total_steps = draw(st.integers(4, 400))
    three_phase = draw(st.booleans())
    # every phase at least one step long (clr_lib rejects shorter phases; torch misbehaves on them)
    low = 2 / total_steps
    high = (0.5 - 1 / total_steps) if three_phase else (1 - 1 / total_steps)
    if three_phase and total_steps < 8:
        three_phase, high = False, 1 - 1 / total_steps
    pct_start = draw(st.floats(low, high))
    return dict(
        total_steps=total_steps,
        pct_start=pct_start,
        three_phase=three_phase,
        anneal_strategy=draw(st.sampled_from(["cos", "linear"])),
        div_factor=draw(st.floats(1.0, 100.0)),
        final_div_factor=draw(st.floats(1.0, 1e5)),
        max_lr=draw(st.lists(st.floats(1e-4, 10.0), min_size=1, max_size=3)),
        base_momentum=draw(st.floats(0.5, 0.85)),
        max_momentum=draw(st.floats(0.85, 0.99)),
        cycle_momentum=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=one_cycle_configurations(), kind=st.sampled_from(["sgd", "adam"]))
def test_one_cycle_lr_matches_torch_on_random_configurations(config, kind):
    theirs, ours = build_pair(kind, len(config["max_lr"]))
    expected = record(theirs, TORCH_ONE_CYCLE(theirs, **config), config["total_steps"])
    actual = record(ours, OneCycleLR(ours, **config), config["total_steps"])
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-12, atol=0)


def test_cyclic_lr_is_bit_for_bit_identical_to_torch_on_the_paper_s_settings():
    # Exact equality is sound here: clr_lib's scalar path performs torch's Python-float operations in
    # torch's order (no numpy, no BLAS), so any machine gives both the same bits.
    theirs, ours = build_pair("sgd", 1)
    arguments = dict(base_lr=0.001, max_lr=0.006, step_size_up=2000, mode="exp_range", gamma=0.99994)
    expected = record(theirs, TORCH_CYCLIC(theirs, **arguments), 12_000)
    actual = record(ours, CyclicLR(ours, **arguments), 12_000)
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_array_equal(actual[1], expected[1])


def test_get_last_lr_and_base_lrs_match_torch():
    theirs, ours = build_pair("sgd", 2)
    reference = TORCH_CYCLIC(theirs, base_lr=[0.1, 0.2], max_lr=[1.0, 2.0], step_size_up=7)
    scheduler = CyclicLR(ours, base_lr=[0.1, 0.2], max_lr=[1.0, 2.0], step_size_up=7)
    for _ in range(10):
        np.testing.assert_allclose(scheduler.get_last_lr(), reference.get_last_lr(), rtol=ULPS, atol=0)
        theirs.step(), ours.step(), reference.step(), scheduler.step()
    assert scheduler.base_lrs == reference.base_lrs
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)


# --- resume --------------------------------------------------------------------------------------

def train(model, optimizer, scheduler, iterations: int, start: int = 0) -> list[tuple[float, float]]:
    """A few SGD updates on fixed data, recording (lr, momentum) used at each iteration."""
    generator = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(64, 4, generator=generator), torch.randn(64, 1, generator=generator)
    used = []
    for iteration in range(start, start + iterations):
        batch = slice((iteration * 8) % 64, (iteration * 8) % 64 + 8)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs[batch]), targets[batch]).backward()
        used.append((optimizer.param_groups[0]["lr"], momentum_of(optimizer.param_groups[0])))
        optimizer.step()
        scheduler.step()
    return used


SCHEDULER_FACTORIES = {
    "cyclic_exp_range": lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=5, step_size_down=3, mode="exp_range",
                                             gamma=0.97),
    "cyclic_hann_triangular2": lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=4, mode="triangular2", shape="hann"),
    "one_cycle": lambda opt: OneCycleLR(opt, max_lr=0.1, total_steps=41, three_phase=True),
    "schedule_lr": lambda opt: ScheduleLR(
        opt, clr_lib.warmup(clr_lib.cosine_warm_restarts(0.1, 6, 2), 5), clr_lib.cyclic_momentum(0.85, 0.95, 5)
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULER_FACTORIES))
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_resume_after_save_and_weights_only_load_equals_an_uninterrupted_run(name, kind):
    make_scheduler = SCHEDULER_FACTORIES[name]

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        optimizer = (torch.optim.Adam(model.parameters(), lr=0.01) if kind == "adam"
                     else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        return model, optimizer, make_scheduler(optimizer)

    reference_model, reference_optimizer, reference_scheduler = fresh()
    uninterrupted = train(reference_model, reference_optimizer, reference_scheduler, 40)

    model, optimizer, scheduler = fresh()
    first_half = train(model, optimizer, scheduler, 17)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    resumed_model, resumed_optimizer, resumed_scheduler = fresh()
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    second_half = train(resumed_model, resumed_optimizer, resumed_scheduler, 23, start=17)

    assert first_half + second_half == uninterrupted
    for resumed, reference in zip(resumed_model.parameters(), reference_model.parameters()):
        assert torch.equal(resumed, reference)


def test_loading_the_scheduler_alone_restores_the_optimizer_s_lr_and_momentum():
    optimizer = two_group_optimizer()
    scheduler = CyclicLR(optimizer, base_lr=0.1, max_lr=1.0, step_size_up=10)
    for _ in range(7):
        optimizer.step(), scheduler.step()
    fresh_optimizer = two_group_optimizer()
    fresh = CyclicLR(fresh_optimizer, base_lr=0.1, max_lr=1.0, step_size_up=10)
    fresh.load_state_dict(scheduler.state_dict())
    assert [g["lr"] for g in fresh_optimizer.param_groups] == [g["lr"] for g in optimizer.param_groups]
    assert [g["momentum"] for g in fresh_optimizer.param_groups] == [g["momentum"] for g in optimizer.param_groups]
    assert fresh.get_last_lr() == scheduler.get_last_lr()


def test_load_state_dict_adopts_the_saved_arguments_like_torch():
    optimizer = two_group_optimizer()
    saved = CyclicLR(optimizer, base_lr=0.1, max_lr=1.0, step_size_up=10, mode="triangular2").state_dict()
    other = CyclicLR(two_group_optimizer(), base_lr=0.5, max_lr=0.6, step_size_up=3)
    other.load_state_dict(saved)
    other.optimizer.step()
    for _ in range(30):
        other.step()
    assert other.last_epoch == 30  # the peak of cycle 2, at half amplitude in triangular2
    assert other.get_last_lr()[0] == pytest.approx(0.1 + 0.9 / 2, rel=1e-12)


def test_custom_scale_fn_must_be_passed_again_before_loading():
    state = CyclicLR(two_group_optimizer(), 0.1, 1.0, 4, scale_fn=lambda c: 1 / c).state_dict()
    with pytest.raises(ValueError, match="custom scale_fn"):
        CyclicLR(two_group_optimizer(), 0.1, 1.0, 4).load_state_dict(state)
    CyclicLR(two_group_optimizer(), 0.1, 1.0, 4, scale_fn=lambda c: 1 / c).load_state_dict(state)


# --- deliberate differences from torch ------------------------------------------------------------

def test_stepping_one_cycle_past_its_last_step_raises_and_changes_nothing():
    optimizer = two_group_optimizer()
    scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=10, anneal_strategy="linear")
    for _ in range(9):
        optimizer.step(), scheduler.step()
    before = ([dict((k, v) for k, v in g.items() if k != "params") for g in optimizer.param_groups],
              scheduler.state_dict())
    with pytest.raises(ValueError, match="past its last iteration 9"):
        scheduler.step()
    after = ([dict((k, v) for k, v in g.items() if k != "params") for g in optimizer.param_groups],
             scheduler.state_dict())
    assert before == after
    assert optimizer.param_groups[0]["lr"] > 0  # torch would now hold a negative, extrapolated LR


def test_torch_extrapolates_one_cycle_to_a_negative_lr_where_we_raise():
    optimizer = two_group_optimizer()
    reference = TORCH_ONE_CYCLE(optimizer, max_lr=0.1, total_steps=10, anneal_strategy="linear")
    for _ in range(10):
        optimizer.step(), reference.step()
    assert optimizer.param_groups[0]["lr"] < 0  # the bug clr_lib refuses to reproduce


def test_one_cycle_phase_of_one_step_raises_value_error_not_zero_division():
    with pytest.raises(ZeroDivisionError):
        TORCH_ONE_CYCLE(two_group_optimizer(), max_lr=0.1, total_steps=10, pct_start=0.1)
    with pytest.raises(ValueError, match="phase would span 0 iterations"):
        OneCycleLR(two_group_optimizer(), max_lr=0.1, total_steps=10, pct_start=0.1)


def test_stale_initial_lr_from_an_earlier_scheduler_is_not_used():
    ours, theirs = two_group_optimizer(), two_group_optimizer()
    for optimizer in (ours, theirs):
        for group in optimizer.param_groups:
            group["initial_lr"] = 123.0  # left behind by an earlier scheduler
    scheduler = CyclicLR(ours, base_lr=0.1, max_lr=1.0, step_size_up=4)
    TORCH_CYCLIC(theirs, base_lr=0.1, max_lr=1.0, step_size_up=4)
    assert ours.param_groups[0]["lr"] == 0.1 and scheduler.base_lrs == [0.1, 0.1]
    assert theirs.param_groups[0]["lr"] == 123.0  # torch starts from the stale value
    # the key itself is kept, as torch keeps it: SequentialLR resets the LR to it
    assert ours.param_groups[0]["initial_lr"] == theirs.param_groups[0]["initial_lr"] == 123.0


def test_cycle_momentum_on_plain_sgd_warns_that_momentum_will_be_switched_on():
    optimizer = two_group_optimizer(momentum=0.0)
    with pytest.warns(UserWarning, match="momentum 0 and cycle_momentum=True"):
        CyclicLR(optimizer, base_lr=0.1, max_lr=1.0)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CyclicLR(two_group_optimizer(momentum=0.0), base_lr=0.1, max_lr=1.0, cycle_momentum=False)


@pytest.mark.parametrize("scheduler", [
    lambda opt: CyclicLR(opt, 0.1, 1.0),
    lambda opt: OneCycleLR(opt, 0.1, total_steps=100),
    lambda opt: ScheduleLR(opt, clr_lib.constant(0.1), clr_lib.constant(0.9)),
])
def test_cycle_momentum_on_an_optimizer_without_momentum_raises(scheduler):
    optimizer = torch.optim.Adagrad(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="Adagrad has neither"):
        scheduler(optimizer)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda opt: CyclicLR(opt, base_lr=1.0, max_lr=0.1), "base_lr must be <= max_lr"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=0), "step_size_up must be a positive"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_down=-1), "step_size_down must be a positive"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=1.0, mode="CATS"), "mode must be one of"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=1.0, shape="square"), "shape must be one of"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=1.0, gamma=2.0), "gamma must be a number in (0, 1]"),
        (lambda opt: CyclicLR(opt, base_lr=-0.1, max_lr=1.0), "base_lr must be a finite, non-negative"),
        (lambda opt: CyclicLR(opt, base_lr=0.1, max_lr=float("nan")), "max_lr must be a finite"),
        (lambda opt: CyclicLR(opt, base_lr=[0.1, 0.1, 0.1], max_lr=1.0), "base_lr must have one value per param group"),
        (lambda opt: OneCycleLR(opt, max_lr=0.1), "pass total_steps, or both epochs and steps_per_epoch"),
        (lambda opt: OneCycleLR(opt, max_lr=0.1, epochs=0, steps_per_epoch=10), "epochs must be a positive"),
        (lambda opt: OneCycleLR(opt, max_lr=0.1, total_steps=100, pct_start=1.5), "pct_start must be a number"),
        (lambda opt: OneCycleLR(opt, max_lr=0.1, total_steps=100, anneal_strategy="CATS"), "anneal_strategy"),
        (lambda opt: OneCycleLR(opt, max_lr=-1.0, total_steps=100), "max_lr must be a positive"),
        (lambda opt: ScheduleLR(opt, [clr_lib.constant(0.1)] * 3), "lr_schedule must have one value per param group"),
        (lambda opt: ScheduleLR(opt, 0.1), "lr_schedule must be a Schedule or a callable"),
    ],
)
def test_bad_adapter_arguments_raise_value_errors_naming_the_parameter(make, fragment):
    with pytest.raises(ValueError) as error:
        make(two_group_optimizer())
    assert fragment in str(error.value)


def test_one_cycle_accepts_epochs_and_steps_per_epoch():
    scheduler = OneCycleLR(two_group_optimizer(), max_lr=0.1, epochs=3, steps_per_epoch=7)
    assert scheduler.total_steps == 21


def test_schedule_lr_drives_any_pure_schedule_and_momentum_per_group():
    optimizer = two_group_optimizer("adam")
    lr_schedules = [clr_lib.decay(0.01, 0.1, 10), clr_lib.one_cycle(0.3, 30)]
    scheduler = ScheduleLR(optimizer, lr_schedules, clr_lib.one_cycle_momentum(30))
    assert scheduler.total_steps == 30
    lrs, momenta = record(optimizer, scheduler, 30)
    iterations = np.arange(30)
    # The adapter takes the scalar path (math.cos), the arrays the vectorised one (numpy's cos, which may
    # differ by an ulp on another machine): equal to a few ulp of the values' scale, not bit for bit.
    expected = np.array([lr_schedules[0](iterations), lr_schedules[1](iterations)])
    np.testing.assert_allclose(lrs, expected, rtol=ULPS, atol=ULPS * expected.max())
    np.testing.assert_allclose(momenta[1], clr_lib.one_cycle_momentum(30)(iterations), rtol=ULPS, atol=ULPS)
    assert optimizer.param_groups[1]["betas"][1] == 0.999  # beta2 untouched
