"""How PyTorch turns raw mt19937 words into uniform floats.

    float32:  u = (w32 & (2**24 - 1)) * 2**-24,   w32 = random()
    float64:  u = (w64 & (2**53 - 1)) * 2**-53,   w64 = random64()
    uniform_(a, b):  v = fma(u, b - a, a), with a, b and b - a in the tensor's dtype,
                     then v = a where v rounded up to b

(``transformation::uniform_real`` in ``ATen/core/TransformationHelper.h``; PyTorch's AVX2
build of the CPU kernel is compiled with FMA contraction, so the affine map rounds once; its
x86-64 DEFAULT build rounds ``u * (b - a)`` first: ``fused=False`` below. Since torch 2.13 the CPU
``uniform_kernel`` in ``ATen/native/cpu/DistributionTemplates.h`` maps a result equal to
``to`` back to ``from``, keeping samples in ``[from, to)``.)
"""

from __future__ import annotations

import numpy as np

from ._exact_float import fma_float32, fma_float64

_FLOAT32_MANTISSA_MASK = np.uint32((1 << 24) - 1)
_FLOAT64_MANTISSA_MASK = np.uint64((1 << 53) - 1)
_FLOAT32_UNIT = np.float32(2.0**-24)
_FLOAT64_UNIT = np.float64(2.0**-53)


def unit_float32(words32: np.ndarray) -> np.ndarray:
    """Uniform float32 in [0, 1) from ``random()`` words (uint32): the low 24 bits times 2**-24."""
    unit = np.bitwise_and(words32, _FLOAT32_MANTISSA_MASK).astype(np.float32)
    unit *= _FLOAT32_UNIT
    return unit


def unit_float64(words64: np.ndarray) -> np.ndarray:
    """Uniform float64 in [0, 1) from ``random64()`` words: the low 53 bits times 2**-53."""
    return (words64 & _FLOAT64_MANTISSA_MASK).astype(np.float64) * _FLOAT64_UNIT


def affine_float32(unit: np.ndarray, low: float, high: float, fused: bool = True) -> np.ndarray:
    """``fma(u, high - low, low)`` in float32 (bounds rounded to float32), ``high`` mapped to ``low``.

    ``fused=False``: ``u * (high - low)`` rounded, then ``+ low`` rounded (PyTorch's build without FMA).
    """
    low32, high32 = np.float32(low), np.float32(high)
    if low32 == 0 and high32 == 1:
        return unit.copy()  # u < 1 exactly: nothing to round or clamp
    width = np.float32(high32 - low32)
    values = fma_float32(unit, width, low32) if fused else (unit * width) + low32
    values[values == high32] = low32
    return values


def affine_float64(unit: np.ndarray, low: float, high: float, fused: bool = True) -> np.ndarray:
    """``fma(u, high - low, low)`` in float64, ``high`` mapped to ``low`` (``fused=False`` as above)."""
    low64, high64 = np.float64(low), np.float64(high)
    if low64 == 0 and high64 == 1:
        return unit.copy()  # u < 1 exactly: nothing to round or clamp
    values = fma_float64(unit, high64 - low64, low64) if fused else (unit * (high64 - low64)) + low64
    values[values == high64] = low64
    return values
