"""Hardening of the torch adapters (ScheduleLR, CyclicLR, OneCycleLR): momenta in [0, 1), state that is
plain data and survives a failed call, checked values and argument types, and a drop-in that holds up
against torch's public attributes, tensor learning rates, pickling and torch's own SequentialLR and
ChainedScheduler.

Every bad input asserts the exception type and that the message names the parameter (or state entry)
and the offending value. Comparisons with torch's results allow a few ulp unless both sides perform the
same operations."""

from __future__ import annotations

import concurrent.futures
import copy
import doctest
import io
import math
import multiprocessing
import pickle
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_schedulers

import clr_lib
import clr_lib.torch_adapters
from clr_lib import CyclicLR, OneCycleLR, ScheduleLR

ULPS = 4 * np.finfo(np.float64).eps
ULPS32 = 4 * np.finfo(np.float32).eps  # values that torch computes in float32 tensor arithmetic


def two_group_optimizer(kind: str = "sgd", lr: float | torch.Tensor = 0.05) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    second_lr = lr * 10 if not isinstance(lr, torch.Tensor) else lr.clone() * 10
    groups = [{"params": torch.nn.Linear(3, 2).parameters()},
              {"params": torch.nn.Linear(2, 1).parameters(), "lr": second_lr}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def momentum_of(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group["momentum"]


def trace(optimizer, scheduler, steps: int) -> np.ndarray:
    """(lr, momentum) of every group at iterations 0 .. steps-1, as floats."""
    values = []
    for index in range(steps):
        values.append([(float(group["lr"]), float(momentum_of(group))) for group in optimizer.param_groups])
        if index < steps - 1:
            optimizer.step()
            scheduler.step()
    return np.array(values)


def observe(scheduler) -> tuple[dict, list[dict]]:
    """Everything a failed call must leave as it was: the scheduler's attributes and the optimizer's
    hyper-parameters (tensors as dtype and values, schedules and the optimizer by identity)."""
    def plain(value):
        if isinstance(value, torch.Tensor):
            return ("tensor", value.dtype, value.tolist())
        if isinstance(value, (list, tuple)):
            return type(value)(plain(item) for item in value)
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    attributes = {}
    for key, value in vars(scheduler).items():
        if key == "optimizer":
            attributes[key] = id(value)
        elif key in ("_lr_schedules", "_momentum_schedules"):
            attributes[key] = None if value is None else [id(schedule) for schedule in value]
        else:
            attributes[key] = plain(copy.copy(value))
    groups = [plain({key: value for key, value in group.items() if key != "params"})
              for group in scheduler.optimizer.param_groups]
    return attributes, groups


def assert_raises_naming(exception, fragments, call):
    """``call()`` raises ``exception`` whose message contains every fragment (the parameter and the value)."""
    with pytest.raises(exception) as error:
        call()
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def assert_plain(value, where="state") -> None:
    """Only the types ``torch.load(weights_only=True)`` and JSON need: no numpy scalars, no tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{where} has key {key!r}"
            assert_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_plain(item, f"{where}[{index}]")
    else:
        assert value is None or type(value) in (bool, int, float, str), f"{where} is {type(value).__name__}: {value!r}"


def weights_only_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# --- 1. momentum and beta1 in [0, 1) -------------------------------------------------------------

MOMENTUM_ADAPTERS = {
    "CyclicLR": lambda opt, **kw: CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=4, **kw),
    "OneCycleLR": lambda opt, **kw: OneCycleLR(opt, max_lr=0.1, total_steps=20, **kw),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
@pytest.mark.parametrize("parameter", ["base_momentum", "max_momentum"])
@pytest.mark.parametrize("adapter", list(MOMENTUM_ADAPTERS))
def test_a_momentum_of_one_or_more_or_below_zero_is_rejected(adapter, parameter, value, kind):
    optimizer = two_group_optimizer(kind)
    before = [dict((k, v) for k, v in group.items() if k != "params") for group in optimizer.param_groups]
    arguments = {"base_momentum": 0.5, "max_momentum": 0.6, parameter: value}
    assert_raises_naming(ValueError, [parameter, repr(value), "[0, 1)"],
                         lambda: MOMENTUM_ADAPTERS[adapter](optimizer, **arguments))
    assert [dict((k, v) for k, v in group.items() if k != "params") for group in optimizer.param_groups] == before


def test_a_per_group_momentum_names_the_group_s_entry():
    assert_raises_naming(ValueError, ["max_momentum[1]", "got 1.0"], lambda: CyclicLR(
        two_group_optimizer(), 0.01, 0.1, 4, base_momentum=[0.8, 0.9], max_momentum=[0.999999, 1.0]))


def test_torch_s_own_momentum_test_vectors_above_one_are_rejected():
    # torch's test suite cycles "momentum" between 1 and 5; that is no momentum an optimizer can use.
    torch_schedulers.CyclicLR(two_group_optimizer(), 1, 5, 4, base_momentum=1, max_momentum=5)
    assert_raises_naming(ValueError, ["base_momentum", "got 1"],
                         lambda: CyclicLR(two_group_optimizer(), 1, 5, 4, base_momentum=1, max_momentum=5))


def test_momentum_bounds_are_not_checked_when_momentum_is_not_cycled():
    optimizer = two_group_optimizer()
    CyclicLR(optimizer, 0.01, 0.1, 4, cycle_momentum=False, max_momentum=1.0)  # torch ignores them too
    OneCycleLR(two_group_optimizer(), 0.1, total_steps=20, cycle_momentum=False, base_momentum=2.0)
    assert optimizer.param_groups[0]["momentum"] == 0.9


def _momentum_reaching_one(iteration: int) -> float:
    return 0.9 if iteration < 3 else 1.0


def test_a_momentum_schedule_that_reaches_one_is_stopped_before_it_is_written():
    optimizer = two_group_optimizer("adam")
    scheduler = ScheduleLR(optimizer, clr_lib.constant(0.01), _momentum_reaching_one)
    optimizer.step(), scheduler.step(), scheduler.step()
    before = observe(scheduler)
    assert_raises_naming(ValueError, ["momentum_schedule[0]", "param group 0", "iteration 3", "1.0", "[0, 1)"],
                         scheduler.step)
    assert observe(scheduler) == before
    assert optimizer.param_groups[0]["betas"][0] == 0.9


# --- 2. state that survives ------------------------------------------------------------------------

NUMPY_AND_TENSOR_ARGUMENTS = {
    "cyclic_numpy": lambda opt: CyclicLR(
        opt, np.float32(0.001), np.float64(0.006), step_size_up=np.int64(4), step_size_down=np.int32(6),
        gamma=np.float32(1.0), base_momentum=np.float32(0.8), max_momentum=np.float64(0.9), last_epoch=np.int64(-1)),
    "cyclic_tensors": lambda opt: CyclicLR(
        opt, [torch.tensor(0.001), torch.tensor(0.002, dtype=torch.float64)], torch.tensor(0.006),
        step_size_up=torch.tensor(4), mode="exp_range", gamma=torch.tensor(0.99), base_momentum=torch.tensor(0.8)),
    "one_cycle_numpy": lambda opt: OneCycleLR(
        opt, max_lr=[np.float32(0.1), np.float64(0.2)], total_steps=np.int64(50), pct_start=np.float32(0.25),
        div_factor=np.float32(25), final_div_factor=np.int64(100), base_momentum=np.float32(0.85)),
    "one_cycle_tensors": lambda opt: OneCycleLR(
        opt, max_lr=torch.tensor(0.1), epochs=torch.tensor(5), steps_per_epoch=np.int64(10),
        max_momentum=torch.tensor(0.95, dtype=torch.float64)),
}


@pytest.mark.parametrize("lr", ["float", "tensor"])
@pytest.mark.parametrize("name", list(NUMPY_AND_TENSOR_ARGUMENTS))
def test_state_dict_is_plain_data_whatever_scalar_types_came_in(name, lr):
    optimizer = two_group_optimizer("adam", lr=torch.tensor(0.01) if lr == "tensor" else 0.01)
    scheduler = NUMPY_AND_TENSOR_ARGUMENTS[name](optimizer)
    for _ in range(7):
        optimizer.step(), scheduler.step()
    state = scheduler.state_dict()
    assert_plain(state)
    loaded = weights_only_round_trip(state)
    assert loaded == state

    fresh_optimizer = two_group_optimizer("adam", lr=torch.tensor(0.01) if lr == "tensor" else 0.01)
    fresh = NUMPY_AND_TENSOR_ARGUMENTS[name](fresh_optimizer)
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(trace(fresh_optimizer, fresh, 10), trace(optimizer, scheduler, 10))


def test_a_bad_epoch_argument_and_a_step_past_the_end_change_nothing():
    optimizer = two_group_optimizer()
    scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    optimizer.step(), scheduler.step()
    before = observe(scheduler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation warning for step(epoch)
        for epoch, fragments in [(-1, ["epoch", "-1"]), (2.5, ["epoch", "2.5"]), ("3", ["epoch", "'3'"]),
                                 (True, ["epoch", "True"]), (10, ["iteration 10", "total_steps=10"])]:
            assert_raises_naming(ValueError, fragments, lambda: scheduler.step(epoch))
            assert observe(scheduler) == before


@pytest.mark.parametrize("failing_step", [1, 3])  # 1: torch's own step() path; 3: the steady-state path
def test_a_schedule_that_raises_mid_step_leaves_scheduler_and_optimizer_as_they_were(failing_step):
    def lr(iteration: int) -> float:
        if iteration == failing_step:
            raise RuntimeError(f"failed at iteration {iteration}")
        return 0.01 * (iteration + 1)

    optimizer = two_group_optimizer()
    scheduler = ScheduleLR(optimizer, lr, clr_lib.cyclic_momentum(0.8, 0.9, 4))
    for _ in range(failing_step - 1):
        optimizer.step(), scheduler.step()
    before = observe(scheduler)
    with pytest.raises(RuntimeError, match=f"failed at iteration {failing_step}"):
        optimizer.step(), scheduler.step()
    assert observe(scheduler) == before
    assert scheduler.last_epoch == failing_step - 1


def test_a_constructor_that_fails_leaves_the_optimizer_untouched():
    optimizer = two_group_optimizer()
    before = [dict((k, v) for k, v in group.items() if k != "params") for group in optimizer.param_groups]
    assert_raises_naming(ValueError, ["lr_schedule[1]", "nan", "iteration 0"],
                         lambda: ScheduleLR(optimizer, [clr_lib.constant(0.1), lambda iteration: math.nan]))
    assert [dict((k, v) for k, v in group.items() if k != "params") for group in optimizer.param_groups] == before
    assert "step" not in vars(optimizer)  # torch's call-order wrapper was taken off again


def saved(make, steps: int = 5) -> dict:
    optimizer = two_group_optimizer()
    scheduler = make(optimizer)
    for _ in range(steps):
        optimizer.step(), scheduler.step()
    return scheduler.state_dict()


def cyclic(opt):
    return CyclicLR(opt, 0.01, 0.1, step_size_up=4)


def one_cycle(opt):
    return OneCycleLR(opt, 0.1, total_steps=40)


def schedule_lr(opt):
    return ScheduleLR(opt, clr_lib.cyclic(0.01, 0.1, 4))


def edited(state: dict, **changes) -> dict:
    state = copy.deepcopy(state)
    for key, value in changes.items():
        if key.startswith("config__"):
            state["config"][key.removeprefix("config__")] = value
        else:
            state[key] = value
    return state


def without(state: dict, *keys: str) -> dict:
    return {key: value for key, value in state.items() if key not in keys}


def torch_cyclic_state() -> dict:
    optimizer = two_group_optimizer()
    return torch_schedulers.CyclicLR(optimizer, 0.01, 0.1, step_size_up=4).state_dict()


BAD_STATES = {
    "cyclic_into_one_cycle": (one_cycle, lambda: saved(cyclic), ["state_dict['type']", "'CyclicLR'", "OneCycleLR"]),
    "one_cycle_into_cyclic": (cyclic, lambda: saved(one_cycle), ["state_dict['type']", "'OneCycleLR'", "CyclicLR"]),
    "schedule_lr_into_cyclic": (cyclic, lambda: saved(schedule_lr), ["'ScheduleLR'", "CyclicLR"]),
    "cyclic_into_schedule_lr": (schedule_lr, lambda: saved(cyclic), ["'CyclicLR'", "ScheduleLR"]),
    "untyped_cyclic_into_one_cycle": (
        one_cycle, lambda: without(saved(cyclic), "type"),
        ["state_dict['config']", "missing", "total_steps", "base_lr"]),
    "untyped_cyclic_into_schedule_lr": (schedule_lr, lambda: without(saved(cyclic), "type"), ["'config'"]),
    "torch_s_own_state": (cyclic, torch_cyclic_state, ["state_dict", "'max_lrs'", "torch's own scheduler"]),
    "not_a_dict": (cyclic, lambda: [1, 2, 3], ["state_dict", "list"]),
    "last_epoch_a_string": (cyclic, lambda: edited(saved(cyclic), last_epoch="5"), ["state_dict['last_epoch']", "'5'"]),
    "last_epoch_a_bool": (cyclic, lambda: edited(saved(cyclic), last_epoch=True), ["state_dict['last_epoch']", "True"]),
    "last_lr_one_group": (cyclic, lambda: edited(saved(cyclic), _last_lr=[0.1]), ["state_dict['_last_lr']", "[0.1]"]),
    "negative_lr": (cyclic, lambda: edited(saved(cyclic), param_group_lr=[0.1, -0.5]),
                    ["state_dict['param_group_lr'][1]", "-0.5"]),
    "momentum_one": (cyclic, lambda: edited(saved(cyclic), param_group_momentum=[0.9, 1.0]),
                     ["state_dict['param_group_momentum'][1]", "1.0"]),
    "config_missing": (cyclic, lambda: without(saved(cyclic), "config"), ["state_dict['config']", "None"]),
    "config_not_a_dict": (cyclic, lambda: edited(saved(cyclic), config=[1]), ["state_dict['config']", "[1]"]),
    "config_step_size_zero": (cyclic, lambda: edited(saved(cyclic), config__step_size_up=0), ["step_size_up", "got 0"]),
    "config_mode_unknown": (cyclic, lambda: edited(saved(cyclic), config__mode="CATS"), ["mode", "'CATS'"]),
    "config_flag_a_string": (one_cycle, lambda: edited(saved(one_cycle), config__three_phase="yes"),
                             ["three_phase", "'yes'"]),
    "past_the_saved_total_steps": (
        one_cycle, lambda: edited(saved(one_cycle), config__total_steps=5, config__pct_start=0.4),
        ["iteration 5", "total_steps=5"]),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_loading_a_bad_or_foreign_state_raises_value_error_and_changes_nothing(case):
    make, state, fragments = BAD_STATES[case]
    optimizer = two_group_optimizer()
    scheduler = make(optimizer)
    optimizer.step(), scheduler.step(), scheduler.step()
    before = observe(scheduler)
    assert_raises_naming(ValueError, fragments, lambda: scheduler.load_state_dict(state()))
    assert observe(scheduler) == before
    optimizer.step(), scheduler.step()  # and it still works


def test_a_state_saved_before_clr_lib_stored_the_type_still_loads():
    old_keys = ("last_epoch", "_step_count", "_last_lr", "config")
    old_format = {key: value for key, value in saved(cyclic, 6).items() if key in old_keys}
    optimizer = two_group_optimizer()
    scheduler = cyclic(optimizer)
    scheduler.load_state_dict(old_format)
    assert scheduler.last_epoch == 6
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 + 0.09 * 2 / 4, rel=ULPS)


# --- 3. checked values, booleans, integers, extreme numbers -------------------------------------

@pytest.mark.parametrize("bad", [math.nan, -0.1, math.inf, "0.1", None, True, 1j])
def test_every_value_a_plain_callable_returns_is_checked_before_anything_is_written(bad):
    def lr(iteration: int):
        return bad if iteration == 3 else 0.1

    optimizer = two_group_optimizer()
    scheduler = ScheduleLR(optimizer, [clr_lib.constant(0.05), lr])
    for _ in range(2):
        optimizer.step(), scheduler.step()
    before = observe(scheduler)
    assert_raises_naming(ValueError, ["lr_schedule[1]", "param group 1", "iteration 3", repr(bad)], scheduler.step)
    assert observe(scheduler) == before


@pytest.mark.parametrize("value", [np.float64(0.25), np.float32(0.25), torch.tensor(0.25), 1])
def test_numpy_scalars_tensors_and_ints_from_a_callable_are_written_as_plain_floats(value):
    optimizer = two_group_optimizer()
    scheduler = ScheduleLR(optimizer, lambda iteration: value)
    optimizer.step(), scheduler.step()
    assert type(optimizer.param_groups[0]["lr"]) is float and optimizer.param_groups[0]["lr"] == float(value)
    assert_plain(scheduler.state_dict())


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda opt: CyclicLR(opt, 0.01, 0.1, cycle_momentum="False"), ["cycle_momentum", "'False'"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, cycle_momentum=1), ["cycle_momentum", "got 1"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, three_phase="yes"), ["three_phase", "'yes'"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, cycle_momentum=None), ["cycle_momentum", "None"]),
    ],
)
def test_booleans_must_be_real_bools_not_truthy_values(make, fragments):
    assert_raises_naming(ValueError, fragments, lambda: make(two_group_optimizer()))


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=True), ["step_size_up", "True"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=2.5), ["step_size_up", "2.5"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up="10"), ["step_size_up", "'10'"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=math.inf), ["step_size_up", "inf"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_down=0.5), ["step_size_down", "0.5"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100.5), ["total_steps", "100.5"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=True), ["total_steps", "True"]),
        (lambda opt: OneCycleLR(opt, 0.1, epochs=2.5, steps_per_epoch=10), ["epochs", "2.5"]),
        (lambda opt: OneCycleLR(opt, 0.1, epochs=3, steps_per_epoch=False), ["steps_per_epoch", "False"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, last_epoch=True), ["last_epoch", "True"]),
        (lambda opt: ScheduleLR(opt, clr_lib.constant(0.1), last_epoch=1.5), ["last_epoch", "1.5"]),
        (lambda opt: ScheduleLR(opt, clr_lib.constant(0.1), last_epoch=-2), ["last_epoch", "-2"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, pct_start="0.3"), ["pct_start", "'0.3'"]),
        (lambda opt: CyclicLR(opt, "0.01", 0.1), ["base_lr", "'0.01'"]),
        (lambda opt: CyclicLR(opt, 0.01, torch.tensor([0.1, 0.2])), ["max_lr", "tensor"]),
    ],
)
def test_integer_parameters_reject_bools_fractions_and_strings(make, fragments):
    assert_raises_naming(ValueError, fragments, lambda: make(two_group_optimizer()))


def test_integral_floats_and_numpy_ints_are_whole_numbers():
    reference = trace(optimizer := two_group_optimizer(), CyclicLR(optimizer, 0.01, 0.1, step_size_up=4), 12)
    for step_size in (4.0, np.int64(4), torch.tensor(4)):
        optimizer = two_group_optimizer()
        np.testing.assert_array_equal(trace(optimizer, CyclicLR(optimizer, 0.01, 0.1, step_size_up=step_size), 12),
                                      reference)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=2**53, step_size_down=1),
         ["step_size_up + step_size_down", str(2**53)]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=10**400), ["step_size_up", "at most"]),
        (lambda opt: CyclicLR(opt, 0.01, 0.1, step_size_up=1e308), ["step_size_up", "1e+308"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, div_factor=1e-310), ["div_factor", "1e-310", "inf"]),
        (lambda opt: OneCycleLR(opt, 1000.0, total_steps=100, div_factor=1e-306), ["div_factor", "inf"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, final_div_factor=1e-320), ["final_div_factor", "inf"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=2**53 + 1), ["total_steps", "at most"]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=10**30), ["total_steps", "at most"]),
        (lambda opt: OneCycleLR(opt, 0.1, epochs=2**30, steps_per_epoch=2**30),
         ["epochs * steps_per_epoch", str(2**60)]),
        (lambda opt: OneCycleLR(opt, 0.1, total_steps=100, div_factor=0.0), ["div_factor", "0.0"]),
    ],
)
def test_extreme_numbers_give_value_errors_naming_the_parameter(make, fragments):
    assert_raises_naming(ValueError, fragments, lambda: make(two_group_optimizer()))


def test_torch_divides_by_zero_or_overflows_where_clr_lib_names_the_parameter():
    with pytest.raises((ZeroDivisionError, OverflowError)):
        torch_schedulers.OneCycleLR(two_group_optimizer(), 0.1, total_steps=100, div_factor=0.0)


# --- 4. drop-in: torch's attributes, tensor LRs, pickling, composition ------------------------------

def scale_by_cycle(x: float) -> float:
    return 1 / (1 + x)


CYCLIC_ATTRIBUTE_CASES = {
    "triangular": dict(base_lr=0.01, max_lr=0.1, step_size_up=4),
    "triangular2_asymmetric": dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.3], step_size_up=3, step_size_down=7,
                                   mode="triangular2", base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.95]),
    "exp_range": dict(base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range", gamma=0.97),
    "custom_scale_fn_iterations": dict(base_lr=0.01, max_lr=0.1, step_size_up=5, scale_fn=scale_by_cycle,
                                       scale_mode="iterations"),
    "no_momentum": dict(base_lr=0.01, max_lr=0.1, step_size_up=5, cycle_momentum=False),
}
CYCLIC_ATTRIBUTES = ("mode", "gamma", "scale_mode", "max_lrs", "base_lrs", "total_size", "step_ratio", "cycle_momentum",
                     "base_momentums", "max_momentums", "use_beta1")


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("case", list(CYCLIC_ATTRIBUTE_CASES))
def test_cyclic_lr_has_torch_s_public_attributes_with_torch_s_values(case, kind):
    arguments = CYCLIC_ATTRIBUTE_CASES[case]
    ours = CyclicLR(two_group_optimizer(kind), **arguments)
    theirs = torch_schedulers.CyclicLR(two_group_optimizer(kind), **arguments)
    for name in CYCLIC_ATTRIBUTES:
        if hasattr(theirs, name):  # torch sets the momentum attributes only when it cycles momentum
            assert getattr(ours, name) == getattr(theirs, name), name
    assert [ours.scale_fn(x) for x in range(1, 8)] == [theirs.scale_fn(x) for x in range(1, 8)]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("arguments", [dict(max_lr=0.1, total_steps=40),
                                       dict(max_lr=[0.1, 0.3], epochs=4, steps_per_epoch=9, anneal_strategy="linear",
                                            cycle_momentum=False, div_factor=10.0)])
def test_one_cycle_lr_has_torch_s_public_attributes_with_torch_s_values(arguments, kind):
    ours = OneCycleLR(two_group_optimizer(kind), **arguments)
    theirs = torch_schedulers.OneCycleLR(two_group_optimizer(kind), **arguments)
    for name in ("total_steps", "_anneal_func_type", "cycle_momentum", "use_beta1", "base_lrs"):
        if hasattr(theirs, name):
            assert getattr(ours, name) == getattr(theirs, name), name


def test_public_attributes_follow_a_loaded_state():
    scheduler = cyclic(two_group_optimizer())
    scheduler.load_state_dict(saved(lambda opt: CyclicLR(opt, 0.02, 0.2, step_size_up=3, step_size_down=5,
                                                         mode="exp_range", gamma=0.9)))
    assert (scheduler.mode, scheduler.gamma, scheduler.scale_mode) == ("exp_range", 0.9, "iterations")
    assert (scheduler.base_lrs, scheduler.max_lrs, scheduler.total_size, scheduler.step_ratio) == (
        [0.02, 0.02], [0.2, 0.2], 8.0, 3 / 8)


TENSOR_CASES = {  # (class pair index, arguments given the LR type): the same call for clr_lib and torch
    "cyclic": (0, lambda lr: dict(base_lr=lr(0.001), max_lr=lr(0.01), step_size_up=4, mode="triangular2")),
    "cyclic_exp_range": (0, lambda lr: dict(base_lr=lr(0.001), max_lr=lr(0.01), step_size_up=3, step_size_down=5,
                                            mode="exp_range", gamma=0.9)),
    "one_cycle": (1, lambda lr: dict(max_lr=lr(0.1), total_steps=25, three_phase=True)),
}
CLASS_PAIRS = [(CyclicLR, torch_schedulers.CyclicLR), (OneCycleLR, torch_schedulers.OneCycleLR)]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("arguments", ["float", "tensor"])
@pytest.mark.parametrize("name", list(TENSOR_CASES))
def test_a_tensor_lr_is_updated_in_place_with_torch_s_values(name, arguments, kind):
    pair, make_arguments = TENSOR_CASES[name]
    runs = []
    for scheduler_class in CLASS_PAIRS[pair]:
        optimizer = two_group_optimizer(kind, lr=torch.tensor(0.02))
        lr_tensor = optimizer.param_groups[0]["lr"]
        scheduler = scheduler_class(optimizer, **make_arguments(torch.tensor if arguments == "tensor" else float))
        runs.append(trace(optimizer, scheduler, 20))
        assert optimizer.param_groups[0]["lr"] is lr_tensor and lr_tensor.dtype == torch.float32
        assert isinstance(scheduler.get_last_lr()[0], torch.Tensor)
    # torch does its arithmetic in float32 when the LRs are float32 tensors, clr_lib in float64
    tolerance = ULPS32 if arguments == "tensor" else ULPS
    np.testing.assert_allclose(runs[0], runs[1], rtol=tolerance, atol=0)


def test_tensor_base_lr_on_a_float_lr_gives_the_scheduled_values_where_torch_drifts():
    ours, theirs = two_group_optimizer(), two_group_optimizer()
    scheduler = CyclicLR(ours, torch.tensor(0.001, dtype=torch.float64), torch.tensor(0.01, dtype=torch.float64), 4)
    reference = torch_schedulers.CyclicLR(theirs, torch.tensor(0.001, dtype=torch.float64),
                                          torch.tensor(0.01, dtype=torch.float64), 4)
    lrs = trace(ours, scheduler, 9)[:, 0, 0]
    torch_lrs = trace(theirs, reference, 9)[:, 0, 0]
    np.testing.assert_allclose(lrs, [0.001, 0.00325, 0.0055, 0.00775, 0.01, 0.00775, 0.0055, 0.00325, 0.001], rtol=ULPS)
    assert type(ours.param_groups[0]["lr"]) is float
    # torch makes the group's lr the very tensor in base_lrs and fills it in place: base_lrs drifts
    assert torch_lrs[2] != pytest.approx(0.0055)


def test_state_of_a_tensor_lr_is_plain_and_loads_back_in_place():
    optimizer = two_group_optimizer(lr=torch.tensor(0.02))
    scheduler = CyclicLR(optimizer, 0.001, 0.01, 4)
    for _ in range(3):
        optimizer.step(), scheduler.step()
    state = weights_only_round_trip(scheduler.state_dict())
    assert_plain(state)
    fresh_optimizer = two_group_optimizer(lr=torch.tensor(0.02))
    lr_tensor = fresh_optimizer.param_groups[0]["lr"]
    fresh = CyclicLR(fresh_optimizer, 0.001, 0.01, 4)
    fresh.load_state_dict(state)
    assert fresh_optimizer.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == float(optimizer.param_groups[0]["lr"])
    assert torch.equal(fresh.get_last_lr()[0], scheduler.get_last_lr()[0])


def _values_after_steps(scheduler, steps: int) -> list[list[float]]:
    """Step a scheduler (in whatever process) and return (lr, momentum) per group after each step."""
    values = []
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        values.append([(float(group["lr"]), float(momentum_of(group))) for group in scheduler.optimizer.param_groups])
    return values


def _schedules_pickle() -> bool:
    try:
        pickle.dumps(clr_lib.cyclic(0.01, 0.1, 4))
        return True
    except (pickle.PicklingError, AttributeError, TypeError):
        return False


def _half_lr(iteration: int) -> float:
    return 0.5 / (iteration + 1)


PICKLE_CASES = {
    "cyclic_adam": lambda: CyclicLR(two_group_optimizer("adam"), [0.01, 0.02], 0.1, 3, mode="exp_range", gamma=0.9),
    "cyclic_scale_fn": lambda: CyclicLR(two_group_optimizer(), 0.01, 0.1, 3, scale_fn=scale_by_cycle, shape="hann"),
    "one_cycle": lambda: OneCycleLR(two_group_optimizer(), 0.1, total_steps=30, three_phase=True),
    "schedule_lr_callable": lambda: ScheduleLR(two_group_optimizer(), _half_lr),
    # clr_lib.schedules' own pickling is being made to work separately; this case runs once it does
    "schedule_lr_schedules": pytest.param(
        lambda: ScheduleLR(two_group_optimizer(), clr_lib.cyclic(0.01, 0.1, 4), clr_lib.cyclic_momentum(0.8, 0.9, 4)),
        marks=pytest.mark.xfail(not _schedules_pickle(), reason="clr_lib.schedules factories do not pickle yet"),
    ),
}


@pytest.mark.parametrize("round_trip", ["pickle", "torch_save", "deepcopy"])
@pytest.mark.parametrize("make", list(PICKLE_CASES.values()), ids=list(PICKLE_CASES))
def test_schedulers_pickle_and_carry_on_exactly(make, round_trip):
    scheduler = make()
    scheduler.optimizer.step(), scheduler.step(), scheduler.step()
    if round_trip == "pickle":
        copied = pickle.loads(pickle.dumps(scheduler))
    elif round_trip == "torch_save":
        buffer = io.BytesIO()
        torch.save(scheduler, buffer)
        buffer.seek(0)
        copied = torch.load(buffer, weights_only=False)
    else:
        copied = copy.deepcopy(scheduler)
    assert copied.optimizer is not scheduler.optimizer
    assert copied.state_dict() == scheduler.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a copied optimizer's step is not wrapped by torch's call-order tracker
        assert _values_after_steps(copied, 6) == _values_after_steps(scheduler, 6)


def test_a_scheduler_sent_to_a_subprocess_gives_the_same_values():
    schedulers = [PICKLE_CASES["cyclic_adam"](), PICKLE_CASES["one_cycle"]()]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        remote = [pool.submit(_values_after_steps, scheduler, 8).result(timeout=300) for scheduler in schedulers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert remote == [_values_after_steps(scheduler, 8) for scheduler in schedulers]


COMPOSITIONS = {
    # the issue's example: torch gives 0.0024, 0.00672, ... during the warm-up; clr_lib gave 0.0004, 0.00112
    "sequential_linear_then_cyclic": lambda opt, C, O: torch_schedulers.SequentialLR(
        opt, [torch_schedulers.LinearLR(opt, start_factor=0.1, total_iters=5), C(opt, base_lr=0.004, max_lr=0.01,
                                                                                   step_size_up=3)], milestones=[5]),
    "sequential_cyclic_then_exponential": lambda opt, C, O: torch_schedulers.SequentialLR(
        opt, [C(opt, 0.004, 0.01, 3), torch_schedulers.ExponentialLR(opt, 0.9)], milestones=[7]),
    "sequential_constant_then_one_cycle": lambda opt, C, O: torch_schedulers.SequentialLR(
        opt, [torch_schedulers.ConstantLR(opt, factor=0.5, total_iters=3), O(opt, max_lr=0.1, total_steps=30)],
        milestones=[4]),
    "sequential_three_stages": lambda opt, C, O: torch_schedulers.SequentialLR(
        opt, [torch_schedulers.LinearLR(opt, start_factor=0.2, total_iters=4),
              C(opt, 0.01, 0.05, 2, mode="triangular2"), O(opt, max_lr=[0.1, 0.2], total_steps=20)],
        milestones=[4, 12]),
    "chained_cyclic_and_exponential": lambda opt, C, O: torch_schedulers.ChainedScheduler(
        [C(opt, 0.01, 0.05, 3, mode="exp_range", gamma=0.95), torch_schedulers.ExponentialLR(opt, 0.9)]),
    "chained_one_cycle_and_exponential": lambda opt, C, O: torch_schedulers.ChainedScheduler(
        [O(opt, max_lr=0.1, total_steps=30, three_phase=True), torch_schedulers.ExponentialLR(opt, 0.95)]),
    "chained_cyclic_and_constant": lambda opt, C, O: torch_schedulers.ChainedScheduler(
        [C(opt, 0.01, 0.05, 3), torch_schedulers.ConstantLR(opt, factor=0.5, total_iters=4)]),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_sequential_and_chained_compositions_give_torch_s_learning_rates(name, kind):
    theirs = two_group_optimizer(kind)
    expected = trace(theirs, COMPOSITIONS[name](theirs, torch_schedulers.CyclicLR, torch_schedulers.OneCycleLR), 24)
    ours = two_group_optimizer(kind)
    actual = trace(ours, COMPOSITIONS[name](ours, CyclicLR, OneCycleLR), 24)
    np.testing.assert_allclose(actual, expected, rtol=ULPS, atol=0)


def test_the_issue_s_sequential_example_starts_with_torch_s_warm_up():
    optimizer = two_group_optimizer(lr=0.024)
    scheduler = COMPOSITIONS["sequential_linear_then_cyclic"](optimizer, CyclicLR, OneCycleLR)
    lrs = trace(optimizer, scheduler, 7)[:, 0, 0]
    np.testing.assert_allclose(lrs, [0.0024, 0.00672, 0.01104, 0.01536, 0.01968, 0.004, 0.006], rtol=ULPS)


def test_chaining_after_another_scheduler_differs_from_torch_only_in_torch_s_stale_first_lr():
    theirs, ours = two_group_optimizer(), two_group_optimizer()
    expected = trace(theirs, torch_schedulers.ChainedScheduler(
        [torch_schedulers.ExponentialLR(theirs, 0.9), torch_schedulers.CyclicLR(theirs, 0.01, 0.05, 3)]), 12)
    actual = trace(ours, torch_schedulers.ChainedScheduler(
        [torch_schedulers.ExponentialLR(ours, 0.9), CyclicLR(ours, 0.01, 0.05, 3)]), 12)
    assert expected[0, 0, 0] == 0.05 and actual[0, 0, 0] == 0.01  # torch starts from ExponentialLR's initial_lr
    np.testing.assert_allclose(actual[1:], expected[1:], rtol=ULPS, atol=0)


def test_step_zero_and_update_lr_zero_restart_the_schedule_as_sequential_lr_expects():
    optimizer = two_group_optimizer()
    scheduler = CyclicLR(optimizer, 0.01, 0.05, 3)
    for _ in range(4):
        optimizer.step(), scheduler.step()
    scheduler._update_lr(0)  # what SequentialLR calls at a milestone (older torch: step(0))
    assert scheduler.last_epoch == 0 and optimizer.param_groups[0]["lr"] == 0.01
    with pytest.warns(UserWarning, match="epoch parameter"):
        scheduler.step(2)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 + 0.04 * 2 / 3, rel=ULPS)


@pytest.mark.parametrize("name", ["sequential_linear_then_cyclic", "sequential_cyclic_then_exponential",
                                  "chained_cyclic_and_exponential"])
@pytest.mark.parametrize("stop", [3, 10])
@pytest.mark.parametrize("load_optimizer", [True, False])
def test_a_composition_resumes_exactly_from_a_weights_only_checkpoint(name, stop, load_optimizer):
    def fresh():
        optimizer = two_group_optimizer("adam")
        return optimizer, COMPOSITIONS[name](optimizer, CyclicLR, OneCycleLR)

    optimizer, scheduler = fresh()
    uninterrupted = trace(optimizer, scheduler, 20)
    optimizer, scheduler = fresh()
    first = trace(optimizer, scheduler, stop + 1)
    checkpoint = weights_only_round_trip({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
    optimizer, scheduler = fresh()
    if load_optimizer:
        optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    rest = trace(optimizer, scheduler, 20 - stop)
    np.testing.assert_array_equal(np.concatenate([first[:-1], rest]), uninterrupted)


# --- 6. the docstring examples run ----------------------------------------------------------------

def test_the_module_s_docstring_examples_pass():
    result = doctest.testmod(clr_lib.torch_adapters, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
