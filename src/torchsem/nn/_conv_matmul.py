"""A convolution as a sum of shifted matrix products: the opt-in ``conv_algorithm="matmul"`` of the conv modules.

For a kernel of ``K = prod(kernel_size)`` taps, the output is

    y[n, o, p] = sum_k sum_c x_pad[n, c, stride * p + dilation * k] * w[o, c, k]

computed as ``K`` matrix products (one per tap, over the channels) of strided slices of the
padded input, accumulated in float32 in tap order. XLA's CPU backend runs matrix products
through its tuned GEMM kernels, and the slices' gradients are pads: on a 2-core CPU a ResNet's
3x3 convolutions train faster this way than through ``lax.conv_general_dilated`` (numbers in
``benchmarks/README.md``). The result is the same convolution with a different float32
summation order, so it is not bit-identical to ``lax.conv`` (nor is ``lax.conv`` to PyTorch's
oneDNN kernels): it stays an explicit choice, never a silent default.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ["conv_as_matmuls"]


def conv_as_matmuls(
    x: jax.Array,
    weight: jax.Array,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
    precision: jax.lax.PrecisionLike = None,
) -> jax.Array:
    """``lax.conv_general_dilated`` for ``(N, C, *spatial)`` / ``(O, C/groups, *kernel)`` as shifted matmuls.

    Args:
      x: the batched, channels-first input.
      weight: PyTorch's weight layout ``(out_channels, in_channels // groups, *kernel)``.
      stride, padding, dilation: per spatial dimension (padding as ``(low, high)`` pairs of zeros).
      groups: ``feature_group_count``.
      precision: the matmuls' precision.

    Returns:
      ``(N, O, *spatial_out)``, the convolution of ``x`` with ``weight``.
    """
    n_spatial = x.ndim - 2
    kernel = weight.shape[2:]
    x = jnp.pad(x, [(0, 0), (0, 0), *padding])
    out = [(size - (dilation[i] * (kernel[i] - 1) + 1)) // stride[i] + 1 for i, size in enumerate(x.shape[2:])]
    # Channels-last inside, so that each tap is a plain (positions x C) @ (C x O) GEMM.
    x = jnp.moveaxis(x, 1, -1)
    batch, channels = x.shape[0], x.shape[-1]
    out_channels = weight.shape[0]
    per_group = channels // groups
    x = x.reshape(*x.shape[:-1], groups, per_group)
    w = weight.reshape(groups, out_channels // groups, per_group, *kernel)
    total = None
    for tap in itertools.product(*(range(k) for k in kernel)):
        starts = [dilation[i] * tap[i] for i in range(n_spatial)]
        limits = [starts[i] + stride[i] * (out[i] - 1) + 1 for i in range(n_spatial)]
        piece = jax.lax.slice(
            x,
            (0, *starts, 0, 0),
            (batch, *limits, groups, per_group),
            (1, *stride, 1, 1),
        )
        term = jnp.einsum("...gc,goc->...go", piece, w[(..., *tap)], precision=precision)
        total = term if total is None else total + term
    assert total is not None
    total = total.reshape(*total.shape[:-2], out_channels)
    return jnp.moveaxis(total, -1, 1)
