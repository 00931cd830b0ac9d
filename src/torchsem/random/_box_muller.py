"""PyTorch's two Box-Muller paths for CPU normal samples.

Both map uniforms ``u1, u2`` to ``r = sqrt(-2 log(1 - u))`` and ``theta = 2 pi u'``, giving
``r cos(theta)`` and ``r sin(theta)``, but they differ in which uniform plays which role,
precision, pairing and rounding:

- *Fill path* (contiguous tensors of 16+ elements, ``normal_fill``): draw all ``n`` uniforms,
  then transform each block of 16 in place, pairing element ``j`` with ``j + 8``. When
  ``n % 16 != 0``, 16 *fresh* uniforms are drawn and transformed into the last 16 slots.
  float32 uses the AVX2 polynomials (:mod:`._avx2_mathfun`), float64 uses libm.
- *Scalar path* (fewer than 16 elements, ``normal_distribution<double>``): each fresh pair
  draws two float64 uniforms ``u1, u2``, returns ``r cos(theta)`` with
  ``r = sqrt(-2 log1p(-u2))``, ``theta = 2 pi u1``, and caches ``r sin(theta)`` in the
  generator for the next scalar-path sample (of any dtype).
"""

from __future__ import annotations

import math

import numpy as np

from . import _libm
from ._avx2_mathfun import log_float32, sincos_float32
from ._exact_float import fma_float32, fma_float64

_BLOCK = 16
_HALF_BLOCK = 8
_ROWS_PER_CHUNK = 1024  # 16k floats: the float64 FMA temporaries stay in cache
_TWO_PI_FLOAT32 = np.float32(2.0 * math.pi)
_TWO_PI_FLOAT64 = np.float64(2.0 * math.pi)


def _scale_shift_float32(standard: np.ndarray, mean: np.float32, std: np.float32, fused: bool = True) -> np.ndarray:
    if std == 1:
        return standard + mean  # fma(x, 1, mean) is a single rounded add
    return fma_float32(standard, std, mean) if fused else standard * std + mean


def fill_blocks_float32(unit: np.ndarray, mean: float, std: float, fused: bool = True) -> np.ndarray:
    """Normal float32 samples from uniforms, 16 at a time, as PyTorch's AVX2 ``normal_fill``.

    For each block ``d[0:16]`` and ``j < 8``:

        r = sqrt(-2 log(1 - d[j])),  theta = fl32(2 pi) * d[j + 8],
        out[j] = fma(r cos theta, std, mean),  out[j + 8] = fma(r sin theta, std, mean).

    Args:
        unit: float32 uniforms, length a multiple of 16.
        mean, std: rounded to float32 as PyTorch does.

    Returns:
        float32 array of the same length.

    PyTorch counterpart: ``normal_fill_16_AVX2`` in ``ATen/native/cpu/DistributionTemplates.h``.
    """
    mean32, std32 = np.float32(mean), np.float32(std)
    blocks = unit.reshape(-1, _BLOCK)
    out = np.empty_like(blocks)
    for start in range(0, blocks.shape[0], _ROWS_PER_CHUNK):
        chunk = blocks[start : start + _ROWS_PER_CHUNK]
        radius = np.sqrt(np.float32(-2) * log_float32(np.float32(1) - chunk[:, :_HALF_BLOCK]))
        sine, cosine = sincos_float32(_TWO_PI_FLOAT32 * chunk[:, _HALF_BLOCK:])
        out[start : start + _ROWS_PER_CHUNK, :_HALF_BLOCK] = _scale_shift_float32(radius * cosine, mean32, std32, fused)
        out[start : start + _ROWS_PER_CHUNK, _HALF_BLOCK:] = _scale_shift_float32(radius * sine, mean32, std32, fused)
    return out.reshape(-1)


def fill_blocks_float64(unit: np.ndarray, mean: float, std: float, fused: bool = True) -> np.ndarray:
    # ``fused`` is accepted for a signature like fill_blocks_float32's but not used: PyTorch's
    # 16-at-a-time double fill rounds once in every build (measured with ATEN_CPU_CAPABILITY=default).
    """Normal float64 samples from uniforms, 16 at a time, as PyTorch's generic ``normal_fill``.

    Same pairing as :func:`fill_blocks_float32`, with libm ``log``, ``cos``, ``sin`` in double
    and ``out = fma(r * cos(theta), std, mean)``.

    PyTorch counterpart: ``normal_fill_16<double>`` in ``ATen/native/cpu/DistributionTemplates.h``.
    """
    blocks = unit.reshape(-1, _BLOCK)
    radius = np.sqrt(-2.0 * _libm.log(1.0 - blocks[:, :_HALF_BLOCK]))
    theta = _TWO_PI_FLOAT64 * blocks[:, _HALF_BLOCK:]
    out = np.empty_like(blocks)
    out[:, :_HALF_BLOCK] = fma_float64(radius * _libm.cos(theta), std, mean)
    out[:, _HALF_BLOCK:] = fma_float64(radius * _libm.sin(theta), std, mean)
    return out.reshape(-1)


def scalar_pairs(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal pairs of PyTorch's scalar path, in float64.

        r = sqrt(-2 log1p(-u2)),  theta = 2 pi u1,  returned = r cos(theta),  cached = r sin(theta)

    Args:
        u1, u2: float64 uniforms, the first and second draw of each pair.

    Returns:
        ``(returned, cached)`` float64 arrays.

    PyTorch counterpart: ``at::normal_distribution<double>::operator()`` in ``ATen/core/DistributionsHelper.h``.
    """
    radius = np.sqrt(-2.0 * _libm.log1p(-u2))
    theta = _TWO_PI_FLOAT64 * u1
    return radius * _libm.cos(theta), radius * _libm.sin(theta)


def scale_shift_float64(standard: np.ndarray, mean: float, std: float, fused: bool = True) -> np.ndarray:
    """``fma(x, std, mean)`` in float64, PyTorch's ``transformation::normal`` (``x * std + mean`` unfused)."""
    if fused:
        return fma_float64(standard, std, mean)
    return standard * np.float64(std) + np.float64(mean)
