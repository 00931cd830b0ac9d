"""AdaptiveAvgPool1d/2d/3d and AdaptiveMaxPool1d/2d/3d: PyTorch's uneven, overlapping bins."""

from __future__ import annotations

import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import InputError
from ._max_pooling import _window_max


def _bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin ``i`` of ``out`` over ``size`` positions: ``[floor(i*size/out), ceil((i+1)*size/out))``.

    Returns the ``(out, k)`` positions (``k`` the widest bin, clipped into the input), which of
    them belong to their bin, and each bin's width.
    """
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    width = end - start
    k = int(width.max()) if out else 0
    positions = start[:, None] + np.arange(k)[None, :]
    return np.minimum(positions, size - 1), positions < end[:, None], width


def _output_sizes(cls: str, op: str, output_size: Any, n: int) -> tuple[int | None, ...]:
    """``output_size`` as ``n`` entries (None: keep that axis), PyTorch's type errors."""
    if n == 1:
        items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
        for position, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, numbers.Integral):
                found = (
                    f", but found element of type {type(item).__name__} at pos {position}"
                    if isinstance(output_size, (tuple, list))
                    else f", not {type(item).__name__}"
                )
                raise TypeError(f"{op}(): argument 'output_size' (position 2) must be tuple of ints{found}")
        if len(items) != 1:
            raise InputError(f"{op}() argument 'output_size' should contain one int (got {len(items)})")
        return (int(items[0]),)
    if isinstance(output_size, numbers.Integral) and not isinstance(output_size, bool):
        return (int(output_size),) * n
    if not isinstance(output_size, (tuple, list)):
        raise TypeError(f"object of type '{type(output_size).__name__}' has no len()")
    for item in output_size:
        if item is not None and (isinstance(item, bool) or not isinstance(item, numbers.Integral)):
            raise TypeError(f"{cls}: output_size entries must be ints or None, got {item!r}")
    return tuple(None if item is None else int(item) for item in output_size)


