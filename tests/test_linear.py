"""torchsem.nn.Linear: PyTorch's layout, arithmetic, initialisation and errors.

Fixed forward/gradient cases and the default-initialisation statistics are the ``linear``
scenario family (test_parity_catalogue.py, live or recorded oracle). Here: randomised shapes
against live PyTorch, the bias bound taken from the weight's fan-in, and input checking.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import maybe_jit
from torchsem.nn import Linear, init


def _params(in_features: int, out_features: int, bias: bool = True, seed: int = 0):
    return Linear(in_features, out_features, bias=bias).init(jax.random.key(seed), jnp.zeros((1, in_features)))[
        "params"
    ]


def test_variables_have_pytorchs_names_shapes_and_order():
    params = _params(12, 4)
    assert list(params) == ["weight", "bias"]
    assert params["weight"].shape == (4, 12) and params["bias"].shape == (4,)
    assert params["weight"].dtype == jnp.float32
    assert list(_params(12, 4, bias=False)) == ["weight"]


@pytest.mark.live_torch
@settings(max_examples=25)
@given(
    in_features=st.integers(1, 40),
    out_features=st.integers(1, 40),
    batch=st.lists(st.integers(1, 4), max_size=2),
    bias=st.booleans(),
    use_jit=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_pytorch_forward_and_gradients(in_features, out_features, batch, bias, use_jit, seed):
    import torch

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, in_features)).astype(np.float32)
    params = {"weight": rng.standard_normal((out_features, in_features)).astype(np.float32)}
    if bias:
        params["bias"] = rng.standard_normal(out_features).astype(np.float32)
    cotangent = rng.standard_normal((*batch, out_features)).astype(np.float32)

    layer = torch.nn.Linear(in_features, out_features, bias=bias)
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y_torch = layer(x_torch)
    y_torch.backward(torch.from_numpy(cotangent))

    module = Linear(in_features, out_features, bias=bias)
    forward = lambda p, v: module.apply({"params": p}, v)  # noqa: E731
    y = maybe_jit(forward, use_jit)(params, x)
    dparams, dx = maybe_jit(lambda p, v, c: jax.vjp(forward, p, v)[1](c), use_jit)(params, x, cotangent)
    # A sum over up to 40 products: float32 rounding in another order, scaled by the sizes.
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dparams["weight"], layer.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    if bias:
        np.testing.assert_allclose(dparams["bias"], layer.bias.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_features, out_features", [(12, 4), (3, 2000), (400, 3)])
def test_default_init_bounds_come_from_the_fan_in(in_features, out_features):
    params = _params(in_features, out_features)
    bound = 1 / math.sqrt(in_features)
    for name in ("weight", "bias"):
        values = np.asarray(params[name])
        assert np.abs(values).max() <= bound
    if out_features >= 2000:  # enough biases to reach close to the bound
        assert np.abs(np.asarray(params["bias"])).max() > 0.99 * bound


@pytest.mark.live_torch
def test_bias_bound_is_the_weights_fan_in_like_pytorch():
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 20000)  # bias bound 1/2, not 1/sqrt(20000)
    params = _params(4, 20000)
    for values_torch, values in (
        (layer.bias.detach().numpy(), params["bias"]),
        (layer.weight.detach().numpy(), params["weight"]),
    ):
        # The extremes of >= 20000 draws of U(-1/2, 1/2) are within 1e-3 of the bounds.
        np.testing.assert_allclose([values.min(), values.max()], [values_torch.min(), values_torch.max()], atol=1e-3)


def test_zero_in_features_gives_zero_bias_bound(jit):
    params = _params(0, 3)
    np.testing.assert_array_equal(params["bias"], np.zeros(3, np.float32))
    y = maybe_jit(lambda v: Linear(0, 3).apply({"params": params}, v), jit)(jnp.zeros((2, 0)))
    np.testing.assert_array_equal(y, np.zeros((2, 3), np.float32))


def test_custom_initialisers_and_param_dtype():
    module = Linear(5, 3, weight_init=init.constant(0.5), bias_init=init.zeros(), param_dtype=jnp.bfloat16)
    params = module.init(jax.random.key(0), jnp.zeros((1, 5), jnp.bfloat16))["params"]
    assert params["weight"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(params["weight"], np.float32), np.full((3, 5), 0.5, np.float32))
    np.testing.assert_array_equal(np.asarray(params["bias"], np.float32), np.zeros(3, np.float32))


def test_shape_mismatch_names_both_numbers():
    params = _params(12, 4)
    with pytest.raises(ValueError, match=r"last axis has 11 features but in_features=12 .*\(3x11 and 12x4\)"):
        Linear(12, 4).apply({"params": params}, jnp.zeros((3, 11)))


@pytest.mark.live_torch
@pytest.mark.parametrize("shape", [(3, 11), (11,), (2, 5, 11)])
def test_shape_mismatch_message_contains_pytorchs(shape):
    import torch

    with pytest.raises(RuntimeError) as torch_error:
        torch.nn.Linear(12, 4)(torch.zeros(shape))
    with pytest.raises(ValueError) as error:
        Linear(12, 4).apply({"params": _params(12, 4)}, jnp.zeros(shape))
    assert str(torch_error.value) in str(error.value)


def test_scalar_input_is_refused():
    with pytest.raises(ValueError, match="at least one axis"):
        Linear(1, 1).apply({"params": _params(1, 1)}, jnp.zeros(()))


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="input must be floating point, got int32"):
        Linear(3, 1).apply({"params": _params(3, 1)}, jnp.zeros((2, 3), jnp.int32))


def test_dtype_mismatch_is_refused_like_pytorch():
    with pytest.raises(TypeError, match="input dtype bfloat16 differs from the parameters' dtype float32"):
        Linear(3, 1).apply({"params": _params(3, 1)}, jnp.zeros((2, 3), jnp.bfloat16))


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(in_features=-1, out_features=2), ValueError, "in_features must be >= 0"),
        (dict(in_features=2, out_features=2.5), TypeError, "out_features must be an int"),
        (dict(in_features=True, out_features=2), TypeError, "in_features must be an int"),
        (dict(in_features=2, out_features=2, bias=1), TypeError, "bias must be a bool"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, error, text):
    with pytest.raises(error, match=text):
        Linear(**kwargs)


def test_matmul_is_requested_at_full_float32_precision():
    # On the CPU every float32 dot is exact to rounding; on GPU/TPU the default would be TF32 or
    # bfloat16 passes. The layer must ask for HIGHEST so that parity holds on every backend.
    params = _params(3, 2)
    jaxpr = jax.make_jaxpr(lambda p, v: Linear(3, 2).apply({"params": p}, v))(params, jnp.zeros((4, 3)))
    dots = [eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "dot_general"]
    assert len(dots) == 1
    assert "HIGHEST" in str(dots[0].params["precision"])
