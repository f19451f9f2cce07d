r"""Expected GPU time of the book's three full-scale runs, from work counted on any machine (no GPU needed).

This is an **estimate**, for the chapters' "how to run this at full scale" notes until a GPU run has been
timed; a measured time (the results files' ``timing``) always replaces it.

Counted here, exactly, by running clr_lib's own training loop on the CPU under PyTorch's dispatcher:

* ``F``: the floating-point operations of one training iteration (forward, loss, backward; counted by
  ``torch.utils.flop_counter`` at a small batch and scaled linearly to the run's batch) and of one test image;
* ``K``: the operations that launch GPU kernels in one eager iteration of :func:`clr_book.cifar.train.train`
  (batch gather, augmentation, forward, backward, a ``foreach`` SGD step as torch uses on CUDA, the loss
  sum) and in one evaluation batch. View and metadata operations, which launch nothing, are not counted.
* the iterations and evaluations of each full profile, read from clr_lib's profiles.

Assumed, **not measured**:

* each GPU's dense peak throughput from its datasheet, for the precision the run computes in (float32
  convolutions use TF32 tensor cores on Ampere and later, cuDNN's default);
* that a run sustains between ``MFU_LOW`` and ``MFU_HIGH`` of that peak, and that every eager operation
  costs between ``OP_SECONDS_LOW`` and ``OP_SECONDS_HIGH`` of host time (Python, dispatcher, launch).

For ``F`` operations and ``K`` kernel launches in all:

.. math::
    t_\mathrm{fast} = \max\left(\frac{F}{\mathrm{MFU_{high}}\,P},\; K\,c_\mathrm{low}\right), \qquad
    t_\mathrm{slow} = \frac{F}{\mathrm{MFU_{low}}\,P} + K\,c_\mathrm{high}

(fast: compute and launches overlap perfectly; slow: not at all). Data preparation (download or JPEG
decoding, once), cuDNN autotuning and compilation are not included.

Run: ``.venv/bin/python benchmarks/estimate_gpu_time.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from clr_book.cifar.data import Augmentation, make_synthetic_cifar10, to_device
from clr_book.cifar.models import CaffeCIFAR10Full, ResNet9, caffe_param_groups, resnet9_widths
from clr_book.cifar.train import evaluate, train
from clr_book.experiments.range_test.config import RANGE_TEST_PROFILES
from clr_book.experiments.table1.config import POLICIES, SOLVER, get_policy
from clr_book.experiments.table1.config import PROFILES as TABLE1_PROFILES
from clr_book.experiments.time_to_accuracy.config import PROFILES as TTA_PROFILES

MFU_LOW, MFU_HIGH = 0.3, 0.6
"""Assumed fraction of the datasheet peak a run sustains."""
OP_SECONDS_LOW, OP_SECONDS_HIGH = 5e-6, 15e-6
"""Assumed host cost of one eager operation (Python, dispatcher, kernel launch)."""
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000

GPUS: dict[str, dict[str, float]] = {
    # Dense peak FLOP/s from the vendors' datasheets; "fp32" is what float32 convolutions run at
    # (TF32 tensor cores from Ampere on), "amp" the bf16 (or, on the T4, fp16) tensor-core peak.
    "T4 (Colab free tier)": {"fp32": 8.1e12, "amp": 65e12},
    "A100 40 GB (SXM)": {"fp32": 156e12, "amp": 312e12},
    "H100 (SXM)": {"fp32": 495e12, "amp": 989e12},
}

_NO_KERNEL = {"detach", "t", "view", "_unsafe_view", "alias", "expand", "transpose", "permute", "as_strided",
              "slice", "select", "unsqueeze", "squeeze", "reshape", "_reshape_alias", "unbind", "split",
              "split_with_sizes", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty",
              "new_empty_strided", "unfold"}


class _KernelCounter(TorchDispatchMode):
    """Counts the ATen operations that launch work (everything but views, metadata and allocation)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in _NO_KERNEL and not func.is_view:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _count(work: Callable[[], object]) -> tuple[int, int]:
    """(floating-point operations, kernel-launching operations) of ``work()``."""
    flops, kernels = FlopCounterMode(display=False), _KernelCounter()
    with flops, kernels:
        work()
    return flops.get_total_flops(), kernels.count


@dataclass(frozen=True)
class Costs:
    """Per-unit work of one network in one training setting."""

    train_flops_per_image: float
    train_ops_per_iteration: float
    eval_flops_per_image: float
    eval_ops_per_batch: float


