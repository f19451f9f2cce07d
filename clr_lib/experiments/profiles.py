"""Run profiles: how much data and how many iterations a Table 1 replication uses.

* ``full``: the paper's setting: all 50,000 training and 10,000 test images, the paper's iteration
  budgets, a test evaluation every 1,000 iterations. For a GPU.
* ``quick``: the same code path at 1/500 scale for a CPU (CI, the chapter's live run, readers without
  a GPU): a class-balanced subset of 5,000 training and 500 test images, every iteration count (budgets,
  step sizes, milestones, stage boundaries) divided by 500 (500 divides all of them, so each schedule
  is exactly the full-scale one sampled every 500 iterations) and each per-iteration ``gamma`` raised
  to the power 500, a test evaluation every 10 iterations. The five budgets become 140 + 50 + 50 +
  140 + 84 = 464 iterations.
  Measured on the 2-core CI machine (AMD EPYC, torch 2.14, idle, 2026-12-01): ~125 ms per training
  iteration (channels_last, fp32; hosts of this class differ: see :mod:`clr_lib.train`)
  and ~0.2 s per evaluation of 500 images. At 1/250 (928 iterations) all five policies took 137 s
  (115 s training, 19 s evaluating), too slow for the chapter. At 1/500 all five take 65 s (same
  machine, idle, seed 0, JPEG copy of CIFAR-10), and the whole chapter 82 s under ``jupyter nbconvert
  --execute``.
  What it can show: every policy runs its whole schedule and ends above chance; it cannot reproduce
  Table 1 or rank the policies: at this scale their differences are within the noise of a 500-image
  test set and a seed.
* ``smoke``: 1/1000 scale on 500 / 200 images, for the test suite only; the numbers mean nothing.

``auto`` picks ``full`` on a CUDA device and ``quick`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import choose_profile

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
    "quick": Profile("quick", 5000, 500, 0.002, 10),
    "smoke": Profile("smoke", 500, 200, 0.001, 10),
}


def resolve_profile(name: str, device_type: str) -> Profile:
    """The profile called ``name``; ``"auto"`` is ``full`` on ``"cuda"`` and ``quick`` elsewhere.

    Raises:
        ValueError: an unknown name (naming ``profile``).
    """
    return choose_profile(name, PROFILES, device_type)
