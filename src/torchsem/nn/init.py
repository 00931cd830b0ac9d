"""PyTorch's ``torch.nn.init`` initialisers as Flax initialisers.

Each function here takes the initialiser's settings (PyTorch's keyword names and defaults)
and returns a Flax initialiser ``init(key, shape, dtype=jnp.float32) -> jax.Array``. Nothing
is in-place: ``torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))`` becomes
``kaiming_uniform(a=math.sqrt(5))`` passed as a module's initialiser, and the fan is read
from ``shape`` exactly as PyTorch reads it from the tensor: a weight is
``(out_features, in_features, *kernel)``, so ``fan_in = shape[1] * prod(shape[2:])`` and
``fan_out = shape[0] * prod(shape[2:])``.

The distributions (and every bound and standard deviation) are PyTorch's; the random bits
come from JAX's generator, so the values differ from PyTorch's for the same seed.
``torchsem.random`` replays PyTorch's own generator where bit-equal values are needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._errors import InputError

__all__ = [
    "Initializer",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "ones",
    "trunc_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

Initializer = Callable[..., jax.Array]
"""A Flax initialiser: ``(key, shape, dtype=jnp.float32) -> jax.Array``."""

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_FAN_MODES = ("fan_in", "fan_out")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    linear/conv/sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2))
    with slope ``param`` (default 0.01); selu: 3/4.

    Args:
      nonlinearity: the nonlinearity's name, as in PyTorch.
      param: leaky_relu's negative slope (ignored for the others).

    Returns:
      The gain, a Python float.
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """PyTorch's fan of a weight of shape ``(out, in, *kernel)``.

    ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``, as PyTorch's private
    ``torch.nn.init._calculate_fan_in_and_fan_out``. Note the layout: PyTorch's, not Flax's
    ``(in, out)`` kernels.

    Args:
      shape: the weight's shape, at least two axes.

    Returns:
      ``(fan_in, fan_out)``.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive_field_size = math.prod(shape[2:])
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def _correct_fan(shape: Sequence[int], mode: str) -> int:
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def _check_mode(mode: str) -> str:
    mode = mode.lower()
    if mode not in _FAN_MODES:
        raise ValueError(f"Mode {mode} not supported, please use one of {list(_FAN_MODES)}")
    return mode


def _check_float_dtype(dtype: Any, name: str) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} draws random floats; dtype must be floating point, got {dtype}")
    return dtype


def _is_empty(shape: Sequence[int]) -> bool:
    return any(int(d) == 0 for d in shape)


def uniform(a: float = 0.0, b: float = 1.0) -> Initializer:
    """``U(a, b)``, as ``torch.nn.init.uniform_(tensor, a, b)``.

    Args:
      a: lower bound.
      b: upper bound, ``b >= a``.

    Returns:
      A Flax initialiser.
    """
    if a > b:
        # PyTorch's message comes from C++, which prints doubles like Python's :g.
        raise InputError(f"uniform_ expects to return a [from, to) range, but found from={a:g} > to={b:g}")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        dtype = _check_float_dtype(dtype, "uniform")
        return jax.random.uniform(key, tuple(shape), dtype, minval=a, maxval=b)

    return init


def normal(mean: float = 0.0, std: float = 1.0) -> Initializer:
    """``N(mean, std^2)``, as ``torch.nn.init.normal_(tensor, mean, std)``.

    Args:
      mean: the mean.
      std: the standard deviation, ``>= 0``.

    Returns:
      A Flax initialiser.
    """
    if std < 0:
        raise InputError(f"normal expects std >= 0.0, but found std {std:g}")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        dtype = _check_float_dtype(dtype, "normal")
        return (mean + std * jax.random.normal(key, tuple(shape), dtype)).astype(dtype)

    return init