def measure(make_model: Callable[[], torch.nn.Module], make_optimizer, *, augmentation: Augmentation | None,
            normalization: str, test_time_flip: bool, label_smoothing: float = 0.0) -> Costs:
    """Count one network's training iteration and evaluation batch in clr_book.cifar.train, on the CPU."""
    batch, short, long = 8, 4, 12
    data = make_synthetic_cifar10(200, 64, seed=0)

    def run(iterations: int) -> tuple[int, int]:
        torch.manual_seed(0)
        model = make_model()
        optimizer = make_optimizer(model)
        return _count(lambda: train(model, optimizer, lambda i: 0.01, data, iterations=iterations,
                                    batch_size=batch, eval_every=10_000, eval_batch_size=32,
                                    normalization=normalization, augmentation=augmentation,
                                    channels_last=True, label_smoothing=label_smoothing,
                                    test_time_flip=test_time_flip))

    (flops_short, ops_short), (flops_long, ops_long) = run(short), run(long)
    model = make_model()
    _, test_batches = to_device(data, batch_size=batch, device="cpu", normalization=normalization,
                                channels_last=True, eval_batch_size=32)
    eval_flops, eval_ops = _count(lambda: evaluate(model, test_batches, test_time_flip=test_time_flip))
    eval_batches = math.ceil(64 / 32)
    return Costs(
        train_flops_per_image=(flops_long - flops_short) / (long - short) / batch,
        train_ops_per_iteration=(ops_long - ops_short) / (long - short),
        eval_flops_per_image=eval_flops / 64,
        eval_ops_per_batch=eval_ops / eval_batches,
    )


@dataclass(frozen=True)
class Workload:
    name: str
    precision: str  # "fp32" or "amp"
    flops: float
    kernel_ops: float
    iterations: int


def _workload(name: str, precision: str, costs: Costs, *, iterations: int, batch_size: int,
              eval_images: int, eval_batches: int) -> Workload:
    flops = iterations * batch_size * costs.train_flops_per_image + eval_images * costs.eval_flops_per_image
    ops = iterations * costs.train_ops_per_iteration + eval_batches * costs.eval_ops_per_batch
    return Workload(name, precision, flops, ops, iterations)


