"""The C math library's double-precision ``log``, ``log1p``, ``sin`` and ``cos``, elementwise.

PyTorch's float64 (and scalar-path) normal sampling calls the platform libm. numpy ships its
own SIMD ``log``/``log1p`` whose last bit differs from glibc in a fraction of a percent of
inputs, so bit-exactness needs the libm itself. CPython's ``math`` functions call the same
libm that PyTorch links against (for positive finite arguments they add no processing), so
they are mapped over the array with ``np.frompyfunc``: a C loop, about 50-100 ns per element.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_libm_log = np.frompyfunc(math.log, 1, 1)
_libm_log1p = np.frompyfunc(math.log1p, 1, 1)
_libm_sin = np.frompyfunc(math.sin, 1, 1)
_libm_cos = np.frompyfunc(math.cos, 1, 1)


def _apply(function: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    return function(x).astype(np.float64)


def log(x: np.ndarray) -> np.ndarray:
    """libm ``log`` of each element of a float64 array (entries > 0)."""
    return _apply(_libm_log, x)


def log1p(x: np.ndarray) -> np.ndarray:
    """libm ``log1p`` of each element of a float64 array (entries > -1)."""
    return _apply(_libm_log1p, x)


def sin(x: np.ndarray) -> np.ndarray:
    """libm ``sin`` of each element of a float64 array (finite entries)."""
    return _apply(_libm_sin, x)


def cos(x: np.ndarray) -> np.ndarray:
    """libm ``cos`` of each element of a float64 array (finite entries)."""
    return _apply(_libm_cos, x)
