"""Run profiles: how much data and how many iterations a Table 1 replication uses.

* ``full``: the paper's setting: all 50,000 training and 10,000 test images, the paper's iteration
  budgets, a test evaluation every 1,000 iterations. For a GPU.
* ``quick``: the same code path at 1/100 scale for a CPU (CI, readers without a GPU): a class-balanced
  subset of 5,000 training and 1,000 test images, every iteration count (budgets, step sizes,
  milestones, boundaries) divided by 100 and each per-iteration ``gamma`` raised to the power 100,
  evaluation every 20 iterations (every 10 would make evaluation ~35 % of the run on a CPU). All five
  policies together: about 2.5 minutes of training and evaluation on 2 CPU cores (AMD EPYC, 2026-11).
* ``smoke``: 1/1000 scale on 500 / 200 images, for the test suite only; the numbers mean nothing.

``auto`` picks ``full`` on a CUDA device and ``quick`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile", "resolve_profile"]


@dataclass(frozen=True)
class Profile:
    """A run size.

    Attributes:
        name: ``full``, ``quick`` or ``smoke``.
        train_size: training images (class-balanced subset), or None for all.
        test_size: test images (class-balanced subset), or None for all.
        iteration_scale: factor on every iteration count of a policy (1 = the paper's).
        eval_every: iterations between test evaluations.
        batch_size: images per iteration (the paper's 100 in every profile).
    """

    name: str
    train_size: int | None
    test_size: int | None
    iteration_scale: float
    eval_every: int
    batch_size: int = 100


PROFILES: dict[str, Profile] = {
    "full": Profile("full", None, None, 1.0, 1000),
    "quick": Profile("quick", 5000, 1000, 0.01, 20),
    "smoke": Profile("smoke", 500, 200, 0.001, 10),
}


def resolve_profile(name: str, device_type: str) -> Profile:
    """The profile called ``name``; ``"auto"`` is ``full`` on ``"cuda"`` and ``quick`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile``).
    """
    if name == "auto":
        return PROFILES["full" if device_type == "cuda" else "quick"]
    if name not in PROFILES:
        raise ValueError(f"profile must be 'auto' or one of {', '.join(map(repr, PROFILES))}, got {name!r}")
    return PROFILES[name]
