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
        raise TypeError(f"avg_pool1d(): argument '{name}' must be an int or a one-int tuple, "
                        f"got {type(value).__name__} {value!r}")
    return int(value)


def _output_length(length: int, kernel_size: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape`` with dilation 1."""
    span = length + 2 * padding - kernel_size
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    # In ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def _divisors(length: int, out_length: int, kernel_size: int, stride: int, padding: int,
              count_include_pad: bool) -> np.ndarray:
    """Each window's divisor, as PyTorch's CPU/CUDA kernels compute it.

    A window spans ``[i*stride - padding, i*stride - padding + kernel_size)``, clipped to the
    padded input ``[-padding, length + padding)``; with ``count_include_pad`` the divisor is
    that clipped span (so a ceil-mode window running past the right padding counts only the
    part inside it), otherwise the part inside the input.
    """
    start = np.arange(out_length) * stride - padding
    end = np.minimum(start + kernel_size, length + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, length) - np.maximum(start, 0)


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
            raise InputError("pad should be at most half of effective kernel size, but got "
                             f"pad={padding}, kernel_size={kernel_size} and dilation=1")
        if kernel_size <= 0:
            raise InputError(f"kernel size should be greater than zero, but got kH: 1 kW: {kernel_size}")
        if stride < 0:
            raise InputError(f"stride should be greater than zero, but got dH: 1 dW: {stride}")
        for name in ("ceil_mode", "count_include_pad"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"AvgPool1d: {name} must be a bool, got {getattr(self, name)!r}")
        super().__post_init__()

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
            raise InputError(f"AvgPool1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got {input.ndim}-D "
                             f"shape {tuple(input.shape)}")
        dtype = input.dtype
        is_float = jnp.issubdtype(dtype, jnp.floating)
        if not is_float and not jnp.issubdtype(dtype, jnp.signedinteger):
            raise TypeError(f"AvgPool1d: input must be floating point or a signed integer, got {dtype}")
        if any(d == 0 for d in input.shape[-2:]):
            raise InputError("AvgPool1d: expected non-zero channel and length axes (only the batch axis may be "
                             f"empty), got shape {tuple(input.shape)}")
        kernel_size, stride, padding = self._geometry()
        length = input.shape[-1]
        out_length = _output_length(length, kernel_size, stride, padding, self.ceil_mode)
        if out_length < 1:
            channels = input.shape[-2]
            raise InputError(f"Given input size: ({channels}x1x{length}). Calculated output size: "
                             f"({channels}x1x{out_length}). Output size is too small")

        divisors = _divisors(length, out_length, kernel_size, stride, padding, self.count_include_pad)
        # Enough zeros on the right for every (ceil-mode) window; zeros add nothing to a sum.
        right = max(padding, (out_length - 1) * stride + kernel_size - length - padding)
        accumulate = jnp.promote_types(dtype, jnp.float32) if is_float else dtype
        sums = jax.lax.reduce_window(
            input.astype(accumulate),
            np.zeros((), accumulate),  # concrete, so lax picks the differentiable windowed sum
            jax.lax.add,
            window_dimensions=(1,) * (input.ndim - 1) + (kernel_size,),
            window_strides=(1,) * (input.ndim - 1) + (stride,),
            padding=((0, 0),) * (input.ndim - 1) + ((padding, right),),
        )[..., :out_length]
        # One scalar divisor in the common case (no padding effects): a cheaper broadcast.
        divisor = divisors[0] if np.all(divisors == divisors[0]) else divisors
        if is_float:
            return (sums / jnp.asarray(divisor, accumulate)).astype(dtype)
        return jax.lax.div(sums, jnp.broadcast_to(jnp.asarray(divisor, accumulate), sums.shape))
