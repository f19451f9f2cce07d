"""Thin torch ``LRScheduler`` adapters over the pure schedules of :mod:`clr_lib.schedules`.

* :class:`ScheduleLR` drives any pure schedule (and optionally a momentum schedule) on any optimizer.
* :class:`CyclicLR` and :class:`OneCycleLR` are drop-in replacements for torch's classes: the same
  constructor signature and defaults, the same ``lr`` and momentum (or Adam ``beta1``) at every step
  for every parameter group, torch's public attributes (``base_lrs``, ``max_lrs``, ``total_size``,
  ``step_ratio``, ``scale_fn``, ``total_steps``, ``use_beta1``, ...), ``get_last_lr()``, tensor learning
  rates (a 0-d tensor ``lr`` is updated in place, as torch does), the same learning rates inside
  torch's ``SequentialLR`` and ``ChainedScheduler``, ``state_dict()``/``load_state_dict()`` that resume
  exactly and hold only plain data (they survive ``torch.load(weights_only=True)``), and scheduler
  objects that pickle (``torch.save(scheduler)``, ``copy.deepcopy``, multiprocessing).

>>> import torch
>>> import clr_lib
>>> optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
>>> scheduler = clr_lib.CyclicLR(optimizer, base_lr=0.001, max_lr=0.006, step_size_up=4)
>>> for _ in range(4):  # one scheduler step after every optimizer step
...     optimizer.step()
...     scheduler.step()
>>> scheduler.get_last_lr(), optimizer.param_groups[0]["momentum"]  # the peak: max_lr, base_momentum
([0.006], 0.8)

The adapters hold the step count and translate to and from param groups; they contain no schedule
math. Deliberate differences from torch, each a place where torch is silently wrong (the README lists
them with torch's behaviour):

* stepping a schedule with an end (one-cycle) past its last iteration raises ``ValueError`` and leaves
  the scheduler and optimizer untouched, instead of extrapolating;
* invalid arguments (``base_lr > max_lr``, non-positive or fractional step sizes, ``gamma`` outside
  (0, 1], momenta outside [0, 1), unknown modes or shapes, negative or non-finite LRs, truthy strings
  for booleans, a one-cycle phase shorter than one step, numbers so extreme that a derived LR or the
  cycle length overflows) raise ``ValueError`` naming the parameter and the value;
* every value a schedule returns is checked (a finite number >= 0; a momentum in [0, 1)) before
  anything is written, and any call that raises leaves the scheduler and the optimizer as they were;
* a stale ``initial_lr`` left in the param groups by an earlier scheduler is never used as an LR;
* ``cycle_momentum=True`` on an SGD whose momentum is 0 still cycles momentum (as torch does) but
  warns, because it silently turns plain SGD into momentum SGD;
* ``load_state_dict`` also writes the LR and momentum that the optimizer held when the state was saved,
  so a resumed run is exact even before the first ``step()``; it raises ``ValueError`` for another
  scheduler's state.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from . import schedules
from ._validation import (
    MAX_ITERATIONS,
    as_real_number,
    require_choice,
    require_flag,
    require_learning_rate,
    require_momentum_coefficient,
    require_positive,
    require_whole_number,
)
from .schedules import Schedule

__all__ = ["CyclicLR", "OneCycleLR", "ScheduleLR"]

ScheduleLike = Union[Schedule, Callable[[int], float]]
_INFINITY = math.inf
_STATE_KEYS = ("last_epoch", "_step_count", "_last_lr")  # in every adapter's state, also in older clr_lib states


def _require_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """One value per param group: a list/tuple must match the number of groups, a scalar is repeated."""
    count = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} must have one value per param group ({count}), got {len(value)}: {value!r}")
        return list(value)
    return [value] * count


def _per_group_numbers(
    name: str, optimizer: Optimizer, value: Any, check: Callable[[str, float], float] | None
) -> list[float]:
    """:func:`_per_group` as plain floats (numpy scalars and 0-d tensors converted), each passed through
    ``check(name, number)`` when given; entries of a list are named ``name[i]`` in errors."""
    indexed = isinstance(value, (list, tuple))
    numbers = []
    for index, entry in enumerate(_per_group(name, optimizer, value)):
        label = f"{name}[{index}]" if indexed else name
        number = as_real_number(label, entry)
        numbers.append(number if check is None else check(label, number))
    return numbers


def _momentum_key(optimizer: Optimizer) -> str:
    """``'betas'`` for Adam-like optimizers (beta1 is cycled), ``'momentum'`` for SGD-like ones."""
    if "betas" in optimizer.defaults:
        return "betas"
    if "momentum" in optimizer.defaults:
        return "momentum"
    raise ValueError(
        f"cycle_momentum=True needs an optimizer with a momentum or betas hyper-parameter; "
        f"{type(optimizer).__name__} has neither. Pass cycle_momentum=False."
    )


def _write(group: dict[str, Any], key: str, value: float) -> None:
    """Write one value as torch does: ``beta1`` replaces the first of ``betas``, a tensor hyper-parameter
    (a 0-d tensor ``lr``) is filled in place, anything else is replaced."""
    if key == "betas":
        group["betas"] = (value, *group["betas"][1:])
    elif isinstance(group[key], torch.Tensor):
        group[key].fill_(value)
    else:
        group[key] = value


def _read(group: dict[str, Any], key: str) -> Any:
    return group["betas"][0] if key == "betas" else group[key]


def _plain(value: Any) -> float:
    """A float, int or 0-d tensor as a plain ``float`` (for ``state_dict``)."""
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _checked_value(kind: str, index: int, iteration: int, value: Any, upper: float) -> float:
    """The slow path of the per-step check of a schedule's value: a numpy scalar or 0-d tensor becomes a
    float; anything that is not a real number in ``[0, upper)`` raises ``ValueError``."""
    try:
        number = as_real_number(kind, value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number < upper:
        requirement = (
            "a learning rate must be a finite number >= 0" if upper == _INFINITY
            else "a momentum (or Adam beta1) must be a number in [0, 1)"
        )
        raise ValueError(
            f"{kind}[{index}] gave {value!r} for param group {index} at iteration {iteration}; {requirement}. "
            "Nothing was changed."
        )
    return number


def _group_snapshot(optimizer: Optimizer) -> list[dict[str, Any]]:
    """Every param group's hyper-parameters (not its params); tensors are cloned."""
    return [
        {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in group.items()
         if key != "params"}
        for group in optimizer.param_groups
    ]


