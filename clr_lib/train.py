"""A compact, fast training loop driven by a clr_lib schedule, one scheduler step per iteration.

:func:`train` runs ``iterations`` optimizer steps on device-resident data, steps a
:class:`clr_lib.ScheduleLR` after each one, evaluates test accuracy and loss every ``eval_every``
iterations and at the end, and returns a :class:`TrainResult` with the curves and the wall time split
into training and evaluation.

Written for the GPU, tested on the CPU:

* no host synchronisation per iteration: the training loss is summed on the device and read once per
  evaluation; batches are shuffled, gathered and augmented on the device (:mod:`clr_lib.data`); the LR
  is written into the param groups as a Python float (no tensor copy);
* CUDA is synchronised before every clock reading, so ``train_seconds`` is GPU time, not launch time;
* optional ``torch.compile`` (``compile=True`` or a mode such as ``"max-autotune-no-cudagraphs"``;
  ``"reduce-overhead"`` captures forward and backward in CUDA graphs), bf16/fp16 autocast (fp16 with a
  gradient scaler on CUDA, which synchronises once per step to check for overflow; prefer bf16), and
  channels_last batches and weights;
* evaluation in large batches under ``torch.inference_mode`` with ``model.eval()``, then back to train mode.

On the CPU the loop is deterministic for a given ``seed`` (same curves, bit for bit). The CUDA path is
only taken when a CUDA device is passed.

On 2-core CI-class machines (AMD EPYC, torch 2.14), Caffe net, batch 100, fp32, channels_last is
faster than NCHW (oneDNN's NCHW max-pool and convolution backward are slow), so the experiments use it
on the CPU: 50 against 125 ms per iteration on one host (2026-11-22), 104 against 155 ms on another
(2026-12-01; see ``benchmarks/README.md``). ``torch.compile`` works on the CPU but costs about a minute
of compilation. ``benchmarks/bench_training.py`` prints the figures for the machine it runs on.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import require_positive_int
from .data import CIFAR10, Augmentation, DeviceBatches, to_device
from .torch_adapters import ScheduleLR

__all__ = [
    "COMPILE_MODES",
    "ScaledSchedule",
    "TrainResult",
    "TrainStep",
    "autocast_dtype_for",
    "evaluate",
    "group_schedules",
    "resolve_amp_dtype",
    "train",
]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ScheduleLike = Callable[[int], float]


class ScaledSchedule:
    """``factor * schedule(iteration)``: a schedule for a param group with Caffe's ``lr_mult``.

    Vectorised like the schedule it wraps; keeps its ``total_steps``; ``repr`` reads ``2.0 * cyclic(...)``.
    """

    def __init__(self, schedule: ScheduleLike, factor: float) -> None:
        if not callable(schedule):
            raise ValueError(f"schedule must be callable (iteration -> lr), got {schedule!r}")
        if not isinstance(factor, (int, float)) or not 0 <= factor < math.inf:
            raise ValueError(f"factor must be a finite number >= 0, got {factor!r}")
        self.schedule = schedule
        self.factor = float(factor)
        self.total_steps = getattr(schedule, "total_steps", None)

    def __call__(self, iteration: Any) -> Any:
        return self.factor * self.schedule(iteration)

    def __repr__(self) -> str:
        return f"{self.factor!r} * {self.schedule!r}"


def group_schedules(optimizer: torch.optim.Optimizer, schedule: ScheduleLike) -> list[ScheduleLike]:
    """One schedule per param group: ``schedule`` scaled by the group's ``lr_mult`` (default 1).

    Pass the result to :class:`clr_lib.ScheduleLR` so that, as in Caffe, a group with ``lr_mult=2``
    (the Caffe net's biases) gets twice the scheduled LR at every iteration.
    """
    schedules: list[ScheduleLike] = []
    for group in optimizer.param_groups:
        factor = group.get("lr_mult", 1.0)
        schedules.append(schedule if factor == 1 else ScaledSchedule(schedule, factor))
    return schedules


def resolve_amp_dtype(amp_dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``None``/``"none"`` -> None; ``"bf16"``/``"bfloat16"``/``torch.bfloat16`` and the fp16 spellings -> the dtype.

    Raises:
        ValueError: anything else.
    """
    aliases = {"none": None, "fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16, "half": torch.float16}
    if amp_dtype is None or amp_dtype in (torch.bfloat16, torch.float16):
        return amp_dtype
    if isinstance(amp_dtype, str) and amp_dtype.lower() in aliases:
        return aliases[amp_dtype.lower()]
    raise ValueError(f"amp_dtype must be None, 'bf16' or 'fp16' (or the torch dtypes), got {amp_dtype!r}")


def autocast_dtype_for(amp_dtype: torch.dtype | str | None, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype to train with on ``device``; ``"auto"`` picks by hardware.

    ``"auto"``: bfloat16 on a CUDA GPU that computes in bf16 natively (compute capability 8.0 or newer:
    A100, L4, H100, RTX 30xx and later); float16, with :func:`train`'s gradient scaler, on older CUDA GPUs
    (V100, and the T4 of Colab's free tier), where bf16 is emulated or unsupported; full precision (None)
    on the CPU. Any other value is :func:`resolve_amp_dtype`'s, whatever the device.

    Raises:
        ValueError: a value :func:`resolve_amp_dtype` rejects (other than ``"auto"``).
    """
    if not (isinstance(amp_dtype, str) and amp_dtype.lower() == "auto"):
        return resolve_amp_dtype(amp_dtype)
    device = torch.device(device)
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def _resolve_compile(compile: bool | str) -> str | None:
    if compile is False or compile is None or compile == "none":
        return None
    if compile is True:
        return "default"
    if compile in COMPILE_MODES:
        return compile
    raise ValueError(f"compile must be a bool or one of {', '.join(map(repr, COMPILE_MODES))}, got {compile!r}")


def _resolve_label_smoothing(label_smoothing: float) -> float:
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    return float(label_smoothing)


class TrainStep:
    """One iteration: forward under autocast, mean cross-entropy, backward, ``optimizer.step()``.

    Calling it with a batch returns the detached loss as a device tensor (never synchronises, except
    for fp16 on CUDA, whose gradient scaler checks for overflow). The benchmark times this object, so
    it is exactly what :func:`train` runs.

    Args:
        model: the network, already on its device.
        optimizer: built on the model's parameters.
        device: the model's device.
        amp_dtype: autocast dtype (see :func:`resolve_amp_dtype`), or None for full precision.
        compile: False, True (``torch.compile`` default mode) or a mode name from :data:`COMPILE_MODES`.
        label_smoothing: cross-entropy against ``(1 - eps) * one_hot + eps / classes`` (torch's
            ``label_smoothing``), in [0, 1); 0 is plain cross-entropy.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        amp_dtype: torch.dtype | str | None = None,
        compile: bool | str = False,
        label_smoothing: float = 0.0,
    ) -> None:
        self.label_smoothing = _resolve_label_smoothing(label_smoothing)
        self.model = model
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.amp_dtype = resolve_amp_dtype(amp_dtype)
        mode = _resolve_compile(compile)
        self.forward = model if mode is None else torch.compile(model, mode=None if mode == "default" else mode)
        use_scaler = self.amp_dtype is torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def autocast(self) -> torch.autocast:
        """The autocast context of this step (disabled without ``amp_dtype``)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            # mean over the batch, like Caffe's SoftmaxWithLoss
            loss = F.cross_entropy(self.forward(images), labels, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()


def evaluate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: DeviceBatches,
    *,
    model: nn.Module | None = None,
    amp_dtype: torch.dtype | str | None = None,
    test_time_flip: bool = False,
) -> tuple[float, float]:
    """Accuracy (fraction in [0, 1]) and mean cross-entropy over one in-order pass of ``batches``.

    Runs under ``torch.inference_mode`` with ``model.eval()`` (``model`` defaults to ``forward`` when it
    is a module) and restores the previous mode. Synchronises once, at the end.

    With ``test_time_flip`` each test image is also classified mirrored left-right and the two logit
    vectors are averaged, :math:`z = (f(x) + f(x_{flipped})) / 2` (test-time augmentation, as in
    Page's ResNet-9 and airbench): twice the evaluation work, no extra training.
    """
    module = model if model is not None else (forward if isinstance(forward, nn.Module) else None)
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    dtype = resolve_amp_dtype(amp_dtype)
    device = batches.device
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            correct = torch.zeros((), dtype=torch.int64, device=device)
            loss_sum = torch.zeros((), dtype=torch.float32, device=device)
            for images, labels in batches.epoch():
                logits = forward(images).float()
                if test_time_flip:
                    logits = (logits + forward(images.flip(3)).float()) / 2
                loss_sum += F.cross_entropy(logits, labels, reduction="sum")
                correct += (logits.argmax(dim=1) == labels).sum()
            count = batches.num_images
            return correct.item() / count, loss_sum.item() / count
    finally:
        if module is not None:
            module.train(was_training)


@dataclass
class TrainResult:
    """What :func:`train` measured.

    Curves have one point per evaluation, at ``iteration`` = number of optimizer steps done so far
    (a multiple of ``eval_every``, plus the last iteration, plus 0 with ``eval_at_start``).

    Attributes:
        iteration: evaluation points (iterations completed).
        test_accuracy: fraction of test images classified correctly, in [0, 1].
        test_loss: mean test cross-entropy (nats).
        train_loss: mean training loss over the iterations since the previous point (None at 0).
        lr: the base learning rate (``lr_mult`` 1) of the last update before the point, i.e. the
            schedule's value at iteration ``point - 1`` (at point 0: the first update's LR).
        train_seconds: wall time of the training iterations only (CUDA synchronised at the ends).
        eval_seconds: wall time of the evaluations.
        setup_seconds: moving the model and data to the device and building the step. torch.compile
            compiles lazily, in the first iterations, so its compile time counts as training time.
        iterations: optimizer steps done.
        batch_size: images per iteration.
        iterations_per_epoch: full batches per pass over the training split.
        device: the torch device string.
        schedule: ``repr`` of the LR schedule (the clr_lib description).
        momentum_schedule: ``repr`` of the momentum schedule, or None.
        settings: the options of the run (evaluation cadence, data, precision, ...).
        cumulative_train_seconds: at each evaluation point, the training wall time spent so far
            (seconds; evaluations and set-up excluded; CUDA synchronised before each clock reading),
            so ``cumulative_train_seconds[-1] == train_seconds``. The x axis of time-to-accuracy
            curves. 0 at point 0. Not part of :meth:`curves` (whose keys are fixed); in :meth:`to_dict`.
    """

    iteration: list[int]
    test_accuracy: list[float]
    test_loss: list[float]
    train_loss: list[float | None]
    lr: list[float]
    train_seconds: float
    eval_seconds: float
    setup_seconds: float
    iterations: int
    batch_size: int
    iterations_per_epoch: int
    device: str
    schedule: str
    momentum_schedule: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cumulative_train_seconds: list[float] = field(default_factory=list)

    @property
    def final_test_accuracy(self) -> float:
        """Test accuracy after the last iteration (fraction)."""
        return self.test_accuracy[-1]

    @property
    def final_test_loss(self) -> float:
        return self.test_loss[-1]

    @property
    def seconds_per_iteration(self) -> float:
        """Training wall time per iteration (evaluation excluded)."""
        return self.train_seconds / self.iterations

    def seconds_to_reach(self, target_accuracy: float) -> float | None:
        """Training seconds until the first evaluation with test accuracy >= ``target_accuracy``, or None.

        The resolution is the evaluation cadence: the clock is read at evaluation points only.

        Raises:
            ValueError: ``target_accuracy`` outside [0, 1].
        """
        if isinstance(target_accuracy, bool) or not isinstance(target_accuracy, (int, float)) or not 0 <= target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be a fraction in [0, 1], got {target_accuracy!r}")
        for seconds, accuracy in zip(self.cumulative_train_seconds, self.test_accuracy):
            if accuracy >= target_accuracy:
                return seconds
        return None

    def curves(self) -> dict[str, list]:
        """The curves as plain lists, keyed by name."""
        return {key: list(getattr(self, key)) for key in ("iteration", "test_accuracy", "test_loss", "train_loss", "lr")}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (curves, timings, settings)."""
        out = asdict(self)
        out.update(final_test_accuracy=self.final_test_accuracy, final_test_loss=self.final_test_loss,
                   seconds_per_iteration=self.seconds_per_iteration)
        return out


def _base_lr(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    lr = group["lr"]
    lr = float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)
    return lr / group.get("lr_mult", 1.0)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_schedule: ScheduleLike,
    data: Union[CIFAR10, Sequence[DeviceBatches]],
    *,
    iterations: int,
    batch_size: int,
    eval_every: int,
    momentum_schedule: ScheduleLike | None = None,
    device: str | torch.device = "cpu",
    normalization: str = "mean_image",
    augmentation: Augmentation | None = None,
    eval_batch_size: int = 1000,
    amp_dtype: torch.dtype | str | None = None,
    channels_last: bool = False,
    compile: bool | str = False,
    seed: int = 0,
    eval_at_start: bool = False,
    progress: bool = False,
    label_smoothing: float = 0.0,
    test_time_flip: bool = False,
) -> TrainResult:
    """Train ``model`` for ``iterations`` optimizer steps with ``lr_schedule``, evaluating as it goes.

    Each iteration is one batch of ``batch_size`` training images: forward, mean cross-entropy,
    backward, ``optimizer.step()``, then one ``scheduler.step()`` of a :class:`clr_lib.ScheduleLR` that
    writes ``lr_mult * lr_schedule(i)`` into each param group (``lr_mult`` from the group, default 1;
    see :func:`clr_lib.models.caffe_param_groups`). The scheduler is not stepped after the last
    iteration, so a schedule with ``total_steps == iterations`` is used to its end and no further.

    Args:
        model: the network (moved to ``device``, and to channels_last if asked).
        optimizer: built on ``model``'s parameters (its LR values are overwritten by the schedule).
        lr_schedule: a clr_lib schedule (or any ``iteration -> lr`` callable), iterations 0-based.
        data: a :class:`clr_lib.data.CIFAR10` (put on the device here with ``normalization``,
            ``augmentation``, ``seed``) or a ``(train, test)`` pair of :class:`DeviceBatches`.
        iterations: optimizer steps to take, >= 1.
        batch_size: training images per iteration, >= 1 (must equal the train batches' when passing a pair).
        eval_every: iterations between evaluations, >= 1; the last iteration is always evaluated.
        momentum_schedule: optional schedule for SGD's momentum (or Adam's beta1), per iteration.
        device: where to train; the CUDA path (synchronisation, grad scaler) is taken only for CUDA.
        normalization: see :class:`clr_lib.data.Normalization` (``"mean_image"`` is Caffe's).
        augmentation: on-device augmentation of training batches, or None.
        eval_batch_size: test images per evaluation batch.
        amp_dtype: None, ``"bf16"`` or ``"fp16"`` autocast.
        channels_last: channels_last weights and batches.
        compile: ``torch.compile`` the model: False, True or a mode from :data:`COMPILE_MODES`.
        seed: seeds torch's global RNG and the data stream's generator (shuffling, augmentation). The
            model's initialisation is the caller's: seed before building it.
        eval_at_start: also evaluate before the first iteration (point 0).
        progress: show a tqdm progress bar (on stderr).
        label_smoothing: see :class:`TrainStep` (0: plain cross-entropy). The test loss is always plain
            cross-entropy.
        test_time_flip: evaluate with flip test-time augmentation (see :func:`evaluate`).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: a non-positive ``iterations``, ``batch_size``, ``eval_every`` or ``eval_batch_size``;
            a schedule shorter than ``iterations``; an unknown ``amp_dtype``, ``compile`` or ``normalization``;
            ``label_smoothing`` outside [0, 1).
    """
    require_positive_int("iterations", iterations)
    require_positive_int("batch_size", batch_size, unit="images")
    require_positive_int("eval_every", eval_every)
    require_positive_int("eval_batch_size", eval_batch_size, unit="images")
    ends = [getattr(s, "total_steps", None) for s in (lr_schedule, momentum_schedule) if s is not None]
    if any(end is not None and end < iterations for end in ends):
        raise ValueError(f"iterations={iterations} is longer than the schedule (total_steps={min(e for e in ends if e)})")
    dtype = resolve_amp_dtype(amp_dtype)
    _resolve_compile(compile)
    _resolve_label_smoothing(label_smoothing)
    started = time.perf_counter()
    device = torch.device(device)
    torch.manual_seed(seed)

    model.to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train()
    if isinstance(data, CIFAR10):
        train_batches, test_batches = to_device(
            data, batch_size=batch_size, device=device, normalization=normalization, augmentation=augmentation,
            seed=seed, channels_last=channels_last, eval_batch_size=eval_batch_size,
        )
    else:
        train_batches, test_batches = data
        if train_batches.batch_size != batch_size:
            raise ValueError(f"batch_size={batch_size} differs from the training batches' {train_batches.batch_size}")
    scheduler = ScheduleLR(optimizer, group_schedules(optimizer, lr_schedule), momentum_schedule)
    step = TrainStep(model, optimizer, device=device, amp_dtype=dtype, compile=compile, label_smoothing=label_smoothing)
    def synchronize() -> None:
        if device.type == "cuda":  # the only CUDA-specific line of the loop: clocks must see finished work
            torch.cuda.synchronize(device)

    points: dict[str, list] = {"iteration": [], "test_accuracy": [], "test_loss": [], "train_loss": [], "lr": []}
    timing = {"train": 0.0, "eval": 0.0}
    cumulative_train_seconds: list[float] = []

    def record(done: int, train_loss: float | None, lr: float) -> None:
        before = time.perf_counter()
        accuracy, test_loss = evaluate(step.forward, test_batches, model=model, amp_dtype=dtype,
                                       test_time_flip=test_time_flip)
        timing["eval"] += time.perf_counter() - before
        cumulative_train_seconds.append(timing["train"])
        for key, value in zip(points, (done, accuracy, test_loss, train_loss, lr)):
            points[key].append(value)

    synchronize()
    setup_seconds = time.perf_counter() - started
    if eval_at_start:
        record(0, None, _base_lr(optimizer))

    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=iterations, unit="it", file=sys.stderr, desc="train")
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    losses = 0
    segment_start = time.perf_counter()
    for index, (images, labels) in enumerate(train_batches.batches(iterations)):
        loss_sum += step(images, labels)
        losses += 1
        done = index + 1
        if done % eval_every == 0 or done == iterations:
            lr = _base_lr(optimizer)  # the LR this update used (the scheduler has not stepped yet)
            synchronize()
            timing["train"] += time.perf_counter() - segment_start
            train_loss = loss_sum.item() / losses  # the one host read of the training loss per segment
            loss_sum.zero_()
            losses = 0
            record(done, train_loss, lr)
            if bar is not None:
                bar.update(done - bar.n)
                bar.set_postfix(test_acc=f"{points['test_accuracy'][-1]:.4f}", train_loss=f"{train_loss:.3f}")
            segment_start = time.perf_counter()
        if done < iterations:
            scheduler.step()
    if bar is not None:
        bar.close()

    return TrainResult(
        **points,
        train_seconds=timing["train"],
        eval_seconds=timing["eval"],
        setup_seconds=setup_seconds,
        iterations=iterations,
        batch_size=batch_size,
        iterations_per_epoch=train_batches.iterations_per_epoch,
        device=str(device),
        schedule=repr(lr_schedule),
        momentum_schedule=None if momentum_schedule is None else repr(momentum_schedule),
        settings={
            "eval_every": eval_every, "eval_batch_size": eval_batch_size, "train_images": train_batches.num_images,
            "test_images": test_batches.num_images, "normalization": train_batches.normalization.mode,
            "augmentation": None if train_batches.augmentation is None else asdict(train_batches.augmentation),
            "amp_dtype": None if dtype is None else str(dtype).replace("torch.", ""),
            "channels_last": channels_last, "compile": _resolve_compile(compile), "seed": seed,
            "lr_mults": [group.get("lr_mult", 1.0) for group in optimizer.param_groups],
            "label_smoothing": float(label_smoothing), "test_time_flip": bool(test_time_flip),
        },
        cumulative_train_seconds=cumulative_train_seconds,
    )
