r"""The two CIFAR-10 networks of the GPU chapters.

* :class:`CaffeCIFAR10Full`: a faithful port of Caffe's ``cifar10_full`` example, the net of Smith
  (2017), Table 1 (``examples/cifar10/cifar10_full_train_test.prototxt`` and
  ``cifar10_full_solver.prototxt`` in BVLC/caffe), with Caffe's initialisation and, through
  :func:`caffe_param_groups`, its per-parameter ``lr_mult`` and ``decay_mult``.
* :class:`ResNet9`: a compact modern residual net (the Myrtle.ai / airbench family) for the
  one-cycle chapter.

Caffe details that a port must get right, each checked in ``tests/test_models.py``:

* **Within-channel LRN.** Caffe's ``LRN`` layer with ``norm_region: WITHIN_CHANNEL`` is built from
  sub-layers (``lrn_layer.cpp``): square the input, AVE-pool it over ``local_size x local_size`` with
  stride 1 and zero padding ``(local_size - 1) / 2``, then ``(1 + alpha * pooled) ^ -beta`` and multiply
  by the input:

  .. math:: y = x \,\Big/\, \Big(1 + \frac{\alpha}{n^2} \sum_{(i, j) \in \mathcal{N}_{n \times n}} x_{ij}^2\Big)^{\beta}

  The padded zeros count in the average (Caffe's AVE pooling divides by the window clipped to the
  padded input, which here is always ``n^2``), i.e. ``avg_pool2d(count_include_pad=True)``. PyTorch's
  ``nn.LocalResponseNorm`` normalises ACROSS channels and is a different layer.
* **Ceil-mode pooling.** Caffe's pooled size is ``ceil((H + 2 pad - k) / s) + 1`` (minus one if the last
  window would start in the padding); PyTorch's ``ceil_mode=True`` gives the same 32 -> 16 -> 8 -> 4 here,
  and, like Caffe, divides a partial AVE window by its clipped size.
* **Loss scale.** ``SoftmaxWithLoss`` averages over the batch, as ``F.cross_entropy`` does by default, so
  Caffe's ``base_lr`` carries over unchanged.
* **Solver.** Caffe's SGD keeps ``v <- m v + lr (g + wd * w)``, ``w <- w - v``; torch's SGD keeps
  ``b <- m b + (g + wd * w)``, ``w <- w - lr b``. The two are identical while the LR is constant and differ
  only by how the momentum buffer carries an LR change over the next ~1 / (1 - m) = 10 iterations;
  with schedules that move the LR by well under 1 % per iteration this is negligible.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CAFFE_LAYER_SPECS",
    "CaffeCIFAR10Full",
    "CaffeLRN",
    "ResNet9",
    "caffe_param_groups",
    "count_parameters",
    "resnet9_widths",
]

CAFFE_LAYER_SPECS: dict[str, dict[str, Any]] = {
    # layer: weight-filler std, (weight lr_mult, decay_mult), (bias lr_mult, decay_mult) as in the prototxt.
    # conv3 has no `param` block, so both of its blobs take Caffe's defaults (lr_mult 1, decay_mult 1);
    # conv1/conv2 biases set lr_mult 2 only (decay_mult stays 1); ip1's weights have decay_mult 250.
    "conv1": {"std": 1e-4, "weight": (1.0, 1.0), "bias": (2.0, 1.0)},
    "conv2": {"std": 1e-2, "weight": (1.0, 1.0), "bias": (2.0, 1.0)},
    "conv3": {"std": 1e-2, "weight": (1.0, 1.0), "bias": (1.0, 1.0)},
    "ip1": {"std": 1e-2, "weight": (1.0, 250.0), "bias": (2.0, 0.0)},
}
"""Per-layer initialisation and multipliers of Caffe's ``cifar10_full_train_test.prototxt``."""


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class CaffeLRN(nn.Module):
    r"""Caffe's within-channel local response normalisation.

    :math:`y = x / (1 + \alpha\,\mathrm{avgpool}_{n \times n}(x^2))^{\beta}` with zero padding that counts
    in the average (see the module docstring). Computed in float32 even under autocast (the squares of
    activations lose too much in bfloat16), and returned in the input dtype.

    Args:
        local_size: side ``n`` of the square window, odd (Caffe rejects even sizes).
        alpha: scale of the mean square; the prototxt uses 5e-5.
        beta: exponent; the prototxt uses 0.75.
    """

    def __init__(self, local_size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> None:
        super().__init__()
        if not isinstance(local_size, int) or local_size < 1 or local_size % 2 == 0:
            raise ValueError(f"local_size must be a positive odd whole number, got {local_size!r}")
        self.local_size, self.alpha, self.beta = local_size, float(alpha), float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            x32 = x.float()
            mean_square = F.avg_pool2d(
                x32 * x32, self.local_size, stride=1, padding=self.local_size // 2, count_include_pad=True
            )
            return (x32 * (1.0 + self.alpha * mean_square).pow(-self.beta)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"local_size={self.local_size}, alpha={self.alpha}, beta={self.beta}, norm_region=WITHIN_CHANNEL"


class CaffeCIFAR10Full(nn.Module):
    """Caffe's ``cifar10_full`` net, layer for layer (names as in the prototxt).

    ``conv1 (5x5, 32, pad 2) - pool1 (MAX 3/2, ceil) - relu1 - norm1 (LRN) - conv2 (5x5, 32, pad 2) - relu2 -
    pool2 (AVE 3/2, ceil) - norm2 (LRN) - conv3 (5x5, 64, pad 2) - relu3 - pool3 (AVE 3/2, ceil) - ip1 (10)``.

    Spatial sizes 32 -> 16 -> 8 -> 4, so ``ip1`` sees 64 * 4 * 4 = 1024 inputs. 89,578 parameters.
    Initialisation: Gaussian weights with the prototxt's stds (conv1 1e-4, the rest 1e-2), zero biases
    (:data:`CAFFE_LAYER_SPECS`). Expects raw 0-255 RGB pixel values minus the mean image (Caffe's
    ``mean_file``; ``Normalization`` mode ``"mean_image"``). Returns logits.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = CaffeLRN(3, 5e-5, 0.75)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        self.norm2 = CaffeLRN(3, 5e-5, 0.75)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        self.ip1 = nn.Linear(64 * 4 * 4, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Caffe's fillers: ``gaussian`` weights with the layer's std, ``constant`` (0) biases."""
        for name, spec in CAFFE_LAYER_SPECS.items():
            layer = getattr(self, name)
            nn.init.normal_(layer.weight, mean=0.0, std=spec["std"])
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(F.relu(self.pool1(self.conv1(x))))
        x = self.norm2(self.pool2(F.relu(self.conv2(x))))
        x = self.pool3(F.relu(self.conv3(x)))
        return self.ip1(torch.flatten(x, 1))


def caffe_param_groups(model: CaffeCIFAR10Full, base_weight_decay: float = 0.004) -> list[dict[str, Any]]:
    """Optimizer param groups carrying the prototxt's ``lr_mult`` and ``decay_mult``.

    Parameters with equal ``(lr_mult, decay_mult)`` share a group; each group has
    ``weight_decay = base_weight_decay * decay_mult`` and keys ``lr_mult``, ``decay_mult`` and
    ``param_names``. The LR of a group must be ``lr_mult`` times the schedule's value, which
    :func:`clr_book.cifar.train.train` does (via :func:`clr_book.cifar.train.group_schedules`). The groups, in order:

    ========================================  ========  ==========  ============
    parameters                                lr_mult   decay_mult  weight_decay
    ========================================  ========  ==========  ============
    conv1-3 weights, conv3 bias               1         1           0.004
    conv1, conv2 biases                       2         1           0.004
    ip1 weight                                1         250         1.0
    ip1 bias                                  2         0           0
    ========================================  ========  ==========  ============

    With ``torch.optim.SGD(groups, lr=..., momentum=0.9)`` this matches ``cifar10_full_solver.prototxt``
    (base_lr 0.001, momentum 0.9, weight_decay 0.004).

    Raises:
        ValueError: a negative or non-finite ``base_weight_decay``, or a model without the Caffe layers.
    """
    if not isinstance(base_weight_decay, (int, float)) or not 0 <= base_weight_decay < float("inf"):
        raise ValueError(f"base_weight_decay must be a finite number >= 0, got {base_weight_decay!r}")
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for name, spec in CAFFE_LAYER_SPECS.items():
        layer = getattr(model, name, None)
        if layer is None:
            raise ValueError(f"model has no layer {name!r}; caffe_param_groups expects a CaffeCIFAR10Full")
        for kind in ("weight", "bias"):
            lr_mult, decay_mult = spec[kind]
            group = groups.setdefault(
                (lr_mult, decay_mult),
                {"params": [], "param_names": [], "lr_mult": lr_mult, "decay_mult": decay_mult,
                 "weight_decay": base_weight_decay * decay_mult},
            )
            group["params"].append(getattr(layer, kind))
            group["param_names"].append(f"{name}.{kind}")
    return list(groups.values())


# ----------------------------------------------------------------------------------------------
# A compact modern residual net
# ----------------------------------------------------------------------------------------------


class _ConvBN(nn.Sequential):
    """3x3 convolution (no bias) - batch norm - ReLU, optionally followed by 2x2 max pooling."""

    def __init__(self, channels_in: int, channels_out: int, pool: bool = False) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class _Residual(nn.Module):
    """``x + f(x)`` with ``f`` two conv-bn-relu blocks at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_ConvBN(channels, channels), _ConvBN(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet9_widths(base_width: int = 64) -> tuple[int, int, int, int]:
    """The channel widths ``(w, 2w, 4w, 8w)`` of a :class:`ResNet9` whose prep layer has ``base_width`` channels.

    Page's network is ``base_width=64``: ``(64, 128, 256, 512)``. Compute grows as ``base_width`` squared
    (every convolution's cost is ``channels_in * channels_out``), so ``base_width=8`` is 64 times
    cheaper per image: the CPU quick profile of the time-to-accuracy chapter.

    Raises:
        ValueError: ``base_width`` not a whole number >= 1.
    """
    if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
        raise ValueError(f"base_width must be a positive whole number of channels, got {base_width!r}")
    return (base_width, 2 * base_width, 4 * base_width, 8 * base_width)


class ResNet9(nn.Module):
    """The ResNet-9 of Page's "How to train your ResNet" (Myrtle.ai, the ancestor of airbench).

    ``prep conv(w0) - [conv(w1) pool res(w1)] - [conv(w2) pool] - [conv(w3) pool res(w3)] - global max pool -
    linear(10, no bias) * output_scale``, every conv 3x3 - batch norm - ReLU, spatial 32 -> 16 -> 8 -> 4 -> 1.

    With the default widths ``(64, 128, 256, 512)`` it has **6,573,120** parameters: convolutions 6,563,520
    (no biases), batch-norm scales and shifts 4,480, the linear layer 5,120 (``tests/test_models.py`` pins
    the number). Smaller widths give a net cheap enough for CPU tests. Use standard normalisation and
    crop + flip augmentation with it. Pass ``channels_last`` to :func:`clr_book.cifar.train.train` for speed.

    Args:
        num_classes: outputs.
        widths: channels of the prep layer and the three stages.
        output_scale: multiplies the logits (Page uses 0.125, which keeps the initial softmax soft).
    """

    def __init__(
        self, num_classes: int = 10, widths: tuple[int, int, int, int] = (64, 128, 256, 512), output_scale: float = 0.125
    ) -> None:
        super().__init__()
        if len(widths) != 4 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be four positive whole numbers of channels, got {widths!r}")
        w0, w1, w2, w3 = widths
        self.prep = _ConvBN(3, w0)
        self.layer1 = nn.Sequential(_ConvBN(w0, w1, pool=True), _Residual(w1))
        self.layer2 = _ConvBN(w1, w2, pool=True)
        self.layer3 = nn.Sequential(_ConvBN(w2, w3, pool=True), _Residual(w3))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(w3, num_classes, bias=False)
        self.output_scale = float(output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.output_scale