def _restore_groups(optimizer: Optimizer, snapshot: list[dict[str, Any]]) -> None:
    """Put back a :func:`_group_snapshot`: keys added since are removed, tensors are restored in place."""
    for group, saved in zip(optimizer.param_groups, snapshot):
        for key in [key for key in group if key != "params" and key not in saved]:
            del group[key]
        for key, value in saved.items():
            current = group.get(key)
            if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor) and current.shape == value.shape:
                current.copy_(value)
            else:
                group[key] = value


class ScheduleLR(LRScheduler):
    """Drive pure schedules on any optimizer, one ``step()`` per iteration.

    Args:
        optimizer: any ``torch.optim.Optimizer``; its ``lr`` may be a float or a 0-d tensor.
        lr_schedule: a schedule (any callable ``iteration -> lr``), or a list with one per param group.
        momentum_schedule: optional schedule for momentum (SGD-like) or ``beta1`` (Adam-like), or a
            list with one per group.
        last_epoch: index of the last iteration taken (-1 for a fresh run), as in torch.

    Right after construction the optimizer holds the values for iteration 0 (as in torch); each
    ``step()`` advances one iteration. Call it after every ``optimizer.step()``. Every value is checked
    before anything is written: a learning rate must be a finite number >= 0 and a momentum a number in
    [0, 1), else ``ValueError`` names the param group, the iteration and the value. A schedule with an
    end (``total_steps``) raises ``ValueError`` when stepped past it. A call that raises leaves the
    scheduler and the optimizer as they were. ``base_lrs`` holds the LRs at iteration 0; a fresh start
    sets a param group's ``initial_lr`` to that LR unless one is already there (as torch's schedulers
    do, so that ``SequentialLR`` behaves the same), but never uses it as an LR.

    ``state_dict()`` holds the step count and the optimizer's current LR and momentum, not the
    schedules: build the scheduler with the same schedules before ``load_state_dict``. The scheduler
    pickles when its schedules do (every :mod:`clr_lib.schedules` factory, module-level functions).

    >>> import torch
    >>> import clr_lib
    >>> optimizer = torch.optim.Adam(torch.nn.Linear(2, 1).parameters())
    >>> lr = clr_lib.one_cycle(0.01, total_steps=100, anneal_strategy="linear")
    >>> scheduler = ScheduleLR(optimizer, lr, clr_lib.one_cycle_momentum(total_steps=100))
    >>> optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"]  # iteration 0
    (0.0004, (0.95, 0.999))
    """

    _STATE_ENTRIES: frozenset[str] = frozenset(
        {"type", "param_group_lr", "param_group_momentum", *_STATE_KEYS}
    )

    def __init__(
        self,
        optimizer: Optimizer,
        lr_schedule: ScheduleLike | Sequence[ScheduleLike],
        momentum_schedule: ScheduleLike | Sequence[ScheduleLike] | None = None,
        last_epoch: int = -1,
    ) -> None:
        _require_optimizer(optimizer)
        last_epoch = require_whole_number("last_epoch", last_epoch, minimum=-1)
        self._set_schedules(optimizer, lr_schedule, momentum_schedule)
        if self.total_steps is not None and last_epoch + 1 >= self.total_steps:
            raise ValueError(
                f"last_epoch must be below total_steps - 1 = {self.total_steps - 1} (the constructor steps to "
                f"last_epoch + 1), got {last_epoch}"
            )
        before = _group_snapshot(optimizer)
        step_was_wrapped = "step" in vars(optimizer)
        try:
            self._prepare_groups(optimizer, last_epoch)
            super().__init__(optimizer, last_epoch)
            self._publish()
        except BaseException:  # leave the optimizer as it was, as every other failing call does
            _restore_groups(optimizer, before)
            if not step_was_wrapped:
                vars(optimizer).pop("step", None)  # the call-order tracker torch's constructor wraps around step
            raise

    def _prepare_groups(self, optimizer: Optimizer, last_epoch: int) -> None:
        """Before torch's constructor, on a fresh start: write iteration 0's LR and set ``initial_lr`` from it
        if absent (torch's ``CyclicLR`` does exactly this with ``base_lr``)."""
        if last_epoch != -1:
            return
        lrs, _ = self._values_at(0)
        for group, lr in zip(optimizer.param_groups, lrs):
            _write(group, "lr", lr)
            group.setdefault("initial_lr", group["lr"].clone() if isinstance(group["lr"], torch.Tensor) else lr)

    def _publish(self) -> None:
        """Set the public attributes torch's schedulers have (here ``base_lrs``: the LRs at iteration 0)."""
        self.base_lrs = self._values_at(0)[0]

    def _set_schedules(
        self,
        optimizer: Optimizer,
        lr_schedule: ScheduleLike | Sequence[ScheduleLike],
        momentum_schedule: ScheduleLike | Sequence[ScheduleLike] | None,
    ) -> None:
        self._lr_schedules = _per_group("lr_schedule", optimizer, lr_schedule)
        self._momentum_schedules = (
            None if momentum_schedule is None else _per_group("momentum_schedule", optimizer, momentum_schedule)
        )
        self._momentum_key = None if momentum_schedule is None else _momentum_key(optimizer)
        for name, group_schedules in (("lr_schedule", self._lr_schedules), ("momentum_schedule", self._momentum_schedules)):
            for schedule in group_schedules or ():
                if not callable(schedule):
                    raise ValueError(f"{name} must be a Schedule or a callable iteration -> value, got {schedule!r}")
        ends = [getattr(s, "total_steps", None) for s in self._lr_schedules + (self._momentum_schedules or [])]
        finite = [end for end in ends if end is not None]
        self.total_steps: int | None = min(finite) if finite else None

    def _values_at(self, iteration: int) -> tuple[list[float], list[float] | None]:
        """Every group's checked LR (and momentum) at ``iteration``; raises before anything is written.

        Plain loops, not comprehensions: this runs on every step, and the common case (plain floats in range)
        costs one comparison per value."""
        lrs = []
        for schedule in self._lr_schedules:
            value = schedule(iteration)
            if type(value) is not float or not 0.0 <= value < _INFINITY:
                value = _checked_value("lr_schedule", len(lrs), iteration, value, _INFINITY)
            lrs.append(value)
        if self._momentum_schedules is None:
            return lrs, None
        momenta = []
        for schedule in self._momentum_schedules:
            value = schedule(iteration)
            if type(value) is not float or not 0.0 <= value < 1.0:
                value = _checked_value("momentum_schedule", len(momenta), iteration, value, 1.0)
            momenta.append(value)
        return lrs, momenta

    def _check_target(self, target: int) -> None:
        if target < 0:
            raise ValueError(f"{type(self).__name__} cannot evaluate iteration {target}: iterations count from 0")
        if self.total_steps is not None and target >= self.total_steps:
            raise ValueError(
                f"{type(self).__name__} was stepped to iteration {target}, past its last iteration "
                f"{self.total_steps - 1} (total_steps={self.total_steps}); nothing was changed. Call step() "
                "once per optimizer step but not after the last one, or build the schedule with more steps."
            )

    def _commit(self, target: int, lrs: list[float], momenta: list[float] | None) -> None:
        """Write checked values (nothing here can fail) and record them as torch does."""
        self.last_epoch = target
        groups = self.optimizer.param_groups
        if momenta is not None:
            key = self._momentum_key
            for group, momentum in zip(groups, momenta):
                _write(group, key, momentum)
        last_lr = []
        for group, lr in zip(groups, lrs):
            current = group["lr"]
            if isinstance(current, torch.Tensor):  # fill in place, as torch does, and record a copy
                current.fill_(lr)
                last_lr.append(current.clone())
            else:
                group["lr"] = lr
                last_lr.append(lr)
        self._last_lr = last_lr

    def _snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        state = {key: copy.copy(value) if type(value) in (list, dict) else value for key, value in vars(self).items()}
        return state, _group_snapshot(self.optimizer)

    def _restore(self, snapshot: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        state, groups = snapshot
        vars(self).clear()
        vars(self).update(state)
        _restore_groups(self.optimizer, groups)

    def get_lr(self) -> list[float]:
        """LRs at iteration ``last_epoch``; writes that iteration's momentum (or beta1) as a side effect, like torch."""
        self._check_target(self.last_epoch)
        lrs, momenta = self._values_at(self.last_epoch)
        if momenta is not None:
            for group, momentum in zip(self.optimizer.param_groups, momenta):
                _write(group, self._momentum_key, momentum)
        return lrs

    def step(self, epoch: int | None = None) -> None:
        """Advance one iteration (``epoch``, deprecated in torch, jumps to that iteration).

        Raises:
            ValueError: a bad ``epoch``, an iteration past the schedule's end, or a schedule value that is
                not a finite LR >= 0 (momentum: in [0, 1)); the scheduler and optimizer are left unchanged.
        """
        if epoch is None and self._step_count >= 2:
            # The steady state: torch's LRScheduler.step() without its per-call overhead. Everything that can
            # fail (the range, the schedules, the value checks) runs before the first write.
            target = self.last_epoch + 1
            if self.total_steps is not None and target >= self.total_steps:
                self._check_target(target)
            lrs, momenta = self._values_at(target)
            self._step_count += 1
            self._commit(target, lrs, momenta)
            return
        target = self.last_epoch + 1 if epoch is None else require_whole_number("epoch", epoch, minimum=0)
        self._check_target(target)
        lrs, momenta = self._values_at(target)
        # Torch's own path (its call-order warnings, the deprecated epoch argument); it ends in _update_lr.
        snapshot = self._snapshot()
        self._pending = (target, lrs, momenta)
        try:
            super().step(None if epoch is None else target)
        except BaseException:  # e.g. a warning turned into an error after torch counted the step
            self._restore(snapshot)
            raise
        finally:
            vars(self).pop("_pending", None)

    def _update_lr(self, epoch: int | None = None) -> None:
        """Torch's hook, called by ``step()`` and directly by ``SequentialLR`` at a milestone (``_update_lr(0)``)."""
        pending = vars(self).pop("_pending", None)
        if pending is None:
            target = self.last_epoch + 1 if epoch is None else require_whole_number("epoch", epoch, minimum=0)
            self._check_target(target)
            pending = (target, *self._values_at(target))
        self._commit(*pending)

    def state_dict(self) -> dict[str, Any]:
        """Plain data only (str, int, float, lists), loadable with ``torch.load(weights_only=True)``: the class
        name, the step count, the last LRs, and the LR and momentum (or beta1) the optimizer holds now, which
        :meth:`load_state_dict` writes back."""
        groups = self.optimizer.param_groups
        state: dict[str, Any] = {
            "type": type(self).__name__,
            "last_epoch": int(self.last_epoch),
            "_step_count": int(self._step_count),
            "_last_lr": [_plain(lr) for lr in self._last_lr],
            "param_group_lr": [_plain(group["lr"]) for group in groups],
        }
        if self._momentum_key is not None:
            state["param_group_momentum"] = [_plain(_read(group, self._momentum_key)) for group in groups]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the step count and write the saved LR and momentum into the optimizer.

        Raises:
            ValueError: the state is another scheduler's (a different class, torch's own, other schedules),
                has the wrong number of param groups, or holds a value of the wrong type or range; the message
                names the entry. The scheduler and the optimizer are then left unchanged.
        """
        state = self._checked_state(state_dict)
        snapshot = self._snapshot()
        try:
            self._adopt(state)
        except BaseException:
            self._restore(snapshot)
            raise

    def _checked_state(self, state_dict: Any) -> dict[str, Any]:
        """Validate a saved state without changing anything; return its entries as plain values."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                f"state_dict must be the dict returned by {name}.state_dict(), got {type(state_dict).__name__}"
            )
        saved_type = state_dict.get("type")
        if saved_type is not None and saved_type != name:
            raise ValueError(
                f"state_dict['type'] is {saved_type!r}: it was saved by a {saved_type}, not a {name}; "
                f"load it into a {saved_type} built with the same arguments"
            )
        torch_s = " (it looks like the state of torch's own scheduler)" if "base_lrs" in state_dict else ""
        missing = [key for key in _STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}; expected a {name}.state_dict(){torch_s}")
        unexpected = sorted(str(key) for key in state_dict if key not in self._STATE_ENTRIES)
        if unexpected:
            raise ValueError(
                f"state_dict has entries a {name} does not have: {unexpected}; expected a {name}.state_dict(){torch_s}"
            )
        state = {
            "last_epoch": require_whole_number("state_dict['last_epoch']", state_dict["last_epoch"], minimum=-1),
            "_step_count": require_whole_number(
                "state_dict['_step_count']", state_dict["_step_count"], minimum=0, unit="steps"
            ),
            "_last_lr": self._checked_group_values("_last_lr", state_dict["_last_lr"], require_learning_rate),
            "param_group_lr": None,
            "param_group_momentum": None,
        }
        if "param_group_lr" in state_dict:
            state["param_group_lr"] = self._checked_group_values(
                "param_group_lr", state_dict["param_group_lr"], require_learning_rate
            )
        if "param_group_momentum" in state_dict:
            state["param_group_momentum"] = self._checked_group_values(
                "param_group_momentum", state_dict["param_group_momentum"], require_momentum_coefficient
            )
        return state

    def _checked_group_values(self, member: str, values: Any, check: Callable[[str, float], float]) -> list[float]:
        count = len(self.optimizer.param_groups)
        if not isinstance(values, (list, tuple)) or len(values) != count:
            raise ValueError(f"state_dict[{member!r}] must hold one number per param group ({count}), got {values!r}")
        return [
            check(f"state_dict[{member!r}][{index}]", as_real_number(f"state_dict[{member!r}][{index}]", value))
            for index, value in enumerate(values)
        ]

    def _adopt(self, state: dict[str, Any]) -> None:
        """Take over a checked state (inside load_state_dict's all-or-nothing guard)."""
        last_epoch = state["last_epoch"]
        if last_epoch >= 0:
            self._check_target(last_epoch)
        lrs, momenta = state["param_group_lr"], state["param_group_momentum"]
        if lrs is None:  # a state from before clr_lib saved the optimizer's values: that step's scheduled values
            if last_epoch >= 0:
                lrs, momenta = self._values_at(last_epoch)
        elif (momenta is None) != (self._momentum_key is None):
            saved, here = ("has", "has no") if momenta is not None else ("has no", "has")
            raise ValueError(
                f"state_dict {saved} param_group_momentum but this {type(self).__name__} {here} momentum schedule: "
                "it was saved by a scheduler with other schedules"
            )
        self.last_epoch = last_epoch
        self._step_count = state["_step_count"]
        groups = self.optimizer.param_groups
        if lrs is not None:
            if momenta is not None and self._momentum_key is not None:
                for group, momentum in zip(groups, momenta):
                    _write(group, self._momentum_key, momentum)
            for group, lr in zip(groups, lrs):
                _write(group, "lr", lr)
        self._last_lr = [
            torch.tensor(lr, dtype=group["lr"].dtype, device=group["lr"].device)
            if isinstance(group["lr"], torch.Tensor) else lr
            for group, lr in zip(groups, state["_last_lr"])
        ]


