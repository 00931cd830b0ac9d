"""Argument checks shared by the losses: dtypes, PyTorch's broadcasting errors and its size warning."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..convert import to_jax
from ..errors import InputError

Shape = tuple[int, ...]


def concrete(value: Any) -> Any:
    """The values behind ``value`` if they are known now, else None (abstract, inside ``jax.jit``).

    An eager ``jax.grad``/``jax.vjp``/``jax.jvp`` wraps a concrete array in a tracer whose
    ``primal`` holds it; those values can still be checked as PyTorch checks them.
    """
    while isinstance(value, jax.core.Tracer):
        primal = getattr(value, "primal", None)
        if primal is None:
            return None
        value = primal
    return value


def torch_size(shape: Sequence[int]) -> str:
    """``shape`` as PyTorch prints a ``torch.Size``: ``torch.Size([3, 4])``."""
    return f"torch.Size({list(shape)})"


def floating(owner: str, name: str, value: Any) -> jax.Array:
    """``value`` as a JAX array (host memory copied first), which must be floating point.

    Raises:
      TypeError: an integer, boolean or complex array.
    """
    array = to_jax(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{owner}: {name} must be floating point, got {array.dtype}")
    return array


def same_dtype(owner: str, name: str, value: jax.Array, input: jax.Array) -> None:
    """Refuse a ``name`` whose float dtype differs from the input's (PyTorch would promote them).

    Raises:
      TypeError: the dtypes differ.
    """
    if value.dtype != input.dtype:
        raise TypeError(
            f"{owner}: {name} dtype {value.dtype} differs from input dtype {input.dtype}; cast one of them "
            "(PyTorch promotes both to a common dtype, torchsem does not convert silently)"
        )


def broadcast_pair(a: Shape, b: Shape) -> Shape:
    """The broadcast shape of tensors ``a`` and ``b`` of a binary op, or PyTorch's error (``infer_size``).

    PyTorch compares the dimensions from the last to the first and names the first mismatch it
    meets by its index in the broadcast shape.

    Raises:
      InputError: the shapes do not broadcast.
    """
    ndim = max(len(a), len(b))
    padded_a = (1,) * (ndim - len(a)) + tuple(a)
    padded_b = (1,) * (ndim - len(b)) + tuple(b)
    result = [1] * ndim
    for i in range(ndim - 1, -1, -1):
        size_a, size_b = padded_a[i], padded_b[i]
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise InputError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                f"at non-singleton dimension {i}"
            )
        result[i] = size_b if size_a == 1 else size_a
    return tuple(result)


def check_in_place(output: Shape, other: Shape) -> None:
    """PyTorch's errors for ``output.mul_(other)``: ``other`` must broadcast to ``output`` without growing it.

    Raises:
      InputError: the shapes do not broadcast, or broadcasting would change ``output``'s shape.
    """
    result = broadcast_pair(output, other)
    if result != tuple(output):
        raise InputError(f"output with shape {list(output)} doesn't match the broadcast shape {list(result)}")


def broadcast_shapes(*shapes: Shape) -> Shape:
    """``torch.broadcast_shapes`` of ``torch.Size`` arguments, with its error message.

    Raises:
      InputError: the shapes do not broadcast.
    """
    common = [1] * max((len(shape) for shape in shapes), default=0)
    for index, shape in enumerate(shapes):
        for dim in range(-1, -1 - len(shape), -1):
            if shape[dim] == common[dim]:
                continue
            if common[dim] == 1:
                common[dim] = shape[dim]
            if shape[dim] != 1 and common[dim] != shape[dim]:
                raise InputError(
                    f"Attempting to broadcast a dimension of length {shape[dim]} at {dim}! Mismatching argument at "
                    f"index {index} had {torch_size(shape)}; but expected shape should be broadcastable to {common}"
                )
    return tuple(common)


def warn_size_mismatch(input: Shape, target: Shape, stacklevel: int) -> None:
    """PyTorch's ``UserWarning`` for a target whose size differs from the input's (they are broadcast)."""
    if tuple(input) != tuple(target):
        warnings.warn(
            f"Using a target size ({torch_size(target)}) that is different to the input size "
            f"({torch_size(input)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def real_number(owner: str, name: str, value: Any) -> float:
    """``value`` as a float; booleans and non-numbers are refused.

    Raises:
      TypeError: not a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number (float or int), got {value!r}")
    return float(value)
