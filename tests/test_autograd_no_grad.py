"""no_grad and detach: the function form, its refusal as a context manager, and PyTorch's behaviour."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem import autograd


def _scaled(w):
    return (w * 2.0).sum()


@pytest.mark.parametrize("form", ["call", "decorator", "decorator-called"])
def test_every_form_makes_pytorchs_error(form, jit):
    if form == "call":
        fun = autograd.no_grad(_scaled)
    elif form == "decorator":

        @autograd.no_grad
        def fun(w):
            return _scaled(w)
    else:

        @autograd.no_grad()
        def fun(w):
            return _scaled(w)

    assert float(fun(jnp.ones(3))) == 6.0
    with pytest.raises(RuntimeError, match=autograd.ELEMENT_0_MESSAGE):
        maybe_jit(autograd.grad(fun), jit)(jnp.ones(3))


def test_it_is_not_a_context_manager():
    with pytest.raises(TypeError, match="not a context manager"), autograd.no_grad():
        pass


def test_it_needs_a_function():
    with pytest.raises(TypeError, match="no_grad expects a function"):
        autograd.no_grad(3)


def test_the_wrapper_keeps_the_functions_name_and_passes_non_arrays_through():
    def forward(x):
        """Docs."""
        return {"out": x * 2, "label": "kept", "count": 3}

    wrapped = autograd.no_grad(forward)
    assert wrapped.__name__ == "forward" and wrapped.__doc__ == "Docs."
    out = wrapped(jnp.ones(2))
    assert out["label"] == "kept" and out["count"] == 3


def test_detach_cuts_only_what_it_is_given(jit):
    def loss(p):
        return (autograd.detach(p["a"]) * p["b"]).sum()

    grads = maybe_jit(autograd.grad(loss), jit)({"a": jnp.full(2, 3.0), "b": jnp.ones(2)})
    assert grads["a"] is None
    np.testing.assert_array_equal(grads["b"], np.full(2, 3.0, np.float32))


@pytest.mark.live_torch
def test_no_grad_leaves_batchnorm_behaviour_unchanged_as_in_pytorch(jit):
    """Section 4: no_grad saves the graph, not the train-mode statistics update."""
    import torch

    from torchsem.models import Net

    x_np = np.random.default_rng(0).standard_normal((3, 3, 8)).astype(np.float32)
    bn = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        expected_out = bn(torch.nn.functional.avg_pool1d(torch.tensor(x_np), 2))

    model = Net()
    variables = model.init(jax.random.key(0), jnp.asarray(x_np))
    forward = autograd.no_grad(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats", "intermediates"]))
    _, state = maybe_jit(forward, jit)(variables, jnp.asarray(x_np))
    np.testing.assert_allclose(
        state["batch_stats"]["bn1"]["running_mean"], bn.running_mean.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(state["batch_stats"]["bn1"]["running_var"], bn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["intermediates"]["bn1_out"][0], expected_out.numpy(), rtol=1e-5, atol=1e-6)
