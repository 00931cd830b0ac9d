"""Binary cross entropy as ``torch.nn.functional``'s: on probabilities, and on logits with ``pos_weight``.

Both are written as PyTorch's CPU kernels compute them (``aten/src/ATen/native/Loss.cpp``),
with PyTorch's backward formulas as their derivatives (``jax.custom_jvp``), not autodiff of the
forward: on probabilities the logarithms are clamped at -100 in the forward only, and the
gradient is ``(x - y) / max(x (1 - x), 1e-12)``, finite at 0 and 1 where autodiff of the
clamp gives 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ..errors import InputError
from ._checks import broadcast_pair, broadcast_shapes, check_in_place, concrete, floating, same_dtype, torch_size
from ._reduction import apply_reduction, check_reduction, reject_legacy

Array = jax.Array

_EPSILON = 1e-12  # Loss.cpp's EPSILON, the floor of x (1 - x) in the gradient


def _log_sigmoid(x: Array) -> Array:
    """PyTorch's CPU ``log_sigmoid``: ``min(x, 0) - log1p(exp(-|x|))``, finite for every finite ``x``."""
    return jnp.minimum(x, jnp.zeros((), x.dtype)) - jnp.log1p(jnp.exp(-jnp.abs(x)))


def _tangent(out: Array, *terms: tuple[Callable[[], Array], Any]) -> Array:
    """``sum(slope() * tangent)`` over the tangents that are not symbolic zeros.

    A slope is only evaluated for an argument that is differentiated: ``d/dy`` of the BCE is
    infinite at ``x`` of 0 or 1, and ``inf * 0`` would put NaN into ``d/dx``.
    """
    total = None
    for slope, tangent in terms:
        if isinstance(tangent, SymbolicZero):
            continue
        term = slope() * tangent
        total = term if total is None else total + term
    return jnp.zeros_like(out) if total is None else total


@jax.custom_jvp
def _bce(x: Array, y: Array) -> Array:
    """``(y - 1) * max(log1p(-x), -100) - y * max(log(x), -100)``: the kernel's expression."""
    floor = jnp.asarray(-100.0, x.dtype)
    return (y - 1) * jnp.maximum(jnp.log1p(-x), floor) - y * jnp.maximum(jnp.log(x), floor)


def _bce_jvp(primals: tuple[Array, Array], tangents: tuple[Any, Any]) -> tuple[Array, Array]:
    # jnp arrays: a primal may arrive as a numpy-backed constant, whose ops would run (and warn) in numpy.
    (x, y), (tx, ty) = map(jnp.asarray, primals), tangents
    out = _bce(x, y)
    # binary_cross_entropy_backward, and binary_cross_entropy_target_backward's -logit(x) (unclamped).
    return out, _tangent(
        out,
        (lambda: (x - y) / jnp.maximum((1 - x) * x, jnp.asarray(_EPSILON, x.dtype)), tx),
        (lambda: -jnp.log(x / (1 - x)), ty),
    )


