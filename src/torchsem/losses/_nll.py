"""``nll_loss`` as ``torch.nn.functional.nll_loss``: log-probabilities and class indices."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from ..convert import to_jax
from ._checks import check_class_indices, class_index_target, class_weight, concrete, integer_target
from ._reduction import check_reduction, reject_legacy


def _kernel(
    input: jax.Array, target: jax.Array, weight: jax.Array | None, *, reduction: str, ignore_index: int, poison: bool
) -> jax.Array:
    """``-w[t] * input[t]`` per element (0 where ignored), reduced as PyTorch's ``nll_loss`` reduces it.

    ``poison`` (only under tracing: eager calls raised) makes an out-of-range index's loss NaN,
    so that the reduced loss is NaN too instead of a silently read other class.
    """
    class_axis = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_axis]
    valid = target != ignore_index
    in_range = (target >= 0) & (target < n_classes)
    safe_target = jnp.where(valid & in_range, target, 0).astype(jnp.int32)
    picked = jnp.take_along_axis(input, jnp.expand_dims(safe_target, class_axis), axis=class_axis)
    picked = jnp.squeeze(picked, class_axis)
    if poison:
        picked = picked * jnp.where(valid & ~in_range, jnp.nan, 1.0).astype(picked.dtype)
    target_weight = weight[safe_target] if weight is not None else jnp.ones((), picked.dtype)
    zero = jnp.zeros((), picked.dtype)
    loss = jnp.where(valid, -picked * target_weight, zero)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    # The weighted mean: divided by the summed weights of the non-ignored targets (0 / 0 is NaN).
    return total / jnp.where(valid, target_weight, zero).sum()


def nll_loss(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Negative log-likelihood of class indices, as ``torch.nn.functional.nll_loss``.

    With ``x`` the log-probabilities (class axis 1, or 0 for an unbatched ``(C,)`` input) and
    ``t`` the class of each element: ``l = -w[t] * x[t]``, 0 where ``t == ignore_index``;
    ``'sum'`` is ``sum(l)`` and ``'mean'`` the weighted mean ``sum(l) / sum(w[t])`` over the
    non-ignored elements (NaN when every target is ignored or the batch is empty, as in
    PyTorch). ``nll_loss(log_softmax(x, 1), t)`` is ``cross_entropy(x, t)``.

    An out-of-range class index raises PyTorch's ``IndexError`` when the targets' values are
    known (eager calls). Under ``jax.jit`` they are abstract: the element's loss is NaN instead
    (and so is the reduced loss), never a silently read other class.

    Args:
      input: log-probabilities, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``, floating point.
      target: class indices, ``()`` for ``(C,)`` (or ``(1,)``, which PyTorch's forward takes and its
        backward refuses; torchsem differentiates it), ``(N,)`` or ``(N, d1, ..., dk)``; any integer
        dtype (PyTorch takes int64 and uint8).
      weight: per-class rescaling, ``(C,)``, the input's dtype (PyTorch refuses one that requires
        grad; here its gradient is the loss's derivative).
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      ignore_index: a class index that contributes neither loss nor weight.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Returns:
      A scalar, or the unreduced loss of the target's shape with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction``, a deprecated flag, or PyTorch's batch-size errors.
      InputError: PyTorch's shape, weight and target-dtype errors (``RuntimeError``).
      IndexError: a concrete class index out of range.
      TypeError: a non-floating input, a weight of another dtype, a non-int ``ignore_index``.

    Reproduces ``torch.nn.functional.nll_loss`` and ``torch.nn.NLLLoss``.
    """
    reject_legacy("nll_loss", size_average, reduce)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"nll_loss: ignore_index must be an int, got {ignore_index!r}")
    check_reduction(reduction)
    input = to_jax(input)
    target = to_jax(target)
    target = class_index_target(input, target)
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(f"nll_loss: input (log-probabilities) must be floating point, got {input.dtype}")
    if weight is not None:
        weight = class_weight("nll_loss", weight, input)
    integer_target("nll_loss", target)
    values = concrete(target)
    traced = values is None
    if not traced:
        check_class_indices(values, input.shape[0 if input.ndim == 1 else 1], ignore_index)
    return _kernel(input, target, weight, reduction=reduction, ignore_index=ignore_index, poison=traced)
