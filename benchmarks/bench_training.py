"""Speed of the CIFAR-10 pipeline: data loading, and ms per training iteration of the two nets.

Prints four tables:

1. data: the first load of CIFAR-10 from ``--data`` (or ``$CLR_CIFAR10``) into a fresh, temporary cache
   (read + decode every JPEG on all cores + write the cache), the cached load, and the upload of both
   splits to the device. Skipped when no location is given.
2. training: milliseconds per iteration (forward, backward, SGD step, scheduler step, on-device batch)
   of the Caffe ``cifar10_full`` net and ResNet-9 at a few batch sizes, measured exactly as
   ``clr_book.cifar.train.train`` runs them (``TrainStep`` + ``DeviceBatches`` + ``ScheduleLR``), after warm-up,
   with CUDA synchronised at both ends. On the CPU: NCHW vs channels_last. On CUDA: eager fp32, eager
   bf16, ``torch.compile`` (default mode) bf16 and ``torch.compile(mode="reduce-overhead")`` bf16, which
   captures forward and backward in CUDA graphs.
3. evaluation: test images per second under ``inference_mode`` in batches of 1000.
4. time-to-accuracy recipe (chapter 7): ms per iteration of ResNet-9 trained exactly as
   ``clr_book.experiments.time_to_accuracy`` trains it (Nesterov SGD, weight decay, label smoothing 0.2,
   2-pixel translation and flips on the device, channels_last), and the implied training seconds of
   one budget ``B`` and of the whole comparison (8 B of iterations per seed). On the CPU: the quick
   profile's width-8 net at batch 64 and the cpu profile's width-16 net at batch 256. On CUDA: Page's width-64 net at batch 512, eager bf16 and, unless
   ``--quick``, ``torch.compile`` bf16.

Run: ``.venv/bin/python benchmarks/bench_training.py --data /path/to/cifar10-jpeg.tar.gz``
(``--quick`` for a shorter run; ``--help`` for the options).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable

import torch

import clr_lib
from clr_book.cifar.data import load_cifar10, make_synthetic_cifar10, to_device
from clr_book.cifar.models import CaffeCIFAR10Full, ResNet9, caffe_param_groups
from clr_book.cifar.train import TrainStep, evaluate, group_schedules
from clr_book.experiments.provenance import describe_device, utc_now


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_table(location: str, device: torch.device) -> None:
    print("\n## data")
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        data = load_cifar10(location, cache_dir=cache, verbose=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        load_cifar10(location, cache_dir=cache, verbose=False)
        cached = time.perf_counter() - started
    started = time.perf_counter()
    train_split, _ = to_device(data, batch_size=100, device=device)
    _synchronize(device)
    upload = time.perf_counter() - started
    images = len(data.train_labels) + len(data.test_labels)
    print(f"source: {data.source} ({images:,} images)")
    print(f"{'first load (read + decode on all cores + write cache)':58s} {first:8.2f} s")
    print(f"{'cached load':58s} {cached:8.2f} s")
    print(f"{'normalise + upload both splits to ' + str(device):58s} {upload:8.2f} s")
    del train_split


def _variants(device: torch.device) -> list[tuple[str, dict]]:
    if device.type == "cuda":
        return [
            ("eager fp32", {}),
            ("eager bf16", {"amp_dtype": "bf16"}),
            ("eager bf16 channels_last", {"amp_dtype": "bf16", "channels_last": True}),
            ("compile bf16", {"amp_dtype": "bf16", "compile": True}),
            ("compile reduce-overhead bf16 (CUDA graphs)", {"amp_dtype": "bf16", "compile": "reduce-overhead"}),
        ]
    return [("eager fp32 NCHW", {}), ("eager fp32 channels_last", {"channels_last": True})]


def time_training(
    build: Callable[[], torch.nn.Module], batch_size: int, device: torch.device, warmup: int, iterations: int,
    *, caffe: bool, amp_dtype: str | None = None, channels_last: bool = False, compile: bool | str = False,
) -> float:
    """Seconds per training iteration, after ``warmup`` iterations, as ``train()`` runs them."""
    torch.manual_seed(0)
    model = build().to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    groups = caffe_param_groups(model) if caffe else model.parameters()
    optimizer = torch.optim.SGD(groups, lr=0.001, momentum=0.9, weight_decay=0.0 if caffe else 5e-4)
    lr = clr_lib.cyclic(0.001, 0.006, 2000)
    scheduler = clr_lib.ScheduleLR(optimizer, group_schedules(optimizer, lr))
    data = make_synthetic_cifar10(max(4 * batch_size, 512), 10)
    train_split, _ = to_device(data, batch_size=batch_size, device=device, channels_last=channels_last,
                               normalization="mean_image" if caffe else "standard")
    step = TrainStep(model, optimizer, device=device, amp_dtype=amp_dtype, compile=compile)
    stream = train_split.batches(warmup + iterations)
    loss_sum = torch.zeros((), device=device)
    for _ in range(warmup):
        loss_sum += step(*next(stream))
        scheduler.step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(iterations):
        loss_sum += step(*next(stream))
        scheduler.step()
    _synchronize(device)
    elapsed = time.perf_counter() - started
    if not torch.isfinite(loss_sum):
        raise RuntimeError("training diverged during the benchmark")
    return elapsed / iterations


def training_table(device: torch.device, quick: bool, caffe_batches: list[int], resnet_batches: list[int]) -> None:
    print("\n## training (ms per iteration; images/s)")
    cuda = device.type == "cuda"
    models = [
        ("caffe cifar10_full", CaffeCIFAR10Full, True, caffe_batches, (5, 30) if not quick else (3, 10)),
        ("resnet9", ResNet9, False, resnet_batches, (2, 4) if not cuda else (5, 30)),
    ]
    if cuda:
        models = [(n, b, c, s, (20, 200) if not quick else (10, 50)) for n, b, c, s, _ in models]
    print(f"{'model':20s} {'batch':>6s} {'variant':44s} {'ms/it':>9s} {'images/s':>10s}")
    for name, build, caffe, batch_sizes, (warmup, iterations) in models:
        for batch_size in batch_sizes:
            for variant, options in _variants(device):
                if "compile" in options:
                    warmup = max(warmup, 20)  # compilation (and CUDA graph capture) happen in warm-up
                try:
                    seconds = time_training(build, batch_size, device, warmup, iterations, caffe=caffe, **options)
                except Exception as error:  # noqa: BLE001 - report and go on with the other variants
                    print(f"{name:20s} {batch_size:6d} {variant:44s} failed: {type(error).__name__}: {error}")
                    continue
                print(f"{name:20s} {batch_size:6d} {variant:44s} {1e3 * seconds:9.2f} {batch_size / seconds:10.0f}", flush=True)


def eval_table(device: torch.device, quick: bool) -> None:
    cuda = device.type == "cuda"
    batch, memory_format = (1000, torch.contiguous_format) if cuda else (250, torch.channels_last)
    print(f"\n## evaluation (inference_mode, batches of {batch}{'' if cuda else ', channels_last'}, as the experiments run it)")
    for name, build, normalization, count in (
        ("caffe cifar10_full", CaffeCIFAR10Full, "mean_image", 10_000 if cuda else (2000 if quick else 5000)),
        ("resnet9", ResNet9, "standard", 10_000 if cuda else 1000),
    ):
        model = build().to(device=device, memory_format=memory_format)
        _, test = to_device(make_synthetic_cifar10(100, count), batch_size=100, device=device, normalization=normalization,
                            eval_batch_size=batch, channels_last=not cuda)
        evaluate(model, test)  # warm-up
        started = time.perf_counter()
        evaluate(model, test)
        elapsed = time.perf_counter() - started
        print(f"{name:20s} {count:6d} images {elapsed:8.3f} s  {count / elapsed:10.0f} images/s")


def recipe_table(device: torch.device, quick: bool) -> None:
    """ms per iteration of the time-to-accuracy recipe, and the seconds it implies per budget.

    On CUDA the ``full`` profile; on the CPU the ``quick`` profile (the chapter's live run) and the
    ``cpu`` profile (the comparison whose results chapter 7 reads).
    """
    from clr_book.experiments.time_to_accuracy.config import PROFILES  # noqa: PLC0415

    for name in ("full",) if device.type == "cuda" else ("quick", "cpu"):
        _recipe_rows(device, quick, PROFILES[name])


def _recipe_rows(device: torch.device, quick: bool, profile) -> None:  # noqa: ANN001  (a TTAProfile)
    from clr_book.cifar.data import Augmentation  # noqa: PLC0415
    from clr_book.cifar.models import resnet9_widths  # noqa: PLC0415

    cuda = device.type == "cuda"
    recipe = profile.recipe
    train_images = 50_000 if profile.train_size is None else profile.train_size
    budget = profile.budget(train_images)
    variants = [("eager bf16", {"amp_dtype": "bf16"})] if cuda else [("eager fp32", {})]
    if cuda and not quick:
        variants.append(("compile bf16", {"amp_dtype": "bf16", "compile": True}))
    warmup, iterations = ((20, 100) if cuda else (3, 15)) if not quick else ((10, 50) if cuda else (2, 8))
    print(f"\n## time-to-accuracy recipe ({profile.name} profile: ResNet-9 width {recipe.base_width}, batch {recipe.batch_size}, "
          f"B = {budget} iterations)")
    print(f"{'variant':20s} {'ms/it':>9s} {'images/s':>10s} {'s per B':>9s} {'s per 8B (one seed)':>20s}")
    for variant, options in variants:
        torch.manual_seed(0)
        model = ResNet9(widths=resnet9_widths(recipe.base_width)).to(device=device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                    weight_decay=recipe.weight_decay)
        warm = max(warmup, 20) if "compile" in options else warmup  # compilation happens in the warm-up
        scheduler = clr_lib.ScheduleLR(optimizer, [clr_lib.one_cycle(recipe.max_lr, warm + iterations + 1)])
        data = make_synthetic_cifar10(max(4 * recipe.batch_size, 512), 10)
        train_split, _ = to_device(data, batch_size=recipe.batch_size, device=device, channels_last=True, normalization="standard",
                                   augmentation=Augmentation(crop_padding=recipe.crop_padding, flip=recipe.flip))
        step = TrainStep(model, optimizer, device=device, label_smoothing=recipe.label_smoothing, **options)
        stream = train_split.batches(warm + iterations)
        for _ in range(warm):
            step(*next(stream))
            scheduler.step()
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(iterations):
            step(*next(stream))
            scheduler.step()
        _synchronize(device)
        seconds = (time.perf_counter() - started) / iterations
        print(f"{variant:20s} {1e3 * seconds:9.2f} {recipe.batch_size / seconds:10.0f} {budget * seconds:9.2f} "
              f"{8 * budget * seconds:20.1f}", flush=True)


def _load() -> str:
    """The 1-minute load average against the core count: other work on the machine skews every figure."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("CLR_CIFAR10"), help="CIFAR-10 location (default: $CLR_CIFAR10)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="fewer iterations and batch sizes")
    parser.add_argument("--skip-data", action="store_true", help="skip the data-loading table")
    parser.add_argument("--skip-recipe", action="store_true", help="skip the time-to-accuracy recipe table")
    parser.add_argument("--only-recipe", action="store_true", help="only the time-to-accuracy recipe table")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    print(f"# bench_training  {utc_now()}")
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"device: {device} = {describe_device(device)}; torch {torch.__version__}; python {sys.version.split()[0]}")
    print(f"load average at start: {_load()}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if args.only_recipe:
        recipe_table(device, args.quick)
        print(f"\nload average at end: {_load()}")
        return
    if args.data and not args.skip_data:
        data_table(args.data, device)
    if device.type == "cuda":
        caffe_batches, resnet_batches = ([100, 512], [512]) if args.quick else ([100, 256, 512, 1024], [256, 512, 1024])
    else:
        caffe_batches, resnet_batches = ([100], [32]) if args.quick else ([32, 100, 256], [32, 100])
    training_table(device, args.quick, caffe_batches, resnet_batches)
    eval_table(device, args.quick)
    if not args.skip_recipe:
        recipe_table(device, args.quick)
    print(f"\nload average at end: {_load()}")


if __name__ == "__main__":
    main()
