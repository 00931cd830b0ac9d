"""Padding: ``torch.nn.functional.pad`` and the ``torch.nn`` padding modules.

:func:`pad` is the one implementation of PyTorch's padding math (a convolution's
``padding_mode`` reuses it): the padding tuple in PyTorch's order (last axis first: ``(left,
right)`` of the last axis, then ``(top, bottom)`` of the one before, ...), negative entries
crop, and PyTorch's checks and messages:

- ``'constant'``: any rank, at most ``2 * ndim`` entries; PyTorch crops first (``narrow``), so a
  crop longer than the axis raises ``narrow(): length must be non-negative.``;
- ``'reflect'`` / ``'replicate'``: the positive sides are filled from the *uncropped* input,
  then the negative sides crop (PyTorch's index arithmetic); a reflection pad must be smaller
  than the axis;
- ``'circular'``: PyTorch crops first and wraps the cropped axis, so a pad may be at most the
  axis' length (and at most the cropped length: PyTorch raises its memory-overlap error past it).

The non-constant modes take 2 entries for 2-d/3-d inputs, 4 for 3-d/4-d and 6 for 4-d/5-d
(the unbatched and the batched form), as PyTorch.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import InputError

Array = jax.Array

_MODES = ("constant", "reflect", "replicate", "circular")


def _padding_tuple(padding: Any) -> tuple[int, ...]:
    if isinstance(padding, (bool, numbers.Integral)) and not isinstance(padding, bool):
        raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, not {type(padding).__name__}")
    values = tuple(padding)
    for position, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(
                "pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                f"{type(value).__name__} at pos {position}"
            )
    return tuple(int(v) for v in values)


def _not_implemented_message(size: int, ndim: int) -> str:
    return (
        f"Padding size {size} is not supported for {ndim}D input tensor.\n"
        "Supported combinations for non-constant padding:\n"
        "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
        "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
        "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)"
    )


def _constant(x: Array, pairs: list[tuple[int, int]], value: float) -> Array:
    for axis, (low, high) in enumerate(pairs):
        if x.shape[axis] + min(low, 0) + min(high, 0) < 0:
            raise InputError("narrow(): length must be non-negative.")
    config = [(low, high, 0) for low, high in pairs]
    return jax.lax.pad(x, jnp.asarray(value, x.dtype), config)


def _source_indices(length: int, low: int, high: int, mode: str) -> np.ndarray:
    """For each output position along one axis, the input position it copies (PyTorch's index maps)."""
    if mode == "circular":
        start = max(-low, 0)
        cropped = length + min(low, 0) + min(high, 0)
        q = np.arange(-max(low, 0), cropped + max(high, 0))
        return start + np.mod(q, cropped)
    q = np.arange(-max(low, 0), length + max(high, 0))  # pad from the uncropped input ...
    if mode == "reflect":
        q = np.where(q < 0, -q, np.where(q >= length, 2 * (length - 1) - q, q))
    else:  # replicate
        q = np.clip(q, 0, length - 1)
    return q[max(-low, 0) : len(q) - max(-high, 0)]  # ... then crop


def _check_spatial(x: Array, spatial: int, mode: str, pairs: list[tuple[int, int]]) -> None:
    """PyTorch's kernel checks: non-empty non-batch axes, reflection smaller than the axis, circular wrap."""
    batch_axes = x.ndim - spatial - 1  # 1 for the batched form, 0 unbatched
    if any(size == 0 for size in x.shape[batch_axes:]) and mode != "circular":
        raise InputError(
            f"Expected {spatial + 1}D or {spatial + 2}D (batch mode) tensor with possibly 0 batch size "
            f"and other non-zero dimensions for input, but got: {list(x.shape)}"
        )
    axes = range(x.ndim - 1, x.ndim - 1 - spatial, -1)  # last axis first, as the padding tuple
    for k, axis in enumerate(axes):
        low, high = pairs[axis]
        length = x.shape[axis]
        if mode == "reflect" and not (low < length and high < length):
            raise InputError(
                f"Argument #{4 + 2 * k}: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({low}, {high}) at dimension {axis} of input "
                f"{list(x.shape)}"
            )
        if mode == "circular":
            if low > length or high > length:
                raise InputError("Padding value causes wrapping around more than once.")
            cropped = length + min(low, 0) + min(high, 0)
            if low > cropped or high > cropped:
                raise InputError(
                    "unsupported operation: some elements of the input tensor and the written-to tensor "
                    "refer to a single memory location. Please clone() the tensor before performing "
                    "the operation."
                )


def pad(input: Array, padding: Sequence[int], mode: str = "constant", value: float | None = None) -> Array:
    """``torch.nn.functional.pad(input, pad, mode, value)``.

    Args:
      input: the array (channels-first, PyTorch's layout).
      padding: ``(left, right)`` of the last axis, then of the axis before, ...; negative entries crop.
      mode: ``'constant'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
      value: the fill of ``'constant'`` (default 0); PyTorch refuses it for the other modes.

    Returns:
      The padded (or cropped) array, the input's dtype. Gradients flow back to the copied
      positions (summed where one input position fills several outputs, as PyTorch's backward).
    """
    input = jnp.asarray(input)
    pads = _padding_tuple(padding)
    if mode not in _MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if len(pads) % 2:
        raise InputError("Padding length must be divisible by 2")
    if len(pads) // 2 > input.ndim:
        raise InputError(
            "Padding length should be less than or equal to two times the input dimension but got "
            f"padding length {len(pads)} and input of dimension {input.ndim}"
        )
    pairs = [(0, 0)] * input.ndim
    for k in range(len(pads) // 2):
        pairs[input.ndim - 1 - k] = (pads[2 * k], pads[2 * k + 1])
    if mode == "constant":
        return _constant(input, pairs, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise InputError(f'Padding mode "{mode}" doesn\'t take in value argument.')
    spatial = len(pads) // 2
    if spatial not in (1, 2, 3) or input.ndim not in (spatial + 1, spatial + 2):
        raise NotImplementedError(_not_implemented_message(len(pads), input.ndim))
    _check_spatial(input, spatial, mode, pairs)
    output = input
    for axis in range(input.ndim - spatial, input.ndim):
        low, high = pairs[axis]
        if low == 0 and high == 0:
            continue
        indices = _source_indices(input.shape[axis], low, high, mode)
        output = jnp.take(output, jnp.asarray(indices, jnp.int32), axis=axis)
    return output


def _ntuple(padding: Any, n: int) -> tuple[int, ...]:
    """PyTorch's ``_ntuple(2 * n)`` for an int; a sequence is kept as given (its length checked at the call)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        return (int(padding),) * (2 * n)
    if isinstance(padding, Sequence):
        return tuple(padding)
    raise TypeError(f"padding must be an int or a tuple of ints, got {padding!r}")


class _Pad(nn.Module):
    """A padding module: ``padding`` is an int (every side) or PyTorch's tuple (last axis first)."""

    padding: Any

    _spatial = 1
    _mode = "constant"

    @property
    def padding_tuple(self) -> tuple[int, ...]:
        """The padding as PyTorch's module stores it (``self.padding`` after ``_ntuple``)."""
        return _ntuple(self.padding, self._spatial)

    def fill(self) -> float | None:
        return None

    def check_input(self, input: Array) -> None:
        pass

    def __call__(self, input: Array) -> Array:
        """Pad (negative entries crop); the unbatched form (no batch axis) as PyTorch accepts it."""
        input = jnp.asarray(input)
        self.check_input(input)
        return pad(input, self.padding_tuple, self._mode, self.fill())


class _ConstantPad(_Pad):
    value: float

    def fill(self) -> float | None:
        return self.value


class ConstantPad1d(_ConstantPad):
    """Pad the last axis with ``value``, as ``torch.nn.ConstantPad1d(padding, value)``; any rank, negative crops."""


class ConstantPad2d(_ConstantPad):
    """Pad the last two axes with ``value``, as ``torch.nn.ConstantPad2d(padding, value)``."""

    _spatial = 2


class ConstantPad3d(_ConstantPad):
    """Pad the last three axes with ``value``, as ``torch.nn.ConstantPad3d(padding, value)``."""

    _spatial = 3


class ZeroPad1d(_Pad):
    """Pad the last axis with zeros, as ``torch.nn.ZeroPad1d(padding)``."""

    def fill(self) -> float | None:
        return 0.0


class ZeroPad2d(ZeroPad1d):
    """Pad the last two axes with zeros, as ``torch.nn.ZeroPad2d(padding)``."""

    _spatial = 2


class ZeroPad3d(ZeroPad1d):
    """Pad the last three axes with zeros, as ``torch.nn.ZeroPad3d(padding)``."""

    _spatial = 3


class ReflectionPad1d(_Pad):
    """Reflect the last axis (the edge not repeated), as ``torch.nn.ReflectionPad1d(padding)``; (C, L) or (N, C, L)."""

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Reflect the last two axes, as ``torch.nn.ReflectionPad2d(padding)``; (C, H, W) or (N, C, H, W)."""

    _spatial = 2


class ReflectionPad3d(ReflectionPad1d):
    """Reflect the last three axes, as ``torch.nn.ReflectionPad3d(padding)``; (C, D, H, W) or (N, C, D, H, W)."""

    _spatial = 3


class ReplicationPad1d(_Pad):
    """Repeat the edge of the last axis, as ``torch.nn.ReplicationPad1d(padding)``; (C, L) or (N, C, L)."""

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Repeat the edges of the last two axes, as ``torch.nn.ReplicationPad2d(padding)``."""

    _spatial = 2


class ReplicationPad3d(ReplicationPad1d):
    """Repeat the edges of the last three axes, as ``torch.nn.ReplicationPad3d(padding)``."""

    _spatial = 3


class CircularPad1d(_Pad):
    """Wrap the last axis around, as ``torch.nn.CircularPad1d(padding)``; (C, L) or (N, C, L)."""

    _mode = "circular"

    def check_input(self, input: Array) -> None:
        # The module's own _check_input_dim (a ValueError) runs before F.pad's checks.
        if input.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ValueError(f"expected {self._spatial + 1}D or {self._spatial + 2}D input (got {input.ndim}D input)")


class CircularPad2d(CircularPad1d):
    """Wrap the last two axes around, as ``torch.nn.CircularPad2d(padding)``; (C, H, W) or (N, C, H, W)."""

    _spatial = 2


class CircularPad3d(CircularPad1d):
    """Wrap the last three axes around, as ``torch.nn.CircularPad3d(padding)``."""

    _spatial = 3
