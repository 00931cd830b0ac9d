"""``torch.nn.functional``'s activations, with PyTorch's signatures, on torchsem's kernels.

The same functions the activation modules apply (one implementation of the math): values
and gradients are PyTorch's (its backward formulas at the kinks, NaN handling). ``inplace``
is accepted for PyTorch's signature; JAX arrays are immutable, so nothing is written in place.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp

from . import _activations as _a

Array = Any


def relu(input: Array, inplace: bool = False) -> Array:
    """``max(x, 0)``, gradient 0 at 0: ``F.relu``."""
    return _a.relu(input)


def relu6(input: Array, inplace: bool = False) -> Array:
    """``min(max(x, 0), 6)``: ``F.relu6``."""
    return _a.hardtanh(input, 0.0, 6.0)


def hardtanh(input: Array, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Array:
    """``clamp(x, min_val, max_val)``: ``F.hardtanh``."""
    return _a.hardtanh(input, min_val, max_val)


def leaky_relu(input: Array, negative_slope: float = 0.01, inplace: bool = False) -> Array:
    """``x > 0 ? x : negative_slope * x``: ``F.leaky_relu``."""
    return _a.leaky_relu(input, negative_slope)


def elu(input: Array, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``x > 0 ? x : alpha * (exp(x) - 1)``: ``F.elu``."""
    return _a.elu(input, alpha)


def gelu(input: Array, approximate: str = "none") -> Array:
    """``x * Phi(x)`` (exact, erf) or its tanh approximation: ``F.gelu(input, approximate=...)``."""
    return _a.gelu(input, approximate)


def silu(input: Array, inplace: bool = False) -> Array:
    """``x * sigmoid(x)``: ``F.silu``."""
    return _a.silu(input)


def mish(input: Array, inplace: bool = False) -> Array:
    """``x * tanh(softplus(x))``: ``F.mish``."""
    return _a.mish(input)


def hardswish(input: Array, inplace: bool = False) -> Array:
    """``x * relu6(x + 3) / 6``: ``F.hardswish``."""
    return _a.hardswish(input)


def hardsigmoid(input: Array, inplace: bool = False) -> Array:
    """``relu6(x + 3) / 6``: ``F.hardsigmoid``."""
    return _a.hardsigmoid(input)


def sigmoid(input: Array) -> Array:
    """``1 / (1 + exp(-x))``: ``F.sigmoid``."""
    return _a.sigmoid(input)


def tanh(input: Array) -> Array:
    """``tanh(x)``: ``F.tanh``."""
    return _a.tanh(input)


def logsigmoid(input: Array) -> Array:
    """``log(sigmoid(x))``, stably: ``F.logsigmoid``."""
    return _a.logsigmoid(input)


def softplus(input: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold``: ``F.softplus``."""
    return _a.softplus(input, beta, threshold)


def glu(input: Array, dim: int = -1) -> Array:
    """``a * sigmoid(b)`` for the halves of ``input`` along ``dim``: ``F.glu``."""
    return _a.glu(input, dim)


def _dim(name: str, input: Array, dim: int | None) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
            "argument.",
            UserWarning,
            stacklevel=3,
        )
        return _a.softmax_dim(jnp.ndim(input))
    return dim


def softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Array:
    """``exp(x) / sum(exp(x))`` along ``dim`` (PyTorch's implicit dim when None): ``F.softmax``."""
    x = input if dtype is None else jnp.asarray(input).astype(dtype)
    return _a.softmax(x, _dim("softmax", x, dim))


def log_softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Array:
    """``x - log(sum(exp(x)))`` along ``dim``: ``F.log_softmax``."""
    x = input if dtype is None else jnp.asarray(input).astype(dtype)
    return _a.log_softmax(x, _dim("log_softmax", x, dim))


__all__ = [
    "elu",
    "gelu",
    "glu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "logsigmoid",
    "mish",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]
