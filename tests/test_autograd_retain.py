"""Retained gradients of intermediates (PyTorch's retain_grad) through Flax's perturb.

The document's network and a small module are compared with PyTorch's retained grads in the
``autograd`` scenario family; here the API's own behaviour and errors, and a nested module
compared with live PyTorch.
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


class _Block(nn.Module):
    def setup(self):
        self.fc = tnn.Linear(3, 3)

    def __call__(self, x):
        return jnp.tanh(self.fc(x))


class _Model(nn.Module):
    def setup(self):
        self.block = _Block()
        self.head = tnn.Linear(3, 1)

    def __call__(self, x):
        return self.head(self.block(x)).sum()


def _model_and_variables():
    model = _Model()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3)), jnp.float32)
    return model, model.init(jax.random.key(0), x), x


@pytest.mark.live_torch
def test_nested_module_outputs_and_inputs_match_pytorch(jit):
    import torch

    model, variables, x = _model_and_variables()
    retain = autograd.retain_module_grads(outputs=["block.fc", "block"], inputs=["head"])
    with retain:
        variables = autograd.init_perturbations(model, variables, x)
    assert set(variables["perturbations"]) == {"block", "head"}

    def loss(v, x):
        with retain:
            return model.apply(v, x)

    value, grads, retained = maybe_jit(autograd.value_grad_and_retained(loss), jit)(variables, x)
    assert set(retained) == {"block.fc.output", "block.output", "head.input"}
    assert "perturbations" not in grads

    p = jax.tree.map(lambda a: torch.tensor(np.asarray(a)), variables["params"])
    xt = torch.tensor(np.asarray(x))
    for leaf in (p["block"]["fc"]["weight"], p["block"]["fc"]["bias"], p["head"]["weight"], p["head"]["bias"]):
        leaf.requires_grad_(True)
    fc_out = xt @ p["block"]["fc"]["weight"].T + p["block"]["fc"]["bias"]
    block_out = torch.tanh(fc_out)
    fc_out.retain_grad()
    block_out.retain_grad()
    torch_loss = (block_out @ p["head"]["weight"].T + p["head"]["bias"]).sum()
    torch_loss.backward()
    np.testing.assert_allclose(value, torch_loss.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(retained["block.fc.output"], fc_out.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(retained["block.output"], block_out.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(retained["head.input"], block_out.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        grads["params"]["block"]["fc"]["weight"], p["block"]["fc"]["weight"].grad.numpy(), rtol=1e-6, atol=1e-7
    )


def test_a_mask_written_without_perturbations_still_applies(jit):
    model, variables, x = _model_and_variables()
    retain = autograd.retain_module_grads(outputs=["head"])
    with retain:
        variables = autograd.init_perturbations(model, variables, x)
    mask = autograd.requires_grad_mask({"params": variables["params"]}, frozen="block")

    def loss(v, x):
        with retain:
            return model.apply(v, x)

    _, grads, retained = maybe_jit(autograd.value_grad_and_retained(loss, requires_grad=mask), jit)(variables, x)
    assert grads["params"]["block"]["fc"]["weight"] is None
    assert grads["params"]["head"]["weight"] is not None
    assert retained["head.output"] is not None


def test_nothing_requiring_grad_is_pytorchs_error_even_with_perturbations():
    model, variables, x = _model_and_variables()
    retain = autograd.retain_module_grads(outputs=["head"])
    with retain:
        variables = autograd.init_perturbations(model, variables, x)

    def loss(v, x):
        with retain:
            return model.apply(v, x)

    mask = {"params": False, "perturbations": True}
    with pytest.raises(RuntimeError, match=autograd.ELEMENT_0_MESSAGE):
        autograd.value_grad_and_retained(loss, requires_grad=mask)(variables, x)


def test_missing_perturbations_is_a_clear_error():
    model, variables, x = _model_and_variables()
    with pytest.raises(ValueError, match="hold no 'perturbations' collection"):
        autograd.value_grad_and_retained(lambda v, x: model.apply(v, x))(variables, x)


def test_an_unknown_module_path_lists_the_modules_called():
    model, variables, x = _model_and_variables()
    message = r"no submodule at 'fc1'; the submodules called were: block, block.fc, head"
    with pytest.raises(ValueError, match=message), autograd.retain_module_grads(outputs=["fc1"]):
        model.apply(variables, x)


@pytest.mark.parametrize(
    "kwargs, error", [({"outputs": "fc1"}, TypeError), ({"outputs": [""]}, TypeError), ({}, ValueError)]
)
def test_bad_module_paths_are_clear_errors(kwargs, error):
    with pytest.raises(error, match="retain_module_grads"):
        autograd.retain_module_grads(**kwargs)


def test_init_perturbations_needs_a_perturb():
    model, variables, x = _model_and_variables()
    with pytest.raises(ValueError, match="made no perturbation"):
        autograd.init_perturbations(model, variables, x)


def test_the_context_also_wraps_a_function():
    model, variables, x = _model_and_variables()
    retain = autograd.retain_module_grads(outputs=["head"])
    apply = retain(model.apply)
    with retain:
        variables = autograd.init_perturbations(model, variables, x)
    np.testing.assert_allclose(apply(variables, x), model.apply({"params": variables["params"]}, x), rtol=1e-6)
