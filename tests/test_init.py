"""torchsem.nn.init: PyTorch's initialisers as Flax initialisers.

The ``init`` scenario family (test_parity_catalogue.py) compares summary statistics and every
deterministic result with the live or recorded oracle. Here: two-sample Kolmogorov-Smirnov
tests of each initialiser's draws against PyTorch's own draws (live), and the Flax-side
contract (signature, dtypes, empty shapes, jit).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem.nn import init

_SHAPE = (128, 32, 4)  # fan_in 128, fan_out 512: 16384 draws

# (torch call on `w`, torchsem factory)
_CASES = {
    "uniform": ("init.uniform_(w, -0.3, 0.7)", lambda: init.uniform(-0.3, 0.7)),
    "normal": ("init.normal_(w, 0.5, 2.0)", lambda: init.normal(0.5, 2.0)),
    "trunc_normal": ("init.trunc_normal_(w, 0.5, 2.0, -1.0, 3.0)", lambda: init.trunc_normal(0.5, 2.0, -1.0, 3.0)),
    "xavier_uniform": ("init.xavier_uniform_(w, gain=2.0)", lambda: init.xavier_uniform(gain=2.0)),
    "xavier_normal": ("init.xavier_normal_(w)", lambda: init.xavier_normal()),
    "kaiming_uniform-linear": (
        "init.kaiming_uniform_(w, a=math.sqrt(5))",
        lambda: init.kaiming_uniform(a=math.sqrt(5)),
    ),
    "kaiming_uniform-fan_out": (
        "init.kaiming_uniform_(w, mode='fan_out', nonlinearity='relu')",
        lambda: init.kaiming_uniform(mode="fan_out", nonlinearity="relu"),
    ),
    "kaiming_normal": ("init.kaiming_normal_(w, a=0.1)", lambda: init.kaiming_normal(a=0.1)),
    "kaiming_normal-tanh-fan_out": (
        "init.kaiming_normal_(w, mode='fan_out', nonlinearity='tanh')",
        lambda: init.kaiming_normal(mode="fan_out", nonlinearity="tanh"),
    ),
}


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    grid = np.concatenate([a, b])
    return float(
        np.max(
            np.abs(np.searchsorted(a, grid, side="right") / a.size - np.searchsorted(b, grid, side="right") / b.size)
        )
    )


@pytest.mark.live_torch
@pytest.mark.parametrize("case", list(_CASES))
def test_draws_follow_pytorchs_distribution(case, jit):
    import torch
    from torch.nn import init as torch_init

    torch_call, factory = _CASES[case]
    torch.manual_seed(1)
    w = torch.empty(_SHAPE)
    eval(torch_call, {"init": torch_init, "math": math, "w": w})
    draws = maybe_jit(lambda key: factory()(key, _SHAPE, jnp.float32), jit)(jax.random.key(1))
    n = w.numel()
    # KS critical value at alpha = 1e-4 for two samples of n: 2.146 * sqrt(2 / n) = 0.0237 for n = 16384.
    # A wrong bound or std (e.g. fan_out for fan_in, a gain off by sqrt(2)) gives D > 0.1.
    assert _ks_statistic(np.asarray(draws), w.numpy()) < 2.146 * math.sqrt(2 / n)


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "case", ["uniform", "trunc_normal", "xavier_uniform", "kaiming_uniform-linear", "kaiming_uniform-fan_out"]
)
def test_bounded_draws_share_pytorchs_support(case):
    import torch
    from torch.nn import init as torch_init

    torch_call, factory = _CASES[case]
    torch.manual_seed(2)
    w = torch.empty(_SHAPE)
    eval(torch_call, {"init": torch_init, "math": math, "w": w})
    draws = np.asarray(factory()(jax.random.key(2), _SHAPE))
    # 16384 draws with density >= 0.05 per unit of std at the ends reach within 1% of the bounds.
    span = float(w.max() - w.min())
    np.testing.assert_allclose([draws.min(), draws.max()], [float(w.min()), float(w.max())], atol=0.01 * span)


@pytest.mark.parametrize(
    "shape, fans", [((4, 12), (12, 4)), ((8, 3, 5), (15, 40)), ((2, 3, 4, 5), (60, 40)), ((6, 0), (0, 6))]
)
def test_fans_are_read_in_pytorchs_layout(shape, fans):
    assert init.calculate_fan_in_and_fan_out(shape) == fans


def test_kaiming_uniform_default_of_linear_is_one_over_sqrt_fan_in():
    draws = np.asarray(init.kaiming_uniform(a=math.sqrt(5))(jax.random.key(0), (64, 100)))
    assert np.abs(draws).max() <= 0.1 and np.abs(draws).max() > 0.099


@pytest.mark.parametrize(
    "factory",
    [
        init.uniform,
        init.normal,
        init.trunc_normal,
        init.xavier_uniform,
        init.xavier_normal,
        init.kaiming_uniform,
        init.kaiming_normal,
    ],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_flax_initialiser_contract(factory, dtype, jit):
    draw = maybe_jit(lambda key: factory()(key, (6, 5), dtype), jit)
    a, b = draw(jax.random.key(0)), draw(jax.random.key(0))
    assert a.shape == (6, 5) and a.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))  # a key fixes the draw
    assert not np.array_equal(np.asarray(a, np.float32), np.asarray(draw(jax.random.key(1)), np.float32))


@pytest.mark.parametrize(
    "factory", [init.xavier_uniform, init.xavier_normal, init.kaiming_uniform, init.kaiming_normal]
)
def test_zero_element_weights_are_empty_not_errors(factory):
    # PyTorch warns "Initializing zero-element tensors is a no-op" and leaves the tensor alone.
    assert factory()(jax.random.key(0), (0, 3)).shape == (0, 3)


def test_random_initialisers_refuse_integer_dtypes():
    with pytest.raises(TypeError, match="dtype must be floating point, got int32"):
        init.uniform()(jax.random.key(0), (2, 2), jnp.int32)


def test_constant_fills_ignore_the_key():
    np.testing.assert_array_equal(init.constant(2.5)(jax.random.key(0), (2, 2)), np.full((2, 2), 2.5, np.float32))
    np.testing.assert_array_equal(init.ones()(None, (3,), jnp.int32), np.ones(3, np.int32))


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: init.trunc_normal(std=0.0), "trunc_normal expects std > 0.0"),
        (lambda: init.trunc_normal(a=1.0, b=-1.0), "trunc_normal expects a < b"),
        (lambda: init.calculate_gain("leaky_relu", True), "negative_slope True not a valid number"),
        (
            lambda: init.kaiming_uniform(mode="fan_avg"),
            r"Mode fan_avg not supported, please use one of \['fan_in', 'fan_out'\]",
        ),
        (lambda: init.calculate_fan_in_and_fan_out((3,)), "fewer than 2 dimensions"),
    ],
)
def test_bad_settings_raise_with_the_argument_named(make, text):
    with pytest.raises(ValueError, match=text):
        make()


def test_trunc_normal_bounds_are_absolute_like_pytorch():
    draws = np.asarray(init.trunc_normal(mean=10.0, std=1.0, a=9.5, b=10.5)(jax.random.key(0), (4096,)))
    assert draws.min() >= 9.5 and draws.max() <= 10.5
    assert draws.min() < 9.51 and draws.max() > 10.49
