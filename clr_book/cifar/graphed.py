r"""A training step whose whole iteration can be one CUDA graph: the LR lives in a device tensor.

The Caffe net at batch 100 is tiny, so on a modern GPU an iteration of :func:`clr_book.cifar.train.train`
is bound by Python and kernel-launch overhead, not by arithmetic: about 60 kernel launches (forward,
backward, loss, the optimizer's per-group updates) plus a scheduler step that writes a Python float
into every param group. :class:`TensorLRStep`, which plugs into the same loop (``train(...,
step="tensor_lr")`` or ``step="cuda_graph"``), removes both costs:

* the learning rate of every iteration is computed once, up front, from the (vectorised) schedule, and
  written into a 0-dimensional float32 **device tensor** before each iteration (one tiny kernel, no
  host-device synchronisation);
* the SGD update (:func:`sgd_update_`) reads that tensor, so it contains no Python number that changes
  between iterations; it is torch's SGD with momentum and weight decay, written with ``torch._foreach_*``
  kernels (torch's own ``SGD`` turns a tensor LR back into a Python number with ``.item()``, which a
  CUDA graph cannot capture);
* with ``cuda_graph=True`` the whole iteration (copy-in of the batch excluded: forward, loss, backward,
  update, the loss) is captured once into a ``torch.cuda.CUDAGraph`` and replayed, following
  PyTorch's "whole network capture" recipe: a few warm-up iterations on a side stream (real iterations,
  they count), gradients set to None before capture so that backward allocates them in the graph's pool,
  autocast with ``cache_enabled=False``.

The update, per parameter ``w`` with gradient ``g``, momentum buffer ``b`` (zero at the start), group
weight decay ``\lambda`` and group LR ``\eta_t = \mathrm{lr\_mult} \cdot \mathrm{lr}(t)``:

.. math:: d = g + \lambda w, \qquad b \leftarrow \mu b + d, \qquad w \leftarrow w - \eta_t b

which is ``torch.optim.SGD(momentum=mu, dampening=0, nesterov=False)``. On the CPU (no graph) one update
gives bit for bit the parameters of ``torch.optim.SGD`` with the same float LR (the last step is
``w.addcmul_(b, lr, value=-1)``, which rounds like torch's ``w.add_(b, alpha=-lr)``; ``foreach`` multiply
then subtract would round twice), and whole runs match the eager step's up to float32 reduction order.
``tests/test_graphed.py`` checks both.

**UNTESTED ON CUDA.** Only the eager (``cuda_graph=False``) path has run, on the CPU. The CUDA-graph
capture, the side-stream warm-up and bf16 autocast under capture follow PyTorch's documented recipe but
have never been executed here (no GPU was available when this was written). If capture fails, run
without ``--cuda-graph``; the eager step is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clr_lib._validation import require_positive_int

__all__ = ["WARMUP_ITERATIONS", "SGDState", "TensorLRStep", "lr_table", "sgd_update_"]

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
    see :func:`clr_book.cifar.models.caffe_param_groups`) so that both loops start from the same optimizer.

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


class TensorLRStep:
    """The training step of :func:`clr_book.cifar.train.train` with the LR in a device tensor; optionally graphed.

    Plugs into the loop like its eager step (see :class:`clr_book.cifar.train.EagerStep`): called with
    iteration ``index`` and its batch, it writes ``lr_schedule(index)`` (from a table computed once, up
    front) into ``state.lr``, runs forward, loss, backward and :func:`sgd_update_`, and returns the
    detached loss. Iteration ``i`` uses ``lr_mult * lr_schedule(i)``, like the eager step. No
    augmentation-specific code, no momentum schedule, no ``torch.compile`` (a CUDA graph replaces it).

    Args:
        model: the network, on ``device``.
        optimizer: a plain ``torch.optim.SGD`` (see :class:`SGDState`).
        lr_schedule: the LR of iterations ``0 .. iterations - 1``.
        iterations: the run's length (the LR table's).
        device: the model's device.
        batch_size: images per iteration (the static input buffers' size).
        amp_dtype: autocast dtype or None; fp16 is refused with a CUDA graph (no gradient scaler).
        channels_last: memory format of the static input buffer.
        cuda_graph: capture the iteration into a CUDA graph after :data:`WARMUP_ITERATIONS` eager ones
            (CUDA only; UNTESTED, see the module docstring). False runs the same step eagerly (any device).

    Raises:
        ValueError: ``cuda_graph`` on a non-CUDA device or with fp16, a non-SGD optimizer, or a schedule
            that is not finite and >= 0 at every iteration.
    """

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, lr_schedule: Callable[[Any], Any], iterations: int,
        *, device: torch.device, batch_size: int, amp_dtype: torch.dtype | None = None, channels_last: bool = False,
        cuda_graph: bool = False,
    ) -> None:
        if cuda_graph and device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs a CUDA device, got device={str(device)!r}")
        if cuda_graph and amp_dtype is torch.float16:
            raise ValueError("amp_dtype='fp16' needs a gradient scaler, which the CUDA-graph step does not have; "
                             "use 'bf16'")
        self.model = model
        self.forward = model
        self.amp_dtype = amp_dtype
        self.device = device
        self.cuda_graph = cuda_graph
        self.lrs = lr_table(lr_schedule, iterations)
        self.state = SGDState(optimizer, device)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._images = torch.zeros((batch_size, 3, 32, 32), device=device).contiguous(memory_format=memory_format)
        self._labels = torch.zeros((batch_size,), dtype=torch.int64, device=device)
        self._loss = torch.zeros((), dtype=torch.float32, device=device)
        self._graph: Any = None
        self._calls = 0
        self.name = "cuda_graph" if cuda_graph else "tensor_lr"

    def _step(self) -> None:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None,
                            cache_enabled=False):
            loss = F.cross_entropy(self.model(self._images), self._labels)  # batch mean, like SoftmaxWithLoss
        self.state.zero_grad()
        loss.backward()
        sgd_update_(self.state)
        self._loss.copy_(loss.detach().float())

    def __call__(self, index: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._images.copy_(images)
        self._labels.copy_(labels)
        self.state.lr.fill_(self.lrs[index])
        if self._graph is not None:
            self._graph.replay()
        elif self.cuda_graph and self._calls >= WARMUP_ITERATIONS:
            self._graph = _capture(self._step, self.state, self.device)  # captures only; then the first replay
            self._graph.replay()
        elif self.cuda_graph:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._step()
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            self._step()
        self._calls += 1
        return self._loss

    def lr(self, index: int) -> float:
        """The base LR (``lr_mult`` 1) iteration ``index`` uses."""
        return float(self.lrs[index])

    def advance(self) -> None:
        """Nothing to do: the LR of the next iteration comes from the table."""

    def state_dict(self) -> dict[str, Any]:
        """The momentum buffers (the optimizer object itself is not used by this step)."""
        return {"buffers": [[buffer.detach().cpu().clone() for buffer in group["buffers"]]
                            for group in self.state.groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["buffers"]
        if [len(group) for group in saved] != [len(group["buffers"]) for group in self.state.groups]:
            raise ValueError("state holds momentum buffers for other param groups than this optimizer's")
        with torch.no_grad():
            for group, buffers in zip(self.state.groups, saved):
                for buffer, value in zip(group["buffers"], buffers):
                    buffer.copy_(value)


def _capture(step: Callable[[], None], state: SGDState, device: torch.device) -> "torch.cuda.CUDAGraph":
    """Record ``step`` into a CUDA graph (nothing runs during capture). UNTESTED on CUDA, see the module."""
    torch.cuda.synchronize(device)
    state.zero_grad()  # backward then allocates the gradients inside the graph's private pool
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph
