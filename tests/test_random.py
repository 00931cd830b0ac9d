"""torchsem.random against live PyTorch: same seed, same calls, same bits.

Every parity test compares with ``torch`` itself (never numpy with numpy). Tests marked
``live_torch`` are skipped by ``conftest.py`` when torch is not importable or when
``TORCHSEM_ORACLE=recorded``; the error tests need no torch.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchsem.random import (
    Generator,
    _platform,
    batchnorm_torch_init,
    kaiming_uniform_bound,
    linear_torch_init,
    register_torch_init,
    torch_init,
)

live_torch = pytest.mark.live_torch

SEEDS = [0, 1, 1029, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1]
# 15/16/17 straddle the scalar/fill boundary of randn; the others are ragged multiples of 16.
SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 33, 1000, 4099, 100_003]
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def torch() -> Any:
    import torch as torch_module

    return torch_module


def torch_dtype(torch: Any, dtype: Any) -> Any:
    return {
        np.dtype(np.float32): torch.float32,
        np.dtype(np.float64): torch.float64,
        np.dtype(np.int64): torch.int64,
        np.dtype(np.bool_): torch.bool,
    }[np.dtype(dtype)]


def assert_same_bits(ours: np.ndarray, theirs: Any) -> None:
    """Equal dtype, shape and every byte (so -0.0 != 0.0 and NaN payloads count)."""
    reference = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.dtype == reference.dtype, (ours.dtype, reference.dtype)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    ours_c, reference_c = np.ascontiguousarray(ours), np.ascontiguousarray(reference)
    if not np.array_equal(ours_c.view(np.uint8), reference_c.view(np.uint8)):
        flat_ours, flat_ref = ours_c.reshape(-1), reference_c.reshape(-1)
        bad = np.flatnonzero(flat_ours != flat_ref)
        raise AssertionError(
            f"{bad.size} of {flat_ours.size} elements differ, first at {bad[:5].tolist()}: "
            f"ours {flat_ours[bad[:3]].tolist()} vs torch {flat_ref[bad[:3]].tolist()}"
        )


# ------------------------------------------------------------------ parity: single calls


@live_torch
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_rand_randn_uniform_normal_match_torch_bitwise(torch: Any, seed: int, dtype: Any) -> None:
    tdtype = torch_dtype(torch, dtype)
    torch.manual_seed(seed)
    generator = Generator(seed)
    for size in SIZES:
        assert_same_bits(generator.randn(size, dtype=dtype), torch.randn(size, dtype=tdtype))
        assert_same_bits(generator.rand(size, dtype=dtype), torch.rand(size, dtype=tdtype))
        assert_same_bits(
            generator.uniform(size, -0.37, 2.9, dtype=dtype), torch.empty(size, dtype=tdtype).uniform_(-0.37, 2.9)
        )
        assert_same_bits(
            generator.normal(size, -1.25, 0.77, dtype=dtype), torch.normal(-1.25, 0.77, (size,), dtype=tdtype)
        )


@live_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 4), (3, 3, 8), (4, 4), (5, 7, 3), (16, 1), (2, 3, 4, 5)])
def test_multidimensional_shapes(torch: Any, dtype: Any, shape: tuple[int, ...]) -> None:
    tdtype = torch_dtype(torch, dtype)
    torch.manual_seed(7)
    generator = Generator(7)
    assert_same_bits(generator.randn(shape, dtype=dtype), torch.randn(shape, dtype=tdtype))
    assert_same_bits(generator.rand(shape, dtype=dtype), torch.rand(shape, dtype=tdtype))
    assert_same_bits(generator.randn(shape, dtype=dtype), torch.randn(shape, dtype=tdtype))


@live_torch
def test_randn_ten_million_float32(torch: Any) -> None:
    """The AVX2 polynomial emulation over a large sample (every lane pattern and octant)."""
    torch.manual_seed(20260101)
    assert_same_bits(Generator(20260101).randn(10**7), torch.randn(10**7))


@live_torch
@pytest.mark.parametrize(
    "low, high",
    [
        (-0.3, 0.7),
        (2.5, 7.1),
        (-1e-3, 3e5),
        (0.0, 0.0),
        (-5.0, -5.0),
        (-1e30, 1e30),
        (1e-30, 2e-30),
        (1e6, 1e6 + 1),  # float32 results round up to `high`, which torch maps back to `low`
        (2.0**52, 2.0**52 + 1),  # the same in float64
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_uniform_bounds(torch: Any, low: float, high: float, dtype: Any) -> None:
    torch.manual_seed(3)
    generator = Generator(3)
    tdtype = torch_dtype(torch, dtype)
    assert_same_bits(
        generator.uniform((50_000,), low, high, dtype=dtype), torch.empty(50_000, dtype=tdtype).uniform_(low, high)
    )


@live_torch
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.3, 2.5), (-4.0, 1e-3), (1e3, 0.0), (0.0, 7.0), (2.0, 1.0)])
@pytest.mark.parametrize("size", [5, 16, 40_007])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_normal_mean_std(torch: Any, mean: float, std: float, size: int, dtype: Any) -> None:
    torch.manual_seed(11)
    generator = Generator(11)
    tdtype = torch_dtype(torch, dtype)
    assert_same_bits(generator.normal(size, mean, std, dtype=dtype), torch.normal(mean, std, (size,), dtype=tdtype))
    assert_same_bits(generator.normal(size, mean, std, dtype=dtype), torch.empty(size, dtype=tdtype).normal_(mean, std))


@live_torch
def test_cached_box_muller_sample_is_shared_across_dtypes_and_reset_by_seed(torch: Any) -> None:
    """An odd small randn leaves a sine partner cached; the next small normal of any dtype uses it."""
    torch.manual_seed(5)
    generator = Generator(5)
    calls = [
        (3, np.float32, 0.0, 1.0),
        (1, np.float64, 2.0, 3.0),  # served from the cache: draws nothing
        (1, np.float32, 0.0, 1.0),
        (20, np.float32, 0.0, 1.0),  # fill path: ignores the cache
        (2, np.float64, -1.0, 0.5),
        (5, np.float64, 0.0, 1.0),
    ]
    for size, dtype, mean, std in calls:
        assert_same_bits(
            generator.normal(size, mean, std, dtype=dtype),
            torch.normal(mean, std, (size,), dtype=torch_dtype(torch, dtype)),
        )
    torch.manual_seed(5)
    generator.manual_seed(5)
    assert_same_bits(generator.randn(1), torch.randn(1))


@live_torch
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "low, high",
    [
        (0, 10),
        (-5, 3),
        (3, 4),
        (0, 2**28 - 1),  # widest range drawn from 32-bit words
        (5, 5 + 2**28),  # narrowest range drawn from 64-bit words
        (0, 2**32 - 1),
        (0, 2**32),
        (-(2**40), 2**40),
        (-(2**63), 2**63 - 1),
    ],
)
def test_randint(torch: Any, seed: int, low: int, high: int) -> None:
    torch.manual_seed(seed)
    generator = Generator(seed)
    for size in (1, 17, 1000):
        assert_same_bits(generator.randint(low, high, size), torch.randint(low, high, (size,)))
    assert_same_bits(generator.rand(3), torch.rand(3))


@live_torch
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 1000, 100_000])
def test_randperm(torch: Any, n: int) -> None:
    torch.manual_seed(n)
    generator = Generator(n)
    assert_same_bits(generator.randperm(n), torch.randperm(n))
    assert_same_bits(generator.rand(3), torch.rand(3))


@live_torch
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_], ids=lambda d: np.dtype(d).name)
def test_bernoulli_scalar_p(torch: Any, p: float, dtype: Any) -> None:
    torch.manual_seed(21)
    generator = Generator(21)
    for shape in [(1,), (17,), (4, 250)]:
        expected = torch.empty(shape, dtype=torch_dtype(torch, dtype)).bernoulli_(p)
        assert_same_bits(generator.bernoulli(shape, p, dtype=dtype), expected)


@live_torch
@pytest.mark.parametrize("p_dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bernoulli_tensor_p(torch: Any, p_dtype: Any) -> None:
    torch.manual_seed(22)
    generator = Generator(22)
    p = np.linspace(0.0, 1.0, 3000).astype(p_dtype).reshape(3, 1000, 1)
    assert_same_bits(generator.bernoulli(p.shape, p, dtype=p_dtype), torch.bernoulli(torch.from_numpy(p)))
    assert_same_bits(generator.rand(4), torch.rand(4))


@live_torch
@pytest.mark.parametrize("q", [0.1, 0.5, 0.75])
def test_dropout_mask_is_bernoulli_of_keep_probability(torch: Any, q: float) -> None:
    torch.manual_seed(9)
    dropped = torch.nn.functional.dropout(torch.ones(3, 400), q, training=True).numpy()
    keep = Generator(9).bernoulli((3, 400), 1 - q)
    np.testing.assert_array_equal(keep.astype(bool), dropped != 0)


@live_torch
def test_initial_seed_and_negative_seeds(torch: Any) -> None:
    for seed in (-1, -(2**63), 2**64 - 1, 12345):
        torch.manual_seed(seed)
        generator = Generator(seed)
        assert generator.initial_seed() == torch.initial_seed()
        assert_same_bits(generator.rand(4), torch.rand(4))


@live_torch
def test_state_round_trip_and_clone(torch: Any) -> None:
    torch.manual_seed(31)
    generator = Generator(31)
    assert_same_bits(generator.randn(3), torch.randn(3))  # leaves a cached sample
    torch_state = torch.get_rng_state()
    state = generator.get_state()
    twin = generator.clone()
    first = generator.randn(5)
    assert_same_bits(first, torch.randn(5))
    generator.set_state(state)
    torch.set_rng_state(torch_state)
    assert_same_bits(generator.randn(5), torch.randn(5))
    assert_same_bits(twin.randn(5), first)


# ------------------------------------------------------------------ parity: interleavings


def _torch_call(torch: Any, op: tuple) -> Any:
    kind, size, dtype, a, b = op
    shape = (size,)
    tdtype = torch_dtype(torch, dtype)
    if kind == "rand":
        return torch.rand(shape, dtype=tdtype)
    if kind == "randn":
        return torch.randn(shape, dtype=tdtype)
    if kind == "uniform":
        return torch.empty(shape, dtype=tdtype).uniform_(a, a + b)
    if kind == "normal":
        return torch.normal(a, b, shape, dtype=tdtype)
    if kind == "randint":
        return torch.randint(int(a), int(a) + int(b) + 1, shape)
    if kind == "randint64":
        return torch.randint(int(a), int(a) + 2**33 + int(b), shape)
    if kind == "randperm":
        return torch.randperm(size)
    if kind == "bernoulli":
        return torch.empty(shape, dtype=tdtype).bernoulli_(min(abs(b), 1.0))
    raise AssertionError(kind)


def _our_call(generator: Generator, op: tuple) -> np.ndarray:
    kind, size, dtype, a, b = op
    shape = (size,)
    if kind == "rand":
        return generator.rand(shape, dtype=dtype)
    if kind == "randn":
        return generator.randn(shape, dtype=dtype)
    if kind == "uniform":
        return generator.uniform(shape, a, a + b, dtype=dtype)
    if kind == "normal":
        return generator.normal(shape, a, b, dtype=dtype)
    if kind == "randint":
        return generator.randint(int(a), int(a) + int(b) + 1, shape)
    if kind == "randint64":
        return generator.randint(int(a), int(a) + 2**33 + int(b), shape)
    if kind == "randperm":
        return generator.randperm(size)
    if kind == "bernoulli":
        return generator.bernoulli(shape, min(abs(b), 1.0), dtype=dtype)
    raise AssertionError(kind)


_ops = st.tuples(
    st.sampled_from(["rand", "randn", "randn", "uniform", "normal", "randint", "randint64", "randperm", "bernoulli"]),
    st.one_of(st.integers(0, 40), st.integers(41, 3000)),  # small sizes exercise the scalar normal path
    st.sampled_from(DTYPES),
    st.floats(-100, 100, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
)


@live_torch
@settings(max_examples=40, deadline=None)
@given(seed=st.sampled_from(SEEDS) | st.integers(0, 2**64 - 1), ops=st.lists(_ops, min_size=1, max_size=8))
def test_random_interleavings_stay_in_sync(torch: Any, seed: int, ops: list[tuple]) -> None:
    torch.manual_seed(seed)
    generator = Generator(seed)
    for op in ops:
        assert_same_bits(_our_call(generator, op), _torch_call(torch, op))
    assert_same_bits(generator.rand(2), torch.rand(2))


# ------------------------------------------------------------------ torch_init


class _TorchLikeLinear(nn.Module):
    """A Flax layer laid out like torch.nn.Linear (weight (out, in), bias (out,))."""

    in_features: int
    out_features: int
    bias: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        weight = self.param("weight", nn.initializers.zeros, (self.out_features, self.in_features))
        y = x @ weight.T
        if self.bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.out_features,))
        return y


class _TorchLikeBatchNorm1d(nn.Module):
    num_features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = True) -> jnp.ndarray:
        weight = self.param("weight", nn.initializers.normal(), (self.num_features,))
        bias = self.param("bias", nn.initializers.normal(), (self.num_features,))
        self.variable("batch_stats", "running_mean", lambda: jnp.zeros(self.num_features))
        return x * weight[:, None] + bias[:, None]


register_torch_init(_TorchLikeLinear, linear_torch_init)
register_torch_init(_TorchLikeBatchNorm1d, batchnorm_torch_init)


class _DocumentNet(nn.Module):
    """AvgPool1d(2) -> BatchNorm1d(3) -> flatten -> Linear(12, 4), input (N, 3, 8)."""

    def setup(self) -> None:
        self.bn1 = _TorchLikeBatchNorm1d(3)
        self.fc1 = _TorchLikeLinear(12, 4)

    def __call__(self, x: jnp.ndarray, train: bool = True) -> jnp.ndarray:
        x = (x[..., 0::2] + x[..., 1::2]) / 2
        x = self.bn1(x, train)
        return self.fc1(x.reshape(x.shape[0], -1))


def _torch_document_net(torch: Any) -> Any:
    return torch.nn.Sequential(
        torch.nn.AvgPool1d(2), torch.nn.BatchNorm1d(3), torch.nn.Flatten(), torch.nn.Linear(12, 4)
    )


@live_torch
def test_torch_init_document_net_then_input(torch: Any) -> None:
    torch.manual_seed(1029)
    model = _torch_document_net(torch)
    x = torch.randn(3, 3, 8)

    generator = Generator(1029)
    variables = torch_init(_DocumentNet(), generator, jnp.zeros((3, 3, 8)))
    ours_x = generator.randn((3, 3, 8))

    params = variables["params"]
    assert_same_bits(np.asarray(params["fc1"]["weight"]), model[3].weight)
    assert_same_bits(np.asarray(params["fc1"]["bias"]), model[3].bias)
    assert_same_bits(np.asarray(params["bn1"]["weight"]), model[1].weight)
    assert_same_bits(np.asarray(params["bn1"]["bias"]), model[1].bias)
    assert_same_bits(ours_x, x)
    assert "running_mean" in variables["batch_stats"]["bn1"]


class _Mlp(nn.Module):
    sizes: tuple[int, ...]
    bias_flags: tuple[bool, ...]

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for index, (fan_in, fan_out, bias) in enumerate(zip(self.sizes, self.sizes[1:], self.bias_flags)):
            x = _TorchLikeLinear(fan_in, fan_out, bias, name=f"layer{index}")(x)
        return x


@live_torch
@pytest.mark.parametrize(
    "sizes, bias_flags",
    [
        ((784, 100, 10), (True, True)),
        ((1, 3, 5, 7), (True, False, True)),
        ((12, 4), (False,)),
        ((3, 64, 2), (True, True)),
    ],
)
def test_torch_init_linear_stack(torch: Any, sizes: tuple[int, ...], bias_flags: tuple[bool, ...]) -> None:
    torch.manual_seed(77)
    layers = [torch.nn.Linear(i, o, bias=b) for i, o, b in zip(sizes, sizes[1:], bias_flags)]
    after = torch.rand(3)

    generator = Generator(77)
    variables = torch_init(_Mlp(sizes, bias_flags), generator, jnp.zeros((2, sizes[0])))
    for index, layer in enumerate(layers):
        ours = variables["params"][f"layer{index}"]
        assert_same_bits(np.asarray(ours["weight"]), layer.weight)
        if layer.bias is not None:
            assert_same_bits(np.asarray(ours["bias"]), layer.bias)
        else:
            assert "bias" not in ours
    assert_same_bits(generator.rand(3), after)


class _TwoHeads(nn.Module):
    """Calls ``second`` before ``first``; PyTorch would build ``first`` first."""

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        first = _TorchLikeLinear(4, 3, name="first")
        second = _TorchLikeLinear(4, 3, name="second")
        return second(x) + first(x)


@live_torch
def test_torch_init_explicit_order(torch: Any) -> None:
    torch.manual_seed(4)
    first, second = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    variables = torch_init(_TwoHeads(), Generator(4), jnp.zeros((1, 4)), order=["first", "second"])
    assert_same_bits(np.asarray(variables["params"]["first"]["weight"]), first.weight)
    assert_same_bits(np.asarray(variables["params"]["second"]["bias"]), second.bias)


@live_torch
def test_kaiming_bound_uses_torch_arithmetic(torch: Any) -> None:
    """sqrt(3) * sqrt(2 / (1 + sqrt(5)**2)) / sqrt(fan_in) is not always 1/sqrt(fan_in) in float64."""
    bounds = {fan_in: kaiming_uniform_bound(fan_in, math.sqrt(5)) for fan_in in range(1, 200)}
    differing = [fan_in for fan_in, bound in bounds.items() if bound != 1 / math.sqrt(fan_in)]
    assert differing, "expected some fan_in where the two formulas round differently"
    for fan_in in differing[:5]:
        torch.manual_seed(fan_in)
        layer = torch.nn.Linear(fan_in, 8)
        generator = Generator(fan_in)
        assert_same_bits(generator.uniform((8, fan_in), -bounds[fan_in], bounds[fan_in]), layer.weight)


def _net_is_implemented() -> bool:
    try:
        from torchsem.models import Net

        Net().init(__import__("jax").random.PRNGKey(0), jnp.zeros((3, 3, 8)))
    except Exception:
        return False
    return True


@live_torch
def test_torch_init_torchsem_models_net(torch: Any) -> None:
    if not _net_is_implemented():
        pytest.skip("torchsem.models.Net is not implemented yet")
    from torchsem.models import Net

    torch.manual_seed(1029)
    model = _torch_document_net(torch)
    x = torch.randn(3, 3, 8)

    generator = Generator(1029)
    variables = torch_init(Net(), generator, jnp.zeros((3, 3, 8)))
    ours_x = generator.randn((3, 3, 8))
    assert_same_bits(np.asarray(variables["params"]["fc1"]["weight"]), model[3].weight)
    assert_same_bits(np.asarray(variables["params"]["fc1"]["bias"]), model[3].bias)
    assert_same_bits(ours_x, x)


# ------------------------------------------------------------------ errors (no torch needed)


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.randn(3, dtype=np.float16),
        lambda g: g.randn(3, dtype=np.int64),
        lambda g: g.rand(3, dtype=np.int32),
        lambda g: g.uniform(3, dtype=np.float16),
        lambda g: g.normal(20, dtype=np.complex64),
        lambda g: g.randint(0, 5, 3, dtype=np.float32),
        lambda g: g.randperm(5, dtype=np.int32),
        lambda g: g.bernoulli(3, 0.5, dtype=np.float16),
    ],
)
def test_unsupported_dtype_raises_not_implemented(call: Any) -> None:
    with pytest.raises(NotImplementedError, match="dtype"):
        call(Generator(0))


def test_float32_fill_path_refuses_other_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_platform, "normal_kernel_build", lambda: _platform.DEFAULT)
    generator = Generator(0)
    with pytest.raises(NotImplementedError, match="dtype=float32"):
        generator.randn(16)
    generator.randn(15)  # the scalar path is libm-only and stays available
    generator.randn(16, dtype=np.float64)


def test_cpu_capability_override(monkeypatch: pytest.MonkeyPatch) -> None:
    _platform.normal_kernel_build.cache_clear()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    try:
        assert _platform.normal_kernel_build() == _platform.DEFAULT
    finally:
        _platform.normal_kernel_build.cache_clear()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: g.rand(-1), r"shape: Trying to create tensor with negative dimension -1: \[-1\]"),
        (lambda g: g.randn((2, -3)), r"negative dimension -3: \[2, -3\]"),
        (lambda g: g.uniform(3, 2.0, 1.0), r"low must be <= high.*from=2 > to=1"),
        (lambda g: g.uniform(3, -3e38, 3e38), r"high - low.*to-from <= std::numeric_limits<Float>::max\(\)"),
        (lambda g: g.uniform(3, float("nan"), 1.0), r"low=nan: from is out of bounds for float"),
        (lambda g: g.normal(3, 0.0, -1.0), r"std must be >= 0.*normal expects std >= 0.0, but found std -1"),
        (lambda g: g.normal(30, 0.0, float("nan")), r"std must be >= 0"),
        (lambda g: g.randint(5, 5, 3), r"low must be < high.*from=5 >= to=5"),
        (lambda g: g.randint(5, 3, 3), r"random_ expects 'from' to be less than 'to', but got from=5 >= to=3"),
        (lambda g: g.randint(0, 2**63, 3), r"high=.* does not fit in int64"),
        (lambda g: g.randperm(-1), r"negative dimension -1"),
        (lambda g: g.bernoulli(3, 1.5), r"p must lie in \[0, 1\].*but got p=1.5"),
        (lambda g: g.bernoulli(3, -0.1), r"p must lie in \[0, 1\]"),
        (lambda g: g.bernoulli(2, np.array([0.2, 1.2])), r"p must lie in \[0, 1\] elementwise"),
        (lambda g: g.bernoulli(3, np.array([0.2, 0.3])), r"p.shape=\(2,\) must equal shape=\(3,\)"),
    ],
)
def test_bad_arguments_name_the_argument(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(Generator(0))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda g: g.randn("3"), TypeError, "shape"),
        (lambda g: g.randn(3, dtype="not-a-dtype"), TypeError, "dtype"),
        (lambda g: g.uniform(3, "a", 1.0), TypeError, "low"),
        (lambda g: g.randint(0.5, 3, 2), TypeError, "low"),
        (lambda g: g.randperm(2.0), TypeError, "n"),
        (lambda g: g.randperm(2**32), NotImplementedError, "n="),
    ],
)
def test_bad_argument_types(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(Generator(0))


@pytest.mark.parametrize(
    "seed, error", [(-(2**63) - 1, ValueError), (2**64, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_bad_seeds(seed: Any, error: type) -> None:
    with pytest.raises(error, match="seed"):
        Generator(seed)


class _Unregistered(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return x * self.param("scale", nn.initializers.ones, (x.shape[-1],))


class _Wrapper(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return _Unregistered(name="odd")(_TorchLikeLinear(2, 2, name="fc")(x))


def test_unregistered_module_with_params_raises() -> None:
    with pytest.raises(NotImplementedError, match="_Unregistered"):
        torch_init(_Wrapper(), Generator(0), jnp.zeros((1, 2)))


def test_order_must_cover_every_parameter_owner() -> None:
    with pytest.raises(ValueError, match="second"):
        torch_init(_TwoHeads(), Generator(0), jnp.zeros((1, 4)), order=["first"])
    with pytest.raises(ValueError, match="never called"):
        torch_init(_TwoHeads(), Generator(0), jnp.zeros((1, 4)), order=["first", "second", "third"])


def test_register_torch_init_rejects_bad_keys() -> None:
    with pytest.raises(ValueError, match="module_type"):
        register_torch_init("NoColon", linear_torch_init)
    with pytest.raises(TypeError, match="module_type"):
        register_torch_init(3, linear_torch_init)  # type: ignore[arg-type]


class _LinearWithCustomInit(_TorchLikeLinear):
    weight_init: Any = None


register_torch_init(_LinearWithCustomInit, linear_torch_init)


def test_linear_with_custom_initialiser_is_refused() -> None:
    module = _LinearWithCustomInit(3, 2, weight_init=nn.initializers.ones)
    with pytest.raises(NotImplementedError, match="weight_init"):
        torch_init(module, Generator(0), jnp.zeros((1, 3)))


# ------------------------------------------------------------------ exact FMA (reference: rational arithmetic)


def _round_fraction_to_float32(value: Fraction) -> np.float32:
    candidate = np.float32(float(value))
    below = candidate if Fraction(float(candidate)) <= value else np.nextafter(candidate, np.float32(-np.inf))
    above = np.nextafter(below, np.float32(np.inf))
    gap_below, gap_above = value - Fraction(float(below)), Fraction(float(above)) - value
    if gap_below != gap_above:
        return below if gap_below < gap_above else above
    return below if int(np.array(below).view(np.uint32)) % 2 == 0 else above


def test_fma_emulation_rounds_once() -> None:
    from torchsem.random._exact_float import fma_float32, fma_float64

    rng = np.random.default_rng(0)
    # Few-bit operands and addends placed next to float32 ties make double rounding likely.
    a32 = (rng.integers(-(2**12), 2**12, 4000) * 2.0**-7).astype(np.float32)
    b32 = (rng.integers(-(2**13), 2**13, 4000) * 2.0**-9).astype(np.float32)
    c32 = (a32.astype(np.float64) * b32 + rng.choice([-1.0, 1.0], 4000) * 2.0**-40).astype(np.float32)
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 is a float32 tie; +-2**-70 decides it, but is lost in float64.
    tie = np.float32(1 + 2.0**-12)
    a32 = np.concatenate([[tie, tie, -tie], a32]).astype(np.float32)
    b32 = np.concatenate([[tie, tie, tie], b32]).astype(np.float32)
    c32 = np.concatenate([[2.0**-70, -(2.0**-70), 2.0**-70], c32]).astype(np.float32)
    naive32 = (a32.astype(np.float64) * b32 + c32).astype(np.float32)
    got32 = fma_float32(a32, b32, c32)
    want32 = [
        _round_fraction_to_float32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
        for x, y, z in zip(a32, b32, c32)
    ]
    np.testing.assert_array_equal(got32.view(np.uint32), np.array(want32, dtype=np.float32).view(np.uint32))
    assert not np.array_equal(naive32[:3], np.array(want32[:3], dtype=np.float32)), "crafted ties must defeat float64"

    a64 = np.concatenate([[1 + 2.0**-27, -(1 + 2.0**-27)], rng.standard_normal(2000)])
    b64 = np.concatenate([[1 + 2.0**-27, 1 + 2.0**-27], rng.standard_normal(2000)])
    c64 = np.concatenate([[2.0**-53, -(2.0**-53)], rng.standard_normal(2000)])
    want64 = np.array([float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a64, b64, c64)])
    np.testing.assert_array_equal(fma_float64(a64, b64, c64), want64)
    assert not np.array_equal(a64[:2] * b64[:2] + c64[:2], want64[:2]), "the crafted cases must defeat mul-then-add"
