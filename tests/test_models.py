"""torchsem.models.Net, the document's network.

With numpy weights, the ``net`` scenario family (test_parity_catalogue.py, live or recorded
oracle) checks a train step, an eval step, the detach variant, the running-statistics trace and
the state_dict round trip. Here, with live PyTorch: the document's own runs, seed 1029, with
PyTorch's initial weights loaded into the JAX network (examples one and two, the eval-mode
gradient, the running-mean trace of docs/semantics.md sections 1, 2 and 5), and the module's
structure and intermediates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem.compare._document_net import RUNNING_MEAN_CALLS, TRACE_X_SHAPE
from torchsem.compare._torch_net import torch_document_start
from torchsem.convert import load_torch_state_dict, to_torch_state_dict
from torchsem.losses import cross_entropy
from torchsem.models import Net


def _init(detach: bool = False):
    return Net(detach=detach).init(jax.random.key(0), jnp.zeros((3, 3, 8)), train=False)


def _document_run(detach: bool = False, draws=((3, 3, 8),)):
    """The document's set-up: seed_torch(1029), net(), then torch.randn of each shape in ``draws``."""
    import torch

    model, xs = torch_document_start(draws, detach=detach)
    return torch, model, xs


def _jax_grads(variables, x, train: bool, detach: bool = False):
    def loss_fn(params):
        collections = {"params": params, "batch_stats": variables["batch_stats"]}
        if train:
            output, _ = Net(detach=detach).apply(collections, x, train=True, mutable=["batch_stats"])
        else:
            output = Net(detach=detach).apply(collections, x, train=False)
        return cross_entropy(output, jnp.array([1, 1, 1]))

    return loss_fn, variables["params"]


