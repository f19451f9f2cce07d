"""Per-iteration overhead of ``lr_range_test`` against a plain training loop, on CPU.

For each model, the same synthetic batches are trained for the same number of iterations by

* a plain loop: ``zero_grad``, forward, loss, ``backward``, ``step``, ``loss.item()``;
* ``lr_range_test`` with ``progress=False`` (its time includes the snapshot and restoration of the
  model, optimizer and RNG states, the LR updates, the smoothing and the divergence check).

The two are interleaved and each timing is the best of REPEATS runs, from a fresh copy of the model.
Printed: milliseconds per iteration for both, the overhead in microseconds per iteration and in percent.

Run: ``.venv/bin/python benchmarks/bench_range_test.py``
"""

from __future__ import annotations

import copy
import itertools
import platform
import time

import torch
from torch import nn

from clr_lib import lr_range_test

NUM_ITER = 200
REPEATS = 15
NUM_BATCHES = 8


def workloads() -> dict[str, tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """name -> (model, batches) with fixed random data."""
    generator = torch.Generator().manual_seed(0)

    def batches(input_shape: tuple[int, ...], classes: int, batch_size: int):
        return [(torch.randn(batch_size, *input_shape, generator=generator),
                 torch.randint(0, classes, (batch_size,), generator=generator)) for _ in range(NUM_BATCHES)]

    torch.manual_seed(0)
    return {
        "tiny MLP 20-32-2, batch 16": (
            nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2)),
            batches((20,), 2, 16),
        ),
        "MLP 784-256-256-10, batch 64": (
            nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)),
            batches((784,), 10, 64),
        ),
        "CNN 2 conv + BN on 3x32x32, batch 32": (
            nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
            ),
            batches((3, 32, 32), 10, 32),
        ),
    }


def plain_loop(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list) -> None:
    criterion = nn.CrossEntropyLoss()
    model.train()
    cycled = itertools.cycle(batches)
    for _ in range(NUM_ITER):
        inputs, targets = next(cycled)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        loss.item()


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list) -> None:
    result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), batches, start_lr=1e-5, end_lr=1e-2,
                           num_iter=NUM_ITER, progress=False)
    assert not result.diverged and len(result.lrs) == NUM_ITER


def seconds(run, model: nn.Module, batches: list) -> float:
    """Wall time of one run on a fresh copy of model and a fresh SGD-momentum optimizer."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    start = time.perf_counter()
    run(model, optimizer, batches)
    return time.perf_counter() - start


def main() -> None:
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
          f"torch threads {torch.get_num_threads()}; {NUM_ITER} iterations, best of {REPEATS}")
    print(f"{'model':38s} {'plain (ms/it)':>14s} {'range test (ms/it)':>19s} {'overhead (us/it)':>17s} "
          f"{'overhead':>9s}")
    for name, (model, batches) in workloads().items():
        seconds(plain_loop, model, batches)  # warm-up
        timings = {plain_loop: [], range_test: []}
        for _ in range(REPEATS):  # interleaved, so both see the same machine state
            for run in timings:
                timings[run].append(seconds(run, model, batches))
        plain, ours = (min(timings[run]) / NUM_ITER for run in (plain_loop, range_test))
        print(f"{name:38s} {plain * 1e3:14.3f} {ours * 1e3:19.3f} {(ours - plain) * 1e6:17.1f} "
              f"{(ours - plain) / plain:9.1%}")


if __name__ == "__main__":
    main()
