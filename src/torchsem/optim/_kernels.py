"""PyTorch's CPU roundings for the moment updates the optimizers share (``lerp_``, ``mul_().addcmul_()``)."""

from __future__ import annotations

import jax
import numpy as np

from ._common import rounded, scalar


def lerp(start: jax.Array, end: jax.Array, weight: float) -> jax.Array:
    """``start.lerp_(end, weight)`` with a Python-float weight, rounded as PyTorch's CPU kernel.

    PyTorch rounds the weight once to float32 ``w`` and computes ``start + w * (end - start)``
    when ``|w| < 0.5``, else ``end - (end - start) * (1 - w)``; each is one fused multiply-add.
    """
    w = np.float32(weight)
    difference = end - start
    if abs(w) < 0.5:
        return start + w.astype(start.dtype) * difference
    return end + (w - np.float32(1)).astype(start.dtype) * difference  # w - 1 rounds as -(1 - w), PyTorch's


def decay_add_square(average: jax.Array, x: jax.Array, decay: float) -> jax.Array:
    """``average.mul_(decay).addcmul_(x, x, value=1 - decay)``: ``decay * a + (1 - decay) * x * x``.

    ``mul_`` rounds on its own; ``addcmul_`` rounds ``value * x`` and fuses the second product
    with the sum (one FMA). ``1 - decay`` is a Python float rounded once to the dtype.
    """
    dtype = average.dtype
    return rounded(average * scalar(decay, dtype)) + (scalar(1 - decay, dtype) * x) * x
