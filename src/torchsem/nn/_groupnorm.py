"""GroupNorm: ``torch.nn.GroupNorm`` as a Flax linen module, channels-first.

PyTorch's CPU kernel (``aten/src/ATen/native/cpu/group_norm_kernel.cpp``) computes, per example
and group, the mean and biased variance of the group's ``C / G * prod(spatial)`` values, then
``rstd = 1 / sqrt(max(var, 0) + eps)`` and, per channel, ``scale = rstd * weight``,
``shift = bias - scale * mean``, ``y = x * scale + shift``. The same statistics here (the
centred two-pass variance of :mod:`._norm_stats`), and ``y = (x - mean) * scale + bias``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..random import batchnorm_torch_init, register_torch_init
from ._errors import InputError
from ._norm_stats import centred_moments, compute_dtype, inverse_std, torch_size_list

Array = jax.Array


def _group_norm(x: Array, weight: Array | None, bias: Array | None, groups: int, eps: float) -> Array:
    n, c = x.shape[0], x.shape[1]
    cdt = compute_dtype(x.dtype)
    grouped = x.astype(cdt).reshape(n, groups, -1)
    mean, var = centred_moments(grouped, (2,))  # (N, G, 1)
    rstd = inverse_std(var, eps)
    per_group = c // groups
    # (N, G, 1) -> (N, C): each channel takes its group's statistics.
    rstd_c = jnp.repeat(rstd[:, :, 0], per_group, axis=1)
    mean_c = jnp.repeat(mean[:, :, 0], per_group, axis=1)
    scale = rstd_c if weight is None else rstd_c * weight.astype(cdt)
    flat = x.astype(cdt).reshape(n, c, -1)
    # PyTorch: x * scale + (bias - scale * mean), without a fused multiply-add (a group of one value
    # gives exactly bias). XLA's CPU backend would contract that pair into an FMA and leave the
    # product's rounding error; (x - mean) * scale + bias is exactly bias there too, and otherwise
    # within an ulp of |x| * scale of PyTorch's value.
    y = (flat - mean_c[:, :, None]) * scale[:, :, None]
    if bias is not None:
        y = y + bias.astype(cdt)[None, :, None]
    return y.reshape(x.shape).astype(x.dtype)


# Compiled even when called eagerly, so that eager and jitted results agree to the bit.
_group_norm_compiled = jax.jit(_group_norm, static_argnums=(3, 4))


class GroupNorm(nn.Module):
    """Group normalisation with PyTorch's semantics: ``torch.nn.GroupNorm``.

    The ``C`` channels of an ``(N, C, *)`` input are split into ``num_groups`` groups of
    consecutive channels; each example's group is normalised with its own mean and biased
    variance, in training and eval alike (there is no mode and no running statistics), then
    scaled by the per-channel ``weight`` (ones) and shifted by ``bias`` (zeros).

    Differs from ``flax.linen.GroupNorm`` in: the signature and defaults (``num_groups`` is
    required, Flax defaults to 32; ``eps=1e-5``, Flax's ``epsilon`` defaults to ``1e-6``), the
    layout (channels-first here, Flax's is channels-last), the names (``weight``/``bias``, Flax's
    ``scale``/``bias``), and the variance (centred two-pass, Flax defaults to
    ``use_fast_variance=True``).

    Attributes:
      num_groups: ``G``; must divide ``num_channels``.
      num_channels: ``C``, the size of axis 1 of the input.
      eps: added to the variance.
      affine: whether to learn per-channel ``weight`` and ``bias``.
      bias: with ``affine``, whether to learn ``bias`` (keyword-only, as in PyTorch).
      dtype: the output dtype (default: the input's); statistics are at least float32.
      param_dtype: dtype of ``weight`` and ``bias``.

    Reproduces ``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, *, bias=True)``.
    """

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    bias: bool = dataclasses.field(default=True, kw_only=True)  # keyword-only, as PyTorch's

    def __post_init__(self) -> None:
        for field in ("num_groups", "num_channels"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"GroupNorm: {field} must be an int, got {value!r}")
        if self.num_groups == 0:
            raise ZeroDivisionError("integer modulo by zero")  # PyTorch's num_channels % 0
        if self.num_channels % self.num_groups != 0:
            raise ValueError(f"num_channels ({self.num_channels}) must be divisible by num_groups ({self.num_groups})")
        for flag in ("affine", "bias"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"GroupNorm: {flag} must be a bool, got {getattr(self, flag)!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, input: Array) -> Array:
        """Normalise ``input`` of shape ``(N, C, *)``.

        Raises:
          InputError: (a ``RuntimeError``, as in PyTorch) an input of rank below 2, channels
            not divisible by ``num_groups``, or channels that differ from ``num_channels``
            with ``affine``.
          ValueError: PyTorch's message for one value per group (``N * C / G * prod(spatial) == 1``).
          TypeError: a non-floating-point input.
        """
        x = jnp.asarray(input)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"GroupNorm: expected a floating-point input, got dtype {x.dtype}")
        if x.ndim < 2:
            raise InputError(f"Expected at least 2 dimensions for input tensor but received {x.ndim}")
        groups = int(self.num_groups)
        # torch.nn.functional.group_norm's _verify_batch_size, with its own list of sizes.
        checked = [int(x.shape[0]) * int(x.shape[1]) // groups, groups] + [int(d) for d in x.shape[2:]]
        if checked[0] * math.prod(checked[2:]) == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {checked}")
        channels = int(x.shape[1])
        if channels % groups != 0:
            raise InputError(
                "Expected number of channels in input to be divisible by num_groups, but got input "
                f"of shape {torch_size_list(x.shape)} and num_groups={groups}"
            )
        weight = bias = None
        if self.affine:
            if channels != self.num_channels:
                raise InputError(
                    "Expected weight to be a vector of size equal to the number of channels in input, "
                    f"but got weight of shape [{self.num_channels}] and input of shape "
                    f"{torch_size_list(x.shape)}"
                )
            weight = self.param("weight", nn.initializers.ones, (self.num_channels,), self.param_dtype)
            if self.bias:
                bias = self.param("bias", nn.initializers.zeros, (self.num_channels,), self.param_dtype)
        if x.size == 0:
            cdt = compute_dtype(x.dtype)
            shape = (1, channels) + (1,) * (x.ndim - 2)
            y = x.astype(cdt)
            if weight is not None:
                y = y * weight.astype(cdt).reshape(shape)
            if bias is not None:
                y = y + bias.astype(cdt).reshape(shape)
            y = y.astype(x.dtype)
        else:
            y = _group_norm_compiled(x, weight, bias, groups, float(self.eps))
        return y.astype(self.dtype) if self.dtype is not None else y


__all__ = ["GroupNorm"]

# PyTorch's reset_parameters: weight ones, bias zeros, nothing drawn.
register_torch_init(GroupNorm, batchnorm_torch_init)
