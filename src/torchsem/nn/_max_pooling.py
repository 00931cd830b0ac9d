"""MaxPool1d/2d/3d: ``torch.nn.MaxPool{1,2,3}d`` on channels-first inputs, PyTorch's argmax and indices."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import InputError
from ._pooling import _check_bools, _check_geometry, _check_input, _check_output, _output_length

Shape = tuple[int, ...]


def _window_max(
    input: jax.Array, indices: Sequence[np.ndarray], valid: Sequence[np.ndarray], return_indices: bool
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """The maximum of each window over the last ``len(indices)`` axes, chosen as PyTorch's CPU kernel chooses.

    ``indices[j]`` is an ``(out_j, k_j)`` array of input positions along spatial axis ``j`` and
    ``valid[j]`` says which of them lie inside the input (padding is never chosen). Within a
    window, scanned in C order, PyTorch keeps the first strict maximum (``val > maxval``) unless
    a NaN comes, and every NaN replaces the current choice (``|| isnan(val)``): the last NaN
    wins. A window of ``-inf`` only picks its first element inside the input. The output is a
    gather of the chosen element, so the gradient reaches that element only (summed where
    windows overlap), as PyTorch's ``max_pool*_backward``. The indices are flat positions in
    each ``(N, C)`` plane's spatial extent, JAX's default integer type.
    """
    n = len(indices)
    lead = input.ndim - n
    spatial = input.shape[lead:]
    outs = tuple(i.shape[0] for i in indices)
    windows = input
    for j in reversed(range(n)):  # the last axis first, so the earlier axes keep their positions
        clipped = np.clip(indices[j], 0, max(spatial[j] - 1, 0))
        windows = jnp.take(windows, clipped.reshape(-1), axis=lead + j, mode="clip")
        windows = windows.reshape(windows.shape[: lead + j] + indices[j].shape + windows.shape[lead + j + 1 :])
    # (..., o1, k1, o2, k2, ...) -> (..., o1, o2, ..., k1 * k2 * ...)
    order = [lead + 2 * j for j in range(n)] + [lead + 2 * j + 1 for j in range(n)]
    windows = windows.transpose(tuple(range(lead)) + tuple(order))
    windows = windows.reshape((*windows.shape[: lead + n], int(np.prod([i.shape[1] for i in indices]))))
    mask = np.ones((1,) * 2 * n, bool)
    flat = np.zeros((1,) * 2 * n, np.int64)
    plane_strides = [int(np.prod(spatial[j + 1 :])) for j in range(n)]
    for j in range(n):
        shape = [1] * 2 * n
        shape[j], shape[n + j] = indices[j].shape
        mask = mask & valid[j].reshape(shape)
        flat = flat + (indices[j] * plane_strides[j]).reshape(shape)
    mask = np.broadcast_to(mask, outs + tuple(i.shape[1] for i in indices)).reshape((*outs, -1))
    flat = np.broadcast_to(flat, mask.shape[:-1] + tuple(i.shape[1] for i in indices)).reshape(mask.shape)

    chosen_from = jax.lax.stop_gradient(windows)
    if jnp.issubdtype(input.dtype, jnp.floating):
        lowest = jnp.array(-jnp.inf, input.dtype)
    else:
        lowest = jnp.array(jnp.iinfo(input.dtype).min, input.dtype)
    masked = jnp.where(mask, chosen_from, lowest)
    best = jnp.max(masked, axis=-1, keepdims=True)
    choice = jnp.argmax(mask & (masked == best), axis=-1)  # the first maximum inside the input
    if jnp.issubdtype(input.dtype, jnp.floating):
        nans = mask & jnp.isnan(chosen_from)
        last_nan = nans.shape[-1] - 1 - jnp.argmax(nans[..., ::-1], axis=-1)
        choice = jnp.where(jnp.any(nans, axis=-1), last_nan, choice)
    output = jnp.take_along_axis(windows, choice[..., None], axis=-1)[..., 0]
    if not return_indices:
        return output
    index_dtype = jax.dtypes.canonicalize_dtype(np.int64)
    table = jnp.broadcast_to(jnp.asarray(flat, index_dtype), windows.shape)
    return output, jnp.take_along_axis(table, choice[..., None], axis=-1)[..., 0]


def _reduce_window_max(input: jax.Array, kernel: Shape, stride: Shape, padding: Shape, out_shape: Shape) -> jax.Array:
    """The window maxima by ``lax.reduce_window`` (undilated windows), padding with ``-inf``.

    Its gradient is XLA's ``select_and_scatter_add``: each window sends its cotangent to its
    first maximum in C order (``>=`` keeps the element already chosen) and the windows add into
    the input in output order, which is PyTorch's ``max_pool*_backward`` loop bit for bit
    (measured; the gather in :func:`_window_max` adds overlapping windows in another order).
    Padding is only ever chosen from a window whose input elements are all ``-inf``, and a NaN
    does not stick as PyTorch's does: inputs with either take :func:`_window_max`.
    """
    n = len(kernel)
    lead = input.ndim - n
    pads = []
    for size, k, s, p, o in zip(input.shape[lead:], kernel, stride, padding, out_shape):
        # ceil_mode's last window may reach past the right padding; it is padded further with -inf.
        pads.append((p, max((o - 1) * s + k - size - p, 0)))
    return jax.lax.reduce_window(
        input,
        np.array(-np.inf, input.dtype),  # a concrete init value: JAX then knows the max monoid and its gradient
        jax.lax.max,
        (1,) * lead + tuple(kernel),
        (1,) * lead + tuple(stride),
        [(0, 0)] * lead + pads,
    )


def _has_special(input: jax.Array) -> jax.Array:
    """Whether the input holds a NaN or a ``-inf``: where XLA's window maximum is not PyTorch's choice."""
    return jnp.any(jnp.isnan(input) | (input == -jnp.inf))


def _branches(
    kernel: Shape, stride: Shape, padding: Shape, out_shape: Shape
) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
    """``(exact, fast)``: the gather of :func:`_window_max` and :func:`_reduce_window_max`, for one geometry."""

    def exact(x: jax.Array) -> jax.Array:
        spatial = x.shape[x.ndim - len(kernel) :]
        out = _window_max(x, *_sliding(spatial, out_shape, kernel, stride, padding, (1,) * len(kernel)), False)
        return out  # type: ignore[return-value]  # return_indices=False: the maxima alone

    def fast(x: jax.Array) -> jax.Array:
        return _reduce_window_max(x, kernel, stride, padding, out_shape)

    return exact, fast


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _undilated_max_pool(input: jax.Array, kernel: Shape, stride: Shape, padding: Shape, out_shape: Shape) -> jax.Array:
    """Undilated max pooling without indices: ``lax.reduce_window`` and its gradient unless the input is special.

    A ``custom_vjp`` because the choice between the two is a ``lax.cond`` on the input's values,
    which JAX cannot linearise around ``reduce_window``; forward and backward each run the one
    branch the values select.
    """
    return _undilated_max_pool_fwd(input, kernel, stride, padding, out_shape)[0]


def _undilated_max_pool_fwd(
    input: jax.Array, kernel: Shape, stride: Shape, padding: Shape, out_shape: Shape
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    special = _has_special(input)
    exact, fast = _branches(kernel, stride, padding, out_shape)
    return jax.lax.cond(special, exact, fast, input), (input, special)


def _undilated_max_pool_bwd(
    kernel: Shape,
    stride: Shape,
    padding: Shape,
    out_shape: Shape,
    residuals: tuple[jax.Array, jax.Array],
    ct: jax.Array,
) -> tuple[jax.Array]:
    input, special = residuals
    exact, fast = _branches(kernel, stride, padding, out_shape)
    grad = jax.lax.cond(
        special,
        lambda: jax.vjp(exact, input)[1](ct)[0],
        lambda: jax.vjp(fast, input)[1](ct)[0],
    )
    return (grad,)


_undilated_max_pool.defvjp(_undilated_max_pool_fwd, _undilated_max_pool_bwd)


def _max_pool(
    input: jax.Array,
    kernel: Shape,
    stride: Shape,
    padding: Shape,
    dilation: Shape,
    out_shape: Shape,
    return_indices: bool,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """PyTorch's max pooling: :func:`_reduce_window_max` where it is PyTorch's bit for bit, else :func:`_window_max`.

    ``reduce_window`` covers the common case (floating input without indices or dilation);
    it is also twice as fast on the CPU as the gather (``benchmarks/README.md``).
    """
    fast = (
        not return_indices
        and all(d == 1 for d in dilation)
        and jnp.issubdtype(input.dtype, jnp.floating)
        and input.size > 0
        and all(o > 0 for o in out_shape)
    )
    if fast:
        return _undilated_max_pool(input, tuple(kernel), tuple(stride), tuple(padding), tuple(out_shape))
    spatial = input.shape[input.ndim - len(kernel) :]
    return _window_max(input, *_sliding(spatial, out_shape, kernel, stride, padding, dilation), return_indices)


_MAX_LENGTHS = (
    "must either be a single int, or a tuple of",
    "must either be omitted, a single int, or a tuple of",
    "must either be a single int, or a tuple of",
    "must be either a single int, or a tuple of",
)


def _check_dtype(cls: str, input: jax.Array) -> None:
    if not (jnp.issubdtype(input.dtype, jnp.floating) or jnp.issubdtype(input.dtype, jnp.integer)):
        raise TypeError(f"{cls}: input must be floating point or integer, got {input.dtype}")


def _sliding(
    spatial: Sequence[int],
    out_shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per axis: each window's input positions ``i*stride - padding + k*dilation`` and which lie in the input."""
    indices, valid = [], []
    for size, o, k, s, p, d in zip(spatial, out_shape, kernel, stride, padding, dilation):
        positions = (np.arange(o) * s - p)[:, None] + np.arange(k)[None, :] * d
        indices.append(positions)
        valid.append((positions >= 0) & (positions < size))
    return indices, valid


