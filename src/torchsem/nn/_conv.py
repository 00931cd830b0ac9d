"""Convolutions: ``torch.nn.Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``, channels-first.

PyTorch's constructor signatures, weight layouts (``(out, in/groups, *kernel)`` for a
convolution, ``(in, out/groups, *kernel)`` for a transposed one, as PyTorch stores them),
default initialisation and error messages. The arithmetic is one
``jax.lax.conv_general_dilated`` with channels-first ``dimension_numbers`` (``NCH``/``NCHW``/
``NCDHW`` and ``OIH``/``OIHW``/``OIDHW``), so no transpose to channels-last is ever made; a
transposed convolution is the same call on the input dilated by the stride (``lhs_dilation``)
with the kernel flipped and its in/out axes swapped per group.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..random import linear_torch_init, register_torch_init
from . import init as _init
from ._conv_matmul import conv_as_matmuls
from ._errors import InputError
from ._padding import pad

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# PyTorch prints its set of valid padding modes / strings in this (sorted) order.
_PADDING_MODES_TEXT = "{'circular', 'reflect', 'replicate', 'zeros'}"
_PADDING_STRINGS_TEXT = "{'same', 'valid'}"
_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}
_AXIS_NAMES = {1: ("height", "width"), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _ntuple(value: Any, n: int, owner: str, name: str) -> tuple[int, ...]:
    """PyTorch's ``_single``/``_pair``/``_triple``: an int repeated, or a sequence of exactly n ints.

    Stricter than PyTorch, which stores a sequence of another length and fails (or, for a
    one-element ``padding`` with a non-zeros ``padding_mode``, pads only the last axis) later.
    """
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str) and all(_is_int(v) for v in value):
        values = tuple(int(v) for v in value)
        if len(values) == n:
            return values
    raise ValueError(f"{owner}: {name} must be an int or a sequence of {n} ints, got {value!r}")


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _default_weight_init() -> _init.Initializer:
    # _ConvNd.reset_parameters: kaiming_uniform_(weight, a=sqrt(5)), fan_in = size(1) * prod(kernel).
    return _init.kaiming_uniform(a=math.sqrt(5))


def _default_bias_init(weight_shape: Sequence[int]) -> _init.Initializer:
    # The bias bound is 1/sqrt(fan_in) of the weight (0 when the fan-in is 0), as in PyTorch.
    fan_in, _ = _init.calculate_fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _init.uniform(-bound, bound)


def _check_common(owner: str, in_channels: Any, out_channels: Any, groups: Any, bias: Any) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not _is_int(value):
            raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if not isinstance(bias, bool):
        raise TypeError(f"{owner}: bias must be a bool (whether to learn a bias), got {bias!r}")
    if in_channels < 0 or out_channels < 0:
        raise ValueError(f"{owner}: in_channels and out_channels must be >= 0, got {in_channels} and {out_channels}")
    # _ConvNd.__init__'s checks, in its order, with its words.
    if groups <= 0:
        raise ValueError("groups must be a positive integer")
    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")


def _check_call_args(
    padding: Sequence[int], output_padding: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> None:
    """ATen's ``check_shape_forward`` argument checks, in its order."""
    if any(p < 0 for p in padding):
        raise InputError("negative padding is not supported")
    if any(p < 0 for p in output_padding):
        raise InputError("negative output_padding is not supported")
    if any(s <= 0 for s in stride):
        raise InputError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise InputError("non-positive dilation is not supported")


def _check_rank(input: jax.Array, n: int, op: str) -> bool:
    """Whether the input is batched; PyTorch's error for any other rank."""
    if input.ndim not in (n + 1, n + 2):
        raise InputError(
            f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, "
            f"but got input of size: {_shape_text(input.shape)}"
        )
    return input.ndim == n + 2


def _check_input_dtype(owner: str, input: jax.Array, weight: jax.Array, has_bias: bool) -> None:
    if not jnp.issubdtype(input.dtype, jnp.floating) or input.dtype != weight.dtype:
        other = "bias" if has_bias else "weight"
        raise TypeError(
            f"{owner}: input dtype {input.dtype} differs from the parameters' dtype {weight.dtype}; "
            f"cast the input or set param_dtype (PyTorch: Input type and {other} type should be the same)"
        )


