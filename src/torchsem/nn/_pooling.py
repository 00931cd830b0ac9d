"""AvgPool1d: ``torch.nn.AvgPool1d`` on channels-first (N, C, L) and (C, L) inputs."""

from __future__ import annotations

import numbers
from typing import Any, Literal, overload

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import InputError


@overload
def _one_int(value: Any, name: str, allow_none: Literal[False] = False) -> int: ...


@overload
def _one_int(value: Any, name: str, allow_none: bool) -> int | None: ...


def _one_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    """An int, or a one-element tuple/list of int (PyTorch accepts both for 1d pooling)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise InputError(f"avg_pool1d() argument '{name}' should contain one int (got {len(value)})")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"avg_pool1d(): argument '{name}' must be an int or a one-int tuple, got {type(value).__name__} {value!r}"
        )
    return int(value)


def _output_length(length: int, kernel_size: int, stride: int, padding: int, ceil_mode: bool, dilation: int = 1) -> int:
    """PyTorch's ``pooling_output_shape``: one spatial axis's output length."""
    span = length + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    # In ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def _divisors(
    length: int, out_length: int, kernel_size: int, stride: int, padding: int, count_include_pad: bool
) -> np.ndarray:
    """Each window's divisor along one axis, as PyTorch's CPU/CUDA kernels compute it.

    A window spans ``[i*stride - padding, i*stride - padding + kernel_size)``, clipped to the
    padded input ``[-padding, length + padding)``; with ``count_include_pad`` the divisor is
    that clipped span (so a ceil-mode window running past the right padding counts only the
    part inside it), otherwise the part inside the input. An N-d window's divisor is the
    product of its axes' divisors (the window is a box).
    """
    start = np.arange(out_length) * stride - padding
    end = np.minimum(start + kernel_size, length + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, length) - np.maximum(start, 0)


def _avg_pool(
    input: jax.Array,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    out_shape: tuple[int, ...],
    count_include_pad: bool,
    divisor_override: int | None,
) -> jax.Array:
    """Average pooling over the last ``len(kernel_size)`` axes, the geometry already checked.

    Sums each window in float32 at least (PyTorch's opmath for half/bfloat16) with a windowed
    sum over zero padding, then divides by the window's divisor (``divisor_override``, or the
    product of the per-axis divisors of :func:`_divisors`). Signed integer inputs are divided
    with truncation toward zero, as PyTorch does for int64.
    """
    dtype = input.dtype
    is_float = jnp.issubdtype(dtype, jnp.floating)
    lead = input.ndim - len(kernel_size)
    spatial = input.shape[lead:]
    # Enough zeros on the right for every (ceil-mode) window; zeros add nothing to a sum.
    pads = tuple(
        (p, max(p, (o - 1) * s + k - n - p)) for n, o, k, s, p in zip(spatial, out_shape, kernel_size, stride, padding)
    )
    accumulate = jnp.promote_types(dtype, jnp.float32) if is_float else dtype
    sums = jax.lax.reduce_window(
        input.astype(accumulate),
        np.zeros((), accumulate),  # concrete, so lax picks the differentiable windowed sum
        jax.lax.add,
        window_dimensions=(1,) * lead + tuple(kernel_size),
        window_strides=(1,) * lead + tuple(stride),
        padding=((0, 0),) * lead + pads,
    )[(Ellipsis, *(slice(0, o) for o in out_shape))]
    if divisor_override is not None:
        divisor: Any = np.asarray(divisor_override)
    else:
        divisor = np.ones((), np.int64)
        for n, o, k, s, p in zip(spatial, out_shape, kernel_size, stride, padding):
            divisor = np.multiply.outer(divisor, _divisors(n, o, k, s, p, count_include_pad))
        # One scalar divisor in the common case (no padding effects): a cheaper broadcast.
        divisor = divisor.reshape(-1)[0] if np.all(divisor == divisor.reshape(-1)[0]) else divisor
    if is_float:
        return (sums / jnp.asarray(divisor, accumulate)).astype(dtype)
    return jax.lax.div(sums, jnp.broadcast_to(jnp.asarray(divisor, accumulate), sums.shape))


class AvgPool1d(nn.Module):
    """Average over sliding windows of the last axis, as ``torch.nn.AvgPool1d``.

    For output position ``i`` the window covers ``x[i*stride - padding : i*stride - padding + kernel_size]``
    (zeros outside the input), and ``y[i] = sum(window) / d_i`` where ``d_i`` is the window's
    size within the padded input (``count_include_pad=True``) or within the input itself.
    ``L_out = floor_or_ceil((L + 2*padding - kernel_size) / stride) + 1``; in ceil mode a last
    window that would start in the right padding is dropped.

    Floating inputs are summed in float32 at least (half and bfloat16 as PyTorch's opmath);
    signed integer inputs are averaged with division truncated toward zero, as PyTorch does
    for int64 (PyTorch rejects int32, JAX's default integer; torchsem accepts it).

    Attributes:
      kernel_size: the window's size (an int or a one-int tuple).
      stride: the window's step; None means ``kernel_size``.
      padding: implicit zeros on both sides, at most ``kernel_size // 2``.
      ceil_mode: round the output length up instead of down.
      count_include_pad: count the padding zeros in the divisor.

    Reproduces ``torch.nn.AvgPool1d(kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True)`` on ``(N, C, L)`` and ``(C, L)`` inputs.
    """

    kernel_size: int | tuple[int]
    stride: int | tuple[int] | None = None
    padding: int | tuple[int] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True

    def __post_init__(self) -> None:
        kernel_size = _one_int(self.kernel_size, "kernel_size")
        stride = _one_int(self.stride, "stride", allow_none=True)
        padding = _one_int(self.padding, "padding")
        stride = kernel_size if stride is None else stride
        # Checked in PyTorch's order (pooling_output_shape, then avg_pool2d_shape_check), with its messages.
        if stride == 0:
            raise InputError("stride should not be zero")
        if padding < 0:
            raise InputError(f"pad must be non-negative, but got pad: {padding}")
        if padding > int(kernel_size / 2):  # C++ integer division truncates toward zero
            raise InputError(
                "pad should be at most half of effective kernel size, but got "
                f"pad={padding}, kernel_size={kernel_size} and dilation=1"
            )
        if kernel_size <= 0:
            raise InputError(f"kernel size should be greater than zero, but got kH: 1 kW: {kernel_size}")
        if stride < 0:
            raise InputError(f"stride should be greater than zero, but got dH: 1 dW: {stride}")
        for name in ("ceil_mode", "count_include_pad"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"AvgPool1d: {name} must be a bool, got {getattr(self, name)!r}")
        super().__post_init__()

    @nn.nowrap
    def _geometry(self) -> tuple[int, int, int]:
        kernel_size = _one_int(self.kernel_size, "kernel_size")
        stride = _one_int(self.stride, "stride", allow_none=True)
        padding = _one_int(self.padding, "padding")
        return kernel_size, kernel_size if stride is None else stride, padding

    def __call__(self, input: jax.Array) -> jax.Array:
        """Pool the last axis.

        Args:
          input: ``(N, C, L)`` or ``(C, L)``, floating point or signed integer.

        Returns:
          ``(N, C, L_out)`` or ``(C, L_out)``, the input's dtype.
        """
        input = jnp.asarray(input)
        if input.ndim not in (2, 3):
            raise InputError(
                f"AvgPool1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got {input.ndim}-D "
                f"shape {tuple(input.shape)}"
            )
        dtype = input.dtype
        is_float = jnp.issubdtype(dtype, jnp.floating)
        if not is_float and not jnp.issubdtype(dtype, jnp.signedinteger):
            raise TypeError(f"AvgPool1d: input must be floating point or a signed integer, got {dtype}")
        if any(d == 0 for d in input.shape[-2:]):
            raise InputError(
                "AvgPool1d: expected non-zero channel and length axes (only the batch axis may be "
                f"empty), got shape {tuple(input.shape)}"
            )
        kernel_size, stride, padding = self._geometry()
        length = input.shape[-1]
        out_length = _output_length(length, kernel_size, stride, padding, self.ceil_mode)
        if out_length < 1:
            channels = input.shape[-2]
            raise InputError(
                f"Given input size: ({channels}x1x{length}). Calculated output size: "
                f"({channels}x1x{out_length}). Output size is too small"
            )

        return _avg_pool(input, (kernel_size,), (stride,), (padding,), (out_length,), self.count_include_pad, None)


# -- N-d geometry: PyTorch's argument and shape checks, shared by AvgPool2d/3d and MaxPool2d/3d --

_AXES = {1: ("W",), 2: ("H", "W"), 3: ("T", "H", "W")}
_COUNT = {1: "one", 2: "two", 3: "three"}
_POSITION = {"kernel_size": 2, "stride": 3, "padding": 4, "dilation": 5}


def _int_tuple(value: Any, n: int, op: str, name: str, length_message: str) -> tuple[int, ...] | None:
    """An int or a tuple/list of 1 or ``n`` ints as an ``n``-tuple (``None`` or ``()`` for an omitted stride)."""
    if value is None or (name == "stride" and isinstance(value, (tuple, list)) and len(value) == 0):
        return None
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    for position, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            where = (
                ""
                if not isinstance(value, (tuple, list))
                else f", but found element of type {type(item).__name__} at pos {position}"
            )
            raise TypeError(
                f"{op}(): argument '{name}' (position {_POSITION[name]}) must be tuple of ints"
                + (where or f", not {type(item).__name__}")
            )
    if len(items) not in (1, n):
        raise InputError(f"{op}: {name} {length_message} {_COUNT[n]} ints")
    return tuple(int(v) for v in items) * (n if len(items) == 1 else 1)


def _labelled(prefix: str, values: tuple[int, ...]) -> str:
    """PyTorch's ``kH: 2 kW: 2`` / ``dT: 1 dH: 1 dW: 1`` listing."""
    return " ".join(f"{prefix}{axis}: {v}" for axis, v in zip(_AXES[len(values)], values))


def _check_geometry(
    op: str,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    n: int,
    length_messages: tuple[str, str, str, str],
) -> tuple[tuple[int, ...], ...]:
    """PyTorch's argument checks of ``max_pool{n}d`` / ``avg_pool{n}d``, in its order, with its messages.

    Returns ``(kernel_size, stride, padding, dilation)`` as ``n``-tuples.
    """
    kernel = _int_tuple(kernel_size, n, op, "kernel_size", length_messages[0])
    assert kernel is not None
    strides = _int_tuple(stride, n, op, "stride", length_messages[1])
    pads = _int_tuple(padding, n, op, "padding", length_messages[2])
    dilations = _int_tuple(dilation, n, op, "dilation", length_messages[3])
    assert pads is not None and dilations is not None
    strides = kernel if strides is None else strides
    for k, s, p, d in zip(kernel, strides, pads, dilations):  # pooling_output_shape, axis by axis
        if s == 0:
            raise InputError("stride should not be zero")
        if p < 0:
            raise InputError(f"pad must be non-negative, but got pad: {p}")
        if p > int(((k - 1) * d + 1) / 2):  # C++ integer division truncates toward zero
            raise InputError(
                "pad should be at most half of effective kernel size, but got "
                f"pad={p}, kernel_size={k} and dilation={d}"
            )
    if any(k <= 0 for k in kernel):
        raise InputError(f"kernel size should be greater than zero, but got {_labelled('k', kernel)}")
    if any(s <= 0 for s in strides):
        raise InputError(f"stride should be greater than zero, but got {_labelled('d', strides)}")
    if any(d <= 0 for d in dilations):
        raise InputError(f"dilation should be greater than zero, but got {_labelled('dilation', dilations)}")
    if any(p > k // 2 for k, p in zip(kernel, pads)):
        if n == 2:
            raise InputError(
                "pad should be smaller than or equal to half of kernel size, but got "
                f"padW = {pads[1]}, padH = {pads[0]}, kW = {kernel[1]}, kH = {kernel[0]}"
            )
        raise InputError(
            "pad should be smaller than or equal to half of kernel size, but got "
            f"kT: {kernel[0]} kW: {kernel[2]} kH: {kernel[1]} padT: {pads[0]} padW: {pads[2]} "
            f"padH: {pads[1]}"
        )
    return kernel, strides, pads, dilations


def _check_input(op: str, input: jax.Array, n: int, cpu_template: str) -> None:
    """PyTorch's rank and empty-axis checks of ``max_pool{n}d`` / ``avg_pool{n}d`` (n = 2, 3)."""
    shape = list(input.shape)
    if op == "avg_pool2d" and input.ndim < 3:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-max(input.ndim, 1)}, "
            f"{max(input.ndim, 1) - 1}], but got -3)"
        )
    if op != "avg_pool2d" and input.ndim not in (n + 1, n + 2):
        raise InputError(f"non-empty {n + 1}D or {n + 2}D (batch mode) tensor expected for input")
    non_batch = shape[1:] if input.ndim == n + 2 else shape
    if n == 2 and (input.ndim not in (3, 4) or 0 in non_batch):
        raise InputError(
            f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:{shape}"
        )
    if n == 3 and 0 in non_batch:
        raise InputError(
            f"{cpu_template}(): Expected input's non-batch dimensions to have positive length, but "
            f"input has a shape of {shape} and non-batch dimension 0 has length zero!"
        )  # PyTorch always says 0


def _check_output(input: jax.Array, out_shape: tuple[int, ...]) -> None:
    if any(o < 1 for o in out_shape):
        n = len(out_shape)
        channels = input.shape[-n - 1]
        given = "x".join(str(v) for v in (channels, *input.shape[-n:]))
        calculated = "x".join(str(v) for v in (channels, *out_shape))
        raise InputError(
            f"Given input size: ({given}). Calculated output size: ({calculated}). Output size is too small"
        )


def _check_bools(cls: str, module: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(module, name), (bool, np.bool_)):
            raise TypeError(f"{cls}: {name} must be a bool, got {getattr(module, name)!r}")


_AVG_LENGTHS = {
    2: (
        "must either be a single int, or a tuple of",
        "must either be omitted, a single int, or a tuple of",
        "must either be a single int, or a tuple of",
        "",
    ),
    3: (
        "must be a single int, or a tuple of",
        "must be omitted, a single int, or a tuple of",
        "must be a single int, or a tuple of",
        "",
    ),
}


class _AvgPoolNd(nn.Module):
    """Average pooling over the last 2 or 3 axes (``torch.nn.AvgPool2d`` / ``AvgPool3d``)."""

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    _n = 0

    @property
    def _op(self) -> str:
        return f"avg_pool{self._n}d"

    @nn.nowrap
    def _geometry(self) -> tuple[tuple[int, ...], ...]:
        return _check_geometry(self._op, self.kernel_size, self.stride, self.padding, 1, self._n, _AVG_LENGTHS[self._n])

    def __post_init__(self) -> None:
        _check_bools(type(self).__name__, self, "ceil_mode", "count_include_pad")
        self._geometry()  # PyTorch's argument errors, at construction
        override = self.divisor_override
        if override is not None:
            if isinstance(override, bool) or not isinstance(override, numbers.Integral):
                raise TypeError(f"{type(self).__name__}: divisor_override must be an int or None, got {override!r}")
            if override == 0:
                raise InputError("divisor must be not zero")
        super().__post_init__()

    def __call__(self, input: jax.Array) -> jax.Array:
        """Pool the last ``n`` axes of ``(N, C, *spatial)`` or ``(C, *spatial)``; the input's dtype."""
        input = jnp.asarray(input)
        n = self._n
        _check_input(self._op, input, n, self._op)
        if not jnp.issubdtype(input.dtype, jnp.floating) and not jnp.issubdtype(input.dtype, jnp.signedinteger):
            raise TypeError(
                f"{type(self).__name__}: input must be floating point or a signed integer, got {input.dtype}"
            )
        kernel, stride, padding, _ = self._geometry()
        spatial = input.shape[-n:]
        if n == 3 and any(size < k for size, k in zip(spatial, kernel)):
            raise InputError(
                f"input image ({_labelled('', spatial)}) smaller than kernel size ({_labelled('k', kernel)})"
            )
        out_shape = tuple(
            _output_length(size, k, s, p, self.ceil_mode) for size, k, s, p in zip(spatial, kernel, stride, padding)
        )
        _check_output(input, out_shape)
        return _avg_pool(input, kernel, stride, padding, out_shape, self.count_include_pad, self.divisor_override)


class AvgPool2d(_AvgPoolNd):
    """Average over sliding 2-D windows, as ``torch.nn.AvgPool2d``, on ``(N, C, H, W)`` / ``(C, H, W)``.

    The same rules as :class:`AvgPool1d` on each axis (ceil mode drops a last window that would
    start in the right padding; the divisor is the window's box inside the padded input, or
    inside the input without ``count_include_pad``), or ``divisor_override`` for every window.

    Reproduces ``torch.nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)``.
    """

    _n = 2


class AvgPool3d(_AvgPoolNd):
    """Average over sliding 3-D windows, as ``torch.nn.AvgPool3d``, on ``(N, C, D, H, W)`` / ``(C, D, H, W)``.

    As :class:`AvgPool2d`; PyTorch's 3-D version also refuses an input smaller than the kernel on
    any axis even where the padding would make room (``input image ... smaller than kernel
    size``), and so does torchsem.
    """

    _n = 3
