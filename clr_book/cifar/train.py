"""The training loop of the CIFAR-10 chapters: one skeleton, a pluggable step, checkpoints that resume.

:func:`train` runs ``iterations`` optimizer steps on device-resident data, evaluates test accuracy and
loss every ``eval_every`` iterations and at the end, and returns a :class:`TrainResult` with the curves
and the wall time split into training and evaluation. What one iteration does is the *step*'s job:

* :class:`EagerStep` (``step="eager"``, the default): :class:`TrainStep` (forward under autocast, mean
  cross-entropy, backward, ``optimizer.step()``), then one ``step()`` of a :class:`clr_lib.ScheduleLR`
  that writes ``lr_mult * lr_schedule(i)`` into each param group;
* :class:`clr_book.cifar.graphed.TensorLRStep` (``step="tensor_lr"`` or ``"cuda_graph"``): the LR in
  a device tensor and the SGD update written with ``torch._foreach_*``, so the whole iteration can be
  captured in a CUDA graph.

Written for the GPU, tested on the CPU:

* no host synchronisation per iteration: the training loss is summed on the device and read once per
  evaluation; batches are shuffled, gathered and augmented on the device (:mod:`clr_book.cifar.data`);
* CUDA is synchronised before every clock reading, so ``train_seconds`` is GPU time, not launch time;
* optional ``torch.compile``, bf16/fp16 autocast (fp16 with a gradient scaler on CUDA, which
  synchronises once per step to check for overflow; prefer bf16), and channels_last batches and weights;
* evaluation in large batches under ``torch.inference_mode`` with ``model.eval()``, then back to train mode.

**Resuming.** With a :class:`clr_book.checkpoint.Checkpoint`, the loop saves its whole state every
``checkpoint.every_seconds`` and when SIGINT or SIGTERM arrives (then raises
:class:`clr_book.checkpoint.RunInterrupted`), and a finished run saves its end state too. Calling
:func:`train` again with the same checkpoint continues from the saved iteration: the model, the
optimizer and scheduler (or the tensor step's momentum buffers), the gradient scaler, every random
generator (torch CPU and CUDA, numpy, Python), the data stream's generator and position in its epoch,
the curves so far and the elapsed times are restored, so on the CPU the curves and final parameters
equal an uninterrupted run's bit for bit.

On the CPU the loop is deterministic for a given ``seed``. CPU speeds of the set-ups the chapters use
are in ``benchmarks/README.md`` (``benchmarks/bench_training.py`` measures them).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clr_lib import ScheduleLR
from clr_lib._validation import require_positive_int
from clr_lib.schedules import scaled

from ..checkpoint import Checkpoint
from .data import CIFAR10, Augmentation, DeviceBatches, to_device
from .graphed import TensorLRStep
from .precision import dtype_name, resolve_amp_dtype, resolve_compile

__all__ = [
    "STEPS",
    "EagerStep",
    "Step",
    "TrainResult",
    "TrainStep",
    "evaluate",
    "group_schedules",
    "resolve_label_smoothing",
    "train",
]

ScheduleLike = Callable[[int], float]

STEPS = ("eager", "tensor_lr", "cuda_graph")
"""The steps :func:`train` can plug in (see the module docstring)."""


def group_schedules(optimizer: torch.optim.Optimizer, schedule: ScheduleLike) -> list[ScheduleLike]:
    """One schedule per param group: ``schedule`` scaled by the group's ``lr_mult`` (default 1).

    Pass the result to :class:`clr_lib.ScheduleLR` so that, as in Caffe, a group with ``lr_mult=2``
    (the Caffe net's biases) gets twice the scheduled LR at every iteration
    (:func:`clr_lib.schedules.scaled`).
    """
    return [schedule if group.get("lr_mult", 1.0) == 1 else scaled(schedule, group["lr_mult"])
            for group in optimizer.param_groups]


def resolve_label_smoothing(label_smoothing: float) -> float:
    """``label_smoothing`` as a float in [0, 1).

    Raises:
        ValueError: anything else (naming ``label_smoothing``).
    """
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
        amp_dtype: autocast dtype (see :func:`clr_book.cifar.precision.resolve_amp_dtype`), or None for full precision.
        compile: False, True (``torch.compile`` default mode) or a mode name from
            :data:`clr_book.cifar.precision.COMPILE_MODES`.
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
        self.label_smoothing = resolve_label_smoothing(label_smoothing)
        self.model = model
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.amp_dtype = resolve_amp_dtype(amp_dtype)
        mode = resolve_compile(compile)
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


class Step(Protocol):
    """What :func:`train` needs of one iteration's work (:class:`EagerStep`, ``TensorLRStep``)."""

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    amp_dtype: torch.dtype | None

    def __call__(self, index: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Train iteration ``index`` on the batch; return the detached loss (a device tensor)."""

    def lr(self, index: int) -> float:
        """The base LR (``lr_mult`` 1) that iteration ``index`` uses."""

    def advance(self) -> None:
        """Move to the next iteration (not called after the last)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EagerStep:
    """:class:`TrainStep` plus a :class:`clr_lib.ScheduleLR` stepped once per iteration.

    Args:
        model, optimizer, device, amp_dtype, compile, label_smoothing: as in :class:`TrainStep`.
        lr_schedule: the LR of each iteration for ``lr_mult`` 1 (see :func:`group_schedules`).
        momentum_schedule: optional momentum (or Adam's beta1) of each iteration.
    """

    name = "eager"

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, lr_schedule: ScheduleLike,
        momentum_schedule: ScheduleLike | None = None, *, device: torch.device,
        amp_dtype: torch.dtype | None = None, compile: bool | str = False, label_smoothing: float = 0.0,
    ) -> None:
        self.optimizer = optimizer
        self.scheduler = ScheduleLR(optimizer, group_schedules(optimizer, lr_schedule), momentum_schedule)
        self.train_step = TrainStep(model, optimizer, device=device, amp_dtype=amp_dtype, compile=compile,
                                    label_smoothing=label_smoothing)
        self.forward = self.train_step.forward
        self.amp_dtype = self.train_step.amp_dtype

    def __call__(self, index: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.train_step(images, labels)

    def lr(self, index: int) -> float:
        group = self.optimizer.param_groups[0]
        lr = group["lr"]
        lr = float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)
        return lr / group.get("lr_mult", 1.0)

    def advance(self) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        scaler = self.train_step.scaler
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": None if scaler is None else scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.train_step.scaler is not None and state["scaler"] is not None:
            self.train_step.scaler.load_state_dict(state["scaler"])


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
        resumed_at: the iterations at which this run was resumed from a checkpoint (empty: never
            interrupted). The results do not depend on it; the wall times do.
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
    resumed_at: list[int] = field(default_factory=list)

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


def _rng_state(device: torch.device) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None}


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


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
    step: str = "eager",
    seed: int = 0,
    eval_at_start: bool = False,
    progress: bool = False,
    label_smoothing: float = 0.0,
    test_time_flip: bool = False,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train ``model`` for ``iterations`` optimizer steps with ``lr_schedule``, evaluating as it goes.

    Each iteration is one batch of ``batch_size`` training images: forward, mean cross-entropy,
    backward, the optimizer update with ``lr_mult * lr_schedule(i)`` in each param group (``lr_mult``
    from the group, default 1; see :func:`clr_book.cifar.models.caffe_param_groups`). The schedule is
    not advanced after the last iteration, so a schedule with ``total_steps == iterations`` is used to
    its end and no further.

    Args:
        model: the network (moved to ``device``, and to channels_last if asked).
        optimizer: built on ``model``'s parameters (its LR values are overwritten by the schedule).
        lr_schedule: a clr_lib schedule (or any ``iteration -> lr`` callable), iterations 0-based.
        data: a :class:`clr_book.cifar.data.CIFAR10` (put on the device here with ``normalization``,
            ``augmentation``, ``seed``) or a ``(train, test)`` pair of :class:`DeviceBatches`.
        iterations: optimizer steps to take, >= 1.
        batch_size: training images per iteration, >= 1 (must equal the train batches' when passing a pair).
        eval_every: iterations between evaluations, >= 1; the last iteration is always evaluated.
        momentum_schedule: optional schedule for SGD's momentum (or Adam's beta1), per iteration
            (eager step only).
        device: where to train; the CUDA path (synchronisation, grad scaler) is taken only for CUDA.
        normalization: see :class:`clr_book.cifar.data.Normalization` (``"mean_image"`` is Caffe's).
        augmentation: on-device augmentation of training batches, or None.
        eval_batch_size: test images per evaluation batch.
        amp_dtype: None, ``"bf16"`` or ``"fp16"`` autocast.
        channels_last: channels_last weights and batches.
        compile: ``torch.compile`` the model (eager step only): False, True or a mode from
            :data:`clr_book.cifar.precision.COMPILE_MODES`.
        step: ``"eager"`` (:class:`EagerStep`), ``"tensor_lr"`` or ``"cuda_graph"``
            (:class:`clr_book.cifar.graphed.TensorLRStep`, plain SGD only).
        seed: seeds torch's global RNG and the data stream's generator (shuffling, augmentation). The
            model's initialisation is the caller's: seed before building it.
        eval_at_start: also evaluate before the first iteration (point 0).
        progress: show a text tqdm progress bar on stderr (in a notebook, a stream output that updates in
            place; a book page drops it with the cell tag ``remove-stderr``).
        label_smoothing: see :class:`TrainStep` (0: plain cross-entropy). The test loss is always plain
            cross-entropy.
        test_time_flip: evaluate with flip test-time augmentation (see :func:`evaluate`).
        checkpoint: save and resume the run's state there (see the module docstring); None: no checkpoints.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: a non-positive ``iterations``, ``batch_size``, ``eval_every`` or ``eval_batch_size``;
            a schedule shorter than ``iterations``; an unknown ``amp_dtype``, ``compile``, ``step`` or
            ``normalization``; ``label_smoothing`` outside [0, 1); an option the chosen step lacks; a
            checkpoint made with other settings.
        clr_book.checkpoint.RunInterrupted: SIGINT or SIGTERM arrived (the checkpoint was saved first).
    """
    require_positive_int("iterations", iterations)
    require_positive_int("batch_size", batch_size, unit="images")
    require_positive_int("eval_every", eval_every)
    require_positive_int("eval_batch_size", eval_batch_size, unit="images")
    ends = [getattr(s, "total_steps", None) for s in (lr_schedule, momentum_schedule) if s is not None]
    if any(end is not None and end < iterations for end in ends):
        raise ValueError(f"iterations={iterations} is longer than the schedule (total_steps={min(e for e in ends if e)})")
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(map(repr, STEPS))}, got {step!r}")
    dtype = resolve_amp_dtype(amp_dtype)
    compile_mode = resolve_compile(compile)
    resolve_label_smoothing(label_smoothing)
    if step != "eager" and (compile_mode is not None or momentum_schedule is not None or label_smoothing):
        raise ValueError(f"step={step!r} supports no compile, momentum_schedule or label_smoothing; "
                         f"got compile={compile!r}, momentum_schedule={momentum_schedule!r}, "
                         f"label_smoothing={label_smoothing!r}")
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
    runner: Step
    if step == "eager":
        runner = EagerStep(model, optimizer, lr_schedule, momentum_schedule, device=device, amp_dtype=dtype,
                           compile=compile, label_smoothing=label_smoothing)
    else:
        runner = TensorLRStep(model, optimizer, lr_schedule, iterations, device=device, batch_size=batch_size,
                              amp_dtype=dtype, channels_last=channels_last, cuda_graph=step == "cuda_graph")

    def synchronize() -> None:
        if device.type == "cuda":  # the only CUDA-specific line of the loop: clocks must see finished work
            torch.cuda.synchronize(device)

    points: dict[str, list] = {"iteration": [], "test_accuracy": [], "test_loss": [], "train_loss": [], "lr": []}
    timing = {"train": 0.0, "eval": 0.0, "setup": 0.0}
    cumulative_train_seconds: list[float] = []
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    losses = 0
    start = 0
    resumed_at: list[int] = []

    def record(done: int, train_loss: float | None, lr: float) -> None:
        before = time.perf_counter()
        accuracy, test_loss = evaluate(runner.forward, test_batches, model=model, amp_dtype=dtype,
                                       test_time_flip=test_time_flip)
        timing["eval"] += time.perf_counter() - before
        cumulative_train_seconds.append(timing["train"])
        for key, value in zip(points, (done, accuracy, test_loss, train_loss, lr)):
            points[key].append(value)

    def state(done: int) -> dict[str, Any]:
        return {"iteration": done, "model": model.state_dict(), "step": runner.state_dict(),
                "data": train_batches.state_dict(), "rng": _rng_state(device), "points": points,
                "cumulative_train_seconds": cumulative_train_seconds, "timing": dict(timing),
                "loss_sum": loss_sum.detach().cpu().clone(), "losses": losses, "resumed_at": resumed_at}

    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        runner.load_state_dict(saved["step"])
        train_batches.load_state_dict(saved["data"])
        _restore_rng(saved["rng"])
        points = saved["points"]
        cumulative_train_seconds = saved["cumulative_train_seconds"]
        timing = dict(saved["timing"])
        loss_sum.copy_(saved["loss_sum"])
        losses = saved["losses"]
        start = saved["iteration"]
        resumed_at = [*saved["resumed_at"], start]

    synchronize()
    timing["setup"] += time.perf_counter() - started
    if eval_at_start and start == 0:
        record(0, None, runner.lr(0))

    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415  (text, not a widget: no widget state in the built pages)

        bar = tqdm(total=iterations, initial=start, unit="it", file=sys.stderr, desc=f"train ({runner.name})")
    guard = checkpoint.guard() if checkpoint is not None else _no_guard()
    with guard:
        segment_start = time.perf_counter()
        for index, (images, labels) in zip(range(start, iterations), train_batches.batches(iterations - start)):
            loss_sum += runner(index, images, labels)
            losses += 1
            done = index + 1
            if done % eval_every == 0 or done == iterations:
                synchronize()
                timing["train"] += time.perf_counter() - segment_start
                train_loss = loss_sum.item() / losses  # the one host read of the training loss per segment
                loss_sum.zero_()
                losses = 0
                record(done, train_loss, runner.lr(index))
                if bar is not None:
                    bar.update(done - bar.n)
                    bar.set_postfix(test_acc=f"{points['test_accuracy'][-1]:.4f}", train_loss=f"{train_loss:.3f}")
                segment_start = time.perf_counter()
            if done < iterations:
                runner.advance()
            if checkpoint is not None and (done == iterations or checkpoint.due()):
                synchronize()
                if done < iterations:  # the last segment ended at the final evaluation: train_seconds stays its clock
                    timing["train"] += time.perf_counter() - segment_start
                checkpoint.save(state(done))
                segment_start = time.perf_counter()
    if bar is not None:
        bar.close()

    return TrainResult(
        **points,
        train_seconds=timing["train"],
        eval_seconds=timing["eval"],
        setup_seconds=timing["setup"],
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
            "amp_dtype": dtype_name(dtype), "channels_last": channels_last, "compile": compile_mode,
            "step": runner.name, "seed": seed,
            "lr_mults": [group.get("lr_mult", 1.0) for group in optimizer.param_groups],
            "label_smoothing": float(label_smoothing), "test_time_flip": bool(test_time_flip),
        },
        cumulative_train_seconds=cumulative_train_seconds,
        resumed_at=resumed_at,
    )


class _no_guard:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
