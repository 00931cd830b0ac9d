"""Argument checks shared by the losses: dtypes, PyTorch's broadcasting errors and its size warning."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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


# PyTorch's names of the dtypes its messages may mention.
_TORCH_DTYPE_NAMES = {
    "float16": "Half",
    "bfloat16": "BFloat16",
    "float32": "Float",
    "float64": "Double",
    "bool": "Bool",
    "uint8": "Byte",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
}


def _torch_name(dtype: Any) -> str:
    """PyTorch's name of a dtype in its messages (``Float``, ``Long``)."""
    return _TORCH_DTYPE_NAMES.get(str(dtype), str(dtype))


def class_index_target(input: jax.Array, target: jax.Array) -> jax.Array:
    """PyTorch's shape checks of class-index targets (``nll_loss_nd``, ``nll_loss``, ``nll_loss2d``), in its order.

    ``cross_entropy`` with class indices and ``nll_loss`` share them: PyTorch's
    ``cross_entropy`` is ``nll_loss_nd(log_softmax(input, 1), target)``.

    Returns:
      The target; a ``(1,)`` target of an unbatched input made 0-d, as PyTorch's forward does.

    Raises:
      ValueError: a 0-d input, or PyTorch's batch-size errors.
      InputError: PyTorch's target-shape errors (``RuntimeError``).
    """
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim != 1 and (target.ndim == 0 or input.shape[0] != target.shape[0]):
        target_batch = target.shape[0] if target.ndim else 0
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({target_batch}).")
    if input.ndim <= 2:
        if target.ndim > 1:
            raise InputError("0D or 1D target tensor expected, multi-target not supported")
        if input.ndim == 1 and target.ndim == 1:
            if target.shape[0] != 1:
                raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}")
            return target.reshape(())
        return target
    # A 4-d input goes through PyTorch's nll_loss2d, whose messages are its own.
    if input.ndim == 4:
        if target.ndim != 3:
            raise InputError(
                f"only batches of spatial targets supported (3D tensors) but got targets of dimension: {target.ndim}"
            )
        if target.shape != (input.shape[0], *input.shape[2:]):
            raise InputError(f"size mismatch (got input: {list(input.shape)} , target: {list(target.shape)}")
        return target
    if target.shape[1:] != input.shape[2:]:
        raise InputError(f"Expected target size {[input.shape[0], *input.shape[2:]]}, got {list(target.shape)}")
    return target


def integer_target(owner: str, target: jax.Array) -> None:
    """Refuse class indices of a non-integer dtype with PyTorch's words.

    PyTorch takes int64 and uint8 only; torchsem takes any integer dtype (JAX's default is int32).

    Raises:
      InputError: a floating or boolean target (PyTorch's ``RuntimeError``).
    """
    if not jnp.issubdtype(target.dtype, jnp.integer):
        name = _torch_name(target.dtype)
        raise InputError(
            f"{owner}: target must hold class indices of an integer dtype, got {target.dtype} "
            f"(PyTorch: expected target dtype to be Long or Byte, but got {name})"
        )


def class_weight(owner: str, weight: Any, input: jax.Array) -> jax.Array:
    """The per-class weight of a class-index loss, with PyTorch's messages, as a ``(C,)`` vector.

    PyTorch's ``nll_loss`` (1-d and 2-d input) wants exactly ``(C,)``; its ``nll_loss2d`` and
    ``nll_loss_nd`` beyond take any weight of ``C`` elements.

    Raises:
      InputError: a weight of the wrong size (PyTorch's ``RuntimeError``).
      TypeError: a weight whose dtype is not the input's (PyTorch: ``expected scalar type``).
    """
    weight = to_jax(weight)
    n_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if input.ndim <= 2:
        if weight.ndim != 1 or weight.shape[0] != n_classes:
            raise InputError(
                f"weight tensor should be defined either for all {n_classes} classes or no classes "
                f"but got weight tensor of shape: {list(weight.shape)}"
            )
    elif weight.size != n_classes:
        raise InputError("weight tensor should be defined either for all or no classes")
    if weight.dtype != input.dtype:
        raise TypeError(
            f"{owner}: weight dtype {weight.dtype} differs from input dtype {input.dtype} "
            f"(PyTorch: expected scalar type {_torch_name(input.dtype)} but found {_torch_name(weight.dtype)})"
        )
    return weight.reshape(n_classes)


def check_class_indices(target: Any, n_classes: int, ignore_index: int) -> None:
    """Raise PyTorch's ``IndexError`` for the first out-of-range class index.

    Call it only when ``concrete(target)`` is not None: abstract targets cannot be checked.
    """
    values = np.asarray(target)
    bad = (values != ignore_index) & ((values < 0) | (values >= n_classes))
    if bad.any():
        raise IndexError(f"Target {values[bad].flat[0]} is out of bounds.")