@pytest.mark.live_torch
def test_example_one_fc1_bias_grad_with_the_weight_frozen(jit):
    torch, model, (x,) = _document_run()
    variables = load_torch_state_dict(_init(), model.state_dict())
    model.fc1.weight.requires_grad = False
    torch.nn.CrossEntropyLoss()(model(x), torch.tensor([1, 1, 1])).backward()
    assert model.fc1.weight.grad is None  # the frozen weight's None is torchsem.autograd's business

    loss_fn, params = _jax_grads(variables, x.numpy(), train=True)
    grads = maybe_jit(jax.grad(loss_fn), jit)(params)
    np.testing.assert_allclose(grads["fc1"]["bias"], model.fc1.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
def test_example_two_detach_fc1_weight_grad(jit):
    torch, model, (x,) = _document_run(detach=True)
    variables = load_torch_state_dict(_init(detach=True), model.state_dict())
    torch.nn.CrossEntropyLoss()(model(x), torch.tensor([1, 1, 1])).backward()
    assert model.bn1.weight.grad is None

    loss_fn, params = _jax_grads(variables, x.numpy(), train=True, detach=True)
    grads = maybe_jit(jax.grad(loss_fn), jit)(params)
    np.testing.assert_allclose(grads["fc1"]["weight"], model.fc1.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["fc1"]["bias"], model.fc1.bias.grad.numpy(), rtol=1e-5, atol=1e-6)
    # Plain jax.grad reports zeros where PyTorch has None (torchsem.autograd.grad gives None).
    assert not np.any(np.asarray(grads["bn1"]["weight"])) and not np.any(np.asarray(grads["bn1"]["bias"]))


@pytest.mark.live_torch
def test_eval_mode_fc1_weight_grad(jit):
    torch, model, (x,) = _document_run()
    variables = load_torch_state_dict(_init(), model.state_dict())
    model.eval()
    torch.nn.CrossEntropyLoss()(model(x), torch.tensor([1, 1, 1])).backward()

    loss_fn, params = _jax_grads(variables, x.numpy(), train=False)
    grads = maybe_jit(jax.grad(loss_fn), jit)(params)
    for module in ("fc1", "bn1"):
        for leaf in ("weight", "bias"):
            expected = getattr(getattr(model, module), leaf).grad.numpy()
            np.testing.assert_allclose(grads[module][leaf], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
def test_running_mean_trace(jit):
    torch, model, xs = _document_run(draws=(TRACE_X_SHAPE,) * 4)
    variables = load_torch_state_dict(_init(), model.state_dict())

    def step(variables, x, train):
        if train:
            _, updates = Net().apply(variables, x, train=True, mutable=["batch_stats"])
            return {**variables, **updates}
        Net().apply(variables, x, train=False)
        return variables

    train_step = maybe_jit(lambda v, x: step(v, x, True), jit)
    eval_step = maybe_jit(lambda v, x: step(v, x, False), jit)
    expected, actual = (
        [model.bn1.running_mean.clone().numpy()],
        [np.asarray(variables["batch_stats"]["bn1"]["running_mean"])],
    )
    with torch.no_grad():
        for mode, i in RUNNING_MEAN_CALLS:
            model.train(mode == "train")
            model(xs[i])
            variables = (train_step if mode == "train" else eval_step)(variables, xs[i].numpy())
            expected.append(model.bn1.running_mean.clone().numpy())
            actual.append(np.asarray(variables["batch_stats"]["bn1"]["running_mean"]))
    np.testing.assert_allclose(np.stack(actual), np.stack(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(variables["batch_stats"]["bn1"]["num_batches_tracked"], 4)
    back = to_torch_state_dict(variables)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(back[key], value.numpy(), rtol=1e-5, atol=1e-6)


def test_submodules_and_variables_have_the_documents_names():
    variables = _init()
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"bn1": {"weight": (3,), "bias": (3,)}, "fc1": {"weight": (4, 12), "bias": (4,)}},
        "batch_stats": {"bn1": {"running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}},
    }
    assert list(to_torch_state_dict(variables)) == [
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "fc1.weight",
        "fc1.bias",
    ]


@pytest.mark.parametrize("detach", [False, True])
def test_intermediates_are_sown_per_stage(detach, jit):
    variables = _init(detach)
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    run = maybe_jit(lambda v, x: Net(detach=detach).apply(v, x, train=False, mutable=["intermediates"]), jit)
    output, state = run(variables, x)
    stages = state["intermediates"]
    expected = ["pool1_out", "bn1_out", "reshape_out", *(["detach_out"] if detach else []), "fc1_out"]
    assert sorted(stages) == sorted(expected)
    shapes = {name: value[0].shape for name, value in stages.items()}
    assert shapes["pool1_out"] == shapes["bn1_out"] == (2, 3, 4)
    assert shapes["reshape_out"] == (2, 12) and shapes["fc1_out"] == (2, 4)
    np.testing.assert_array_equal(stages["fc1_out"][0], output)
    # The reshape is C-major: channel 0's four pooled values first, as x.reshape(N, -1) in PyTorch.
    np.testing.assert_array_equal(stages["reshape_out"][0][:, :4], stages["bn1_out"][0][:, 0, :])


def test_sowing_costs_nothing_when_intermediates_are_not_mutable():
    variables = _init()
    x = jnp.zeros((2, 3, 8))
    quiet = jax.make_jaxpr(lambda v, x: Net().apply(v, x, train=False))(variables, x)
    sown = jax.make_jaxpr(lambda v, x: Net().apply(v, x, train=False, mutable=["intermediates"]))(variables, x)
    assert len(quiet.jaxpr.outvars) == 1  # the logits only: nothing sown is returned
    assert len(sown.jaxpr.outvars) == 5  # the logits and four stages
    assert len(quiet.jaxpr.eqns) == len(sown.jaxpr.eqns)  # sowing adds no computation either way


def test_training_needs_mutable_batch_stats():
    with pytest.raises(ValueError, match=r"mutable=\['batch_stats'\]"):
        Net().apply(_init(), jnp.zeros((2, 3, 8)), train=True)


def test_eval_mode_leaves_the_running_statistics_alone(jit):
    variables = _init()
    x = np.random.default_rng(1).standard_normal((2, 3, 8)).astype(np.float32)
    _, state = maybe_jit(lambda v, x: Net().apply(v, x, train=False, mutable=["batch_stats"]), jit)(variables, x)
    for name, value in variables["batch_stats"]["bn1"].items():
        np.testing.assert_array_equal(state["batch_stats"]["bn1"][name], value)


def test_wrong_input_shape_is_reported_by_the_stage_that_sees_it():
    with pytest.raises(ValueError, match="in_features=12"):
        Net().init(jax.random.key(0), jnp.zeros((2, 3, 10)), train=False)
    with pytest.raises(ValueError, match="expected a 2-D"):
        Net().init(jax.random.key(0), jnp.zeros((3, 8)).reshape(1, 1, 3, 8), train=False)
