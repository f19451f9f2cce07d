"""The tensor-LR training step (clr_lib.experiments.graphed): the same training as the float loop, on the CPU.

The CUDA-graph capture itself needs a GPU and is not tested here; what a CPU can check is that the step
it would capture (LR in a device tensor, SGD written with foreach kernels) trains exactly like
``torch.optim.SGD`` driven by :func:`clr_lib.train.train`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clr_lib.data import make_synthetic_cifar10
from clr_lib.experiments import get_policy
from clr_lib.experiments.graphed import SGDState, lr_table, sgd_update_, train_tensor_lr
from clr_lib.experiments.runner import SOLVER, run_policy
from clr_lib.models import CaffeCIFAR10Full, caffe_param_groups
from clr_lib.train import train


def _model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = CaffeCIFAR10Full()
    optimizer = torch.optim.SGD(caffe_param_groups(model, SOLVER["base_weight_decay"]), lr=0.001,
                                momentum=SOLVER["momentum"])
    return model, optimizer


def test_lr_table_is_the_schedule_at_every_iteration():
    schedule = get_policy("exp_range").schedule(0.01)
    table = lr_table(schedule, 420)
    assert table.shape == (420,) and table.dtype == np.float64
    np.testing.assert_array_equal(table, [schedule(i) for i in range(420)])
    with pytest.raises(ValueError, match="iterations"):
        lr_table(schedule, 0)
    with pytest.raises(ValueError, match="finite LRs"):
        lr_table(lambda it: -np.ones_like(it, dtype=float), 3)


def test_tensor_lr_update_equals_torch_sgd_bit_for_bit_with_caffe_groups_and_changing_lr():
    reference_model, reference = _model_and_optimizer()
    model, optimizer = _model_and_optimizer()
    state = SGDState(optimizer, torch.device("cpu"))
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(8, 3, 32, 32, generator=generator) * 50
    labels = torch.randint(0, 10, (8,), generator=generator)
    for iteration, lr in enumerate(np.linspace(0.001, 0.006, 12)):
        for group in reference.param_groups:
            group["lr"] = group["lr_mult"] * lr
        reference.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(reference_model(images), labels).backward()
        reference.step()
        state.lr.fill_(lr)
        state.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        sgd_update_(state)
        for (name, expected), actual in zip(reference_model.named_parameters(), model.parameters()):
            assert torch.equal(actual, expected), f"{name} differs at iteration {iteration}"


def test_sgd_state_rejects_other_optimizers():
    model = CaffeCIFAR10Full()
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.SGD"):
        SGDState(torch.optim.Adam(model.parameters()), torch.device("cpu"))
    with pytest.raises(ValueError, match="nesterov"):
        SGDState(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True), torch.device("cpu"))


def test_tensor_lr_loop_trains_like_the_float_loop_on_the_cpu():
    data = make_synthetic_cifar10(400, 100, seed=0)
    schedule = get_policy("exp_range").schedule(0.005)  # s = 10 iterations, 210 budgeted: take 30
    settings = {"iterations": 30, "batch_size": 50, "eval_every": 10, "device": "cpu", "eval_batch_size": 100,
                "channels_last": True, "seed": 3}
    model, optimizer = _model_and_optimizer(3)
    expected = train(model, optimizer, schedule, data, **settings)
    model, optimizer = _model_and_optimizer(3)
    actual = train_tensor_lr(model, optimizer, schedule, data, **settings)
    assert actual.iteration == expected.iteration == [10, 20, 30]
    assert actual.lr == pytest.approx(expected.lr, rel=1e-12)
    np.testing.assert_allclose(actual.train_loss, expected.train_loss, rtol=1e-4)
    np.testing.assert_allclose(actual.test_loss, expected.test_loss, rtol=1e-4)
    assert actual.settings["step"] == "tensor_lr" and actual.settings["lr_mults"] == [1.0, 2.0, 1.0, 2.0]


def test_cuda_graph_needs_a_cuda_device():
    data = make_synthetic_cifar10(200, 100, seed=0)
    model, optimizer = _model_and_optimizer()
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        train_tensor_lr(model, optimizer, get_policy("fixed").schedule(0.001), data, iterations=2, batch_size=100,
                        eval_every=1, device="cpu", cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        run_policy("fixed", profile="smoke", data=data, device="cpu", cuda_graph=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the graph capture cannot run on a CPU)")
def test_cuda_graph_replay_trains_like_the_eager_tensor_lr_step_on_cuda():
    """On a GPU: capture + replay gives the eager step's curves (to float32 reduction order)."""
    data = make_synthetic_cifar10(1000, 200, seed=0)
    schedule = get_policy("triangular2").schedule(0.002)  # 50 iterations, step sizes 4, 2, 1
    settings = {"iterations": 50, "batch_size": 100, "eval_every": 10, "device": "cuda", "eval_batch_size": 200, "seed": 1}
    torch.backends.cudnn.deterministic = True
    try:
        model, optimizer = _model_and_optimizer(1)
        eager = train_tensor_lr(model, optimizer, schedule, data, cuda_graph=False, **settings)
        model, optimizer = _model_and_optimizer(1)
        graphed = train_tensor_lr(model, optimizer, schedule, data, cuda_graph=True, **settings)
    finally:
        torch.backends.cudnn.deterministic = False
    assert graphed.settings["step"] == "cuda_graph" and graphed.iteration == eager.iteration
    assert graphed.lr == eager.lr
    np.testing.assert_allclose(graphed.train_loss, eager.train_loss, rtol=1e-3)
    np.testing.assert_allclose(graphed.test_accuracy, eager.test_accuracy, atol=0.02)
