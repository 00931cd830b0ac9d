"""``kl_div`` as ``torch.nn.functional.kl_div``: log-probabilities against probabilities or log-probabilities."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from ..convert import to_jax
from ..errors import InputError
from ._checks import broadcast_pair, same_dtype
from ._reduction import check_reduction, reject_legacy

Array = jax.Array

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def kl_div(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Array:
    """Pointwise Kullback-Leibler divergence, as ``torch.nn.functional.kl_div``.

    ``input`` is ``log q`` (log-probabilities), ``target`` is ``p``, or ``log p`` with
    ``log_target=True``; elementwise, as PyTorch's composite computes it:

    - ``l = xlogy(p, p) - p * input`` (0 where ``p == 0``);
    - ``log_target=True``: ``l = exp(t) * (t - input)``.

    ``'sum'`` is ``sum(l)``; ``'batchmean'`` is ``sum(l) / input.shape[0]`` (the KL divergence
    per sample; ``sum(l)`` for a 0-d input), ``'mean'`` is ``sum(l) / numel``: PyTorch's
    ``'mean'``, which divides by the support size too. PyTorch warns on every ``'mean'`` call
    that this is not the KL divergence; torchsem computes the same value without the warning.
    The two arrays broadcast (no size warning, as in PyTorch). Gradients are autodiff of these
    expressions, as PyTorch's autograd of the composite: ``d/d input = -p`` (``-exp(t)``), and
    ``d/dp = log p + 1 - input`` (NaN at ``p == 0``, as in PyTorch).

    Args:
      input: log-probabilities, floating point.
      target: probabilities (or log-probabilities with ``log_target``), the input's dtype,
        broadcastable with it.
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``.
      log_target: whether ``target`` is given in log space.

    Returns:
      A scalar, or the broadcast elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag.
      InputError: integer or boolean arrays (PyTorch's ``RuntimeError``); shapes that do not
        broadcast.
      TypeError: dtypes that differ; a ``log_target`` that is not a bool.

    Reproduces ``torch.nn.functional.kl_div`` and ``torch.nn.KLDivLoss``.
    """
    reject_legacy("kl_div", size_average, reduce)
    if not isinstance(log_target, bool):
        raise TypeError(f"kl_div: log_target must be a bool, got {log_target!r}")
    check_reduction(reduction, _KL_REDUCTIONS)
    input = to_jax(input)
    target = to_jax(target)
    if any(jnp.iscomplexobj(a) for a in (input, target)):
        raise InputError("kl_div: Complex inputs not supported.")
    if not all(jnp.issubdtype(a.dtype, jnp.floating) for a in (input, target)):
        raise InputError("kl_div: Integral inputs not supported.")
    same_dtype("kl_div", "target", target, input)
    broadcast_pair(target.shape, input.shape)
    return _kernel(input, target, reduction=reduction, log_target=log_target)


def _kernel(input: Array, target: Array, *, reduction: str, log_target: bool) -> Array:
    """The divergence after the checks."""
    if log_target:
        loss = jnp.exp(target) * (target - input)
    else:
        loss = xlogy(target, target) - target * input
    if reduction == "none":
        return loss
    if reduction == "mean":
        return jnp.mean(loss)
    total = jnp.sum(loss)
    if reduction == "batchmean" and input.ndim != 0:
        return total / jnp.asarray(input.shape[0], total.dtype)
    return total
