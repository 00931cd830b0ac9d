"""Gradient clipping: ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_`` as optax transformations."""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import InputError
from ._common import rounded


class ClipGradNormState(NamedTuple):
    """:func:`clip_grad_norm`'s state.

    Attributes:
      total_norm: the total norm of the last update's gradients, the value
        ``torch.nn.utils.clip_grad_norm_`` returns (0 before the first update).
    """

    total_norm: jax.Array


def _as_float(name: str, value: Any) -> float:
    # PyTorch converts with float(): numbers, and strings such as "inf" (its documented spelling).
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError(
            f"{name} must be a real number (or a string such as 'inf'), got {type(value).__name__}: {value!r}"
        )
    return float(value)  # float("fro") raises Python's ValueError, as in PyTorch


def _vector_norm(x: jax.Array, order: float) -> jax.Array:
    """``torch.linalg.vector_norm(x, order)`` of a real array, in its dtype."""
    magnitude = jnp.abs(x)
    if order == math.inf:
        return jnp.max(magnitude)
    if order == -math.inf:
        return jnp.min(magnitude)
    if order == 0:
        return jnp.sum(x != 0).astype(x.dtype)
    if order == 1:
        return jnp.sum(magnitude)
    if order == 2:
        return jnp.sqrt(jnp.sum(x * x))
    return jnp.sum(magnitude**order) ** (1.0 / order)


def _nonfinite_message(order: float) -> str:
    return (
        f"The total norm of order {order} for gradients from "
        "`parameters` is non-finite, so it cannot be clipped. To disable "
        "this error and scale the gradients by the non-finite norm anyway, "
        "set `error_if_nonfinite=False`"
    )


def _gradients(updates: Any) -> list[jax.Array]:
    leaves = jax.tree.leaves(updates)  # None gradients are empty subtrees: they take no part
    for index, leaf in enumerate(leaves):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                f"gradient clipping needs floating-point gradients, got {jnp.result_type(leaf)} at leaf {index}"
            )
    return leaves


def _norm_dtype(params: Any) -> Any:
    leaves = [leaf for leaf in jax.tree.leaves(params) if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)]
    return jnp.result_type(*leaves) if leaves else jnp.float32


def clip_grad_norm(
    max_norm: float, norm_type: float | str = 2.0, error_if_nonfinite: bool = False
) -> optax.GradientTransformation:
    r"""Scale the gradients down to a total norm of at most ``max_norm``: ``torch.nn.utils.clip_grad_norm_``.

    As PyTorch 2.13 computes it, in the gradients' dtype: the norm of each non-None gradient,
    then the norm of those norms (``vector_norm(stack(norms), norm_type)``), and

    .. math::
        c = \min\!\left(\frac{\text{max\_norm}}{\lVert g \rVert + 10^{-6}},\ 1\right), \qquad g \leftarrow c\,g

    with the quotient computed as PyTorch's ``max_norm / tensor`` does,
    ``reciprocal(norm + 1e-6) * max_norm``, and every gradient multiplied by ``c`` (also when
    ``c`` is 1). ``norm_type`` may be ``inf`` (the largest magnitude). A non-finite total norm
    scales by NaN or 0 as in PyTorch, or raises with ``error_if_nonfinite``. None gradients
    stay None; with none at all the norm is 0 and nothing changes. The per-tensor sums are
    XLA's, not PyTorch's accumulation order, so the norm may differ in the last bits.

    Args:
      max_norm: the largest total norm kept.
      norm_type: the p of the p-norm (a number, or ``"inf"``).
      error_if_nonfinite: raise when the total norm is NaN or infinite.

    Returns:
      An ``optax.GradientTransformation`` whose state (:class:`ClipGradNormState`) holds the
      total norm of the last update, which ``clip_grad_norm_`` returns.

    Raises:
      TypeError: a ``max_norm`` or ``norm_type`` that is not a number; integer gradients.
      ValueError: a string ``norm_type`` that ``float()`` rejects (Python's message, as PyTorch).
      InputError: (a ``RuntimeError``) PyTorch's message when ``error_if_nonfinite`` and the
        norm is not finite; under ``jax.jit`` it is raised from a host callback, so it
        arrives as JAX's runtime error with that message inside.

    Reproduces ``torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=2.0,
    error_if_nonfinite=False)`` (its default ``foreach=None``).
    """
    order = _as_float("norm_type", norm_type)
    limit = _as_float("max_norm", max_norm)
    if not isinstance(error_if_nonfinite, bool):
        raise TypeError(f"error_if_nonfinite must be a bool, got {type(error_if_nonfinite).__name__}")

    def check_finite(total: jax.Array) -> jax.Array:
        if not isinstance(total, jax.core.Tracer):
            if not bool(jnp.isfinite(total)):
                raise InputError(_nonfinite_message(order))
            return total

        def on_host(value: np.ndarray) -> np.ndarray:
            if not np.isfinite(value):
                raise InputError(_nonfinite_message(order))
            return value

        # The callback's result is what the scale is computed from, so it cannot be dropped.
        return jax.pure_callback(on_host, jax.ShapeDtypeStruct(total.shape, total.dtype), total)

    def init(params: Any) -> ClipGradNormState:
        return ClipGradNormState(jnp.zeros((), _norm_dtype(params)))

    def update(updates: Any, state: ClipGradNormState, params: Any = None) -> tuple[Any, ClipGradNormState]:
        del params
        grads = _gradients(updates)
        if not grads:
            return updates, ClipGradNormState(jnp.zeros_like(state.total_norm))
        norms = [_vector_norm(g, order) for g in grads]
        dtype = jnp.result_type(*norms)
        total = _vector_norm(jnp.stack([n.astype(dtype) for n in norms]), order)
        if error_if_nonfinite:
            total = check_finite(total)
        coef = jnp.minimum((1 / (total + 1e-6)) * limit, 1.0)  # PyTorch's max_norm / t is t.reciprocal() * max_norm
        clipped = jax.tree.map(lambda g: rounded(g * coef.astype(g.dtype)), updates)
        return clipped, ClipGradNormState(total.astype(state.total_norm.dtype))

    return optax.GradientTransformation(init, update)


def clip_grad_value(clip_value: float) -> optax.GradientTransformation:
    r"""Clamp every gradient element into ``[-clip_value, clip_value]``: ``torch.nn.utils.clip_grad_value_``.

    .. math::
        g \leftarrow \min(\max(g, -c), c)

    in that order, as PyTorch's ``clamp_min_`` then ``clamp_max_`` (NaN stays NaN; a negative
    ``clip_value`` sets everything to it), with ``c`` rounded to the gradient's dtype. None
    gradients stay None.

    Args:
      clip_value: the bound.

    Returns:
      An ``optax.GradientTransformation`` without state (``optax.EmptyState``).

    Raises:
      TypeError: a ``clip_value`` that is not a number; integer gradients.

    Reproduces ``torch.nn.utils.clip_grad_value_(parameters, clip_value)``.
    """
    bound = _as_float("clip_value", clip_value)

    def init(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, optax.EmptyState]:
        del params
        _gradients(updates)
        clamp = lambda g: jnp.minimum(jnp.maximum(g, np.asarray(-bound, g.dtype)), np.asarray(bound, g.dtype))  # noqa: E731
        return jax.tree.map(clamp, updates), state

    return optax.GradientTransformation(init, update)
