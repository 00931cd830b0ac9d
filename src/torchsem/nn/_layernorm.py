"""LayerNorm and RMSNorm: normalisation over the trailing ``normalized_shape`` dims, as PyTorch.

- ``LayerNorm`` follows PyTorch's CPU kernel (``aten/src/ATen/native/cpu/layer_norm_kernel.cpp``):
  per row of the trailing dims, the mean and biased variance (centred two-pass here),
  ``rstd = 1 / sqrt(max(var, 0) + eps)``, then ``y = (x * rstd - mean * rstd) * weight + bias``
  (here ``(x - mean) * rstd * weight + bias``: see ``_layer_norm``).
- ``RMSNorm`` follows PyTorch's composite ``rms_norm`` (used on CPU for every dtype):
  ``x * rsqrt(mean(x^2) + eps) * weight``, in at least float32, with ``eps=None`` meaning
  ``torch.finfo(opmath dtype).eps`` (``1.1920929e-07`` for float16/bfloat16/float32 inputs,
  ``2.220446049250313e-16`` for float64).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..random import batchnorm_torch_init, register_torch_init
from ._batchnorm import _reciprocal_sqrt
from ._errors import InputError
from ._norm_stats import centred_moments, compute_dtype, inverse_std, torch_size_list

Array = jax.Array


def _as_shape(module: str, normalized_shape: Any) -> tuple[int, ...]:
    """PyTorch's ``normalized_shape``: an int is ``(int,)``; any sequence of ints is a tuple."""
    if isinstance(normalized_shape, bool):
        raise TypeError(f"{module}: normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    if not isinstance(normalized_shape, Sequence) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in normalized_shape
    ):
        raise TypeError(f"{module}: normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
    return tuple(int(d) for d in normalized_shape)


def _check_shape(x: Array, shape: tuple[int, ...], separator: str) -> None:
    """PyTorch's checks of ``normalized_shape`` against the input (``separator``: ``', '`` or ``''``)."""
    if not shape:
        raise InputError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
            "element, but got normalized_shape = []"
        )
    if x.ndim < len(shape) or tuple(int(d) for d in x.shape[x.ndim - len(shape) :]) != shape:
        inner = ", ".join(str(d) for d in shape)
        raise InputError(
            f"Given normalized_shape={torch_size_list(shape)}, expected input with shape "
            f"[*{separator}{inner}], but got input of size{torch_size_list(x.shape)}"
        )


def _layer_norm(x: Array, weight: Array | None, bias: Array | None, ndim: int, eps: float) -> Array:
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt)
    axes = tuple(range(x.ndim - ndim, x.ndim))
    mean, var = centred_moments(xc, axes)
    rstd = inverse_std(var, eps)
    # PyTorch's kernel forms x * rstd + (-mean * rstd) without a fused multiply-add (a row of one
    # element gives exactly 0). XLA's CPU backend contracts such a pair into an FMA, which leaves the
    # rounding error of the product (1e-5 for LayerNorm(1)); (x - mean) * rstd cannot be contracted,
    # is exactly 0 there too and is otherwise within an ulp of |x| * rstd of PyTorch's value.
    y = (xc - mean) * rstd
    if weight is not None:
        y = y * weight.astype(cdt)
    if bias is not None:
        y = y + bias.astype(cdt)
    return y.astype(x.dtype)


def _rms_norm(x: Array, weight: Array | None, ndim: int, eps: float | None) -> Array:
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt)
    axes = tuple(range(x.ndim - ndim, x.ndim))
    epsilon = float(jnp.finfo(cdt).eps) if eps is None else eps
    mean_square = jnp.mean(jnp.square(xc), axes, keepdims=True)
    y = (xc * _reciprocal_sqrt(mean_square + jnp.asarray(epsilon, cdt))).astype(x.dtype)
    if weight is not None:
        y = y * weight  # PyTorch's result.mul(weight): the promoted dtype of the two
    return y


# Compiled even when called eagerly, so that eager and jitted results agree to the bit.
_layer_norm_compiled = jax.jit(_layer_norm, static_argnums=(3, 4))
_rms_norm_compiled = jax.jit(_rms_norm, static_argnums=(2, 3))


