r"""A training loop whose whole iteration can be one CUDA graph: the LR lives in a device tensor.

The Caffe net at batch 100 is tiny, so on a modern GPU an iteration of :func:`clr_lib.train.train` is
bound by Python and kernel-launch overhead, not by arithmetic: about 60 kernel launches (forward,
backward, loss, the optimizer's per-group updates) plus a scheduler step that writes a Python float
into every param group. :func:`train_tensor_lr` removes both costs:

* the learning rate of every iteration is computed once, up front, from the (vectorised) schedule, and
  written into a 0-dimensional float32 **device tensor** before each iteration (one tiny kernel, no
  host-device synchronisation);
* the SGD update (:func:`sgd_update_`) reads that tensor, so it contains no Python number that changes
  between iterations; it is torch's SGD with momentum and weight decay, written with ``torch._foreach_*``
  kernels (torch's own ``SGD`` turns a tensor LR back into a Python number with ``.item()``, which a
  CUDA graph cannot capture);
* with ``cuda_graph=True`` the whole iteration (copy-in of the batch excluded: forward, loss, backward,
  update, the running loss sum) is captured once into a ``torch.cuda.CUDAGraph`` and replayed, following
  PyTorch's "whole network capture" recipe: a few warm-up iterations on a side stream (real iterations,
  they count), gradients set to None before capture so that backward allocates them in the graph's pool,
  autocast with ``cache_enabled=False``.

The update, per parameter ``w`` with gradient ``g``, momentum buffer ``b`` (zero at the start), group
weight decay ``\lambda`` and group LR ``\eta_t = \mathrm{lr\_mult} \cdot \mathrm{lr}(t)``:

.. math:: d = g + \lambda w, \qquad b \leftarrow \mu b + d, \qquad w \leftarrow w - \eta_t b

which is ``torch.optim.SGD(momentum=mu, dampening=0, nesterov=False)``. On the CPU (no graph) one update
gives bit for bit the parameters of ``torch.optim.SGD`` with the same float LR (the last step is
``w.addcmul_(b, lr, value=-1)``, which rounds like torch's ``w.add_(b, alpha=-lr)``; ``foreach`` multiply
then subtract would round twice), and whole runs match :func:`clr_lib.train.train` up to float32
reduction order. ``tests/test_experiments_graphed.py`` checks both.

**UNTESTED ON CUDA.** Only the eager (``cuda_graph=False``) path has run, on the CPU. The CUDA-graph
capture, the side-stream warm-up and bf16 autocast under capture follow PyTorch's documented recipe but
have never been executed here (no GPU was available when this was written). If capture fails, run
without ``--cuda-graph``; the default loop (:func:`clr_lib.train.train`) is unaffected.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import require_positive_int
from ..data import CIFAR10, to_device
from ..train import TrainResult, evaluate, resolve_amp_dtype

__all__ = ["SGDState", "lr_table", "sgd_update_", "train_tensor_lr"]

WARMUP_ITERATIONS = 3
"""Real iterations run eagerly on a side stream before capture (cuDNN autotuning, lazy allocations)."""


def lr_table(schedule: Callable[[Any], Any], iterations: int) -> np.ndarray:
    """``schedule(0 .. iterations - 1)`` as a float64 array (one vectorised call).

    Raises:
        ValueError: ``iterations`` < 1, or a schedule that returns a non-finite or negative LR.
    """
    require_positive_int("iterations", iterations)
    values = np.asarray(schedule(np.arange(iterations)), dtype=np.float64)
    if values.shape != (iterations,):
        values = np.asarray([float(schedule(i)) for i in range(iterations)], dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"schedule must give finite LRs >= 0 at iterations 0..{iterations - 1}")
    return values


class SGDState:
    """Param groups, momentum buffers and the device LR tensor of :func:`sgd_update_`.

    Built from a ``torch.optim.SGD`` (its groups carry Caffe's ``lr_mult`` and per-group ``weight_decay``,
    see :func:`clr_lib.models.caffe_param_groups`) so that both loops start from the same optimizer.

    Raises:
        ValueError: an optimizer that is not plain SGD with momentum (nesterov, dampening or maximize set).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        if not isinstance(optimizer, torch.optim.SGD):
            raise ValueError(f"optimizer must be a torch.optim.SGD, got {type(optimizer).__name__}")
        self.groups: list[dict[str, Any]] = []
        for group in optimizer.param_groups:
            if group.get("nesterov") or group.get("dampening", 0) != 0 or group.get("maximize"):
                raise ValueError("optimizer must be SGD without nesterov, dampening or maximize for the tensor-LR step")
            params = [p for p in group["params"] if p.requires_grad]
            self.groups.append({
                "params": params,
                "buffers": [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params],
                "momentum": float(group["momentum"]),
                "weight_decay": float(group["weight_decay"]),
                "lr_mult": float(group.get("lr_mult", 1.0)),
            })
        self.lr = torch.zeros((), dtype=torch.float32, device=device)  # the base LR (lr_mult 1) of this iteration

    def zero_grad(self) -> None:
        for group in self.groups:
            for param in group["params"]:
                param.grad = None


@torch.no_grad()
def sgd_update_(state: SGDState) -> None:
    """One SGD step of every group, LR read from ``state.lr`` (a device tensor): capturable, no sync."""
    for group in state.groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        grads = [p.grad for p in params]
        buffers = [b for p, b in zip(group["params"], group["buffers"]) if p.grad is not None]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        torch._foreach_mul_(buffers, group["momentum"])
        torch._foreach_add_(buffers, grads)
        lr = state.lr if group["lr_mult"] == 1 else state.lr * group["lr_mult"]
        for param, buffer in zip(params, buffers):
            param.addcmul_(buffer, lr, value=-1)  # bit for bit torch's param.add_(buffer, alpha=-lr) on the CPU


