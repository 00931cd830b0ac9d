"""``torchsem.compare.check_port``: a user's PyTorch module against their Flax port, step by step.

The checker's verdicts are checked against real PyTorch: a faithful port agrees at every step,
and deliberately wrong ports (a BatchNorm momentum, a channels-last flatten, an optimizer
without PyTorch's weight decay) are caught at the right quantity and step.
"""

from __future__ import annotations

import sys

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from torchsem import optim
from torchsem.compare import check_port
from torchsem.losses import cross_entropy
from torchsem.models import Net
from torchsem.nn import AvgPool1d, BatchNorm1d, Linear


def _torch_net(momentum: float = 0.1, seed: int = 1029):
    """The document's ``net`` (PyTorch), with a BatchNorm momentum to get wrong on purpose."""
    import torch

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3, momentum=momentum)
            self.fc1 = torch.nn.Linear(12, 4)

        def forward(self, x):
            x = self.bn1(self.pool1(x))
            return self.fc1(x.reshape(x.size(0), -1))

    torch.manual_seed(seed)
    return TorchNet()


class ChannelsLastNet(nn.Module):
    """A classic porting bug: the features are flattened channels-last, permuting fc1's inputs."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = AvgPool1d(2, name="pool1")(x)
        x = BatchNorm1d(3, name="bn1")(x, use_running_average=not train)
        x = jnp.transpose(x, (0, 2, 1)).reshape(x.shape[0], -1)
        return Linear(12, 4, name="fc1")(x)


def _batches(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal((3, 3, 8)).astype(np.float32) for _ in range(count)]


def _losses():
    import torch

    return torch.nn.functional.cross_entropy, cross_entropy


TARGETS = np.array([1, 0, 3])


@pytest.mark.live_torch
def test_a_faithful_port_agrees_at_every_step(jit):
    import torch

    model = _torch_net()
    steps = ["train", "train", "eval", "train", "eval"]
    result = check_port(
        model,
        Net(),
        _batches(len(steps)),
        steps=steps,
        targets=TARGETS,
        loss_fns=_losses(),
        optimizers=(
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
            optim.sgd(0.1, momentum=0.9, weight_decay=1e-4),
        ),
        jit=jit,
    )
    assert result.ok, result.summary()
    assert result.first_mismatch is None and result.steps_run == len(steps)
    names = {(q.step, q.name) for q in result.quantities}
    for expected in [
        (1, "output"),
        (1, "loss"),
        (1, "bn1.running_mean"),
        (1, "bn1.num_batches_tracked"),
        (1, "grad fc1.weight"),
        (1, "fc1.weight"),
        (3, "output"),
        (3, "bn1.running_var"),
    ]:
        assert expected in names
    assert (3, "loss") not in names  # eval steps only run forward
    assert "the port agrees with PyTorch" in result.summary()


@pytest.mark.live_torch
def test_frozen_parameters_get_none_on_both_sides():
    import torch

    model = _torch_net()
    model.fc1.weight.requires_grad = False
    trainable = [p for p in model.parameters() if p.requires_grad]
    result = check_port(
        model, Net(), _batches(2), steps=2, optimizers=(torch.optim.SGD(trainable, lr=0.1), optim.sgd(0.1))
    )
    assert result.ok, result.summary()
    grads = {q.name: q.comparison for q in result.quantities if q.step == 1 and q.name.startswith("grad ")}
    assert grads["grad fc1.weight"].expected is None and grads["grad fc1.weight"].actual is None
    assert isinstance(grads["grad fc1.bias"].actual, np.ndarray)


@pytest.mark.live_torch
def test_a_wrong_batchnorm_momentum_is_caught_at_the_running_mean_of_step_one():
    result = check_port(_torch_net(momentum=0.2), Net(), _batches(3), steps=3)
    assert not result.ok
    first = result.first_mismatch
    assert (first.step, first.mode, first.name) == (1, "train", "bn1.running_mean")
    # Everything computed before it in step 1 agrees: the output uses the batch statistics.
    before = [q for q in result.quantities[: result.quantities.index(first)] if q.step == 1]
    assert [q.name for q in before] == ["pool1 output", "bn1 output", "fc1 output", "output", "loss"]
    assert all(q.ok for q in before)
    assert result.steps_run == 1  # stops after the step of the first mismatch
    assert "step 1 (train): bn1.running_mean differs" in result.summary()


@pytest.mark.live_torch
def test_a_channels_last_flatten_is_caught_at_the_first_output():
    result = check_port(_torch_net(), ChannelsLastNet(), _batches(1), steps=["eval"], stop_at_first=False)
    first = result.first_mismatch
    # pool1 and bn1 agree; fc1, the first module fed the permuted features, is named.
    assert (first.step, first.mode, first.name) == (1, "eval", "fc1 output")
    assert result.first_by_kind()["output"].name == "output"


@pytest.mark.live_torch
def test_an_optimizer_without_pytorchs_weight_decay_is_caught_after_the_step():
    import torch

    model = _torch_net()
    result = check_port(
        model,
        Net(),
        _batches(2),
        steps=2,
        targets=TARGETS,
        loss_fns=_losses(),
        optimizers=(torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1), optax.sgd(0.1)),
    )
    first = result.first_mismatch
    # Forward, loss, stats and gradients of step 1 agree; the first parameter after the step does not.
    assert (first.step, first.name) == (1, "bn1.weight")
    assert all(q.ok for q in result.quantities if q.step == 1 and (q.name.startswith("grad ") or q.name == "output"))


@pytest.mark.live_torch
def test_a_per_quantity_tolerance_applies_by_name():
    from torchsem.compare import Tolerance

    loose = Tolerance(0.0, 1.0, reason="test: a tolerance wide enough to hide the wrong momentum")
    result = check_port(
        _torch_net(momentum=0.2),
        Net(),
        _batches(1),
        steps=1,
        tolerances={"bn1.running_mean": loose, "bn1.running_var": loose},
    )
    assert result.ok, result.summary()


@pytest.mark.live_torch
def test_mismatched_names_fail_with_load_state_dicts_error():
    class Renamed(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            x = AvgPool1d(2)(x)
            x = BatchNorm1d(3, name="norm")(x, use_running_average=not train)
            return Linear(12, 4, name="fc1")(x.reshape(x.shape[0], -1))

    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "norm.weight"'):
        check_port(_torch_net(), Renamed(), _batches(1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": "train"}, TypeError, "sequence of 'train'/'eval'"),
        ({"steps": ["train", "test"]}, ValueError, "each 'train' or 'eval'"),
        ({"steps": 3, "inputs": [np.zeros((3, 3, 8), np.float32)] * 2}, ValueError, "needs 3 entries, got 2"),
        ({"rtol": -1.0}, ValueError, "rtol and atol must be >= 0"),
        ({"loss_fns": (None,)}, ValueError, "loss_fns must be a pair"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(kwargs, error, message):
    inputs = kwargs.pop("inputs", np.zeros((3, 3, 8), np.float32))
    with pytest.raises(error, match=message):
        check_port(object(), Net(), inputs, **kwargs)


def test_without_pytorch_imported_the_checker_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="PyTorch is not imported"):
        check_port(object(), Net(), np.zeros((3, 3, 8), np.float32))
