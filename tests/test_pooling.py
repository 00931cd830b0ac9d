"""torchsem.nn.AvgPool1d: PyTorch's semantics for every argument.

The fixed parity grid (forward and gradient, every kernel/stride/padding/ceil_mode/
count_include_pad combination, PyTorch's error messages) is the ``avgpool1d`` scenario family,
run against the live or recorded oracle by test_parity_catalogue.py. Here: randomised
configurations against live PyTorch, reduced precisions, and the errors torchsem words itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import maybe_jit
from torchsem.compare import catalogue
from torchsem.nn import AvgPool1d


def _pool(module: AvgPool1d, use_jit: bool):
    return maybe_jit(lambda x: module.apply({}, x), use_jit)


@st.composite
def _configurations(draw):
    kernel = draw(st.integers(1, 6))
    stride = draw(st.one_of(st.none(), st.integers(1, 7)))
    padding = draw(st.integers(0, kernel // 2))
    ceil_mode = draw(st.booleans())
    include = draw(st.booleans())
    length = draw(st.integers(max(1, kernel - 2 * padding), 13))
    batched = draw(st.booleans())
    return (
        dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=include),
        length,
        batched,
    )


@pytest.mark.live_torch
@settings(max_examples=30)
@given(config=_configurations(), use_jit=st.booleans(), seed=st.integers(0, 2**16))
def test_random_configurations_match_pytorch_forward_and_gradient(config, use_jit, seed):
    import torch

    kwargs, length, batched = config
    shape = (2, 3, length) if batched else (3, length)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y_torch = torch.nn.AvgPool1d(**kwargs)(x_torch)
    cotangent = np.random.default_rng(seed + 1).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y_torch.backward(torch.from_numpy(cotangent))

    pool = AvgPool1d(**kwargs)
    y = _pool(pool, use_jit)(x)
    dx = maybe_jit(lambda v, c: jax.vjp(lambda u: pool.apply({}, u), v)[1](c)[0], use_jit)(x, cotangent)
    assert y.shape == tuple(y_torch.shape)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision_accumulates_like_pytorch(dtype, jit):
    import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 11)).astype(np.float32)
    kwargs = dict(kernel_size=5, stride=2, padding=2, ceil_mode=True, count_include_pad=False)
    expected = torch.nn.AvgPool1d(**kwargs)(torch.from_numpy(x).to(getattr(torch, dtype))).float().numpy()
    y = _pool(AvgPool1d(**kwargs), jit)(jnp.asarray(x, dtype))
    assert y.dtype == jnp.dtype(dtype)
    # Both sum in float32 and round once to the output type: identical values.
    np.testing.assert_array_equal(np.asarray(y, np.float32), expected)


def test_has_no_variables():
    assert AvgPool1d(2).init(jax.random.key(0), jnp.zeros((1, 3, 8))) == {}


def test_the_document_pool_halves_the_length(jit):
    y = _pool(AvgPool1d(2), jit)(jnp.arange(24, dtype=jnp.float32).reshape(1, 3, 8))
    np.testing.assert_array_equal(y[0, 0], [0.5, 2.5, 4.5, 6.5])  # exact in float32


@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=(3,)), dict(kernel_size=3, stride=(3,)), dict(kernel_size=[3], padding=[1])]
)
def test_one_int_tuples_are_accepted_like_pytorch(kwargs, jit):
    x = np.random.default_rng(1).standard_normal((2, 2, 9)).astype(np.float32)
    plain = {k: (v[0] if isinstance(v, (tuple, list)) else v) for k, v in kwargs.items()}
    np.testing.assert_array_equal(_pool(AvgPool1d(**kwargs), jit)(x), _pool(AvgPool1d(**plain), jit)(x))


@pytest.mark.parametrize("shape", [(8,), (1, 2, 3, 8), ()])
def test_wrong_rank_names_the_expected_layouts(shape):
    with pytest.raises(ValueError, match=r"expected a 2-D \(C, L\) or 3-D \(N, C, L\) input, got"):
        AvgPool1d(2).apply({}, jnp.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 0, 8), (2, 3, 0), (0, 8)])
def test_empty_channel_or_length_axes_are_refused(shape):
    with pytest.raises(ValueError, match="only the batch axis may be empty"):
        AvgPool1d(2).apply({}, jnp.zeros(shape))


@pytest.mark.parametrize("dtype", [jnp.bool_, jnp.uint8])
def test_bool_and_unsigned_inputs_are_refused(dtype):
    with pytest.raises(TypeError, match="must be floating point or a signed integer"):
        AvgPool1d(2).apply({}, jnp.zeros((1, 2, 4), dtype))


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(kernel_size=2.0), TypeError, "argument 'kernel_size' must be an int"),
        (dict(kernel_size=True), TypeError, "argument 'kernel_size' must be an int"),
        (dict(kernel_size=2, stride=1.5), TypeError, "argument 'stride' must be an int"),
        (dict(kernel_size=2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
        (dict(kernel_size=2, count_include_pad="yes"), TypeError, "count_include_pad must be a bool"),
        (dict(kernel_size=2, padding=(1, 1)), ValueError, "argument 'padding' should contain one int"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, text):
    with pytest.raises(error, match=text):
        AvgPool1d(**kwargs)


def test_errors_are_raised_at_construction_with_pytorchs_text():
    with pytest.raises(
        ValueError,
        match=r"^pad should be at most half of effective kernel size, but got pad=2, "
        r"kernel_size=3 and dilation=1$",
    ):
        AvgPool1d(3, padding=2)


def test_the_parity_grid_covers_every_argument():
    names = [s.name for s in catalogue("avgpool1d")]
    for part in (
        "ceil_mode=true",
        "count_include_pad=false",
        "padding=2",
        "stride=none",
        "in=3x8",
        ".int64",
        "error-pad-more-than-half",
    ):
        assert any(part in name for name in names), part
