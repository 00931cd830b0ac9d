"""torchsem.nn.Conv*d / ConvTranspose*d: PyTorch's layout, arithmetic, initialisation and errors.

The fixed grids (strides, dilations, groups, padding modes, 'same', unbatched, output_padding,
output_size) and PyTorch's error messages are the ``conv`` and ``conv_transpose`` scenario
families (test_parity_catalogue.py, live or recorded oracle). Here: random Conv2d and
ConvTranspose2d configurations against live PyTorch, the default initialiser's bounds as a
Flax initialiser, and torchsem's own argument checking.
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
from torchsem.nn import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

# Sums of up to ~130 float32 products of size ~1 (the weight gradient over batch x positions),
# added in another order by oneDNN and XLA.
_RTOL, _ATOL = 1e-5, 3e-5


def test_variables_have_pytorchs_names_shapes_and_order():
    params = Conv2d(4, 6, (2, 3), groups=2).init(jax.random.key(0), jnp.zeros((1, 4, 5, 5)))["params"]
    assert list(params) == ["weight", "bias"]
    assert params["weight"].shape == (6, 2, 2, 3) and params["bias"].shape == (6,)
    params = ConvTranspose3d(4, 6, 2, groups=2, bias=False).init(jax.random.key(0), jnp.zeros((4, 2, 2, 2)))["params"]
    assert list(params) == ["weight"] and params["weight"].shape == (4, 3, 2, 2, 2)  # (in, out/groups, *k)
    params = Conv1d(3, 2, 4).init(jax.random.key(0), jnp.zeros((3, 7)))["params"]
    assert params["weight"].shape == (2, 3, 4)


def _random_weights(rng, shape, bias_size):
    params = {"weight": rng.standard_normal(shape).astype(np.float32) * 0.5}
    if bias_size is not None:
        params["bias"] = rng.standard_normal(bias_size).astype(np.float32)
    return params


def _compare(torch_layer, module, params, x, use_jit, **call):
    import torch

    rng = np.random.default_rng(1)
    torch_layer.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y_torch = torch_layer(x_torch, **call)
    cotangent = rng.standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y_torch.backward(torch.from_numpy(cotangent))

    forward = lambda p, v: module.apply({"params": p}, v, **call)  # noqa: E731
    y = maybe_jit(forward, use_jit)(params, x)
    assert y.shape == tuple(y_torch.shape)
    dparams, dx = maybe_jit(lambda p, v, c: jax.vjp(forward, p, v)[1](c), use_jit)(params, x, cotangent)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=_RTOL, atol=_ATOL)
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=_RTOL, atol=_ATOL)
    for name in params:
        np.testing.assert_allclose(dparams[name], getattr(torch_layer, name).grad.numpy(), rtol=_RTOL, atol=_ATOL)


@st.composite
def _conv2d_config(draw):
    groups = draw(st.sampled_from([1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if draw(st.booleans()):
        padding = "same"
        stride = (1, 1)
    else:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    # Big enough for every kernel and for reflect (padding < size); at most 7.
    spatial = tuple(draw(st.integers(max(5, d * (k - 1) + 1), 7)) for d, k in zip(dilation, kernel))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    kwargs = dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()), padding_mode=mode
    )
    return (in_channels, out_channels, kernel), kwargs, (*batch, in_channels, *spatial)


@pytest.mark.live_torch
@settings(max_examples=15, deadline=None)
@given(config=_conv2d_config(), use_jit=st.booleans(), seed=st.integers(0, 2**16))
def test_random_conv2d_matches_pytorch(config, use_jit, seed):
    import torch

    args, kwargs, shape = config
    rng = np.random.default_rng(seed)
    in_channels, out_channels, kernel = args
    params = _random_weights(
        rng, (out_channels, in_channels // kwargs["groups"], *kernel), out_channels if kwargs["bias"] else None
    )
    x = rng.standard_normal(shape).astype(np.float32)
    _compare(torch.nn.Conv2d(*args, **kwargs), Conv2d(*args, **kwargs), params, x, use_jit)


@st.composite
def _conv_transpose2d_config(draw):
    groups = draw(st.sampled_from([1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    spatial = tuple(draw(st.integers(2, 4)) for _ in range(2))
    batch = draw(st.sampled_from([(), (2,)]))
    use_size = draw(st.booleans())
    kwargs = dict(stride=stride, padding=padding, groups=groups, bias=draw(st.booleans()), dilation=dilation)
    if not use_size:
        kwargs["output_padding"] = output_padding
    sizes = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in zip(spatial, stride, padding, dilation, kernel)]
    output_size = [size + draw(st.integers(0, s - 1)) for size, s in zip(sizes, stride)] if use_size else None
    # Keep every output axis non-empty; an empty one is a fixed case of the conv_transpose family.
    extra = output_padding if not use_size else (0, 0)
    if any(size + op <= 0 for size, op in zip(sizes, extra)):
        padding = (0, 0)
        kwargs["padding"] = padding
        if use_size:
            output_size = [(i - 1) * s + d * (k - 1) + 1 for i, s, d, k in zip(spatial, stride, dilation, kernel)]
    return (in_channels, out_channels, kernel), kwargs, (*batch, in_channels, *spatial), output_size


@pytest.mark.live_torch
@settings(max_examples=15, deadline=None)
@given(config=_conv_transpose2d_config(), use_jit=st.booleans(), seed=st.integers(0, 2**16))
def test_random_conv_transpose2d_matches_pytorch(config, use_jit, seed):
    import torch

    args, kwargs, shape, output_size = config
    rng = np.random.default_rng(seed)
    in_channels, out_channels, kernel = args
    params = _random_weights(
        rng, (in_channels, out_channels // kwargs["groups"], *kernel), out_channels if kwargs["bias"] else None
    )
    x = rng.standard_normal(shape).astype(np.float32)
    call = {} if output_size is None else {"output_size": output_size}
    _compare(torch.nn.ConvTranspose2d(*args, **kwargs), ConvTranspose2d(*args, **kwargs), params, x, use_jit, **call)


@pytest.mark.parametrize(
    "module, shape, fan_in",
    [
        (Conv2d(4, 512, 3), (1, 4, 3, 3), 36),
        (Conv1d(6, 510, 5, groups=3), (1, 6, 5), 10),  # in/groups * kernel
        (ConvTranspose2d(256, 6, 3, groups=2), (1, 256, 1, 1), 27),  # PyTorch: out/groups * kernel
        (Conv3d(2, 320, 2), (1, 2, 2, 2, 2), 16),
    ],
)
def test_default_init_is_pytorchs_uniform_from_the_fan_in(module, shape, fan_in):
    params = module.init(jax.random.key(0), jnp.zeros(shape))["params"]
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) on the weight; the same for the bias
    weight = np.asarray(params["weight"], np.float64)
    assert np.abs(weight).max() <= bound * (1 + 1e-6)
    assert np.abs(weight).max() > 0.98 * bound  # thousands of draws reach close to the bound
    # U(-b, b) has std b/sqrt(3); over >= 5100 draws the sample std is within 3 % of it.
    assert abs(weight.std() / (bound / math.sqrt(3)) - 1) < 0.03
    assert abs(weight.mean()) < 0.05 * bound
    assert np.abs(np.asarray(params["bias"])).max() <= bound * (1 + 1e-6)


def test_output_size_is_static_under_jit_and_validated_like_pytorch():
    module = ConvTranspose1d(2, 3, 3, stride=2)
    x = jnp.ones((1, 2, 4))
    variables = module.init(jax.random.key(0), x)
    apply = jax.jit(module.apply, static_argnames="output_size")
    assert apply(variables, x, output_size=(10,)).shape == (1, 3, 10)
    assert apply(variables, x, output_size=(1, 3, 9)).shape == (1, 3, 9)  # batch and channel entries ignored
    with pytest.raises(
        ValueError,
        match=r"requested an output size of \(11,\), but valid sizes range from \[9\] to "
        r"\[10\] \(for an input of torch.Size\(\[4\]\)\)",
    ):
        module.apply(variables, x, output_size=(11,))


def test_input_dtype_must_match_the_parameters():
    module = Conv1d(2, 3, 3)
    variables = module.init(jax.random.key(0), jnp.ones((1, 2, 4)))
    with pytest.raises(TypeError, match="differs from the parameters' dtype"):
        module.apply(variables, jnp.ones((1, 2, 4), jnp.int32))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=(3,)),
        dict(kernel_size=3, stride=(1, 1, 1)),
        dict(kernel_size=3, padding=(1,)),
        dict(kernel_size=True),
    ],
)
def test_sequence_arguments_need_one_entry_per_spatial_axis(kwargs):
    with pytest.raises(ValueError, match="sequence of 2 ints"):
        Conv2d(2, 2, **kwargs)


def test_transposed_padding_strings_are_rejected():
    with pytest.raises(ValueError, match="no padding strings"):
        ConvTranspose2d(2, 2, 3, padding="same")


def test_conv_algorithm_is_validated_and_matmul_is_the_same_convolution():
    with pytest.raises(ValueError, match="conv_algorithm must be one of \\('xla', 'matmul'\\), got 'fft'"):
        Conv2d(3, 4, 3, conv_algorithm="fft")
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32))
    xla = Conv2d(3, 4, 3, stride=2, padding=1, groups=1)
    variables = xla.init(jax.random.key(0), x)
    matmul = Conv2d(3, 4, 3, stride=2, padding=1, conv_algorithm="matmul")
    # Same math, another float32 summation order: within float32 rounding of each other.
    np.testing.assert_allclose(jax.jit(matmul.apply)(variables, x), xla.apply(variables, x), rtol=1e-5, atol=1e-6)
