"""Speed of the schedule core and of one adapter step, side by side with torch.

Prints two tables:
1. milliseconds to evaluate one million iterations of each schedule with the vectorised functions;
2. microseconds per ``scheduler.step()`` for clr_lib's adapters and torch's classes, measured in the
   same process, interleaved, best of several repeats.

Run: ``.venv/bin/python benchmarks/bench_schedules.py``
"""

from __future__ import annotations

import platform
import timeit
import warnings

import numpy as np

import clr_lib

POINTS = 1_000_000
REPEATS = 7


def best_of(function, number: int) -> float:
    """Seconds per call: the best of REPEATS timings of ``number`` calls each."""
    return min(timeit.repeat(function, number=number, repeat=REPEATS)) / number


def vectorised_table() -> None:
    iterations = np.arange(POINTS)
    schedules = {
        "cyclic triangular": clr_lib.cyclic(0.001, 0.006, 2000),
        "cyclic triangular2 (hann)": clr_lib.cyclic(0.001, 0.006, 2000, mode="triangular2", shape="hann"),
        "cyclic exp_range": clr_lib.cyclic(0.001, 0.006, 2000, mode="exp_range", gamma=0.99994),
        "cyclic momentum": clr_lib.cyclic_momentum(0.8, 0.9, 2000),
        "one_cycle (three phases)": clr_lib.one_cycle(0.1, POINTS, three_phase=True),
        "SGDR (cycle_mult 2)": clr_lib.cosine_warm_restarts(0.1, 1000, 2),
        "staged triangular2 (sequence)": clr_lib.sequence(
            [clr_lib.cyclic(1e-3, 5e-3, 2000, mode="triangular2"), clr_lib.cyclic(1e-4, 5e-4, 1000, mode="triangular2")],
            [640_000],
        ),
    }
    print(f"{'schedule':34s} {'1M points (ms)':>15s}")
    for name, schedule in schedules.items():
        seconds = best_of(lambda: schedule(iterations), number=1)
        print(f"{name:34s} {seconds * 1e3:15.1f}")


def adapter_table() -> None:
    import torch

    warnings.simplefilter("ignore")  # the adapters' call-order warnings are irrelevant here

    def optimizer():
        return torch.optim.SGD(torch.nn.Linear(4, 4).parameters(), lr=0.1, momentum=0.9)

    pairs = {
        "CyclicLR (momentum cycling)": (
            lambda: torch.optim.lr_scheduler.CyclicLR(optimizer(), 0.001, 0.006, 2000),
            lambda: clr_lib.CyclicLR(optimizer(), 0.001, 0.006, 2000),
        ),
        "CyclicLR exp_range": (
            lambda: torch.optim.lr_scheduler.CyclicLR(optimizer(), 0.001, 0.006, 2000, mode="exp_range", gamma=0.9999),
            lambda: clr_lib.CyclicLR(optimizer(), 0.001, 0.006, 2000, mode="exp_range", gamma=0.9999),
        ),
        "OneCycleLR": (
            lambda: torch.optim.lr_scheduler.OneCycleLR(optimizer(), 0.1, total_steps=10**8),
            lambda: clr_lib.OneCycleLR(optimizer(), 0.1, total_steps=10**8),
        ),
    }
    print(f"\n{'step()':30s} {'torch (us)':>11s} {'clr_lib (us)':>13s} {'ratio':>7s}")
    for name, (make_torch, make_ours) in pairs.items():
        timings = {"torch": [], "clr_lib": []}
        for _ in range(3):  # interleave so both see the same machine state
            for label, make in (("torch", make_torch), ("clr_lib", make_ours)):
                scheduler = make()
                scheduler.optimizer.step()
                timings[label].append(best_of(scheduler.step, number=20_000))
        theirs, ours = min(timings["torch"]), min(timings["clr_lib"])
        print(f"{name:30s} {theirs * 1e6:11.2f} {ours * 1e6:13.2f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    import torch

    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{platform.machine()} {platform.processor() or ''}".strip())
    vectorised_table()
    adapter_table()
