"""clr_book.cifar.models: the Caffe cifar10_full port (shapes, pooling, LRN, init, param groups) and ResNet-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clr_book.cifar.models import CaffeCIFAR10Full, CaffeLRN, ResNet9, caffe_param_groups, count_parameters


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """Caffe's PoolingLayer::Reshape: ceil((H + 2 pad - k) / s) + 1, minus 1 if the last window starts in the padding."""
    pooled = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def caffe_ave_pool(x: np.ndarray, kernel: int, stride: int, pad: int = 0) -> np.ndarray:
    """Caffe's AVE pooling forward (CPU loop): the divisor is the window clipped to the PADDED input."""
    n, c, h, w = x.shape
    out_h, out_w = caffe_pooled_size(h, kernel, stride, pad), caffe_pooled_size(w, kernel, stride, pad)
    out = np.zeros((n, c, out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            h0, w0 = ph * stride - pad, pw * stride - pad
            h1, w1 = min(h0 + kernel, h + pad), min(w0 + kernel, w + pad)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            out[:, :, ph, pw] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / pool_size
    return out


def lrn_reference(x: np.ndarray, local_size: int, alpha: float, beta: float) -> np.ndarray:
    """Caffe's WITHIN_CHANNEL LRN by its documented formula, one output at a time:
    x / (1 + alpha / n^2 * sum of x^2 over the n x n window centred on it, zero-padded) ^ beta."""
    n, c, h, w = x.shape
    half = local_size // 2
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (half, half), (half, half)))
    out = np.empty_like(x, dtype=np.float64)
    for i in range(n):
        for k in range(c):
            for r in range(h):
                for s in range(w):
                    window = padded[i, k, r : r + local_size, s : s + local_size]
                    out[i, k, r, s] = x[i, k, r, s] / (1 + alpha / local_size**2 * (window**2).sum()) ** beta
    return out


# ----------------------------------------------------------------------------------------------
# The Caffe net
# ----------------------------------------------------------------------------------------------


def test_spatial_sizes_are_32_16_8_4_and_ip1_sees_1024_inputs():
    model = CaffeCIFAR10Full()
    sizes = {}
    for name in ("conv1", "pool1", "pool2", "pool3"):
        getattr(model, name).register_forward_hook(lambda module, inputs, output, name=name: sizes.__setitem__(name, output.shape))
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert sizes == {"conv1": (2, 32, 32, 32), "pool1": (2, 32, 16, 16), "pool2": (2, 32, 8, 8), "pool3": (2, 64, 4, 4)}
    assert model.ip1.in_features == 64 * 4 * 4
    assert [caffe_pooled_size(s, 3, 2) for s in (32, 16, 8)] == [16, 8, 4]


@pytest.mark.parametrize("size", [8, 9, 16])
def test_average_pooling_matches_caffe_including_partial_last_windows(size):
    x = np.random.default_rng(size).normal(size=(2, 3, size, size))
    ours = CaffeCIFAR10Full().pool2(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(ours, caffe_ave_pool(x, 3, 2), rtol=1e-12, atol=1e-12)


def test_max_pooling_keeps_caffes_ceil_mode_size():
    x = torch.randn(1, 1, 32, 32)
    pooled = CaffeCIFAR10Full().pool1(x)
    assert pooled.shape[-1] == caffe_pooled_size(32, 3, 2)
    assert pooled[0, 0, -1, -1] == x[0, 0, 30:, 30:].max()  # the last window is clipped, not dropped


def test_parameter_count():
    assert count_parameters(CaffeCIFAR10Full()) == 89_578  # 2,432 + 25,632 + 51,264 + 10,250


def test_initialisation_uses_caffes_gaussian_stds_and_zero_biases():
    torch.manual_seed(0)
    model = CaffeCIFAR10Full()
    for name, std in (("conv1", 1e-4), ("conv2", 1e-2), ("conv3", 1e-2), ("ip1", 1e-2)):
        weight = getattr(model, name).weight
        assert weight.std().item() == pytest.approx(std, rel=0.06), name
        assert abs(weight.mean().item()) < 0.1 * std
        assert torch.count_nonzero(getattr(model, name).bias) == 0


@pytest.mark.parametrize("alpha, scale", [(5e-5, 100.0), (0.5, 1.0)])
def test_lrn_matches_a_direct_loop_over_caffes_formula(alpha, scale):
    x = np.random.default_rng(1).normal(scale=scale, size=(2, 3, 6, 5))
    ours = CaffeLRN(3, alpha, 0.75)(torch.as_tensor(x, dtype=torch.float64)).numpy()
    expected = lrn_reference(x, 3, alpha, 0.75)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    assert np.abs(expected / x - 1).max() > 0.05  # the normalisation is doing something at this scale


def test_lrn_with_a_larger_window():
    x = np.random.default_rng(2).normal(size=(1, 2, 7, 7))
    np.testing.assert_allclose(CaffeLRN(5, 0.3, 0.5)(torch.as_tensor(x)).numpy(), lrn_reference(x, 5, 0.3, 0.5), rtol=1e-6)


def test_lrn_runs_in_float32_under_autocast_and_returns_the_input_dtype():
    x = torch.randn(2, 4, 8, 8) * 100
    reference = CaffeLRN()(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = CaffeLRN()(x.bfloat16())
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=2e-2, atol=0.5)


def test_lrn_rejects_even_sizes():
    with pytest.raises(ValueError, match="local_size"):
        CaffeLRN(4)


def test_param_groups_carry_the_prototxts_lr_and_decay_multipliers():
    model = CaffeCIFAR10Full()
    groups = caffe_param_groups(model, base_weight_decay=0.004)
    table = {(g["lr_mult"], g["decay_mult"]): (sorted(g["param_names"]), g["weight_decay"]) for g in groups}
    assert table == {
        (1.0, 1.0): (["conv1.weight", "conv2.weight", "conv3.bias", "conv3.weight"], 0.004),
        (2.0, 1.0): (["conv1.bias", "conv2.bias"], 0.004),
        (1.0, 250.0): (["ip1.weight"], pytest.approx(1.0)),
        (2.0, 0.0): (["ip1.bias"], 0.0),
    }
    assert groups[0]["lr_mult"] == 1.0  # the first group follows the schedule unscaled
    named = dict(model.named_parameters())
    for group in groups:
        assert all(p is named[n] for p, n in zip(group["params"], group["param_names"]))
    assert sum(len(g["params"]) for g in groups) == len(named)
    optimizer = torch.optim.SGD(groups, lr=0.001, momentum=0.9)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.004, 0.004, pytest.approx(1.0), 0.0]


