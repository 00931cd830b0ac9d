"""torchsem.nn MaxPool*, AvgPool2d/3d and adaptive pooling against PyTorch.

The fixed parity grids (forward, gradient, int indices, ties, NaN, errors) are the
``maxpool``, ``avgpool`` and ``adaptive_pool`` scenario families, run against the live or
recorded oracle by test_parity_catalogue.py. Here: random configurations against live
PyTorch, and the cases the generic runner cannot express.
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
from torchsem.nn import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d


@st.composite
def _maxpool2d(draw):
    axes = []
    for _ in range(2):
        kernel = draw(st.integers(1, 4))
        dilation = draw(st.integers(1, 2))
        # Dilation with padding can make a window that lies wholly in the padding: PyTorch then
        # returns -inf with an index outside the input, and its backward writes through that
        # index (this process crashed in such a draw). Not compared; torchsem picks an input.
        padding = draw(st.integers(0, kernel // 2)) if dilation == 1 else 0
        stride = draw(st.integers(1, 4))
        effective = dilation * (kernel - 1) + 1
        size = draw(st.integers(max(1, effective - 2 * padding), 10))
        axes.append((kernel, dilation, padding, stride, size))
    kernel, dilation, padding, stride, size = zip(*axes)
    kwargs = dict(
        kernel_size=kernel,
        stride=draw(st.one_of(st.none(), st.just(stride))),
        padding=padding,
        dilation=dilation,
        ceil_mode=draw(st.booleans()),
        return_indices=True,
    )
    return kwargs, size, draw(st.booleans())


def _draw_input(shape, seed, ties):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many equal maxima in a window
        return rng.integers(-2, 3, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.live_torch
@settings(max_examples=15, deadline=None)
@given(config=_maxpool2d(), batched=st.booleans(), use_jit=st.booleans(), seed=st.integers(0, 2**16))
def test_random_maxpool2d_matches_pytorch(config, batched, use_jit, seed):
    import torch

    kwargs, size, ties = config
    shape = (2, 3, *size) if batched else (3, *size)
    x = _draw_input(shape, seed, ties)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y_torch, i_torch = torch.nn.MaxPool2d(**kwargs)(x_torch)
    cotangent = np.random.default_rng(seed + 1).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y_torch.backward(torch.from_numpy(cotangent))

    pool = MaxPool2d(**kwargs)
    y, indices = maybe_jit(lambda v: pool.apply({}, v), use_jit)(x)
    dx = maybe_jit(lambda v, c: jax.vjp(lambda u: pool.apply({}, u)[0], v)[1](c)[0], use_jit)(x, cotangent)
    np.testing.assert_array_equal(y, y_torch.detach().numpy())  # a max is one of the inputs: exact
    np.testing.assert_array_equal(indices, i_torch.numpy())
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=1e-5, atol=1e-6)


@st.composite
def _adaptive2d(draw):
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    out = tuple(draw(st.one_of(st.none(), st.integers(1, 11))) for _ in range(2))
    output_size = draw(st.sampled_from([out, out[0] if out[0] is not None else 3]))
    return output_size, size


@pytest.mark.live_torch
@settings(max_examples=15, deadline=None)
@given(config=_adaptive2d(), batched=st.booleans(), use_jit=st.booleans(), seed=st.integers(0, 2**16))
def test_random_adaptive_avgpool2d_matches_pytorch(config, batched, use_jit, seed):
    import torch

    output_size, size = config
    shape = (2, 3, *size) if batched else (3, *size)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y_torch = torch.nn.AdaptiveAvgPool2d(output_size)(x_torch)
    cotangent = np.random.default_rng(seed + 1).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y_torch.backward(torch.from_numpy(cotangent))

    pool = AdaptiveAvgPool2d(output_size)
    y = maybe_jit(lambda v: pool.apply({}, v), use_jit)(x)
    dx = maybe_jit(lambda v, c: jax.vjp(lambda u: pool.apply({}, u), v)[1](c)[0], use_jit)(x, cotangent)
    assert y.shape == tuple(y_torch.shape)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
@pytest.mark.parametrize("module", [AdaptiveAvgPool2d(0), AdaptiveMaxPool2d((0, 2), return_indices=True)])
def test_zero_output_size_gives_an_empty_output_like_pytorch(module, jit):
    import torch

    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    torch_module = getattr(torch.nn, type(module).__name__)(
        module.output_size, **({"return_indices": True} if isinstance(module, AdaptiveMaxPool2d) else {})
    )
    expected = torch_module(torch.from_numpy(x))
    result = maybe_jit(lambda v: module.apply({}, v), jit)(x)
    expected, result = (expected, result) if isinstance(expected, tuple) else ((expected,), (result,))
    for e, r in zip(expected, result):
        assert r.shape == tuple(e.shape)


@pytest.mark.parametrize(
    "module, shape",
    [
        (MaxPool1d(2), (1, 3, 8)),
        (MaxPool2d(2), (1, 3, 4, 4)),
        (MaxPool3d(2), (1, 1, 4, 4, 4)),
        (AvgPool2d(2), (1, 3, 4, 4)),
        (AvgPool3d(2), (1, 1, 4, 4, 4)),
        (AdaptiveAvgPool2d(2), (1, 3, 5, 5)),
        (AdaptiveMaxPool2d(2), (1, 3, 5, 5)),
    ],
)
def test_has_no_variables(module, shape):
    assert module.init(jax.random.key(0), jnp.zeros(shape)) == {}


def test_gradient_goes_to_the_first_of_equal_maxima_only(jit):
    x = jnp.asarray([[[1.0, 3.0, 3.0, 2.0]]])
    dx = maybe_jit(jax.grad(lambda v: MaxPool1d(2, stride=1).apply({}, v).sum()), jit)(x)
    np.testing.assert_array_equal(dx, [[[0.0, 2.0, 1.0, 0.0]]])  # PyTorch's x.grad for this input


def test_the_parity_grids_cover_the_edge_cases():
    names = " ".join(s.name for family in ("maxpool", "avgpool", "adaptive_pool") for s in catalogue(family))
    for part in (
        "ceil_mode=true",
        "dilation=",
        "return_indices=true",
        "fixed-ties",
        "fixed-inf-nan",
        "divisor_override",
        "count_include_pad=false",
        "output_size=nonex2",
        "in=3x5x5-",
        ".int64",
        "error-avgpool3d-padding-does-not-help",
        "error-maxpool1d-output-too-small-indices",
    ):
        assert part in names, part
