"""The tensor-LR training step (clr_book.cifar.graphed): the same training as the float loop, on the CPU.

The CUDA-graph capture itself needs a GPU and is not tested here; what a CPU can check is that the step
it would capture (LR in a device tensor, SGD written with foreach kernels) trains exactly like
``torch.optim.SGD`` driven by :func:`clr_book.cifar.train.train`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clr_book.checkpoint import Checkpoint
from clr_book.cifar.data import make_synthetic_cifar10
from clr_book.cifar.graphed import SGDState, TensorLRStep, lr_table, sgd_update_
from clr_book.cifar.models import CaffeCIFAR10Full, caffe_param_groups
from clr_book.cifar.train import train
from clr_book.experiments.table1.config import PROFILES, SOLVER, get_policy
from clr_book.experiments.table1.run import run_policy


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
    # numpy's vectorised and scalar paths may round differently (1 ulp apart with AVX-512): a few ulp
    np.testing.assert_allclose(table, [schedule(i) for i in range(420)], rtol=4 * np.finfo(float).eps, atol=0)
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
    actual = train(model, optimizer, schedule, data, step="tensor_lr", **settings)
    assert actual.iteration == expected.iteration == [10, 20, 30]
    assert actual.lr == pytest.approx(expected.lr, rel=1e-12)
    np.testing.assert_allclose(actual.train_loss, expected.train_loss, rtol=1e-4)
    np.testing.assert_allclose(actual.test_loss, expected.test_loss, rtol=1e-4)
    assert actual.settings["step"] == "tensor_lr" and actual.settings["lr_mults"] == [1.0, 2.0, 1.0, 2.0]
    assert expected.settings["step"] == "eager"


def test_tensor_lr_run_resumed_from_a_checkpoint_equals_an_uninterrupted_one(tmp_path):
    data = make_synthetic_cifar10(400, 100, seed=0)
    schedule = get_policy("exp_range").schedule(0.005)
    settings = {"iterations": 20, "batch_size": 50, "eval_every": 10, "device": "cpu", "eval_batch_size": 100,
                "seed": 2, "step": "tensor_lr"}
    model, optimizer = _model_and_optimizer(2)
    whole = train(model, optimizer, schedule, data, **settings)
    whole_parameters = [p.detach().clone() for p in model.parameters()]

    class Stop(Exception):
        pass

    class StopAfter13(Checkpoint):
        """Saves after iteration 13 only, then stops, as if the machine went away right after it."""

        calls = 0

        def due(self):
            self.calls += 1
            return self.calls == 13

        def save(self, state):
            super().save(state)
            raise Stop

    checkpoint = StopAfter13(tmp_path / "ckpt", "tensor-lr", {"test": 1}, every_seconds=3600)
    model, optimizer = _model_and_optimizer(2)
    with pytest.raises(Stop):
        train(model, optimizer, schedule, data, checkpoint=checkpoint, **settings)
    assert checkpoint.load()["iteration"] == 13
    model, optimizer = _model_and_optimizer(5)  # other weights: the checkpoint's must replace them
    resumed = train(model, optimizer, schedule, data,
                    checkpoint=Checkpoint(tmp_path / "ckpt", "tensor-lr", {"test": 1}, every_seconds=3600), **settings)
    assert resumed.resumed_at == [13] and resumed.iteration == whole.iteration == [10, 20]
    assert resumed.lr == whole.lr and resumed.train_loss == whole.train_loss and resumed.test_loss == whole.test_loss
    for expected, actual in zip(whole_parameters, model.parameters()):
        assert torch.equal(actual, expected)


def test_tensor_lr_step_reports_the_schedule_and_refuses_options_it_lacks():
    model, optimizer = _model_and_optimizer()
    schedule = get_policy("exp_range").schedule(0.01)
    step = TensorLRStep(model, optimizer, schedule, 30, device=torch.device("cpu"), batch_size=10)
    assert step.name == "tensor_lr" and step.lr(7) == pytest.approx(schedule(7), rel=1e-15)
    buffers = step.state_dict()["buffers"]
    assert [len(group) for group in buffers] == [len(group["params"]) for group in optimizer.param_groups]
    with pytest.raises(ValueError, match="other param groups"):
        step.load_state_dict({"buffers": [[]]})
    data = make_synthetic_cifar10(200, 100, seed=0)
    for option in ({"compile": True}, {"label_smoothing": 0.1}, {"momentum_schedule": lambda it: 0.9}):
        with pytest.raises(ValueError, match="step='tensor_lr' supports no compile, momentum_schedule or label_smooth"):
            train(model, optimizer, schedule, data, iterations=2, batch_size=100, eval_every=1, step="tensor_lr",
                  **option)


def test_cuda_graph_needs_a_cuda_device():
    data = make_synthetic_cifar10(200, 100, seed=0)
    model, optimizer = _model_and_optimizer()
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        train(model, optimizer, get_policy("fixed").schedule(0.001), data, iterations=2, batch_size=100,
              eval_every=1, device="cpu", step="cuda_graph")
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        TensorLRStep(model, optimizer, get_policy("fixed").schedule(0.001), 2, device=torch.device("cpu"),
                     batch_size=100, cuda_graph=True)
    with pytest.raises(ValueError, match="step='cuda_graph' needs a CUDA device"):
        run_policy(get_policy("fixed"), PROFILES["smoke"], data, torch.device("cpu"), step="cuda_graph")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the graph capture cannot run on a CPU)")
def test_cuda_graph_replay_trains_like_the_eager_tensor_lr_step_on_cuda():
    """On a GPU: capture + replay gives the eager step's curves (to float32 reduction order)."""
    data = make_synthetic_cifar10(1000, 200, seed=0)
    schedule = get_policy("triangular2").schedule(0.002)  # 50 iterations, step sizes 4, 2, 1
    settings = {"iterations": 50, "batch_size": 100, "eval_every": 10, "device": "cuda", "eval_batch_size": 200, "seed": 1}
    torch.backends.cudnn.deterministic = True
    try:
        model, optimizer = _model_and_optimizer(1)
        eager = train(model, optimizer, schedule, data, step="tensor_lr", **settings)
        model, optimizer = _model_and_optimizer(1)
        graphed = train(model, optimizer, schedule, data, step="cuda_graph", **settings)
    finally:
        torch.backends.cudnn.deterministic = False
    assert graphed.settings["step"] == "cuda_graph" and graphed.iteration == eager.iteration
    assert graphed.lr == eager.lr
    np.testing.assert_allclose(graphed.train_loss, eager.train_loss, rtol=1e-3)
    np.testing.assert_allclose(graphed.test_accuracy, eager.test_accuracy, atol=0.02)