def workloads() -> list[Workload]:
    """The full-scale runs and the chapters' default live runs, counted from the book's profiles."""
    caffe = measure(CaffeCIFAR10Full,
                    lambda m: torch.optim.SGD(caffe_param_groups(m, SOLVER["base_weight_decay"]), lr=0.001,
                                              momentum=SOLVER["momentum"], foreach=True),
                    augmentation=None, normalization="mean_image", test_time_flip=False)
    tta = TTA_PROFILES["full"]
    recipe = tta.recipe
    resnet = measure(lambda: ResNet9(widths=resnet9_widths(recipe.base_width)),
                     lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=recipe.momentum,
                                               nesterov=recipe.nesterov, weight_decay=recipe.weight_decay,
                                               foreach=True),
                     augmentation=Augmentation(crop_padding=recipe.crop_padding, flip=recipe.flip, pad_mode="reflect"),
                     normalization="standard", test_time_flip=recipe.test_time_flip,
                     label_smoothing=recipe.label_smoothing)
    out = []

    range_profile = RANGE_TEST_PROFILES["full"]
    iterations = sum(sweep.num_iter for sweep in range_profile.sweeps.values())
    held_out = sum(sweep.num_iter for sweep in range_profile.sweeps.values() if sweep.held_out)
    out.append(_workload("ch. 5 range test (both sweeps)", "fp32", caffe, iterations=iterations,
                         batch_size=range_profile.batch_size, eval_images=held_out * range_profile.held_out_batch_size,
                         eval_batches=held_out))

    table1 = TABLE1_PROFILES["full"]
    budgets = [get_policy(name).budget(table1.iteration_scale) for name in POLICIES]
    evaluations = sum(math.ceil(budget / table1.eval_every) for budget in budgets)
    out.append(_workload("ch. 6 Table 1 (five policies, one after another)", "fp32", caffe,
                         iterations=sum(budgets), batch_size=table1.batch_size,
                         eval_images=evaluations * TEST_IMAGES,
                         eval_batches=evaluations * math.ceil(TEST_IMAGES / 1000)))  # runner's CUDA eval batch

    budget = tta.budget(TRAIN_IMAGES)
    per_seed = 5 * budget + 3 * budget  # five schedules at B, fixed at 3B
    iterations = per_seed * len(tta.seeds) + tta.warmup_iterations
    evaluations = len(tta.seeds) * (5 * math.ceil(budget / tta.eval_every(TRAIN_IMAGES))
                                    + math.ceil(3 * budget / tta.eval_every(TRAIN_IMAGES)))
    out.append(_workload(f"ch. 7 time to accuracy ({len(tta.seeds)} seeds x 6 runs)", "amp", resnet,
                         iterations=iterations, batch_size=recipe.batch_size, eval_images=evaluations * TEST_IMAGES,
                         eval_batches=evaluations * math.ceil(TEST_IMAGES / tta.eval_batch_size)))
    one_run = _workload("ch. 7 one run of B iterations (no evaluation)", "amp", resnet, iterations=budget,
                        batch_size=recipe.batch_size, eval_images=0, eval_batches=0)
    out.append(one_run)

    # The chapters' default live runs (what a Colab reader gets without changing a parameter).
    quick = TABLE1_PROFILES["quick"]
    pair = 2 * get_policy("triangular2").budget(quick.iteration_scale)  # fixed and triangular2, equal iterations
    evaluations = 2 * math.ceil(get_policy("triangular2").budget(quick.iteration_scale) / quick.eval_every)
    out.append(_workload("ch. 6 live demonstration (Figure 1's pair, quick)", "fp32", caffe,
                         iterations=pair, batch_size=quick.batch_size, eval_images=evaluations * quick.test_size,
                         eval_batches=evaluations * math.ceil(quick.test_size / 1000)))
    live = TTA_PROFILES["quick"]
    small = live.recipe
    resnet_small = measure(lambda: ResNet9(widths=resnet9_widths(small.base_width)),
                           lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=small.momentum,
                                                     nesterov=small.nesterov, weight_decay=small.weight_decay,
                                                     foreach=True),
                           augmentation=Augmentation(crop_padding=small.crop_padding, flip=small.flip,
                                                     pad_mode="reflect"),
                           normalization="standard", test_time_flip=small.test_time_flip,
                           label_smoothing=small.label_smoothing)
    budget = live.budget(live.train_size)
    iterations = len(live.seeds) * 8 * budget  # five schedules at B, fixed at 3B
    evaluations = len(live.seeds) * (5 * math.ceil(budget / live.eval_every(live.train_size))
                                     + math.ceil(3 * budget / live.eval_every(live.train_size)))
    out.append(_workload("ch. 7 live demonstration (six runs, quick)", "fp32", resnet_small,
                         iterations=iterations, batch_size=small.batch_size,
                         eval_images=evaluations * live.test_size,
                         eval_batches=evaluations * math.ceil(live.test_size / live.eval_batch_size)))
    print(f"per-unit counts: Caffe net {caffe}\n                 ResNet-9 (width {recipe.base_width}) {resnet}\n")
    return out


def estimate(workload: Workload, peak: float) -> tuple[float, float]:
    """(fast, slow) seconds for ``workload`` on a GPU of ``peak`` FLOP/s (see the module's equations)."""
    fast = max(workload.flops / (MFU_HIGH * peak), workload.kernel_ops * OP_SECONDS_LOW)
    slow = workload.flops / (MFU_LOW * peak) + workload.kernel_ops * OP_SECONDS_HIGH
    return fast, slow


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def main() -> None:
    print(f"torch {torch.__version__}, python {platform.python_version()}; counted on the CPU")
    print(f"assumed: {MFU_LOW:.0%}-{MFU_HIGH:.0%} of datasheet peak, "
          f"{OP_SECONDS_LOW * 1e6:.0f}-{OP_SECONDS_HIGH * 1e6:.0f} us host time per eager operation\n")
    rows = workloads()
    print(f"{'run':52s} {'iterations':>10s} {'PFLOP':>7s} {'kernel ops':>11s}")
    for row in rows:
        print(f"{row.name:52s} {row.iterations:>10,d} {row.flops / 1e15:>7.2f} {row.kernel_ops:>11,.0f}")
    for gpu, peaks in GPUS.items():
        print(f"\n{gpu}: fp32 convolutions at {peaks['fp32'] / 1e12:.0f} TFLOP/s, autocast at {peaks['amp'] / 1e12:.0f}")
        for row in rows:
            fast, slow = estimate(row, peaks[row.precision])
            bound = "launch-bound" if row.kernel_ops * OP_SECONDS_LOW > row.flops / (MFU_HIGH * peaks[row.precision]) \
                else "compute-bound"
            print(f"  {row.name:52s} {_duration(fast):>8s} to {_duration(slow):>8s}  ({bound} at best)")


if __name__ == "__main__":
    main()