class _MaxPoolNd(nn.Module):
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    return_indices: bool = False
    ceil_mode: bool = False

    _n = 0

    @nn.nowrap
    def _geometry(self) -> tuple[tuple[int, ...], ...]:
        return _check_geometry(
            f"max_pool{self._n}d", self.kernel_size, self.stride, self.padding, self.dilation, self._n, _MAX_LENGTHS
        )

    def __post_init__(self) -> None:
        _check_bools(type(self).__name__, self, "return_indices", "ceil_mode")
        self._geometry()  # PyTorch's argument errors, at construction
        super().__post_init__()

    def __call__(self, input: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Pool the last ``n`` axes of ``(N, C, *spatial)`` or ``(C, *spatial)``.

        Returns:
          the maxima (the input's dtype), and with ``return_indices`` also each maximum's flat
          index in its ``(N, C)`` plane (JAX's default int; PyTorch's int64).
        """
        input = jnp.asarray(input)
        n = self._n
        _check_input(f"max_pool{n}d", input, n, "max_pool3d_with_indices_out_cpu_template")
        _check_dtype(type(self).__name__, input)
        kernel, stride, padding, dilation = self._geometry()
        spatial = input.shape[-n:]
        out_shape = tuple(
            _output_length(size, k, s, p, self.ceil_mode, d)
            for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
        )
        _check_output(input, out_shape)
        return _max_pool(input, kernel, stride, padding, dilation, out_shape, self.return_indices)


_ONE_LENGTH = {
    "kernel_size": "must be an int, list of ints or tuple of ints of size 1",
    "stride": "must be None, an int, list of ints, or tuple of ints of size 1",
    "padding": "must be an int, list of ints or tuple of ints of size 1",
    "dilation": "must be an int, list of ints or tuple of ints of size 1",
}
_ONE_POSITION = {"kernel_size": 2, "stride": 3, "padding": 4, "dilation": 5}


def _one(value: Any, name: str) -> int | None:
    """``max_pool1d``'s reading of an int or a one-int list/tuple (``None``/``()`` for an omitted stride)."""
    if value is None or (name == "stride" and isinstance(value, (tuple, list)) and len(value) == 0):
        return None
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    for position, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            found = (
                f", but found element of type {type(item).__name__} at pos {position}"
                if isinstance(value, (tuple, list))
                else f", not {type(item).__name__}"
            )
            raise TypeError(
                f"max_pool1d(): argument '{name}' (position {_ONE_POSITION[name]}) must be tuple of ints" + found
            )
    if len(items) != 1:
        raise InputError(f"max_pool1d() {name} {_ONE_LENGTH[name]} but got size {len(items)}")
    return int(items[0])


class MaxPool1d(_MaxPoolNd):
    """The maximum over sliding windows of the last axis, as ``torch.nn.MaxPool1d``, on ``(N, C, L)`` / ``(C, L)``.

    Window ``i`` covers positions ``i*stride - padding + k*dilation`` for ``k < kernel_size``;
    positions outside the input are padding that is never chosen (as ``-inf``).
    ``L_out = floor_or_ceil((L + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``;
    in ceil mode a last window that would start in the right padding is dropped. Ties go to the
    first maximum in the window, a NaN to the last NaN (PyTorch's CPU kernel); the gradient
    reaches the chosen element only. ``return_indices`` also returns each maximum's position.

    Reproduces ``torch.nn.MaxPool1d(kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False)`` with ``max_pool1d``'s own error messages.
    """

    _n = 1

    @nn.nowrap
    def _geometry(self) -> tuple[tuple[int, ...], ...]:
        kernel = _one(self.kernel_size, "kernel_size")
        stride = _one(self.stride, "stride")
        padding = _one(self.padding, "padding")
        dilation = _one(self.dilation, "dilation")
        assert kernel is not None and padding is not None and dilation is not None
        stride = kernel if stride is None else stride
        if kernel <= 0:
            raise InputError(f"max_pool1d() kernel_size must be greater than zero, but got {kernel}")
        if stride <= 0:
            raise InputError(f"max_pool1d() stride must be greater than zero, but got {stride}")
        if padding < 0:
            raise InputError(f"max_pool1d() padding must be non-negative, but got {padding}")
        if padding > kernel // 2:
            raise InputError(
                "max_pool1d() padding should be at most half of kernel size, but got "
                f"padding={padding} and kernel_size={kernel}"
            )
        if dilation <= 0:
            raise InputError(f"max_pool1d() dilation must be greater than zero, but got {dilation}")
        return (kernel,), (stride,), (padding,), (dilation,)

    def __call__(self, input: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Pool the last axis of ``(N, C, L)`` or ``(C, L)`` (``(N, C, L_out)``, with indices if asked)."""
        input = jnp.asarray(input)
        if input.ndim not in (2, 3) or 0 in input.shape[-2:]:
            raise InputError(
                "max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size "
                f"for input, but got:{list(input.shape)}"
            )
        _check_dtype(type(self).__name__, input)
        (kernel,), (stride,), (padding,), (dilation,) = self._geometry()
        length = input.shape[-1]
        out_length = _output_length(length, kernel, stride, padding, self.ceil_mode, dilation)
        if out_length < 1:
            if self.return_indices:  # PyTorch takes the 2-D path, with its message, for indices
                _check_output(input[..., None, :], (1, out_length))
            raise InputError(f"max_pool1d() Invalid computed output size: {out_length}")
        return _window_max(
            input,
            *_sliding((length,), (out_length,), (kernel,), (stride,), (padding,), (dilation,)),
            self.return_indices,
        )


class MaxPool2d(_MaxPoolNd):
    """The maximum over sliding 2-D windows, as ``torch.nn.MaxPool2d``, on ``(N, C, H, W)`` / ``(C, H, W)``.

    :class:`MaxPool1d`'s rules on each axis; indices are ``h * W + w`` in each ``(N, C)`` plane.

    Reproduces ``torch.nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False)``.
    """

    _n = 2


class MaxPool3d(_MaxPoolNd):
    """The maximum over sliding 3-D windows, as ``torch.nn.MaxPool3d``, on ``(N, C, D, H, W)`` / ``(C, D, H, W)``.

    :class:`MaxPool1d`'s rules on each axis; indices are ``(d * H + h) * W + w`` in each plane.
    """

    _n = 3