_bce.defjvp(_bce_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _bce_logits(x: Array, y: Array) -> Array:
    """``(1 - y) * x - log_sigmoid(x)``."""
    return (1 - y) * x - _log_sigmoid(x)


def _bce_logits_jvp(primals: tuple[Array, Array], tangents: tuple[Any, Any]) -> tuple[Array, Array]:
    (x, y), (tx, ty) = map(jnp.asarray, primals), tangents
    out = _bce_logits(x, y)
    return out, _tangent(out, (lambda: jax.nn.sigmoid(x) - y, tx), (lambda: -x, ty))


_bce_logits.defjvp(_bce_logits_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _bce_logits_pos_weight(x: Array, y: Array, pos_weight: Array) -> Array:
    """``(1 - y) * x - log_sigmoid(x) * ((pos_weight - 1) * y + 1)``."""
    return (1 - y) * x - _log_sigmoid(x) * ((pos_weight - 1) * y + 1)


def _bce_logits_pos_weight_jvp(
    primals: tuple[Array, Array, Array], tangents: tuple[Any, Any, Any]
) -> tuple[Array, Array]:
    (x, y, pos_weight), (tx, ty, tp) = map(jnp.asarray, primals), tangents
    out = _bce_logits_pos_weight(x, y, pos_weight)
    # binary_cross_entropy_with_logits_backward and its target backward; PyTorch gives pos_weight
    # no gradient (it refuses one), this is the derivative of the forward.
    return out, _tangent(
        out,
        (lambda: (pos_weight * y + 1 - y) * jax.nn.sigmoid(x) - pos_weight * y, tx),
        (lambda: _log_sigmoid(-x) - _log_sigmoid(x) * pos_weight, ty),
        (lambda: -_log_sigmoid(x) * y, tp),
    )


_bce_logits_pos_weight.defjvp(_bce_logits_pos_weight_jvp, symbolic_zeros=True)


def _check_range(input: Array, target: Array) -> None:
    """PyTorch's per-element checks, in element order: the first bad element names its argument."""
    x, y = np.asarray(input).ravel(), np.asarray(target).ravel()
    bad_x = ~((x >= 0) & (x <= 1))
    bad = bad_x | ~((y >= 0) & (y <= 1))
    if bad.any():
        which = "input" if bad_x[np.argmax(bad)] else "target"
        raise InputError(f"all elements of {which} should be between 0 and 1")


def _checked_weight(
    owner: str, weight: Array | None, input: Array, grown: tuple[int, ...] | None = None
) -> Array | None:
    """The weight (``grown`` to this shape first), checked as ``loss.mul_(weight)``: it may not grow the loss."""
    if weight is None:
        return None
    weight = floating(owner, "weight", weight)
    same_dtype(owner, "weight", weight, input)
    check_in_place(input.shape, weight.shape if grown is None else grown)
    return weight


def _bce_kernel(input: Array, target: Array, weight: Array | None, *, poison: bool, reduction: str) -> Array:
    """The loss after the checks."""
    loss = _bce(input, target)
    if poison:
        # Only under tracing (eager calls were range-checked): NaN where PyTorch would have raised.
        outside = ~((input >= 0) & (input <= 1) & (target >= 0) & (target <= 1))
        loss = loss * jnp.where(outside, jnp.nan, 1.0).astype(loss.dtype)
    if weight is not None:
        loss = loss * jnp.broadcast_to(weight, jnp.broadcast_shapes(target.shape, weight.shape))
    return apply_reduction(loss, reduction)


def _bce_logits_kernel(
    input: Array, target: Array, weight: Array | None, pos_weight: Array | None, *, reduction: str
) -> Array:
    if pos_weight is None:
        loss = _bce_logits(input, target)
    else:
        loss = _bce_logits_pos_weight(input, target, jnp.broadcast_to(pos_weight, input.shape))
    if weight is not None:
        loss = loss * weight
    return apply_reduction(loss, reduction)


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary cross entropy of probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    ``l = -w * (y * max(log x, -100) + (1 - y) * max(log(1 - x), -100))``, PyTorch's clamp of
    the logarithms (so ``x`` of exactly 0 or 1 gives at most 100 per element); ``'mean'`` is
    ``sum(l) / numel``. The gradients are PyTorch's: ``d/dx = w (x - y) / max(x (1 - x), 1e-12)``
    and ``d/dy = -w * logit(x)`` (unclamped: infinite at 0 and 1).

    ``input`` and ``target`` must lie in ``[0, 1]``: PyTorch's ``RuntimeError`` when their values
    are known (eager calls, eager ``jax.grad`` included). Under ``jax.jit`` they cannot be
    checked; an element outside (or NaN) gives a NaN loss instead.

    Args:
      input: probabilities, floating point, any shape.
      target: probabilities of the input's shape and dtype.
      weight: rescaling, broadcastable to the input's shape (not beyond it); expanded against
        the target's shape first, as PyTorch does. PyTorch refuses a weight that requires grad;
        here its gradient is the derivative of the loss.
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Returns:
      A scalar, or the elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag; a target of another size.
      InputError: an element outside ``[0, 1]``; a weight that does not broadcast.
      TypeError: non-floating arrays, or dtypes that differ from the input's.

    Reproduces ``torch.nn.functional.binary_cross_entropy`` and ``torch.nn.BCELoss``.
    """
    reject_legacy("binary_cross_entropy", size_average, reduce)
    check_reduction(reduction)
    input = floating("binary_cross_entropy", "input", input)
    target = floating("binary_cross_entropy", "target", target)
    if target.shape != input.shape:
        raise ValueError(
            f"Using a target size ({torch_size(target.shape)}) that is different to the input size "
            f"({torch_size(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    same_dtype("binary_cross_entropy", "target", target, input)
    if weight is not None:
        # PyTorch expands the weight against the target first (torch.broadcast_shapes), then multiplies in place.
        weight = floating("binary_cross_entropy", "weight", weight)
        expanded = broadcast_shapes(target.shape, weight.shape)
        weight = _checked_weight("binary_cross_entropy", weight, input, grown=expanded)
    values = concrete(input), concrete(target)
    traced = values[0] is None or values[1] is None
    if not traced:
        _check_range(*values)
    return _bce_kernel(input, target, weight, poison=traced, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Array | None = None,
) -> Array:
    """Binary cross entropy of logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    With ``p = pos_weight`` (1 when None): ``l = w * ((1 - y) x - (1 + (p - 1) y) log_sigmoid(x))``,
    which is ``-w (p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))`` computed stably, in
    PyTorch's float32 order (``log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))``); ``'mean'`` is
    ``sum(l) / numel``. The gradient is PyTorch's
    ``w ((p y + 1 - y) sigmoid(x) - p y)``; with respect to ``y``,
    ``w (log_sigmoid(-x) - p log_sigmoid(x))``. Targets are not range-checked (as in PyTorch).

    Args:
      input: logits, floating point, any shape.
      target: targets of the input's shape and dtype.
      weight: rescaling, broadcastable to the input's shape (not beyond it).
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      pos_weight: the weight of positive examples, broadcastable with the target (``(C,)`` for
        ``(N, C)``; ``(C, 1, 1)`` for ``(N, C, H, W)``), not beyond the input's shape. As for
        ``weight``, PyTorch gives it no gradient; here it has the loss's derivative.

    Returns:
      A scalar, or the elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag; a target of another size.
      InputError: a weight or pos_weight that does not broadcast.
      TypeError: non-floating arrays, or dtypes that differ from the input's.

    Reproduces ``torch.nn.functional.binary_cross_entropy_with_logits`` and
    ``torch.nn.BCEWithLogitsLoss``.
    """
    owner = "binary_cross_entropy_with_logits"
    reject_legacy(owner, size_average, reduce)
    check_reduction(reduction)
    input = floating(owner, "input", input)
    target = floating(owner, "target", target)
    if target.shape != input.shape:
        raise ValueError(
            f"Target size ({torch_size(target.shape)}) must be the same as input size ({torch_size(input.shape)})"
        )
    same_dtype(owner, "target", target, input)
    if pos_weight is not None:
        pos_weight = floating(owner, "pos_weight", pos_weight)
        same_dtype(owner, "pos_weight", pos_weight, input)
        # (pos_weight - 1).mul(target) broadcasts; log_sigmoid(input).mul_(...) may not grow the input.
        check_in_place(input.shape, broadcast_pair(pos_weight.shape, target.shape))
    weight = _checked_weight(owner, weight, input)
    return _bce_logits_kernel(input, target, weight, pos_weight, reduction=reduction)
