"""The LR range test's settings: the paper's reading, the two sweeps and the run profiles.

========  ===============  ============================  =========================  =========
profile   images (train /  linear sweep                  exp sweep                  held-out
          test)                                                                     batch
========  ===============  ============================  =========================  =========
full      50,000 / 10,000  1e-5 .. 0.02, 4,000 it (8 ep)  1e-5 .. 1, 1,500 it (3 ep)  500
quick     5,000 / 1,000    1e-5 .. 0.02, 250 it (5 ep)    1e-5 .. 1, 150 it (3 ep)    100
smoke     500 / 200        1e-5 .. 0.02, 12 it            1e-5 .. 1, 12 it            50
========  ===============  ============================  =========================  =========

``auto`` is ``full`` on a CUDA device and ``quick`` elsewhere. The quick profile's curves are shaped by
its few iterations, so its suggestions are not the paper's; ``smoke`` exists for the test suite only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from ..common import choose_profile

__all__ = ["MODES", "PAPER_RANGE_TEST", "RANGE_TEST_PROFILES", "RangeTestProfile", "Sweep",
           "resolve_range_test_profile", "sweep_for"]

MODES = ("linear", "exp")
"""The two sweeps: Smith's linear one and fast.ai's exponential one."""

PAPER_RANGE_TEST: dict[str, Any] = {
    "base_lr": 0.001,
    "max_lr": 0.006,
    "epochs": 8,
    "iterations": 4000,
    "citation": (
        "Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV 2017, section 3.3 "
        "(CIFAR-10, Caffe cifar10_full net, batch 100: a linear LR range test over 8 epochs gave "
        "base_lr 0.001 and max_lr 0.006)."
    ),
}
"""The bounds Smith (2017) read off his CIFAR-10 range test."""


@dataclass(frozen=True)
class Sweep:
    """One range-test sweep: the LR of ``num_iter`` iterations from ``start_lr`` to ``end_lr``.

    Attributes:
        start_lr: LR of iteration 0 (``lr_mult`` 1 groups).
        end_lr: LR of the last iteration.
        num_iter: iterations (one batch and one optimizer step each).
        held_out: read the sweep on held-out batches (True, Smith) or on the training batches (False).
    """

    start_lr: float
    end_lr: float
    num_iter: int
    held_out: bool


@dataclass(frozen=True)
class RangeTestProfile:
    """How big a range test is.

    Attributes:
        name: ``full``, ``quick`` or ``smoke``.
        train_size: training images (class-balanced subset), or None for all 50,000.
        test_size: test images (class-balanced subset), or None for all 10,000.
        sweeps: the :class:`Sweep` of each mode.
        held_out_batch_size: test images classified after every iteration of a held-out sweep.
        batch_size: training images per iteration (the paper's 100).
    """

    name: str
    train_size: Optional[int]
    test_size: Optional[int]
    sweeps: dict[str, Sweep]
    held_out_batch_size: int
    batch_size: int = 100


RANGE_TEST_PROFILES: dict[str, RangeTestProfile] = {
    "full": RangeTestProfile(
        "full", None, None,
        {"linear": Sweep(1e-5, 0.02, 4000, True), "exp": Sweep(1e-5, 1.0, 1500, False)},
        held_out_batch_size=500,
    ),
    "quick": RangeTestProfile(
        "quick", 5000, 1000,
        {"linear": Sweep(1e-5, 0.02, 250, True), "exp": Sweep(1e-5, 1.0, 150, False)},
        held_out_batch_size=100,
    ),
    "smoke": RangeTestProfile(
        "smoke", 500, 200,
        {"linear": Sweep(1e-5, 0.02, 12, True), "exp": Sweep(1e-5, 1.0, 12, False)},
        held_out_batch_size=50,
    ),
}
"""The range-test profiles (see the module docstring)."""


def resolve_range_test_profile(name: str, device_type: str) -> RangeTestProfile:
    """The profile called ``name``; ``"auto"`` is ``full`` on ``"cuda"`` and ``quick`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile``).
    """
    return choose_profile(name, RANGE_TEST_PROFILES, device_type)


def sweep_for(profile: RangeTestProfile, mode: str, start_lr: Optional[float], end_lr: Optional[float],
               num_iter: Optional[int], held_out: Optional[bool]) -> tuple[Sweep, bool]:
    """The profile's sweep for mode with any overrides applied, and whether anything was overridden."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    base = profile.sweeps[mode]
    overrides = {key: value for key, value in
                 (("start_lr", start_lr), ("end_lr", end_lr), ("num_iter", num_iter), ("held_out", held_out))
                 if value is not None}
    return replace(base, **overrides), any(getattr(base, key) != value for key, value in overrides.items())


