"""Argument checks shared by the Generator's sampling methods.

Messages name the offending argument first and then quote PyTorch's own message where
PyTorch has one, so a failure reads the same as it would in torch.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT64 = np.dtype(np.int64)
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

Shape = int | Sequence[int]


def _torch_number(value: float) -> str:
    """A number as C++ ``ostream`` prints it in PyTorch's messages (``2``, ``0.1``, ``3e+38``)."""
    return f"{value:g}"


def as_shape(shape: Shape) -> tuple[int, ...]:
    """Normalise ``shape`` (an int or a sequence of ints) to a tuple, refusing negatives."""
    dims: tuple[int, ...]
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        dims = (int(shape),)
    else:
        try:
            # A bool reaches here on purpose: iterating it raises the TypeError handled below.
            dims = tuple(operator.index(d) for d in shape)  # type: ignore[union-attr]
        except TypeError as error:
            raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from error
    for dim in dims:
        if dim < 0:
            listed = ", ".join(str(d) for d in dims)
            raise ValueError(f"shape: Trying to create tensor with negative dimension {dim}: [{listed}]")
    return dims


def as_dtype(dtype: object, allowed: tuple[np.dtype, ...], method: str) -> np.dtype:
    """Resolve ``dtype`` and refuse, with NotImplementedError, the dtypes ``method`` cannot reproduce."""
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as error:
        raise TypeError(f"dtype: {dtype!r} is not a numpy dtype") from error
    if resolved not in allowed:
        names = ", ".join(d.name for d in allowed)
        raise NotImplementedError(
            f"dtype={resolved.name} is not supported by Generator.{method} (bit-exact dtypes: {names})"
        )
    return resolved


def check_finite_real(name: str, value: float) -> float:
    """``value`` as a Python float; refuses non-numbers (finiteness is checked by the caller)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_uniform_bounds(low: float, high: float, dtype: np.dtype) -> None:
    """PyTorch's ``check_uniform_bounds``: both bounds representable, ``low <= high``, finite width."""
    finfo = np.finfo(dtype)
    type_name = "float" if dtype == np.float32 else "double"
    for name, torch_name, value in (("low", "from", low), ("high", "to", high)):
        if not (-float(finfo.max) <= value <= float(finfo.max)):
            raise ValueError(f"{name}={value!r}: {torch_name} is out of bounds for {type_name}")
    if low > high:
        raise ValueError(
            f"low must be <= high, got low={low!r}, high={high!r}: uniform_ expects to return a [from, to) "
            f"range, but found from={_torch_number(low)} > to={_torch_number(high)}"
        )
    if high - low > float(finfo.max):
        raise ValueError(
            f"high - low must not exceed the dtype's max, got low={low!r}, high={high!r}: uniform_ expects "
            f"to-from <= std::numeric_limits<{type_name.capitalize()}>::max(), but found "
            f"to={_torch_number(high)} and from={_torch_number(low)} which result in to-from to exceed the limit"
        )


def check_std(std: float) -> None:
    """PyTorch's ``CHECK_NORMAL_STD``: ``std >= 0`` (NaN refused)."""
    if not std >= 0.0:
        raise ValueError(f"std must be >= 0, got std={std!r}: normal expects std >= 0.0, but found std {std:g}")


def check_probability(p: float) -> None:
    """PyTorch's ``bernoulli_`` check: ``0 <= p <= 1``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got p={p!r}: bernoulli_ expects p to be in [0, 1], but got p={p:g}")


def check_int_range(low: int, high: int) -> None:
    """PyTorch's ``random_from_to`` checks for int64: ``low < high``, both within int64."""
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise ValueError(f"{name}={value} does not fit in int64: Overflow when unpacking long long")
    if low >= high:
        raise ValueError(
            f"low must be < high, got low={low}, high={high}: random_ expects 'from' to be less than 'to', "
            f"but got from={low} >= to={high}"
        )


def element_count(shape: tuple[int, ...]) -> int:
    """Number of elements of ``shape``."""
    return math.prod(shape)
