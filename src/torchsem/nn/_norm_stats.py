"""Statistics shared by the normalisation layers that reduce over trailing or grouped axes.

GroupNorm, LayerNorm and RMSNorm compute their statistics per row of a ``(rows, elements)``
view, as PyTorch's CPU kernels do (``RowwiseMoments``: a cascaded Welford update in float32,
numerically centred). Here the mean is refined once (``rough + sum(x - rough) / n``) and the
variance is the two-pass centred ``sum((x - mean)^2) / n``, never ``E[x^2] - E[x]^2``: both
are within a few float32 ulps of PyTorch's values for any mean-to-spread ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._batchnorm import _reciprocal_sqrt

Array = jax.Array


def compute_dtype(dtype: Any) -> Any:
    """Statistics in at least float32 (PyTorch's ``opmath`` type); float64 stays float64."""
    return jnp.promote_types(dtype, jnp.float32)


def torch_size_list(shape: Sequence[int]) -> str:
    """``[3, 4]``, as PyTorch's C++ messages print sizes."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def centred_moments(x: Array, axes: tuple[int, ...]) -> tuple[Array, Array]:
    """``(mean, biased variance)`` over ``axes`` (kept as size-1 axes), in ``x``'s dtype.

    Three reads of ``x``: a rough mean, its correction from the float32 sum of deviations (so
    the mean is accurate to about an ulp even for inputs with a large mean and a small spread),
    then the centred sum of squares around it.
    """
    count = 1
    for axis in axes:
        count *= int(x.shape[axis])
    rough = jnp.sum(x, axes, keepdims=True) / count
    refined = rough + jnp.sum(x - rough, axes, keepdims=True) / count
    # An infinite element: x - inf is NaN here, where PyTorch's mean is +-inf.
    mean = jnp.where(jnp.isfinite(rough), refined, rough)
    var = jnp.sum(jnp.square(x - mean), axes, keepdims=True) / count
    return mean, var


def inverse_std(var: Array, eps: float) -> Array:
    """``1 / sqrt(max(var, 0) + eps)`` rounded twice, as PyTorch's kernels (no fused rsqrt)."""
    return _reciprocal_sqrt(jnp.maximum(var, 0) + jnp.asarray(eps, var.dtype))


__all__ = ["centred_moments", "compute_dtype", "inverse_std", "torch_size_list"]