class _AdaptivePoolNd(nn.Module):
    output_size: Any

    _n = 0
    _kind = ""

    @property
    def _op(self) -> str:
        return f"adaptive_{self._kind}_pool{self._n}d"

    def __post_init__(self) -> None:
        _output_sizes(type(self).__name__, self._op, self.output_size, self._n)  # type errors at construction
        super().__post_init__()

    @nn.nowrap
    def _resolve(self, input: jax.Array) -> tuple[int, ...]:
        """PyTorch's checks of the output size and input, in its order; the output's spatial shape."""
        n, op, shape = self._n, self._op, list(input.shape)
        requested = _output_sizes(type(self).__name__, op, self.output_size, n)
        if n == 1:
            if input.ndim not in (2, 3):
                raise InputError(
                    f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for argument "
                    f"#1 'self' (while checking arguments for {op})"
                )
        elif isinstance(self.output_size, (tuple, list)) and len(requested) >= input.ndim:
            # torch.nn.modules.utils._list_with_default, only for a tuple
            raise ValueError(f"Input dimension should be at least {len(requested) + 1}")
        sizes = tuple(shape[input.ndim - len(requested) + j] if v is None else v for j, v in enumerate(requested))
        if self._kind == "avg":
            if len(sizes) != n:
                raise InputError(f"{op}: output_size must be {n}")
            if any(v < 0 for v in sizes):
                shown = (
                    f"1, {sizes[0]}"
                    if n == 1
                    else f"{sizes[0]}, {sizes[1]}"
                    if n == 2
                    else f"{sizes[0]}, {sizes[1]},{sizes[2]}"
                )  # sic: PyTorch's 3-D text has no space
                name = "adaptive_avg_pool2d" if n == 1 else op  # 1-D goes through the 2-D op
                raise InputError(
                    f"{name}: elements of output_size must be greater than or equal to 0 but received {{{shown}}}"
                )
        elif len(sizes) != n:
            raise InputError(f"{op}(): internal error: output_size.size() must be {n}")
        if n > 1 and input.ndim not in (n + 1, n + 2):
            colon = ":" if self._kind == "max" else ""
            raise InputError(f"{op}(): Expected {n + 1}D or {n + 2}D tensor, but got{colon} {shape}")
        if self._kind == "avg" and n == 1:  # checked by the 2-D op on (..., C, 1, L)
            name, checked, first = "adaptive_avg_pool2d", [*shape[:-1], 1, *shape[-1:]], input.ndim - 1
        elif self._kind == "avg" and n == 2:
            name, checked, first = op, shape, input.ndim - 2
        else:
            name, checked, first = op, shape, 1
        for axis in range(first, len(checked)):
            if checked[axis] == 0:
                raise InputError(
                    f"{name}(): Expected input to have non-zero size for non-batch dimensions, but input "
                    f"has sizes {checked} with dimension {axis} being empty"
                )
        if any(v < 0 for v in sizes):  # max: PyTorch fails allocating the output
            out = shape[:-n] + ([1] if n == 1 else []) + list(sizes)
            raise InputError(f"Trying to create tensor with negative dimension {min(sizes)}: {out}")
        if not jnp.issubdtype(input.dtype, jnp.floating):
            raise InputError(f'"{op}" not implemented for {input.dtype} input (floating point only, as PyTorch)')
        return sizes

    @nn.nowrap
    def _windows(self, input: jax.Array, sizes: tuple[int, ...]) -> tuple[list, list, list]:
        bins = [_bins(size, out) for size, out in zip(input.shape[-self._n :], sizes)]
        return [b[0] for b in bins], [b[1] for b in bins], [b[2] for b in bins]


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    _kind = "avg"

    def __call__(self, input: jax.Array) -> jax.Array:
        """The mean of each bin over the last ``n`` axes; the input's dtype (float32 sums for half types)."""
        input = jnp.asarray(input)
        sizes = self._resolve(input)
        n, lead = self._n, input.ndim - self._n
        if 0 in sizes or input.size == 0:
            return jnp.zeros(input.shape[:lead] + sizes, input.dtype)
        positions, valid, widths = self._windows(input, sizes)
        accumulate = jnp.promote_types(input.dtype, jnp.float32)
        x = input.astype(accumulate)
        for j in reversed(range(n)):  # (..., o1, k1, o2, k2, ...), zeros outside each bin
            taken = jnp.take(x, positions[j].reshape(-1), axis=lead + j, mode="clip")
            taken = taken.reshape(taken.shape[: lead + j] + positions[j].shape + taken.shape[lead + j + 1 :])
            mask_shape = [1] * taken.ndim
            mask_shape[lead + j], mask_shape[lead + j + 1] = valid[j].shape
            x = jnp.where(valid[j].reshape(mask_shape), taken, jnp.zeros((), accumulate))
        sums = jnp.sum(x, axis=tuple(lead + 2 * j + 1 for j in range(n)))
        count = np.ones((), np.int64)
        for w in widths:
            count = np.multiply.outer(count, w)
        return (sums / jnp.asarray(count, accumulate)).astype(input.dtype)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    return_indices: bool = False

    _kind = "max"

    def __post_init__(self) -> None:
        if not isinstance(self.return_indices, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: return_indices must be a bool, got {self.return_indices!r}")
        super().__post_init__()

    def __call__(self, input: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        """The maximum of each bin (PyTorch's tie and NaN rules), with its flat index if asked."""
        input = jnp.asarray(input)
        sizes = self._resolve(input)
        lead = input.ndim - self._n
        if 0 in sizes or input.size == 0:
            empty = jnp.zeros(input.shape[:lead] + sizes, input.dtype)
            index_dtype = jax.dtypes.canonicalize_dtype(np.int64)
            return (empty, jnp.zeros(empty.shape, index_dtype)) if self.return_indices else empty
        positions, valid, _ = self._windows(input, sizes)
        return _window_max(input, positions, valid, self.return_indices)


_DOC = """{what} of each bin, as ``torch.nn.{cls}``, on ``{layouts}``.

    Bin ``i`` of an axis of size ``L`` pooled to ``out`` covers
    ``[floor(i*L/out), ceil((i+1)*L/out))``: uneven, overlapping bins when ``out`` does not
    divide ``L``. ``output_size`` is an int or {tuple_text}; ``0`` gives an empty output.{extra}
    """


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    _n = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    _n = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    _n = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    _n = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    _n = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    _n = 3


_LAYOUTS = {1: "(N, C, L)`` / ``(C, L)", 2: "(N, C, H, W)`` / ``(C, H, W)", 3: "(N, C, D, H, W)`` / ``(C, D, H, W)"}
for _cls in (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
):
    _n = _cls._n
    _max = _cls._kind == "max"
    _cls.__doc__ = _DOC.format(
        what="The maximum" if _max else "The mean",
        cls=_cls.__name__,
        layouts=_LAYOUTS[_n],
        tuple_text="a one-int tuple" if _n == 1 else f"a tuple of {_n} ints or None (None keeps that axis)",
        extra=(
            " Ties go to the first maximum of the bin, a NaN to the last NaN, as PyTorch's CPU kernel; "
            "``return_indices`` also returns each maximum's flat index in its ``(N, C)`` plane."
            if _max
            else " Sums are float32 at least."
        ),
    )