def train_tensor_lr(
    model: nn.Module,
    optimizer: torch.optim.SGD,
    lr_schedule: Callable[[Any], Any],
    data: CIFAR10,
    *,
    iterations: int,
    batch_size: int,
    eval_every: int,
    device: str | torch.device = "cpu",
    normalization: str = "mean_image",
    eval_batch_size: int = 1000,
    amp_dtype: torch.dtype | str | None = None,
    channels_last: bool = False,
    cuda_graph: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> TrainResult:
    """:func:`clr_lib.train.train` for the Caffe replication with the LR in a device tensor; optionally graphed.

    Same data stream (same seed, same batches), same evaluation points and the same :class:`TrainResult`.
    Iteration ``i`` uses ``lr_mult * lr_schedule(i)``, like the float loop. No augmentation, no
    momentum schedule, no ``torch.compile`` (a CUDA graph replaces it).

    Args:
        cuda_graph: capture the iteration into a CUDA graph (CUDA devices only; UNTESTED, see the module
            docstring). False runs the very same step eagerly (any device).
        Others: as in :func:`clr_lib.train.train`.

    Raises:
        ValueError: bad sizes, ``cuda_graph`` on a non-CUDA device, or a non-SGD optimizer.
    """
    require_positive_int("iterations", iterations)
    require_positive_int("batch_size", batch_size, unit="images")
    require_positive_int("eval_every", eval_every)
    require_positive_int("eval_batch_size", eval_batch_size, unit="images")
    device = torch.device(device)
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got device={str(device)!r}")
    dtype = resolve_amp_dtype(amp_dtype)
    if cuda_graph and dtype is torch.float16:
        raise ValueError("amp_dtype='fp16' needs a gradient scaler, which the CUDA-graph step does not have; use 'bf16'")
    lrs = lr_table(lr_schedule, iterations)
    started = time.perf_counter()
    torch.manual_seed(seed)
    model.to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train()
    train_batches, test_batches = to_device(
        data, batch_size=batch_size, device=device, normalization=normalization, augmentation=None,
        seed=seed, channels_last=channels_last, eval_batch_size=eval_batch_size,
    )
    state = SGDState(optimizer, device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    static_images = torch.zeros((batch_size, 3, 32, 32), device=device).contiguous(memory_format=memory_format)
    static_labels = torch.zeros((batch_size,), dtype=torch.int64, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None, cache_enabled=False):
            loss = F.cross_entropy(model(static_images), static_labels)  # batch mean, like SoftmaxWithLoss
        state.zero_grad()
        loss.backward()
        sgd_update_(state)
        loss_sum.add_(loss.detach().float())

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    graph = None
    points: dict[str, list] = {"iteration": [], "test_accuracy": [], "test_loss": [], "train_loss": [], "lr": []}
    timing = {"train": 0.0, "eval": 0.0}
    synchronize()
    setup_seconds = time.perf_counter() - started
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=iterations, unit="it", file=sys.stderr, desc="train (tensor LR)")
    losses = 0
    segment_start = time.perf_counter()
    for index, (images, labels) in enumerate(train_batches.batches(iterations)):
        static_images.copy_(images)
        static_labels.copy_(labels)
        state.lr.fill_(lrs[index])
        if graph is not None:
            graph.replay()
        elif cuda_graph and index >= WARMUP_ITERATIONS:
            graph = _capture(step, state, device)  # captures only; the iteration itself is the first replay
            graph.replay()
        elif cuda_graph:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                step()
            torch.cuda.current_stream(device).wait_stream(side)
        else:
            step()
        losses += 1
        done = index + 1
        if done % eval_every == 0 or done == iterations:
            synchronize()
            timing["train"] += time.perf_counter() - segment_start
            train_loss = loss_sum.item() / losses
            loss_sum.zero_()
            losses = 0
            before = time.perf_counter()
            accuracy, test_loss = evaluate(model, test_batches, model=model, amp_dtype=dtype)
            timing["eval"] += time.perf_counter() - before
            for key, value in zip(points, (done, accuracy, test_loss, train_loss, float(lrs[index]))):
                points[key].append(value)
            if bar is not None:
                bar.update(done - bar.n)
            segment_start = time.perf_counter()
    if bar is not None:
        bar.close()
    return TrainResult(
        **points,
        train_seconds=timing["train"], eval_seconds=timing["eval"], setup_seconds=setup_seconds,
        iterations=iterations, batch_size=batch_size, iterations_per_epoch=train_batches.iterations_per_epoch,
        device=str(device), schedule=repr(lr_schedule), momentum_schedule=None,
        settings={
            "eval_every": eval_every, "eval_batch_size": eval_batch_size, "train_images": train_batches.num_images,
            "test_images": test_batches.num_images, "normalization": train_batches.normalization.mode,
            "augmentation": None, "amp_dtype": None if dtype is None else str(dtype).replace("torch.", ""),
            "channels_last": channels_last, "compile": None, "seed": seed,
            "lr_mults": [group["lr_mult"] for group in state.groups],
            "step": "cuda_graph" if cuda_graph else "tensor_lr",
        },
    )


def _capture(step: Callable[[], None], state: SGDState, device: torch.device) -> "torch.cuda.CUDAGraph":
    """Record ``step`` into a CUDA graph (nothing runs during capture). UNTESTED on CUDA, see the module."""
    torch.cuda.synchronize(device)
    state.zero_grad()  # backward then allocates the gradients inside the graph's private pool
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph
