"""torchsem.autograd.inspect_graph: names, Flax module recognition, and PyTorch's answers.

The document's network in train/eval/no_grad/detach mode and the primitive and module
grad_fn tables are compared with PyTorch in the ``autograd`` scenario family; here the rest
of the module recognition (flax.linen's own modules, Dropout) against live PyTorch, and the
naming rules.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem import autograd
from torchsem import nn as tnn
from torchsem.autograd._inspect import output_names


def test_sow_tuples_do_not_add_an_index_to_the_name():
    tree = {"intermediates": {"h": (1.0,), "pair": (1.0, 2.0)}, "loss": 0.0}
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    assert output_names(paths) == ["intermediates.h", "intermediates.pair.0", "intermediates.pair.1", "loss"]


def test_a_single_array_output_is_called_output():
    graph = autograd.inspect_graph(lambda w: w * 2, jnp.ones(2))
    assert list(graph.outputs) == ["output"]
    assert graph["output"].grad_fn == "MulBackward0"


def test_argument_names_come_from_the_signature_or_arg_names():
    def forward(params, data):
        return params["w"] * data

    graph = autograd.inspect_graph(forward, {"w": jnp.ones(2)}, jnp.ones(2), requires_grad=(True, False))
    assert set(graph.inputs) == {"params.w", "data"}
    renamed = autograd.inspect_graph(forward, {"w": jnp.ones(2)}, jnp.ones(2), arg_names=("p", "x"))
    assert set(renamed.inputs) == {"p.w", "x"}
    with pytest.raises(ValueError, match="arg_names has 1 names for 2 arguments"):
        autograd.inspect_graph(forward, {"w": jnp.ones(2)}, jnp.ones(2), arg_names=("p",))


def test_unknown_names_raise_a_key_error_listing_what_exists():
    graph = autograd.inspect_graph(lambda w: {"h": w * 2}, jnp.ones(2))
    with pytest.raises(KeyError, match="outputs: h"):
        graph["nope"]


def test_operations_without_a_pytorch_counterpart_are_named_after_the_jax_primitive():
    graph = autograd.inspect_graph(lambda w: jax.lax.cumlogsumexp(w), jnp.ones(3))
    info = graph["output"]
    assert info.requires_grad and not info.is_leaf and info.grad_fn.startswith("jax.")


def test_an_input_returned_unchanged_is_that_leaf():
    graph = autograd.inspect_graph(lambda w, x: {"w": w, "x": x}, jnp.ones(2), jnp.ones(2), requires_grad=(True, False))
    assert (graph["w"].requires_grad, graph["w"].is_leaf, graph["w"].grad_fn) == (True, True, None)
    assert (graph["x"].requires_grad, graph["x"].is_leaf) == (False, True)


def test_report_prints_like_pytorch():
    text = str(autograd.inspect_graph(lambda w: {"h": w.reshape(2, 1)}, jnp.ones(2)))
    assert "h: requires_grad=True, is_leaf=False, grad_fn=<ViewBackward0>" in text


def _torch_module_grad_fn(module_factory, x_np, train: bool):
    import torch

    module = module_factory(torch)
    module.train(train)
    torch.manual_seed(0)
    x = torch.tensor(x_np, requires_grad=True)
    out = module(x)
    return None if out.grad_fn is None else type(out.grad_fn).__name__


@pytest.mark.live_torch
@pytest.mark.parametrize("case", ["flax-dense", "flax-dense-no-bias", "flax-batchnorm", "torchsem-dropout"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_module_outputs_report_pytorchs_backward_node(case, train, jit):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((4, 3)).astype(np.float32)
    if case == "flax-dense":
        torch_factory, module, kwargs = (lambda t: t.nn.Linear(3, 2)), nn.Dense(2), {}
    elif case == "flax-dense-no-bias":
        torch_factory, module, kwargs = (lambda t: t.nn.Linear(3, 2, bias=False)), nn.Dense(2, use_bias=False), {}
    elif case == "flax-batchnorm":
        torch_factory, module = (lambda t: t.nn.BatchNorm1d(3)), nn.BatchNorm(use_running_average=not train)
        kwargs = {}
    else:
        torch_factory, module = (lambda t: t.nn.Dropout(0.5)), tnn.Dropout(0.5, deterministic=not train)
        kwargs = {"rngs": {"dropout": jax.random.key(1)}}
    x = jnp.asarray(x_np)
    variables = module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)

    def forward(variables, x):
        return module.apply(variables, x, mutable=["batch_stats"], **kwargs)[0]

    graph = autograd.inspect_graph(maybe_jit(forward, jit), variables, x)
    # Dropout in eval mode returns its input: x itself, which is a leaf requiring grad in PyTorch.
    assert graph["output"].grad_fn == _torch_module_grad_fn(torch_factory, x_np, train)


@pytest.mark.live_torch
def test_nested_calls_report_the_innermost_operation(jit):
    import torch

    w_np = np.array([[0.5, -1.0], [2.0, 0.1]], np.float32)
    w = torch.tensor(w_np, requires_grad=True)
    expected = {"relu": torch.relu(w * 2), "softmax_log": torch.log_softmax(w, 1), "sum": (w * 3).sum(1)}

    inner = jax.jit(
        lambda w: {"relu": jax.nn.relu(w * 2), "softmax_log": jax.nn.log_softmax(w, axis=1), "sum": (w * 3).sum(1)}
    )
    graph = autograd.inspect_graph(maybe_jit(lambda w: inner(w), jit), jnp.asarray(w_np))
    for name, tensor in expected.items():
        assert graph[name].grad_fn == type(tensor.grad_fn).__name__, name
