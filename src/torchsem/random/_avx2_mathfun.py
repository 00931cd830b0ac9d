"""Float32 ``log`` and ``sincos`` exactly as PyTorch's AVX2 normal kernel evaluates them.

PyTorch fills float32 normals of 16+ elements with ``log256_ps`` and ``sincos256_ps`` from
``ATen/native/cpu/avx_mathfun.h`` (Cephes polynomials by Pommier and Garberoglio). The
kernel is compiled with ``-mfma`` and FMA contraction on, so some multiply-add pairs round
once. Which pairs GCC fused was established by experiment against torch 2.13's CPU wheel:
every Horner step, ``y*z + e*q1`` in the log (the ``y*z`` product is the one fused), the
``y*DP3`` reduction step, and ``c*z - z/2`` in the cosine polynomial. Pairs whose product is
exact (``e*q2``, ``y*DP1``, ``y*DP2``, ``z*0.5``) give the same bits either way.

Every operation here is a float32 IEEE operation (or an exactly emulated FMA), so results
are bit-identical to the vector instructions.
"""

from __future__ import annotations

import numpy as np

from ._exact_float import fma_float32

_f32 = np.float32

_MIN_NORMAL_FLOAT32 = np.array(0x00800000, dtype=np.uint32).view(np.float32)
_EXPONENT_BITS = np.uint32(0x7F800000)
_HALF_BITS = np.array(0.5, dtype=np.float32).view(np.uint32)
_SQRT_HALF = _f32(0.707106781186547524)
_LOG_POLY = tuple(
    _f32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
# ln 2 split into a short head (exact when multiplied by the exponent) and a tail.
_LN2_TAIL = _f32(-2.12194440e-4)
_LN2_HEAD = _f32(0.693359375)

_FOUR_OVER_PI = _f32(1.27323954473516)
# -pi/4 split into three parts (Cody-Waite), the first two exact under small multipliers.
_MINUS_PI_4_PARTS = (_f32(-0.78515625), _f32(-2.4187564849853515625e-4), _f32(-3.77489497744594108e-8))
_SIN_POLY = (_f32(-1.9515295891e-4), _f32(8.3321608736e-3), _f32(-1.6666654611e-1))
_COS_POLY = (_f32(2.443315711809948e-005), _f32(-1.388731625493765e-003), _f32(4.166664568298827e-002))


def log_float32(x: np.ndarray) -> np.ndarray:
    """Natural log of positive float32 values, bit-identical to ``log256_ps``.

    With ``x = m * 2**e`` and ``m`` in ``[sqrt(1/2), sqrt(2))``, ``t = m - 1``:

        log x = t - t**2 / 2 + t**3 * P(t) + e * ln 2,

    ``P`` a degree-8 Cephes polynomial and ``ln 2`` split into head + tail.

    Args:
        x: float32 array, entries > 0 (the kernel only ever feeds ``1 - u`` with u in [0, 1)).

    Returns:
        float32 array of logarithms.

    PyTorch counterpart: ``log256_ps`` in ``ATen/native/cpu/avx_mathfun.h``.
    """
    x = np.maximum(x, _MIN_NORMAL_FLOAT32)
    bits = x.view(np.uint32)
    exponent = ((bits >> np.uint32(23)).astype(np.int32) - 0x7F).astype(np.float32) + _f32(1)
    mantissa = ((bits & ~_EXPONENT_BITS) | _HALF_BITS).view(np.float32)
    below_sqrt_half = mantissa < _SQRT_HALF
    exponent = exponent - below_sqrt_half.astype(np.float32)
    t = (mantissa - _f32(1)) + np.where(below_sqrt_half, mantissa, _f32(0))

    t_squared = t * t
    poly = fma_float32(t, _LOG_POLY[0], _LOG_POLY[1])
    for coefficient in _LOG_POLY[2:]:
        poly = fma_float32(poly, t, coefficient)
    poly = poly * t
    poly = fma_float32(poly, t_squared, exponent * _LN2_TAIL)
    poly = poly - t_squared * _f32(0.5)
    return (t + poly) + exponent * _LN2_HEAD


def sincos_float32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sine and cosine of non-negative float32 values, bit-identical to ``sincos256_ps``.

    The octant ``j`` (even, from ``x * 4/pi``) reduces ``x`` to ``r = x - j*pi/4`` in
    ``[-pi/4, pi/4]``; with ``z = r**2``

        sin r ~ r + r z S(z),    cos r ~ 1 - z/2 + z**2 C(z),

    and ``j`` picks which polynomial serves as sine or cosine and their signs.

    Args:
        x: float32 array, entries >= 0 (the kernel feeds ``2*pi*u`` with u in [0, 1)).

    Returns:
        ``(sin, cos)`` float32 arrays.

    PyTorch counterpart: ``sincos256_ps`` in ``ATen/native/cpu/avx_mathfun.h``.
    """
    x = np.abs(x)
    octant = (x * _FOUR_OVER_PI).astype(np.int32)
    octant = (octant + 1) & ~1
    octant_f = octant.astype(np.float32)
    r = x + octant_f * _MINUS_PI_4_PARTS[0]
    r = r + octant_f * _MINUS_PI_4_PARTS[1]
    r = fma_float32(octant_f, _MINUS_PI_4_PARTS[2], r)

    z = r * r
    cos_poly = fma_float32(z, _COS_POLY[0], _COS_POLY[1])
    cos_poly = fma_float32(cos_poly, z, _COS_POLY[2])
    cos_poly = cos_poly * z
    cos_poly = fma_float32(cos_poly, z, -(z * _f32(0.5)))
    cos_poly = cos_poly + _f32(1)

    sin_poly = fma_float32(z, _SIN_POLY[0], _SIN_POLY[1])
    sin_poly = fma_float32(sin_poly, z, _SIN_POLY[2])
    sin_poly = sin_poly * z
    sin_poly = fma_float32(sin_poly, r, r)

    sine_is_sin_poly = (octant & 2) == 0
    # The kernel blends the two polynomials by masked adds, so a -0.0 lane comes out +0.0.
    sine = np.where(sine_is_sin_poly, sin_poly, cos_poly) + _f32(0)
    cosine = np.where(sine_is_sin_poly, cos_poly, sin_poly) + _f32(0)
    sine_negative = ((octant & 4) != 0).astype(np.uint32) << np.uint32(31)
    cosine_negative = ((~(octant - 2) & 4) != 0).astype(np.uint32) << np.uint32(31)
    sine = (sine.view(np.uint32) ^ sine_negative).view(np.float32)
    cosine = (cosine.view(np.uint32) ^ cosine_negative).view(np.float32)
    return sine, cosine