class LayerNorm(nn.Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims: ``torch.nn.LayerNorm``.

    Each row (the last ``len(normalized_shape)`` dims of one position of the leading dims) is
    normalised with its own mean and biased variance, in training and eval alike, then
    multiplied elementwise by ``weight`` (ones, of ``normalized_shape``) and shifted by ``bias``
    (zeros). Differs from ``flax.linen.LayerNorm`` in ``eps=1e-5`` (Flax's ``epsilon`` defaults
    to ``1e-6``), the names ``weight``/``bias`` (Flax: ``scale``/``bias``), a ``normalized_shape``
    that fixes the reduced dims and is checked (Flax reduces over ``reduction_axes=-1``), and
    the centred variance (Flax defaults to ``use_fast_variance=True``).

    Attributes:
      normalized_shape: an int or a sequence of ints: the trailing dims of the input.
      eps: added to the variance.
      elementwise_affine: whether to learn ``weight`` (and ``bias``).
      bias: with ``elementwise_affine``, whether to learn ``bias``.
      dtype: the output dtype (default: the input's); statistics are at least float32.
      param_dtype: dtype of ``weight`` and ``bias``.

    Reproduces ``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``.
    """

    normalized_shape: Any
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _as_shape("LayerNorm", self.normalized_shape)
        for flag in ("elementwise_affine", "bias"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"LayerNorm: {flag} must be a bool, got {getattr(self, flag)!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, input: Array) -> Array:
        """Normalise ``input`` of shape ``(*, *normalized_shape)``.

        Raises:
          InputError: (a ``RuntimeError``, as in PyTorch) PyTorch's message for an input whose
            trailing dims are not ``normalized_shape``, or an empty ``normalized_shape``.
          TypeError: a non-floating-point input.
        """
        x = jnp.asarray(input)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"LayerNorm: expected a floating-point input, got dtype {x.dtype}")
        shape = _as_shape("LayerNorm", self.normalized_shape)
        _check_shape(x, shape, ", ")
        weight = bias = None
        if self.elementwise_affine:
            weight = self.param("weight", nn.initializers.ones, shape, self.param_dtype)
            if self.bias:
                bias = self.param("bias", nn.initializers.zeros, shape, self.param_dtype)
        if x.size == 0:
            y = x
        else:
            y = _layer_norm_compiled(x, weight, bias, len(shape), float(self.eps))
        return y.astype(self.dtype) if self.dtype is not None else y


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims: ``torch.nn.RMSNorm``.

    ``y = x / sqrt(mean(x^2) + eps) * weight`` per row of the trailing dims (no centring, no
    bias), computed in at least float32. ``eps=None`` (the default) is PyTorch's
    ``torch.finfo(opmath dtype).eps``: ``1.1920929e-07`` for float16/bfloat16/float32 inputs,
    ``2.22e-16`` for float64 ones. Differs from ``flax.linen.RMSNorm``, whose ``epsilon``
    defaults to ``1e-6`` (about 8.4 ulp-of-1 epsilons) and whose weight is named ``scale``.

    Attributes:
      normalized_shape: an int or a sequence of ints: the trailing dims of the input.
      eps: added to the mean square; None: the machine epsilon of the computation dtype.
      elementwise_affine: whether to learn ``weight`` (ones).
      dtype: the output dtype (default: PyTorch's, the input's promoted with the weight's).
      param_dtype: dtype of ``weight``.

    Reproduces ``torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``.
    """

    normalized_shape: Any
    eps: float | None = None
    elementwise_affine: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _as_shape("RMSNorm", self.normalized_shape)
        if self.eps is not None and (isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real)):
            raise TypeError(f"RMSNorm: eps must be a float or None, got {self.eps!r}")
        if not isinstance(self.elementwise_affine, bool):
            raise TypeError(f"RMSNorm: elementwise_affine must be a bool, got {self.elementwise_affine!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, input: Array) -> Array:
        """Normalise ``input`` of shape ``(*, *normalized_shape)``.

        Raises:
          ValueError: PyTorch's message for an input of fewer dims than ``normalized_shape``.
          InputError: (a ``RuntimeError``, as in PyTorch) trailing dims that are not
            ``normalized_shape``, or an empty ``normalized_shape``.
          TypeError: a non-floating-point input.
        """
        x = jnp.asarray(input)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"RMSNorm: expected a floating-point input, got dtype {x.dtype}")
        shape = _as_shape("RMSNorm", self.normalized_shape)
        if shape and x.ndim < len(shape):
            raise ValueError(f"Input tensor must have at least {len(shape)} dimensions, but got {x.ndim}")
        _check_shape(x, shape, "")
        weight = None
        if self.elementwise_affine:
            weight = self.param("weight", nn.initializers.ones, shape, self.param_dtype)
        eps = None if self.eps is None else float(self.eps)
        if x.size == 0:
            y = x if weight is None else x * weight
        else:
            y = _rms_norm_compiled(x, weight, len(shape), eps)
        return y.astype(self.dtype) if self.dtype is not None else y


__all__ = ["LayerNorm", "RMSNorm"]

# PyTorch's reset_parameters: weight ones (and LayerNorm's bias zeros), nothing drawn.
register_torch_init(LayerNorm, batchnorm_torch_init)
register_torch_init(RMSNorm, batchnorm_torch_init)