def test_param_groups_reject_bad_input():
    with pytest.raises(ValueError, match="base_weight_decay"):
        caffe_param_groups(CaffeCIFAR10Full(), -1.0)
    with pytest.raises(ValueError, match="no layer 'conv1'"):
        caffe_param_groups(torch.nn.Linear(2, 2))


def test_one_sgd_step_with_caffe_groups_applies_lr_mult_through_the_lr():
    """Caffe's update for a bias with lr_mult 2 and decay_mult 0 is w -= 2 lr g (first step, zero history)."""
    torch.manual_seed(0)
    model = CaffeCIFAR10Full()
    groups = caffe_param_groups(model)
    optimizer = torch.optim.SGD(groups, lr=0.001, momentum=0.9)
    for group in optimizer.param_groups:
        group["lr"] = 0.001 * group["lr_mult"]
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32) * 50), torch.arange(4)).backward()
    bias_before, grad = model.ip1.bias.detach().clone(), model.ip1.bias.grad.clone()
    weight_before, weight_grad = model.ip1.weight.detach().clone(), model.ip1.weight.grad.clone()
    optimizer.step()
    torch.testing.assert_close(model.ip1.bias.detach(), bias_before - 0.002 * grad)
    torch.testing.assert_close(model.ip1.weight.detach(), weight_before - 0.001 * (weight_grad + 1.0 * weight_before))


# ----------------------------------------------------------------------------------------------
# ResNet-9
# ----------------------------------------------------------------------------------------------


def test_resnet9_has_the_documented_parameter_count():
    assert count_parameters(ResNet9()) == 6_573_120


def test_resnet9_forward_shape_and_channels_last():
    model = ResNet9(widths=(8, 16, 32, 64)).eval()
    x = torch.randn(3, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (3, 10)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), logits, rtol=1e-4, atol=1e-5)


def test_resnet9_rejects_bad_widths():
    with pytest.raises(ValueError, match="widths"):
        ResNet9(widths=(8, 16, 32))


def test_resnet9_widths_double_at_each_stage_and_64_is_pages_network():
    from clr_book.cifar.models import resnet9_widths

    assert resnet9_widths() == (64, 128, 256, 512)
    assert resnet9_widths(8) == (8, 16, 32, 64)
    assert count_parameters(ResNet9(widths=resnet9_widths(64))) == count_parameters(ResNet9())


@pytest.mark.parametrize("bad", [0, -8, 8.0, True, "64"])
def test_resnet9_widths_rejects_anything_but_a_positive_whole_number(bad):
    from clr_book.cifar.models import resnet9_widths

    with pytest.raises(ValueError, match="base_width"):
        resnet9_widths(bad)


def test_resnet9_compute_grows_with_the_square_of_the_width():
    from clr_book.cifar.models import resnet9_widths

    # Convolution weights dominate the parameters and scale as width squared (batch norm and the
    # linear layer scale linearly), so doubling the width multiplies the count by nearly 4.
    small, large = count_parameters(ResNet9(widths=resnet9_widths(8))), count_parameters(ResNet9(widths=resnet9_widths(16)))
    assert 3.9 < large / small < 4.0
