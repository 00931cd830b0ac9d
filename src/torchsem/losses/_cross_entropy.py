"""``cross_entropy`` as ``torch.nn.functional.cross_entropy``: logits and class indices or probabilities."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..convert import to_jax
from ..errors import InputError
from ._checks import check_class_indices, class_index_target, class_weight, concrete, integer_target

__all__ = ["cross_entropy"]

_REDUCTIONS = ("none", "mean", "sum")


def _probability_weight(weight: Any, n_classes: int) -> jax.Array:
    """The per-class weight of the class-probability path, with PyTorch's message (its own prefix)."""
    weight = to_jax(weight)
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise InputError(
            f"cross_entropy: weight tensor should be defined either for all {n_classes} classes or no classes "
            f"but got weight tensor of shape: {list(weight.shape)}"
        )
    if not jnp.issubdtype(weight.dtype, jnp.floating):
        raise TypeError(f"cross_entropy: weight must be floating point, got {weight.dtype}")
    return weight


def _class_shaped(weight: jax.Array, ndim: int, class_axis: int) -> jax.Array:
    """``weight`` viewed to broadcast along the class axis of an ``ndim``-d input."""
    shape = [1] * ndim
    shape[class_axis] = weight.shape[0]
    return weight.reshape(shape)


def _log_softmax_parts(input: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """``(max, log(sum(exp(x - max))))`` over ``axis``, kept as axes of size 1.

    PyTorch's CPU kernel computes ``log_softmax(x) = (x - max) - log(sum(exp(x - max)))`` in
    that order (LogSoftmaxKernelImpl.h); keeping the parts lets the class-index loss do the
    same arithmetic at the picked class only, without materialising the whole ``log_softmax``
    (twice as fast on the CPU, and what the gradient of a gather wants).
    """
    row_max = jax.lax.stop_gradient(jnp.max(input, axis=axis, keepdims=True, initial=-jnp.inf))
    return row_max, jnp.log(jnp.sum(jnp.exp(input - row_max), axis=axis, keepdims=True))


def _log_softmax(input: jax.Array, row_max: jax.Array, log_sum: jax.Array) -> jax.Array:
    return (input - row_max) - log_sum


def _probability_targets(
    log_probs: jax.Array,
    target: jax.Array,
    weight: jax.Array | None,
    reduction: str,
    label_smoothing: float,
    class_axis: int,
) -> jax.Array:
    n_classes = log_probs.shape[class_axis]
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = log_probs * target
    if weight is not None:
        terms = terms * _class_shaped(weight, log_probs.ndim, class_axis)
    if reduction == "none":
        return -terms.sum(axis=class_axis)
    total = -terms.sum()
    if reduction == "sum":
        return total
    # PyTorch divides by the number of samples (every axis but the classes), weights or not.
    if log_probs.size == 0:
        return jnp.full((), jnp.nan, total.dtype)
    return total / (log_probs.size // n_classes)


def _index_targets(
    input: jax.Array,
    row_max: jax.Array,
    log_sum: jax.Array,
    target: jax.Array,
    weight: jax.Array | None,
    reduction: str,
    ignore_index: int,
    label_smoothing: float,
    class_axis: int,
) -> jax.Array:
    n_classes = input.shape[class_axis]
    valid = target != ignore_index
    in_range = (target >= 0) & (target < n_classes)
    safe_target = jnp.where(valid & in_range, target, 0).astype(jnp.int32)
    picked = jnp.take_along_axis(input, jnp.expand_dims(safe_target, class_axis), axis=class_axis)
    picked = jnp.squeeze(_log_softmax(picked, row_max, log_sum), class_axis)
    # Only reachable under tracing (eager calls raised): an out-of-range index poisons its
    # loss and, through the product, the gradient of its whole row with NaN.
    picked = picked * jnp.where(valid & ~in_range, jnp.nan, 1.0).astype(picked.dtype)
    target_weight = weight[safe_target] if weight is not None else jnp.ones((), input.dtype)
    zero = jnp.zeros((), input.dtype)
    nll = jnp.where(valid, -picked * target_weight, zero)
    if reduction == "none":
        loss = nll
    else:
        loss = nll.sum()
        if reduction == "mean":
            # Weighted mean: divide by the summed weights of the non-ignored targets (0/0 -> NaN).
            total_weight = jnp.where(valid, target_weight, zero).sum()
            loss = loss / total_weight
    if label_smoothing <= 0.0:
        return loss

    log_probs = _log_softmax(input, row_max, log_sum)
    if weight is not None:
        smooth = -(log_probs * _class_shaped(weight, log_probs.ndim, class_axis)).sum(axis=class_axis)
    else:
        smooth = -log_probs.sum(axis=class_axis)
    smooth = jnp.where(valid, smooth, zero)
    if reduction == "none":
        smooth_loss = smooth
    elif reduction == "sum":
        smooth_loss = smooth.sum()
    elif weight is not None:
        smooth_loss = smooth.sum() / jnp.where(valid, target_weight, zero).sum()
    else:
        smooth_loss = smooth.sum() / valid.sum().astype(log_probs.dtype)
    return (1 - label_smoothing) * loss + smooth_loss * (label_smoothing / n_classes)


def cross_entropy(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    """Cross entropy between logits and targets, as ``torch.nn.functional.cross_entropy``.

    With ``log p = log_softmax(input)`` over the class axis (axis 1, or 0 for an unbatched
    ``(C,)`` input) and ``eps = label_smoothing``:

    - class indices ``t``: ``l = -w[t] log p[t]`` (0 where ``t == ignore_index``); ``'mean'``
      is ``sum(l) / sum(w[t])`` over the non-ignored targets (NaN when all are ignored);
      with smoothing ``(1 - eps) * nll + eps / C * s`` where
      ``s = -sum_c w[c] log p[c]``, reduced the same way;
    - class probabilities ``q`` (same shape as ``input``): ``l = -sum_c w[c] q'[c] log p[c]``
      with ``q' = (1 - eps) q + eps / C``; ``'mean'`` divides by the number of samples
      (weights do not enter the divisor, as in PyTorch).

    An out-of-range class index raises PyTorch's ``IndexError`` when the targets are concrete
    (eager calls). Under ``jax.jit`` the targets are abstract and cannot be checked; there an
    out-of-range index gives a NaN loss for that element (and so a NaN reduced loss) and NaN
    gradients for its row, instead of silently reading another class.

    Args:
      input: logits, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``, floating point.
      target: class indices of shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)`` (any integer
        dtype), or class probabilities of the input's shape (floating point).
      weight: per-class rescaling, ``(C,)``, the input's dtype for class indices.
      ignore_index: a class index that contributes neither loss nor weight (class indices only;
        must be negative for probabilities, as PyTorch's default -100 is).
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      label_smoothing: ``eps`` in ``[0.0, 1.0]``.

    Returns:
      The loss: a scalar, or the unreduced ``(N, d1, ..., dk)`` (``()`` for a ``(C,)`` input)
      with ``reduction='none'``.

    Reproduces ``torch.nn.functional.cross_entropy`` and ``torch.nn.CrossEntropyLoss``.
    """
    input = to_jax(input)
    target = to_jax(target)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if not 0.0 <= label_smoothing <= 1.0:
        # PyTorch raises above 1 and silently ignores a negative value; both are refused here.
        raise InputError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
    if input.ndim < 1:
        raise ValueError(
            "cross_entropy: input must have a class axis: (C,), (N, C) or (N, C, d1, ...), got a 0-d array"
        )
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(f"cross_entropy: input (the logits) must be floating point, got {input.dtype}")
    class_axis = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_axis]
    row_max, log_sum = _log_softmax_parts(input, class_axis)

    if target.shape == input.shape:
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise TypeError(f"Expected floating point type for target with class probabilities, got {target.dtype}")
        if ignore_index >= 0:
            raise InputError("ignore_index is not supported for floating point target")
        if weight is not None:
            weight = _probability_weight(weight, n_classes)
        return _probability_targets(
            _log_softmax(input, row_max, log_sum), target, weight, reduction, label_smoothing, class_axis
        )

    # PyTorch's cross_entropy is nll_loss_nd(log_softmax(input, 1), target): nll_loss's checks.
    target = class_index_target(input, target)
    if weight is not None:
        weight = class_weight("cross_entropy", weight, input)
    integer_target("cross_entropy", target)
    values = concrete(target)
    if values is not None:
        check_class_indices(values, n_classes, ignore_index)
    return _index_targets(input, row_max, log_sum, target, weight, reduction, ignore_index, label_smoothing, class_axis)