def trunc_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Initializer:
    """``N(mean, std^2)`` truncated to ``[a, b]``, as ``torch.nn.init.trunc_normal_``.

    ``a`` and ``b`` are absolute bounds (PyTorch's convention), not multiples of ``std``
    (``flax.linen.initializers.truncated_normal``'s convention).

    Args:
      mean: the mean of the untruncated normal.
      std: its standard deviation, ``> 0``.
      a: lower cut-off.
      b: upper cut-off, ``b > a``.

    Returns:
      A Flax initialiser.
    """
    if std <= 0:
        raise ValueError(f"trunc_normal expects std > 0.0, but found std {std}")
    if not a < b:
        raise ValueError(f"trunc_normal expects a < b, but found a={a}, b={b}")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        dtype = _check_float_dtype(dtype, "trunc_normal")
        standard = jax.random.truncated_normal(key, (a - mean) / std, (b - mean) / std, tuple(shape), dtype)
        return jnp.clip(standard * std + mean, a, b).astype(dtype)

    return init


def constant(val: float) -> Initializer:
    """Every element ``val``, as ``torch.nn.init.constant_(tensor, val)``.

    Args:
      val: the value.

    Returns:
      A Flax initialiser (the key is unused).
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        del key
        return jnp.full(tuple(shape), val, dtype)

    return init


def zeros() -> Initializer:
    """Zeros, as ``torch.nn.init.zeros_``.

    Returns:
      A Flax initialiser (the key is unused).
    """
    return constant(0)


def ones() -> Initializer:
    """Ones, as ``torch.nn.init.ones_``.

    Returns:
      A Flax initialiser (the key is unused).
    """
    return constant(1)


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """Glorot uniform, as ``torch.nn.init.xavier_uniform_``.

    ``U(-bound, bound)`` with ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Args:
      gain: the scaling factor.

    Returns:
      A Flax initialiser for weights of shape ``(out, in, *kernel)``.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
        if _is_empty(shape):
            return jnp.zeros(tuple(shape), dtype)
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        bound = math.sqrt(3.0) * std
        return uniform(-bound, bound)(key, shape, dtype)

    return init


def xavier_normal(gain: float = 1.0) -> Initializer:
    """Glorot normal, as ``torch.nn.init.xavier_normal_``.

    ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Args:
      gain: the scaling factor.

    Returns:
      A Flax initialiser for weights of shape ``(out, in, *kernel)``.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
        if _is_empty(shape):
            return jnp.zeros(tuple(shape), dtype)
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        return normal(0.0, std)(key, shape, dtype)

    return init


def kaiming_uniform(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Initializer:
    """He uniform, as ``torch.nn.init.kaiming_uniform_``.

    ``U(-bound, bound)`` with ``bound = sqrt(3) * gain / sqrt(fan)`` and
    ``gain = calculate_gain(nonlinearity, a)``. ``nn.Linear``'s default,
    ``kaiming_uniform(a=math.sqrt(5))``, gives ``bound = 1 / sqrt(in_features)``.

    Args:
      a: leaky_relu's negative slope.
      mode: ``'fan_in'`` (preserves the forward pass's variance) or ``'fan_out'`` (the backward's).
      nonlinearity: the nonlinearity's name for :func:`calculate_gain`.

    Returns:
      A Flax initialiser for weights of shape ``(out, in, *kernel)``.
    """
    mode = _check_mode(mode)
    gain = calculate_gain(nonlinearity, a)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan = _correct_fan(shape, mode)
        if _is_empty(shape):
            return jnp.zeros(tuple(shape), dtype)
        bound = math.sqrt(3.0) * (gain / math.sqrt(fan))
        return uniform(-bound, bound)(key, shape, dtype)

    return init


def kaiming_normal(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Initializer:
    """He normal, as ``torch.nn.init.kaiming_normal_``.

    ``N(0, std^2)`` with ``std = gain / sqrt(fan)`` and ``gain = calculate_gain(nonlinearity, a)``.

    Args:
      a: leaky_relu's negative slope.
      mode: ``'fan_in'`` or ``'fan_out'``.
      nonlinearity: the nonlinearity's name for :func:`calculate_gain`.

    Returns:
      A Flax initialiser for weights of shape ``(out, in, *kernel)``.
    """
    mode = _check_mode(mode)
    gain = calculate_gain(nonlinearity, a)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan = _correct_fan(shape, mode)
        if _is_empty(shape):
            return jnp.zeros(tuple(shape), dtype)
        return normal(0.0, gain / math.sqrt(fan))(key, shape, dtype)

    return init