def _check_groups_vs_weight(groups: int, weight_shape: Sequence[int]) -> None:
    if weight_shape[0] < groups:
        raise InputError(
            f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, "
            f"but got weight of size {_shape_text(weight_shape)} instead"
        )


_CONV_ALGORITHMS = ("xla", "matmul")


class _ConvNd(nn.Module):
    """Shared fields and forward of ``Conv1d/2d/3d`` (the subclasses set the spatial rank)."""

    num_spatial_dims: ClassVar[int] = 0

    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: str | int | Sequence[int] = 0
    dilation: int | Sequence[int] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    weight_init: _init.Initializer | None = None
    bias_init: _init.Initializer | None = None
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST
    conv_algorithm: str = "xla"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_common(owner, self.in_channels, self.out_channels, self.groups, self.bias)
        if self.conv_algorithm not in _CONV_ALGORITHMS:
            raise ValueError(f"conv_algorithm must be one of {_CONV_ALGORITHMS}, got {self.conv_algorithm!r}")
        n = self.num_spatial_dims
        _ntuple(self.kernel_size, n, owner, "kernel_size")
        stride = _ntuple(self.stride, n, owner, "stride")
        _ntuple(self.dilation, n, owner, "dilation")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {self.padding!r}, should be one of {_PADDING_STRINGS_TEXT}")
            if self.padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            _ntuple(self.padding, n, owner, "padding")
        if self.padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {_PADDING_MODES_TEXT}, but got padding_mode='{self.padding_mode}'"
            )
        super().__post_init__()

    def _padding_pairs(self, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> list[tuple[int, int]]:
        n = self.num_spatial_dims
        if self.padding == "valid":
            return [(0, 0)] * n
        if self.padding == "same":
            # PyTorch: total d*(k-1), left total//2, the odd one on the right (bottom, back).
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return [(t // 2, t - t // 2) for t in totals]
        return [(p, p) for p in _ntuple(self.padding, n, type(self).__name__, "padding")]

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        """Apply the convolution.

        Args:
          input: ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``, floating point of
            ``param_dtype``.

        Returns:
          ``(N, C_out, *spatial_out)`` (``(C_out, *spatial_out)`` for an unbatched input).
        """
        n = self.num_spatial_dims
        owner = type(self).__name__
        kernel = _ntuple(self.kernel_size, n, owner, "kernel_size")
        stride = _ntuple(self.stride, n, owner, "stride")
        dilation = _ntuple(self.dilation, n, owner, "dilation")
        weight_shape = (self.out_channels, self.in_channels // self.groups, *kernel)
        weight_init = self.weight_init if self.weight_init is not None else _default_weight_init()
        weight = self.param("weight", weight_init, weight_shape, self.param_dtype)
        bias = None
        if self.bias:
            bias_init = self.bias_init if self.bias_init is not None else _default_bias_init(weight_shape)
            bias = self.param("bias", bias_init, (self.out_channels,), self.param_dtype)

        input = jnp.asarray(input)
        pads = self._padding_pairs(kernel, dilation)
        if self.padding_mode != "zeros":
            # As PyTorch's _conv_forward: F.pad(input, reversed padding, mode) on the input as
            # given (batched or not), before the convolution sees it, so F.pad's errors come first.
            flat = [amount for lo, hi in reversed(pads) for amount in (lo, hi)]
            input = pad(input, flat, self.padding_mode)
            pads = [(0, 0)] * n
        batched = _check_rank(input, n, f"conv{n}d")
        x = input if batched else input[None]
        _check_call_args([p for pair in pads for p in pair], (), stride, dilation)
        _check_groups_vs_weight(self.groups, weight_shape)
        expected = weight_shape[1] * self.groups
        if x.shape[1] != expected:
            raise InputError(
                f"Given groups={self.groups}, weight of size {_shape_text(weight_shape)}, expected "
                f"input{_shape_text(x.shape)} to have {expected} channels, but got {x.shape[1]} "
                "channels instead"
            )
        padded = [size + lo + hi for size, (lo, hi) in zip(x.shape[2:], pads)]
        dilated = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
        if any(p < k for p, k in zip(padded, dilated)):
            raise InputError(
                f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                f"Kernel size: ({' x '.join(map(str, dilated))}). "
                "Kernel size can't be greater than actual input size"
            )
        _check_input_dtype(owner, x, weight, bias is not None)
        if x.shape[1] == 0:
            # PyTorch's result for zero input channels keeps the input's 0 channels (not
            # out_channels) and never reads the bias, so its gradient is zeros; reproduced as is.
            # The empty result still depends on input, weight and bias, as PyTorch's grad_fn does.
            spatial_out = [(p - d) // s + 1 for p, d, s in zip(padded, dilated, stride)]
            used = jnp.sum(x) + jnp.sum(weight) + (jnp.sum(bias) if bias is not None else 0)
            empty = jnp.zeros((x.shape[0], 0, *spatial_out), x.dtype) + 0 * used
            return empty if batched else empty[0]
        spatial = _SPATIAL[n] if n > 1 else "H"
        if self.conv_algorithm == "matmul":
            output = conv_as_matmuls(x, weight, stride, pads, dilation, self.groups, self.precision)
        else:
            output = jax.lax.conv_general_dilated(
                x,
                weight,
                window_strides=stride,
                padding=pads,
                rhs_dilation=dilation,
                dimension_numbers=("NC" + spatial, "OI" + spatial, "NC" + spatial),
                feature_group_count=self.groups,
                precision=self.precision,
            )
        if bias is not None:
            output = output + bias.reshape((1, -1) + (1,) * n)
        return output if batched else output[0]


class _ConvTransposeNd(nn.Module):
    """Shared fields and forward of ``ConvTranspose1d/2d/3d``."""

    num_spatial_dims: ClassVar[int] = 0

    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: int | Sequence[int] = 0
    output_padding: int | Sequence[int] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | Sequence[int] = 1
    padding_mode: str = "zeros"
    weight_init: _init.Initializer | None = None
    bias_init: _init.Initializer | None = None
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        owner = type(self).__name__
        # _ConvTransposeNd.__init__ checks the padding mode before _ConvNd's checks.
        if self.padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {owner}')
        _check_common(owner, self.in_channels, self.out_channels, self.groups, self.bias)
        n = self.num_spatial_dims
        for name in ("kernel_size", "stride", "padding", "output_padding", "dilation"):
            if isinstance(getattr(self, name), str):
                raise ValueError(
                    f"{owner}: {name} must be an int or a sequence of {n} ints, "
                    f"got {getattr(self, name)!r} (a transposed convolution has no padding strings)"
                )
            _ntuple(getattr(self, name), n, owner, name)
        super().__post_init__()

    def _output_padding(
        self,
        input: jax.Array,
        output_size: Sequence[int] | None,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        kernel: tuple[int, ...],
        dilation: tuple[int, ...],
    ) -> tuple[int, ...]:
        """PyTorch's ``_ConvTransposeNd._output_padding``: from ``output_size`` when given."""
        n = self.num_spatial_dims
        if output_size is None:
            return _ntuple(self.output_padding, n, type(self).__name__, "output_padding")
        non_spatial = 2 if input.ndim == n + 2 else 1
        if isinstance(output_size, Sequence) and not isinstance(output_size, str):
            sizes = output_size
        else:
            sizes = list(output_size)  # an array of ints
        if len(sizes) == non_spatial + n:
            sizes = sizes[non_spatial:]  # PyTorch ignores the batch and channel entries
        if len(sizes) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} "
                f"or {non_spatial + n} elements (got {len(sizes)})"
            )
        min_sizes = [
            (input.shape[d + non_spatial] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + 1
            for d in range(n)
        ]
        max_sizes = [m + s - 1 for m, s in zip(min_sizes, stride)]
        for size, low, high in zip(sizes, min_sizes, max_sizes):
            if int(size) < low or int(size) > high:
                # PyTorch prints input.size()[2:] (for an unbatched input that drops a spatial axis too).
                raise ValueError(
                    f"requested an output size of {sizes!r}, but valid sizes range from {min_sizes} "
                    f"to {max_sizes} (for an input of torch.Size({list(input.shape[2:])}))"
                )
        return tuple(int(size) - low for size, low in zip(sizes, min_sizes))

    @nn.compact
    def __call__(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        """Apply the transposed convolution.

        Args:
          input: ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``, floating point of
            ``param_dtype``.
          output_size: the spatial output shape (or the full one, whose batch and channel
            entries are ignored, as in PyTorch), within ``stride - 1`` of the smallest; it picks
            the output padding. Python ints (static under ``jax.jit``).

        Returns:
          ``(N, C_out, *spatial_out)`` (``(C_out, *spatial_out)`` for an unbatched input), with
          ``spatial_out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``.
        """
        n = self.num_spatial_dims
        owner = type(self).__name__
        kernel = _ntuple(self.kernel_size, n, owner, "kernel_size")
        stride = _ntuple(self.stride, n, owner, "stride")
        padding = _ntuple(self.padding, n, owner, "padding")
        dilation = _ntuple(self.dilation, n, owner, "dilation")
        per_group_out = self.out_channels // self.groups
        weight_shape = (self.in_channels, per_group_out, *kernel)
        weight_init = self.weight_init if self.weight_init is not None else _default_weight_init()
        weight = self.param("weight", weight_init, weight_shape, self.param_dtype)
        bias = None
        if self.bias:
            bias_init = self.bias_init if self.bias_init is not None else _default_bias_init(weight_shape)
            bias = self.param("bias", bias_init, (self.out_channels,), self.param_dtype)

        input = jnp.asarray(input)
        output_padding = self._output_padding(input, output_size, stride, padding, kernel, dilation)
        batched = _check_rank(input, n, f"conv_transpose{n}d")
        x = input if batched else input[None]
        _check_call_args(padding, output_padding, stride, dilation)
        _check_groups_vs_weight(self.groups, weight_shape)
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"Given transposed=1, weight of size {_shape_text(weight_shape)}, expected "
                f"input{_shape_text(x.shape)} to have {self.in_channels} channels, but got {x.shape[1]} "
                "channels instead"
            )
        if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
            # ATen's message names 2-d axes: a 1-d convolution runs as a 2-d one of height 1.
            names = _AXIS_NAMES[n]
            shown = [(0, 1, 1)] * (len(names) - n) + list(zip(output_padding, stride, dilation))
            parts = [
                f"{kind}_{name}: {values[i]}"
                for i, kind in enumerate(("output_padding", "stride", "dilation"))
                for name, values in zip(names, shown)
            ]
            raise InputError(
                "output padding must be smaller than either stride or dilation, but got " + " ".join(parts)
            )
        out_sizes = [
            (i - 1) * s - 2 * p + d * (k - 1) + op + 1
            for i, s, p, d, k, op in zip(x.shape[2:], stride, padding, dilation, kernel, output_padding)
        ]
        if any(size < 0 for size in out_sizes):
            raise InputError(
                f"{owner}: the output would have negative size {out_sizes} for input "
                f"{_shape_text(input.shape)} (PyTorch fails inside oneDNN here)"
            )
        _check_input_dtype(owner, x, weight, bias is not None)
        # The gradient of a convolution with respect to its input: dilate the input by the stride,
        # pad by d*(k-1) - p (plus output_padding after), and correlate with the flipped kernel
        # whose in/out axes are swapped within each group: (in, out/g, *k) -> (out, in/g, *k).
        g = self.groups
        per_group_in = self.in_channels // g
        kernel_t = weight.reshape((g, per_group_in, per_group_out, *kernel))
        kernel_t = jnp.swapaxes(kernel_t, 1, 2).reshape((self.out_channels, per_group_in, *kernel))
        kernel_t = jnp.flip(kernel_t, axis=tuple(range(2, 2 + n)))
        pads = [
            (d * (k - 1) - p, d * (k - 1) - p + op) for d, k, p, op in zip(dilation, kernel, padding, output_padding)
        ]
        spatial = _SPATIAL[n]
        output = jax.lax.conv_general_dilated(
            x,
            kernel_t,
            window_strides=(1,) * n,
            padding=pads,
            lhs_dilation=stride,
            rhs_dilation=dilation,
            dimension_numbers=("NC" + spatial, "OI" + spatial, "NC" + spatial),
            feature_group_count=g,
            precision=self.precision,
        )
        if bias is not None:
            output = output + bias.reshape((1, -1) + (1,) * n)
        return output if batched else output[0]


_CONV_DOC = """A {n}-d convolution (cross-correlation) over ``(N, C_in, {dims})``, as ``torch.nn.Conv{n}d``.

    ``Conv{n}d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros')``, channels-first, unbatched ``(C_in, {dims})`` accepted.

    Variables (collection ``params``), with PyTorch's names and shapes:

    - ``weight``: ``(out_channels, in_channels // groups, *kernel_size)``, default
      ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(-k, k)`` with ``k = 1/sqrt(fan_in)``,
      ``fan_in = in_channels // groups * prod(kernel_size)``;
    - ``bias``: ``(out_channels,)``, ``U(-k, k)`` with the same ``k`` (absent when ``bias=False``).

    ``padding`` is an int, a tuple, ``'valid'`` (none) or ``'same'`` (stride 1 only; a total of
    ``dilation * (kernel - 1)`` per axis, the odd element on the right/bottom/back, as PyTorch).
    ``padding_mode`` ``'reflect'``/``'replicate'``/``'circular'`` pads the input in that mode first
    (``F.pad``: a negative amount crops) and convolves without padding, as PyTorch does.

    ``precision`` defaults to ``jax.lax.Precision.HIGHEST``: float32 on CPU must agree with
    PyTorch to float32 tolerance. XLA CPU's default precision for a float32 convolution is
    already full float32; HIGHEST states it and keeps GPUs/TPUs from TF32/bfloat16 passes.
    Computed by one ``jax.lax.conv_general_dilated`` with channels-first dimension numbers;
    ``conv_algorithm="matmul"`` (opt-in, not a PyTorch argument) computes the same convolution
    as one matrix product per kernel tap (faster on XLA's CPU backend for ResNet-sized 3x3
    convolutions, with a different float32 summation order: see ``benchmarks/README.md``).

    Bad input raises PyTorch's message: ``InputError`` (a ``RuntimeError`` and ``ValueError``)
    where PyTorch raises ``RuntimeError``, ``ValueError`` for bad constructor arguments as
    PyTorch; an input dtype other than the parameters' raises ``TypeError``.
    """

_CONV_TRANSPOSE_DOC = """A {n}-d transposed convolution over ``(N, C_in, {dims})``, as ``torch.nn.ConvTranspose{n}d``.

    ``ConvTranspose{n}d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros')`` (PyTorch's
    order: ``dilation`` after ``bias``); the call takes ``output_size=`` as PyTorch's forward does.

    Variables (collection ``params``), with PyTorch's names and shapes:

    - ``weight``: ``(in_channels, out_channels // groups, *kernel_size)`` (PyTorch's transposed
      layout), default ``kaiming_uniform_(a=sqrt(5))`` whose fan-in PyTorch reads from that
      layout: ``fan_in = out_channels // groups * prod(kernel_size)``;
    - ``bias``: ``(out_channels,)``, ``U(-k, k)``, ``k = 1/sqrt(fan_in)`` (absent when ``bias=False``).

    ``precision`` defaults to ``jax.lax.Precision.HIGHEST``: float32 on CPU must agree with
    PyTorch to float32 tolerance (XLA CPU is full float32 anyway; HIGHEST keeps GPUs/TPUs from
    TF32/bfloat16 passes). Computed by one ``jax.lax.conv_general_dilated`` on the input dilated
    by the stride, with the kernel flipped and in/out swapped per group.
    """


class Conv1d(_ConvNd):
    num_spatial_dims: ClassVar[int] = 1
    __doc__ = _CONV_DOC.format(n=1, dims="L")


class Conv2d(_ConvNd):
    num_spatial_dims: ClassVar[int] = 2
    __doc__ = _CONV_DOC.format(n=2, dims="H, W")


class Conv3d(_ConvNd):
    num_spatial_dims: ClassVar[int] = 3
    __doc__ = _CONV_DOC.format(n=3, dims="D, H, W")


class ConvTranspose1d(_ConvTransposeNd):
    num_spatial_dims: ClassVar[int] = 1
    __doc__ = _CONV_TRANSPOSE_DOC.format(n=1, dims="L")


class ConvTranspose2d(_ConvTransposeNd):
    num_spatial_dims: ClassVar[int] = 2
    __doc__ = _CONV_TRANSPOSE_DOC.format(n=2, dims="H, W")


class ConvTranspose3d(_ConvTransposeNd):
    num_spatial_dims: ClassVar[int] = 3
    __doc__ = _CONV_TRANSPOSE_DOC.format(n=3, dims="D, H, W")


# torch.manual_seed(s); torch.nn.Conv*d(...) / ConvTranspose*d(...) draws weight then bias exactly as
# nn.Linear does (kaiming_uniform_(a=sqrt(5)), then U(+-1/sqrt(fan_in)), fan_in = size(1) * prod(size(2:))).
register_torch_init(_ConvNd, linear_torch_init)
register_torch_init(_ConvTransposeNd, linear_torch_init)
