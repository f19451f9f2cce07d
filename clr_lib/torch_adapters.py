"""Thin torch ``LRScheduler`` adapters over the pure schedules of :mod:`clr_lib.schedules`.

* :class:`ScheduleLR` drives any pure schedule (and optionally a momentum schedule) on any optimizer.
* :class:`CyclicLR` and :class:`OneCycleLR` are drop-in replacements for torch's classes: the same
  constructor signature and defaults, the same ``lr`` and momentum (or Adam ``beta1``) at every step
  for every parameter group, ``get_last_lr()``, and ``state_dict()``/``load_state_dict()`` that
  resume exactly and hold only plain data, so they survive ``torch.load(weights_only=True)``.

The adapters hold the step count and translate to and from param groups; they contain no schedule
math. Deliberate differences from torch, each a place where torch is silently wrong:

* stepping a schedule with an end (one-cycle) past its last iteration raises ``ValueError`` and leaves
  the scheduler and optimizer untouched, instead of extrapolating;
* invalid arguments (``base_lr > max_lr``, non-positive step sizes, ``gamma`` outside (0, 1], unknown
  modes or shapes, negative or non-finite LRs, a one-cycle phase shorter than one step) raise
  ``ValueError`` naming the parameter and the value;
* a stale ``initial_lr`` left in the param groups by an earlier scheduler is overwritten, not used;
* ``cycle_momentum=True`` on an SGD whose momentum is 0 still cycles momentum (as torch does) but
  warns, because it silently turns plain SGD into momentum SGD;
* ``load_state_dict`` also writes the restored step's LR and momentum into the optimizer, so a
  resumed run is exact even before the first ``step()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from . import schedules
from ._validation import require_positive_int
from .schedules import Schedule

__all__ = ["CyclicLR", "OneCycleLR", "ScheduleLR"]

ScheduleLike = Union[Schedule, Callable[[int], float]]
_STATE_KEYS = ("last_epoch", "_step_count", "_last_lr")


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """One value per param group: a list/tuple must match the number of groups, a scalar is repeated."""
    count = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} must have one value per param group ({count}), got {len(value)}: {value!r}")
        return list(value)
    return [value] * count


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
    if key == "betas":
        group["betas"] = (value, *group["betas"][1:])
    elif isinstance(group[key], torch.Tensor):
        group[key].fill_(value)
    else:
        group[key] = value


class ScheduleLR(LRScheduler):
    """Drive pure schedules on any optimizer, one ``step()`` per iteration.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        lr_schedule: a schedule (any callable ``iteration -> lr``), or a list with one per param group.
        momentum_schedule: optional schedule for momentum (SGD-like) or ``beta1`` (Adam-like), or a
            list with one per group.
        last_epoch: index of the last iteration taken (-1 for a fresh run), as in torch.

    Right after construction the optimizer holds the values for iteration 0 (as in torch); each
    ``step()`` advances one iteration. Call it after every ``optimizer.step()``. A schedule with an end
    (``total_steps``) raises ``ValueError`` when stepped past it, leaving everything unchanged.
    ``state_dict()`` holds the step count only: build the scheduler with the same schedules before
    ``load_state_dict``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_schedule: ScheduleLike | Sequence[ScheduleLike],
        momentum_schedule: ScheduleLike | Sequence[ScheduleLike] | None = None,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self._set_schedules(optimizer, lr_schedule, momentum_schedule)
        if last_epoch == -1:  # overwrite, never reuse, an initial_lr an earlier scheduler left behind
            for group, initial_lr in zip(optimizer.param_groups, self._initial_lrs()):
                group["initial_lr"] = initial_lr
        super().__init__(optimizer, last_epoch)

    def _initial_lrs(self) -> list[float]:
        """The ``initial_lr`` written into each param group on a fresh start (becomes ``base_lrs``)."""
        return [schedule(0) for schedule in self._lr_schedules]

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

    def get_lr(self) -> list[float]:
        """Values at iteration ``last_epoch``; writes the momentum (or beta1) as a side effect, like torch."""
        return self._apply(self.last_epoch)

    def _apply(self, iteration: int) -> list[float]:
        lrs = [schedule(iteration) for schedule in self._lr_schedules]
        if self._momentum_schedules is not None:
            for group, schedule in zip(self.optimizer.param_groups, self._momentum_schedules):
                _write(group, self._momentum_key, schedule(iteration))
        return lrs

    def step(self, epoch: int | None = None) -> None:
        """Advance one iteration (``epoch``, deprecated in torch, jumps to that iteration)."""
        target = self.last_epoch + 1 if epoch is None else epoch
        if self.total_steps is not None and target >= self.total_steps:
            raise ValueError(
                f"{type(self).__name__} was stepped to iteration {target}, past its last iteration "
                f"{self.total_steps - 1} (total_steps={self.total_steps}); nothing was changed. Call step() "
                "once per optimizer step but not after the last one, or build the schedule with more steps."
            )
        if epoch is not None or self._step_count < 2:
            super().step(epoch)  # torch's own path: the call-order warnings and the deprecated epoch argument
            return
        # The steady-state path, equivalent to torch's LRScheduler.step() without its per-call overhead.
        self._step_count += 1
        self.last_epoch = target
        for group, lr in zip(self.optimizer.param_groups, self._apply(target)):
            _write(group, "lr", lr)
        self._last_lr = [group["lr"].clone() if isinstance(group["lr"], torch.Tensor) else group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The step count and last LRs: plain data, loadable with ``torch.load(weights_only=True)``."""
        return {key: getattr(self, key) for key in _STATE_KEYS}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step count and write that iteration's LR and momentum into the optimizer."""
        missing = [key for key in _STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}; expected a {type(self).__name__}.state_dict()")
        for key in _STATE_KEYS:
            setattr(self, key, state_dict[key])
        for group, lr in zip(self.optimizer.param_groups, self._apply(self.last_epoch)):
            _write(group, "lr", lr)


class _ConfiguredScheduleLR(ScheduleLR):
    """A :class:`ScheduleLR` whose schedules are rebuilt from plain constructor arguments (``_config``),
    so its ``state_dict`` can carry them and ``load_state_dict`` can adopt them, as torch's classes do."""

    _config: dict[str, Any]

    def _build(self, config: dict[str, Any]) -> tuple[list[Schedule], list[Schedule] | None]:
        raise NotImplementedError

    def _check_loadable(self, config: dict[str, Any]) -> None:
        """Raise ``ValueError`` if a saved config cannot be rebuilt here."""

    def state_dict(self) -> dict[str, Any]:
        """Step count, last LRs and the constructor's arguments (plain data, no functions)."""
        return {**super().state_dict(), "config": dict(self._config)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt the saved arguments and step, like torch, then write that step's values to the optimizer."""
        config = state_dict.get("config")
        if config is None:
            raise ValueError(f"state_dict has no 'config'; expected a {type(self).__name__}.state_dict()")
        self._check_loadable(config)
        lr_schedules, momentum_schedules = self._build(config)
        self._config = dict(config)
        self._set_schedules(self.optimizer, lr_schedules, momentum_schedules)
        super().load_state_dict(state_dict)


class CyclicLR(_ConfiguredScheduleLR):
    """Drop-in replacement for ``torch.optim.lr_scheduler.CyclicLR``, evaluating :func:`clr_lib.cyclic`.

    Same signature, defaults and values as torch (``cycle_momentum=True``, momentum 0.8-0.9), plus
    ``shape`` (``'triangle'``, ``'welch'`` or ``'hann'``). ``last_epoch`` counts iterations.
    See :func:`clr_lib.cyclic` and :func:`clr_lib.cyclic_momentum` for the formulas and the module
    docstring for the deliberate differences from torch. A custom ``scale_fn`` is not saved in
    ``state_dict()`` (a function is code, not state): pass it again to the constructor before loading.
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
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.scale_fn = scale_fn
        self._config = {
            "base_lr": _per_group("base_lr", optimizer, base_lr),
            "max_lr": _per_group("max_lr", optimizer, max_lr),
            "step_size_up": step_size_up,
            "step_size_down": step_size_down,
            "mode": mode,
            "gamma": gamma,
            "scale_mode": scale_mode,
            "shape": shape,
            "cycle_momentum": bool(cycle_momentum),
            "base_momentum": _per_group("base_momentum", optimizer, base_momentum),
            "max_momentum": _per_group("max_momentum", optimizer, max_momentum),
            "custom_scale_fn": scale_fn is not None,
        }
        lr_schedules, momentum_schedules = self._build(self._config)
        if cycle_momentum and _momentum_key(optimizer) == "momentum":
            still = [i for i, group in enumerate(optimizer.param_groups) if group.get("momentum", 0) == 0]
            if still and last_epoch == -1:
                warnings.warn(
                    f"param groups {still} have momentum 0 and cycle_momentum=True, so momentum will cycle "
                    "between base_momentum and max_momentum (as torch does). Pass cycle_momentum=False to keep "
                    "plain SGD.",
                    UserWarning,
                    stacklevel=2,
                )
        if last_epoch == -1:
            for index, group in enumerate(optimizer.param_groups):
                if cycle_momentum:
                    group["max_momentum"] = self._config["max_momentum"][index]
                    group["base_momentum"] = self._config["base_momentum"][index]
        super().__init__(optimizer, lr_schedules, momentum_schedules, last_epoch)

    def _build(self, config: dict[str, Any]) -> tuple[list[Schedule], list[Schedule] | None]:
        cycle = {key: config[key] for key in ("step_size_up", "step_size_down", "mode", "gamma", "scale_mode", "shape")}
        lrs = [
            schedules.cyclic(base, peak, scale_fn=self.scale_fn, **cycle)
            for base, peak in zip(config["base_lr"], config["max_lr"])
        ]
        if not config["cycle_momentum"]:
            return lrs, None
        momenta = [
            schedules.cyclic_momentum(low, high, scale_fn=self.scale_fn, **cycle)
            for low, high in zip(config["base_momentum"], config["max_momentum"])
        ]
        return lrs, momenta

    def _check_loadable(self, config: dict[str, Any]) -> None:
        if config["custom_scale_fn"] and self.scale_fn is None:
            raise ValueError(
                "this state was saved with a custom scale_fn, which is not stored in a state_dict; "
                "construct the CyclicLR with the same scale_fn before loading"
            )


class OneCycleLR(_ConfiguredScheduleLR):
    """Drop-in replacement for ``torch.optim.lr_scheduler.OneCycleLR``, evaluating :func:`clr_lib.one_cycle`.

    Same signature, defaults, param-group keys (``initial_lr``, ``max_lr``, ``min_lr``, and
    ``max_momentum``/``base_momentum`` when cycling momentum) and values as torch. Differences: the
    ``total_steps``-th ``step()`` raises ``ValueError`` instead of extrapolating (the schedule covers
    iterations ``0 .. total_steps - 1``), and a phase shorter than one iteration raises ``ValueError``
    instead of ``ZeroDivisionError``.
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
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("pass total_steps, or both epochs and steps_per_epoch")
            require_positive_int("epochs", epochs, unit="epochs")
            require_positive_int("steps_per_epoch", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        self._config = {
            "max_lr": _per_group("max_lr", optimizer, max_lr),
            "total_steps": total_steps,
            "pct_start": pct_start,
            "anneal_strategy": anneal_strategy,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
            "three_phase": bool(three_phase),
            "cycle_momentum": bool(cycle_momentum),
            "base_momentum": _per_group("base_momentum", optimizer, base_momentum),
            "max_momentum": _per_group("max_momentum", optimizer, max_momentum),
        }
        lr_schedules, momentum_schedules = self._build(self._config)
        if last_epoch == -1:
            for index, (group, peak) in enumerate(zip(optimizer.param_groups, self._config["max_lr"])):
                group["max_lr"] = peak
                group["min_lr"] = peak / div_factor / final_div_factor
                if cycle_momentum:
                    group["max_momentum"] = self._config["max_momentum"][index]
                    group["base_momentum"] = self._config["base_momentum"][index]
        super().__init__(optimizer, lr_schedules, momentum_schedules, last_epoch)

    def _initial_lrs(self) -> list[float]:
        return [peak / self._config["div_factor"] for peak in self._config["max_lr"]]

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