class _ConfiguredScheduleLR(ScheduleLR):
    """A :class:`ScheduleLR` whose schedules are rebuilt from plain constructor arguments (``_config``),
    so its ``state_dict`` can carry them and ``load_state_dict`` can adopt them, as torch's classes do,
    and so that pickling stores the arguments rather than the schedules' functions."""

    _config: dict[str, Any]
    _STATE_ENTRIES = ScheduleLR._STATE_ENTRIES | {"config"}

    def _configure(self, optimizer: Optimizer, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate constructor arguments (or a saved config) and return them as plain data."""
        raise NotImplementedError

    def _build(self, config: dict[str, Any]) -> tuple[list[Schedule], list[Schedule] | None]:
        raise NotImplementedError

    def _check_loadable(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` if a saved config cannot be rebuilt here."""

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`ScheduleLR.state_dict`, plus the constructor's arguments (plain data, no functions)."""
        return {**super().state_dict(), "config": copy.deepcopy(self._config)}

    def _checked_state(self, state_dict: Any) -> dict[str, Any]:
        state = super()._checked_state(state_dict)
        name = type(self).__name__
        config = state_dict.get("config")
        if not isinstance(config, Mapping):
            raise ValueError(
                f"state_dict['config'] must be the dict of a {name}'s arguments, got {config!r}; "
                f"expected a {name}.state_dict()"
            )
        missing = sorted(set(self._config) - set(config))
        unexpected = sorted(str(key) for key in set(config) - set(self._config))
        if missing or unexpected:
            raise ValueError(
                f"state_dict['config'] does not hold a {name}'s arguments: missing {missing}, unexpected {unexpected}"
            )
        self._check_loadable(config)
        state["config"] = self._configure(self.optimizer, config)
        return state

    def _adopt(self, state: dict[str, Any]) -> None:
        """Adopt the saved arguments and step, like torch, then write the saved values to the optimizer."""
        config = state["config"]
        lr_schedules, momentum_schedules = self._build(config)
        self._config = config
        self._set_schedules(self.optimizer, lr_schedules, momentum_schedules)
        self._publish()
        super()._adopt(state)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state.pop("_lr_schedules", None)
        state.pop("_momentum_schedules", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._lr_schedules, self._momentum_schedules = self._build(self._config)


class CyclicLR(_ConfiguredScheduleLR):
    """Drop-in replacement for ``torch.optim.lr_scheduler.CyclicLR``, evaluating :func:`clr_lib.cyclic`.

    Same signature, defaults and values as torch (``cycle_momentum=True``, momentum 0.8-0.9), plus
    ``shape`` (``'triangle'``, ``'welch'`` or ``'hann'``). ``last_epoch`` counts iterations. The LRs may be
    floats or 0-d tensors, and so may the optimizer's ``lr`` (a tensor ``lr`` is updated in place).
    See :func:`clr_lib.cyclic` and :func:`clr_lib.cyclic_momentum` for the formulas and the module
    docstring for the deliberate differences from torch: step sizes must be whole numbers of
    iterations and momenta lie in [0, 1).

    Torch's public attributes, with torch's values: ``base_lrs``, ``max_lrs``, ``total_size``,
    ``step_ratio``, ``mode``, ``gamma``, ``scale_mode`` (the one in effect: a built-in mode forces its
    own), ``scale_fn(x)``, ``cycle_momentum``, ``base_momentums``, ``max_momentums``, ``use_beta1``. They
    describe the schedule; assigning to them does not change it (build a new scheduler instead).

    A custom ``scale_fn`` is not saved in ``state_dict()`` (a function is code, not state): pass it again
    to the constructor before loading. The scheduler pickles when ``scale_fn`` does (a module-level
    function does, a lambda does not, as with torch).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
        shape: Literal["triangle", "welch", "hann"] = "triangle",
    ) -> None:
        _require_optimizer(optimizer)
        if scale_fn is not None and not callable(scale_fn):
            raise ValueError(f"scale_fn must be a callable or None, got {scale_fn!r}")
        self._scale_fn_custom = scale_fn
        self._config = self._configure(optimizer, {
            "base_lr": base_lr, "max_lr": max_lr, "step_size_up": step_size_up, "step_size_down": step_size_down,
            "mode": mode, "gamma": gamma, "scale_mode": scale_mode, "shape": shape, "cycle_momentum": cycle_momentum,
            "base_momentum": base_momentum, "max_momentum": max_momentum,
        })
        lr_schedules, momentum_schedules = self._build(self._config)
        if self._config["cycle_momentum"] and _momentum_key(optimizer) == "momentum":
            still = [i for i, group in enumerate(optimizer.param_groups) if group.get("momentum", 0) == 0]
            if still and last_epoch == -1:
                warnings.warn(
                    f"param groups {still} have momentum 0 and cycle_momentum=True, so momentum will cycle "
                    "between base_momentum and max_momentum (as torch does). Pass cycle_momentum=False to keep "
                    "plain SGD.",
                    UserWarning,
                    stacklevel=2,
                )
        super().__init__(optimizer, lr_schedules, momentum_schedules, last_epoch)

    def _configure(self, optimizer: Optimizer, arguments: Mapping[str, Any]) -> dict[str, Any]:
        cycle_momentum = require_flag("cycle_momentum", arguments["cycle_momentum"])
        up = require_whole_number("step_size_up", arguments["step_size_up"])
        down = arguments["step_size_down"]
        down = None if down is None else require_whole_number("step_size_down", down)
        if up + (up if down is None else down) > MAX_ITERATIONS:
            raise ValueError(
                f"step_size_up + step_size_down (one cycle) must be at most 2**53 = {MAX_ITERATIONS} iterations, "
                f"got step_size_up={up}, step_size_down={down}"
            )
        mode = arguments["mode"]
        if self._scale_fn_custom is None:
            require_choice("mode", mode, schedules.CYCLIC_MODES)
        elif not isinstance(mode, str):
            raise ValueError(f"mode must be a str (it is ignored with a custom scale_fn), got {mode!r}")
        momentum_check = require_momentum_coefficient if cycle_momentum else None
        return {
            "base_lr": _per_group_numbers("base_lr", optimizer, arguments["base_lr"], require_learning_rate),
            "max_lr": _per_group_numbers("max_lr", optimizer, arguments["max_lr"], require_learning_rate),
            "step_size_up": up,
            "step_size_down": down,
            "mode": mode,
            "gamma": as_real_number("gamma", arguments["gamma"]),
            "scale_mode": require_choice("scale_mode", arguments["scale_mode"], ("cycle", "iterations")),
            "shape": require_choice("shape", arguments["shape"], schedules.WINDOW_SHAPES),
            "cycle_momentum": cycle_momentum,
            "base_momentum": _per_group_numbers("base_momentum", optimizer, arguments["base_momentum"], momentum_check),
            "max_momentum": _per_group_numbers("max_momentum", optimizer, arguments["max_momentum"], momentum_check),
            "custom_scale_fn": self._scale_fn_custom is not None,
        }

    def _build(self, config: dict[str, Any]) -> tuple[list[Schedule], list[Schedule] | None]:
        cycle = {key: config[key] for key in ("step_size_up", "step_size_down", "mode", "gamma", "scale_mode", "shape")}
        lrs = [
            schedules.cyclic(base, peak, scale_fn=self._scale_fn_custom, **cycle)
            for base, peak in zip(config["base_lr"], config["max_lr"])
        ]
        if not config["cycle_momentum"]:
            return lrs, None
        momenta = [
            schedules.cyclic_momentum(low, high, scale_fn=self._scale_fn_custom, **cycle)
            for low, high in zip(config["base_momentum"], config["max_momentum"])
        ]
        return lrs, momenta

    def _prepare_groups(self, optimizer: Optimizer, last_epoch: int) -> None:
        super()._prepare_groups(optimizer, last_epoch)
        if last_epoch == -1 and self._config["cycle_momentum"]:
            for index, group in enumerate(optimizer.param_groups):
                group["max_momentum"] = self._config["max_momentum"][index]
                group["base_momentum"] = self._config["base_momentum"][index]

    def _publish(self) -> None:
        config = self._config
        self.base_lrs = list(config["base_lr"])
        self.max_lrs = list(config["max_lr"])
        up = config["step_size_up"]
        down = up if config["step_size_down"] is None else config["step_size_down"]
        self.total_size = float(up) + float(down)
        self.step_ratio = float(up) / self.total_size
        self.mode = config["mode"]
        self.gamma = config["gamma"]
        if self._scale_fn_custom is not None:
            self.scale_mode = config["scale_mode"]
        else:  # a built-in mode forces its scale_mode, as in torch
            self.scale_mode = "iterations" if config["mode"] == "exp_range" else "cycle"
        self.cycle_momentum = config["cycle_momentum"]
        self.base_momentums = list(config["base_momentum"])
        self.max_momentums = list(config["max_momentum"])
        self.use_beta1 = "betas" in self.optimizer.defaults

    def scale_fn(self, x: float) -> float:
        """The amplitude factor at ``x`` (a cycle number or an iteration, per ``scale_mode``), as torch's
        ``CyclicLR.scale_fn``: the custom ``scale_fn`` if given, else the mode's rule (1 for triangular,
        ``2**(1 - x)`` for triangular2, ``gamma**x`` for exp_range; see :func:`clr_lib.cyclic`)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular2":
            return 0.5 ** (x - 1)
        if self.mode == "exp_range":
            return self.gamma**x
        return 1.0

    def _check_loadable(self, config: Mapping[str, Any]) -> None:
        if config["custom_scale_fn"] and self._scale_fn_custom is None:
            raise ValueError(
                "this state was saved with a custom scale_fn, which is not stored in a state_dict; "
                "construct the CyclicLR with the same scale_fn before loading"
            )


class OneCycleLR(_ConfiguredScheduleLR):
    """Drop-in replacement for ``torch.optim.lr_scheduler.OneCycleLR``, evaluating :func:`clr_lib.one_cycle`.

    Same signature, defaults, param-group keys (``initial_lr``, ``max_lr``, ``min_lr``, and
    ``max_momentum``/``base_momentum`` when cycling momentum) and values as torch, and torch's public
    attributes ``total_steps``, ``cycle_momentum``, ``use_beta1``, ``_anneal_func_type`` (the
    ``anneal_strategy``) and ``base_lrs`` (``max_lr / div_factor``). ``max_lr`` may be a float or a 0-d
    tensor, and so may the optimizer's ``lr``. Differences: the ``total_steps``-th ``step()`` raises
    ``ValueError`` instead of extrapolating (the schedule covers iterations ``0 .. total_steps - 1``), a
    phase shorter than one iteration raises ``ValueError`` instead of ``ZeroDivisionError``, and so do
    momenta outside [0, 1), a ``div_factor`` or ``final_div_factor`` that makes an LR overflow, and more
    than 2**53 steps.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        _require_optimizer(optimizer)
        self._config = self._configure(optimizer, {
            "max_lr": max_lr, "total_steps": total_steps, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "pct_start": pct_start, "anneal_strategy": anneal_strategy, "div_factor": div_factor,
            "final_div_factor": final_div_factor, "three_phase": three_phase, "cycle_momentum": cycle_momentum,
            "base_momentum": base_momentum, "max_momentum": max_momentum,
        })
        lr_schedules, momentum_schedules = self._build(self._config)
        super().__init__(optimizer, lr_schedules, momentum_schedules, last_epoch)

    def _configure(self, optimizer: Optimizer, arguments: Mapping[str, Any]) -> dict[str, Any]:
        total_steps = arguments.get("total_steps")
        epochs, steps_per_epoch = arguments.get("epochs"), arguments.get("steps_per_epoch")
        if total_steps is not None:
            total_steps = require_whole_number("total_steps", total_steps)
        elif epochs is None or steps_per_epoch is None:
            raise ValueError("pass total_steps, or both epochs and steps_per_epoch")
        else:
            epochs = require_whole_number("epochs", epochs, unit="epochs")
            steps_per_epoch = require_whole_number("steps_per_epoch", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
            if total_steps > MAX_ITERATIONS:
                raise ValueError(
                    f"epochs * steps_per_epoch must be at most 2**53 = {MAX_ITERATIONS} iterations, "
                    f"got {epochs} * {steps_per_epoch} = {total_steps}"
                )
        cycle_momentum = require_flag("cycle_momentum", arguments["cycle_momentum"])
        div_factor = require_positive("div_factor", as_real_number("div_factor", arguments["div_factor"]))
        final_div_factor = require_positive(
            "final_div_factor", as_real_number("final_div_factor", arguments["final_div_factor"])
        )
        max_lrs = _per_group_numbers("max_lr", optimizer, arguments["max_lr"], require_positive)
        for index, peak in enumerate(max_lrs):
            initial = peak / div_factor
            if not math.isfinite(initial):
                raise ValueError(
                    f"div_factor={div_factor!r} makes the initial LR max_lr / div_factor = {initial!r} for param "
                    f"group {index} (max_lr={peak!r}); it must be finite: use a larger div_factor"
                )
            if not math.isfinite(initial / final_div_factor):
                raise ValueError(
                    f"final_div_factor={final_div_factor!r} makes the final LR max_lr / div_factor / "
                    f"final_div_factor = {initial / final_div_factor!r} for param group {index} (max_lr={peak!r}, "
                    f"div_factor={div_factor!r}); it must be finite: use a larger final_div_factor"
                )
        momentum_check = require_momentum_coefficient if cycle_momentum else None
        return {
            "max_lr": max_lrs,
            "total_steps": total_steps,
            "pct_start": as_real_number("pct_start", arguments["pct_start"]),
            "anneal_strategy": require_choice("anneal_strategy", arguments["anneal_strategy"], ("cos", "linear")),
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
            "three_phase": require_flag("three_phase", arguments["three_phase"]),
            "cycle_momentum": cycle_momentum,
            "base_momentum": _per_group_numbers("base_momentum", optimizer, arguments["base_momentum"], momentum_check),
            "max_momentum": _per_group_numbers("max_momentum", optimizer, arguments["max_momentum"], momentum_check),
        }

    def _build(self, config: dict[str, Any]) -> tuple[list[Schedule], list[Schedule] | None]:
        phases = {key: config[key] for key in ("total_steps", "pct_start", "anneal_strategy", "three_phase")}
        lrs = [
            schedules.one_cycle(peak, div_factor=config["div_factor"], final_div_factor=config["final_div_factor"], **phases)
            for peak in config["max_lr"]
        ]
        if not config["cycle_momentum"]:
            return lrs, None
        momenta = [
            schedules.one_cycle_momentum(base_momentum=low, max_momentum=high, **phases)
            for low, high in zip(config["base_momentum"], config["max_momentum"])
        ]
        return lrs, momenta

    def _prepare_groups(self, optimizer: Optimizer, last_epoch: int) -> None:
        """As torch: ``initial_lr`` (overwritten), ``max_lr``, ``min_lr`` and the momentum bounds."""
        if last_epoch != -1:
            return
        config = self._config
        for index, (group, peak) in enumerate(zip(optimizer.param_groups, config["max_lr"])):
            group["initial_lr"] = peak / config["div_factor"]
            group["max_lr"] = peak
            group["min_lr"] = group["initial_lr"] / config["final_div_factor"]
            if config["cycle_momentum"]:
                group["max_momentum"] = config["max_momentum"][index]
                group["base_momentum"] = config["base_momentum"][index]

    def _publish(self) -> None:
        config = self._config
        self.base_lrs = [peak / config["div_factor"] for peak in config["max_lr"]]
        self._anneal_func_type = config["anneal_strategy"]
        self.cycle_momentum = config["cycle_momentum"]
        self.use_beta1 = "betas" in self.optimizer.defaults
