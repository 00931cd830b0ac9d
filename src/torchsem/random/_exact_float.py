"""Fused multiply-add with a single rounding, emulated exactly in numpy.

PyTorch's CPU kernels are compiled with FMA contraction enabled, so expressions such as
``x * (to - from) + from`` round once, not twice. numpy has no ``fma`` ufunc; these helpers
compute the correctly rounded result for finite inputs.
"""

from __future__ import annotations

import numpy as np

_FLOAT32_TIE_FREE_BITS = np.uint64((1 << 28) - 1)
_VELTKAMP_SPLITTER = np.float64(2.0**27 + 1.0)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's error-free sum: ``s = fl(a + b)`` and ``err`` with ``a + b = s + err`` exactly."""
    total = a + b
    b_virtual = total - a
    err = (a - (total - b_virtual)) + (b - b_virtual)
    return total, err


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's error-free product: ``p = fl(a * b)`` and ``err`` with ``a * b = p + err`` exactly."""
    product = a * b
    a_scaled = _VELTKAMP_SPLITTER * a
    a_high = a_scaled - (a_scaled - a)
    a_low = a - a_high
    b_scaled = _VELTKAMP_SPLITTER * b
    b_high = b_scaled - (b_scaled - b)
    b_low = b - b_high
    err = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
    return product, err


def _nudge_toward(value: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """One float64 ulp from ``value`` toward the sign of ``direction`` (unchanged where it is 0)."""
    target = np.where(direction > 0, np.inf, -np.inf)
    return np.where(direction != 0, np.nextafter(value, target), value)


def _add_round_to_odd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` rounded to odd: inexact sums land on the neighbour whose last bit is 1."""
    total, err = _two_sum(a, b)
    even = (total.view(np.uint64) & np.uint64(1)) == 0
    return np.where(even, _nudge_toward(total, err), total)


def fma_float32(a: np.ndarray, b: np.ndarray | np.floating, c: np.ndarray | np.floating) -> np.ndarray:
    """``a * b + c`` on float32 values with one rounding, like ``fmaf`` / ``vfmadd``.

    The product of two float32 values is exact in float64, so only the sum rounds. Rounding
    the float64 sum to float32 is a double rounding that can only go wrong when the float64
    sum sits exactly on a float32 tie; those rare lanes are redone with a round-to-odd sum
    (53 >= 24 + 2 bits makes round-to-odd then round-to-nearest exact).

    Args:
        a: float32 array.
        b, c: float32 arrays broadcastable to ``a``, or float32 scalars.

    Returns:
        float32 array ``RN_32(a * b + c)``.
    """
    product = np.multiply(a, b, dtype=np.float64)
    addend = np.asarray(c, dtype=np.float64)
    total = product + addend
    rounded = total.astype(np.float32)
    tie_candidates = (total.view(np.uint64) & _FLOAT32_TIE_FREE_BITS) == 0
    if tie_candidates.any():
        where = np.nonzero(tie_candidates)
        product_at = product[where]
        addend_at = np.broadcast_to(addend, total.shape)[where]
        exact = _add_round_to_odd(product_at, addend_at)
        rounded[where] = exact.astype(np.float32)
    return rounded


def fma_float64(a: np.ndarray, b: np.ndarray | np.floating | float, c: np.ndarray | np.floating | float) -> np.ndarray:
    """``a * b + c`` on float64 values with one rounding, like ``fma``.

    Boldo and Melquiond's emulation: with ``a*b = u_h + u_l`` and ``c + u_h = t_h + t_l``
    exactly, ``fma(a, b, c) = RN(t_h + RO(t_l + u_l))`` where RO rounds to odd.

    Args:
        a, b, c: float64 arrays or scalars (broadcastable), finite.

    Returns:
        float64 array ``RN_64(a * b + c)``.
    """
    a, b, c = np.broadcast_arrays(
        np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), np.asarray(c, dtype=np.float64)
    )
    product_high, product_low = _two_product(a, b)
    sum_high, sum_low = _two_sum(c, product_high)
    return sum_high + _add_round_to_odd(sum_low, product_low)
