"""``torch`` functions and tensor methods with PyTorch's signatures and semantics, on JAX arrays.

The generated source of :func:`torchsem.port.port` calls these as ``T.<name>(tensor, ...)``
for both ``torch.<name>(tensor, ...)`` and ``tensor.<name>(...)``: ``T.view(x, x.shape[0], -1)``
is ``x.view(x.size(0), -1)``. Argument names are PyTorch's (``dim``, ``keepdim``); ``dim``
may be negative; a shape may be given as separate ints or as one sequence. Every function
works under ``jax.jit`` (shapes are static, as they are at trace time in ``torch.fx``).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..nn import functional as _F

Array = Any


def _sizes(args: tuple[Any, ...], name: str) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch's ``IntArrayRef`` arguments."""
    if len(args) == 1 and isinstance(args[0], Sequence):
        args = tuple(args[0])
    for value in args:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}(): argument 'size' must be a tuple of ints, but found element of type "
                            f"{type(value).__name__}")  # fmt: skip
    return tuple(args)


def _axis(dim: int, ndim: int) -> int:
    span = builtins.max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], but got {dim})")
    return dim % span


def _axes(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(_axis(d, ndim) for d in dim) if dim else None
    return (_axis(dim, ndim),)


# ---------------------------------------------------------------- shapes


def size(input: Array, dim: int | None = None) -> Any:
    """``x.size()`` (a tuple) or ``x.size(dim)`` (an int)."""
    shape = tuple(jnp.shape(input))
    return shape if dim is None else shape[_axis(dim, len(shape))]


def dim(input: Array) -> int:
    """``x.dim()``: the number of dimensions."""
    return jnp.ndim(input)


def numel(input: Array) -> int:
    """``x.numel()``: the number of elements."""
    return math.prod(jnp.shape(input))


def reshape(input: Array, *shape: Any) -> Array:
    """``x.reshape(*shape)`` (one ``-1`` inferred), row-major as PyTorch's contiguous layout."""
    sizes = _sizes(shape, "reshape")
    if builtins.sum(1 for s in sizes if s == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = math.prod(s for s in sizes if s != -1)
    total = numel(input)
    if -1 in sizes:
        if known == 0 or total % known:
            raise RuntimeError(f"shape '{list(sizes)}' is invalid for input of size {total}")
    elif known != total:
        raise RuntimeError(f"shape '{list(sizes)}' is invalid for input of size {total}")
    return jnp.reshape(input, sizes)


def view(input: Array, *shape: Any) -> Array:
    """``x.view(*shape)``: as :func:`reshape` (JAX arrays have no strides to share)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, Sequence)):
        return jnp.asarray(input).astype(shape[0])  # x.view(dtype) reinterprets; only a same-size dtype is allowed
    return reshape(input, *shape)


def view_as(input: Array, other: Array) -> Array:
    """``x.view_as(other)``."""
    return reshape(input, tuple(jnp.shape(other)))


reshape_as = view_as


def flatten(input: Array, start_dim: int = 0, end_dim: int = -1) -> Array:
    """``torch.flatten(x, start_dim, end_dim)``; a 0-d tensor becomes 1-d."""
    shape = tuple(jnp.shape(input))
    if not shape:
        return jnp.reshape(input, (1,))
    start, end = _axis(start_dim, len(shape)), _axis(end_dim, len(shape))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    return jnp.reshape(input, (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :]))


def transpose(input: Array, dim0: int, dim1: int) -> Array:
    """``x.transpose(dim0, dim1)``."""
    ndim = jnp.ndim(input)
    return jnp.swapaxes(input, _axis(dim0, ndim), _axis(dim1, ndim))


def t(input: Array) -> Array:
    """``x.t()``: transpose of a matrix; a 0-d or 1-d tensor as it is."""
    if jnp.ndim(input) > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {jnp.ndim(input)}D")
    return jnp.transpose(input)


def permute(input: Array, *dims: Any) -> Array:
    """``x.permute(*dims)``."""
    ndim = jnp.ndim(input)
    order = tuple(_axis(d, ndim) for d in _sizes(dims, "permute"))
    if sorted(order) != list(range(ndim)):
        raise RuntimeError("permute(): dims must be a permutation of the input's dimensions")
    return jnp.transpose(input, order)


def unsqueeze(input: Array, dim: int) -> Array:
    """``x.unsqueeze(dim)``: ``dim`` counts the new dimension (``-1`` appends)."""
    return jnp.expand_dims(input, _axis(dim, jnp.ndim(input) + 1))


def squeeze(input: Array, dim: Any = None) -> Array:
    """``x.squeeze(dim)``: drop size-1 dimensions (only the named ones; a named one of other size stays)."""
    shape = jnp.shape(input)
    axes = range(len(shape)) if dim is None else (_axes(dim, len(shape)) or ())
    drop = tuple(a for a in axes if len(shape) and shape[a] == 1)
    return jnp.squeeze(input, drop) if drop else input


def expand(input: Array, *sizes: Any) -> Array:
    """``x.expand(*sizes)``: broadcast, ``-1`` keeping a dimension."""
    wanted = _sizes(sizes, "expand")
    shape = tuple(jnp.shape(input))
    lead = len(wanted) - len(shape)
    if lead < 0:
        raise RuntimeError("expand: the number of sizes provided must be greater or equal to the number of dimensions")
    target = tuple(shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(wanted))
    return jnp.broadcast_to(input, target)


def expand_as(input: Array, other: Array) -> Array:
    """``x.expand_as(other)``."""
    return expand(input, tuple(jnp.shape(other)))


def repeat(input: Array, *sizes: Any) -> Array:
    """``x.repeat(*sizes)``: tile, with leading new dimensions when ``sizes`` is longer."""
    reps = _sizes(sizes, "repeat")
    if len(reps) < jnp.ndim(input):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    return jnp.tile(input, reps)


def contiguous(input: Array, memory_format: Any = None) -> Array:
    """``x.contiguous()``: the same values (JAX has no strides)."""
    return input


def clone(input: Array, memory_format: Any = None) -> Array:
    """``x.clone()``: the same values (JAX arrays are immutable, so no copy is needed)."""
    return input


def detach(input: Array) -> Array:
    """``x.detach()``: the same values, cut from the graph (``jax.lax.stop_gradient``)."""
    return jax.lax.stop_gradient(input)


def cat(tensors: Sequence[Array], dim: int = 0) -> Array:
    """``torch.cat(tensors, dim)``."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    return jnp.concatenate(tensors, axis=_axis(dim, jnp.ndim(tensors[0])))


concat = cat


def stack(tensors: Sequence[Array], dim: int = 0) -> Array:
    """``torch.stack(tensors, dim)``: ``dim`` counts the new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    return jnp.stack(tensors, axis=_axis(dim, jnp.ndim(tensors[0]) + 1))


def chunk(input: Array, chunks: int, dim: int = 0) -> tuple[Array, ...]:
    """``x.chunk(chunks, dim)``: pieces of ``ceil(n / chunks)`` (the last smaller; maybe fewer pieces)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    axis = _axis(dim, jnp.ndim(input))
    n = jnp.shape(input)[axis]
    step = builtins.max(-(-n // chunks), 1)
    return tuple(jax.lax.slice_in_dim(input, i, builtins.min(i + step, n), axis=axis) for i in range(0, n, step))


# ---------------------------------------------------------------- arithmetic


def add(input: Array, other: Any, *, alpha: Any = 1) -> Array:
    """``torch.add(input, other, alpha=alpha)``: ``input + alpha * other``."""
    return input + other if alpha == 1 else input + alpha * other


def sub(input: Array, other: Any, *, alpha: Any = 1) -> Array:
    """``torch.sub(input, other, alpha=alpha)``: ``input - alpha * other``."""
    return input - other if alpha == 1 else input - alpha * other


def mul(input: Array, other: Any) -> Array:
    """``torch.mul``."""
    return input * other


def div(input: Array, other: Any, *, rounding_mode: str | None = None) -> Array:
    """``torch.div``: true division, or ``"trunc"``/``"floor"`` rounding."""
    if rounding_mode is None:
        return jnp.true_divide(input, other)
    if rounding_mode == "floor":
        return jnp.floor_divide(input, other)
    if rounding_mode == "trunc":
        quotient = jnp.true_divide(input, other)
        return jnp.trunc(quotient).astype(jnp.result_type(input, other))
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def matmul(input: Array, other: Array) -> Array:
    """``torch.matmul`` (batched, broadcast) at full float32 precision, as PyTorch's CPU matmul."""
    return jnp.matmul(input, other, precision=jax.lax.Precision.HIGHEST)


def bmm(input: Array, mat2: Array) -> Array:
    """``torch.bmm``: batched ``(b, n, m) @ (b, m, p)``."""
    if jnp.ndim(input) != 3 or jnp.ndim(mat2) != 3:
        raise RuntimeError("batch1 and batch2 must be 3D tensors")
    return matmul(input, mat2)


def einsum(equation: str, *operands: Any) -> Array:
    """``torch.einsum(equation, *operands)`` at full float32 precision."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return jnp.einsum(equation, *operands, precision=jax.lax.Precision.HIGHEST)


def pow(input: Array, exponent: Any) -> Array:
    """``torch.pow``."""
    return jnp.power(input, exponent)


def exp(input: Array) -> Array:
    """``torch.exp``."""
    return jnp.exp(input)


def log(input: Array) -> Array:
    """``torch.log``."""
    return jnp.log(input)


def sqrt(input: Array) -> Array:
    """``torch.sqrt``."""
    return jnp.sqrt(input)


def abs(input: Array) -> Array:
    """``torch.abs``."""
    return jnp.abs(input)


def neg(input: Array) -> Array:
    """``torch.neg``."""
    return -input


def clamp(input: Array, min: Any = None, max: Any = None) -> Array:
    """``torch.clamp(input, min, max)``: ``min(max(x, min), max)`` (NaN stays NaN)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    out = input
    if min is not None:
        out = jnp.where(out < min, jnp.asarray(min, jnp.result_type(out)), out)
    if max is not None:
        out = jnp.where(out > max, jnp.asarray(max, jnp.result_type(out)), out)
    return out


def masked_fill(input: Array, mask: Array, value: Any) -> Array:
    """``x.masked_fill(mask, value)``: ``value`` where ``mask`` is True."""
    if jnp.asarray(mask).dtype != jnp.bool_:
        raise RuntimeError(
            f"masked_fill_ only supports boolean masks, but got mask with dtype {jnp.asarray(mask).dtype}"
        )
    return jnp.where(mask, jnp.asarray(value, jnp.result_type(input)), input)


# ---------------------------------------------------------------- reductions


def _float_result(name: str, input: Array, dtype: Any) -> Array:
    x = jnp.asarray(input)
    if dtype is not None:
        return x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise RuntimeError(
            f"{name}(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
            f"Got: {x.dtype}"
        )
    return x


def mean(input: Array, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Array:
    """``x.mean(dim, keepdim)``; an integer tensor is an error, as in PyTorch."""
    x = _float_result("mean", input, dtype)
    return jnp.mean(x, axis=_axes(dim, x.ndim), keepdims=keepdim)


def sum(input: Array, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Array:
    """``x.sum(dim, keepdim)``."""
    x = jnp.asarray(input)
    return jnp.sum(x, axis=_axes(dim, x.ndim), keepdims=keepdim, dtype=dtype)


def var(
    input: Array, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None
) -> Array:
    """``x.var(dim, unbiased, keepdim)`` / ``correction=``: Bessel's correction (1) by default."""
    ddof = correction if correction is not None else (0 if unbiased is False else 1)
    x = _float_result("var", input, None)
    return jnp.var(x, axis=_axes(dim, x.ndim), ddof=ddof, keepdims=keepdim)


def std(
    input: Array, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None
) -> Array:
    """``x.std(dim, unbiased, keepdim)``: the square root of :func:`var`."""
    return jnp.sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def amax(input: Array, dim: Any = (), keepdim: bool = False) -> Array:
    """``torch.amax(x, dim, keepdim)`` (all dimensions when ``dim`` is empty)."""
    return jnp.max(input, axis=_axes(dim, jnp.ndim(input)), keepdims=keepdim)


def amin(input: Array, dim: Any = (), keepdim: bool = False) -> Array:
    """``torch.amin(x, dim, keepdim)``."""
    return jnp.min(input, axis=_axes(dim, jnp.ndim(input)), keepdims=keepdim)


def argmax(input: Array, dim: int | None = None, keepdim: bool = False) -> Array:
    """``x.argmax(dim, keepdim)``: the first maximal index (of the flattened tensor when ``dim`` is None)."""
    if dim is None:
        out = jnp.argmax(jnp.reshape(input, (-1,)))
        return jnp.reshape(out, (1,) * jnp.ndim(input)) if keepdim else out
    return jnp.argmax(input, axis=_axis(dim, jnp.ndim(input)), keepdims=keepdim)


def _values_indices(reduce: Any, arg: Any, input: Array, dim: int | None, keepdim: bool) -> Any:
    if dim is None:
        return reduce(input)
    axis = _axis(dim, jnp.ndim(input))
    return reduce(input, axis=axis, keepdims=keepdim), arg(input, axis=axis, keepdims=keepdim)


def max(input: Array, dim: int | None = None, keepdim: bool = False) -> Any:
    """``x.max()`` (a 0-d tensor) or ``x.max(dim, keepdim)`` (``(values, indices)``)."""
    return _values_indices(jnp.max, jnp.argmax, input, dim, keepdim)


def min(input: Array, dim: int | None = None, keepdim: bool = False) -> Any:
    """``x.min()`` or ``x.min(dim, keepdim)`` (``(values, indices)``)."""
    return _values_indices(jnp.min, jnp.argmin, input, dim, keepdim)


# ---------------------------------------------------------------- dtypes and activations


def float(input: Array) -> Array:
    """``x.float()``: float32."""
    return jnp.asarray(input).astype(jnp.float32)


def double(input: Array) -> Array:
    """``x.double()``: float64, which needs ``jax_enable_x64`` (refused rather than silently float32)."""
    return to(input, jnp.float64)


def to(input: Array, *args: Any, **kwargs: Any) -> Array:
    """``x.to(dtype)``; a device argument (``"cpu"``) leaves the values as they are."""
    dtype = kwargs.pop("dtype", None)
    for value in args:
        if isinstance(value, str):
            continue  # a device name: placement is JAX's, not the model's
        dtype = value
    if dtype is None:
        return input
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise TypeError("x.to(torch.float64) needs jax.config.update('jax_enable_x64', True); JAX would give float32")
    return jnp.asarray(input).astype(dtype)


def type_as(input: Array, other: Array) -> Array:
    """``x.type_as(other)``: ``other``'s dtype."""
    return jnp.asarray(input).astype(jnp.asarray(other).dtype)


def zeros_like(input: Array, dtype: Any = None) -> Array:
    """``torch.zeros_like``."""
    return jnp.zeros_like(input, dtype=dtype)


def ones_like(input: Array, dtype: Any = None) -> Array:
    """``torch.ones_like``."""
    return jnp.ones_like(input, dtype=dtype)


relu = _F.relu
sigmoid = _F.sigmoid
tanh = _F.tanh


def softmax(input: Array, dim: int, dtype: Any = None) -> Array:
    """``torch.softmax(x, dim)`` / ``x.softmax(dim)``."""
    return _F.softmax(input, dim, dtype=dtype)


def log_softmax(input: Array, dim: int, dtype: Any = None) -> Array:
    """``torch.log_softmax(x, dim)`` / ``x.log_softmax(dim)``."""
    return _F.log_softmax(input, dim, dtype=dtype)
