"""Regression losses as ``torch.nn.functional``'s: ``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``.

Each is elementwise in ``d = input - target`` (the two broadcast, with PyTorch's warning when
their sizes differ). The gradients are PyTorch's backward formulas, not autodiff of the
forward's branches: ``l1``'s slope is ``sgn(d)`` (0 at ``d == 0`` and for NaN, where
``jnp.abs`` gives 1), and smooth L1 / Huber take the linear branch's slope from ``|d| >= beta``
on, as PyTorch's kernels do.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..errors import InputError
from ._checks import broadcast_pair, floating, real_number, same_dtype, warn_size_mismatch
from ._reduction import apply_reduction, check_reduction, reject_legacy

Array = jax.Array


def _elementwise(forward: Callable[[Array], Array], slope: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``forward(d)`` whose derivative is ``slope(d)``, PyTorch's backward formula."""

    @jax.custom_jvp
    def f(d: Array) -> Array:
        return forward(d)

    @f.defjvp
    def f_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
        # a jnp array: the primal may arrive as a numpy-backed constant, whose ops would run in numpy.
        d, (t,) = jnp.asarray(primals[0]), tangents
        return f(d), slope(d) * t

    return f


def _sign(d: Array) -> Array:
    """``sgn(d)`` as PyTorch's ``abs`` backward reads it: ``(0 < d) - (d < 0)``, so 0 for 0 and NaN."""
    one = jnp.ones((), d.dtype)
    return jnp.where(d > 0, one, jnp.where(d < 0, -one, jnp.zeros((), d.dtype)))


def _plus_minus_one(d: Array) -> Array:
    """The kernels' ``d > 0 ? 1 : -1`` (NaN takes -1; its other factor is NaN anyway)."""
    one = jnp.ones((), d.dtype)
    return jnp.where(d > 0, one, -one)


_absolute = _elementwise(jnp.abs, _sign)


def _smooth_l1(beta: float) -> Callable[[Array], Array]:
    def forward(d: Array) -> Array:
        z, b = jnp.abs(d), jnp.asarray(beta, d.dtype)
        # The kernel's float32 order: (0.5 * z) * z / beta, and 0.5 * beta.
        return jnp.where(z < b, 0.5 * z * z / b, z - 0.5 * b)

    def slope(d: Array) -> Array:
        b = jnp.asarray(beta, d.dtype)
        return jnp.where(jnp.abs(d) >= b, _plus_minus_one(d), d / b)

    return _elementwise(forward, slope)


def _huber(delta: float) -> Callable[[Array], Array]:
    def forward(d: Array) -> Array:
        z, k = jnp.abs(d), jnp.asarray(delta, d.dtype)
        return jnp.where(z < k, 0.5 * z * z, k * (z - 0.5 * k))

    def slope(d: Array) -> Array:
        k = jnp.asarray(delta, d.dtype)
        return jnp.where(jnp.abs(d) >= k, _plus_minus_one(d) * k, d)

    return _elementwise(forward, slope)


def _checked(owner: str, input: Array, target: Array) -> tuple[Array, Array]:
    """The two arrays after PyTorch's size warning, with ``broadcast_tensors``' error when they do not broadcast."""
    input = floating(owner, "input", input)
    target = floating(owner, "target", target)
    same_dtype(owner, "target", target, input)
    warn_size_mismatch(input.shape, target.shape, stacklevel=3)
    broadcast_pair(input.shape, target.shape)
    return input, target


def _sample_weight(owner: str, weight: Array, input: Array) -> Array:
    weight = floating(owner, "weight", weight)
    same_dtype(owner, "weight", weight, input)
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    return weight


def _check_weighted_reduction(reduction: str) -> None:
    """The message of PyTorch's Python branch for a per-element ``weight`` (it never calls ``get_enum``)."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


_ELEMENTWISE: dict[str, Callable[[float], Callable[[Array], Array]]] = {
    "mse": lambda _: lambda d: d * d,
    "l1": lambda _: _absolute,
    "smooth_l1": _smooth_l1,
    "huber": _huber,
}


def _kernel(input: Array, target: Array, weight: Array | None, *, kind: str, parameter: float, reduction: str) -> Array:
    """The loss after the checks."""
    shape = jnp.broadcast_shapes(input.shape, target.shape)
    loss = _ELEMENTWISE[kind](parameter)(jnp.broadcast_to(input, shape) - jnp.broadcast_to(target, shape))
    if weight is None:
        return apply_reduction(loss, reduction)
    weighted = loss * weight
    if reduction != "mean":
        return apply_reduction(weighted, reduction)
    # PyTorch's Python branch: l1/mse divide by the summed weights, huber takes the plain mean.
    return jnp.mean(weighted) if kind == "huber" else jnp.sum(weighted) / jnp.sum(weight)


def mse_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Array | None = None,
) -> Array:
    """Squared error ``(input - target)**2``, as ``torch.nn.functional.mse_loss``.

    ``l = d * d`` with ``d = input - target`` (broadcast; a ``UserWarning`` when their sizes
    differ, as PyTorch); ``'mean'`` is ``sum(l) / numel``. With ``weight`` (the input's shape):
    ``l = d**2 * w`` and ``'mean'`` is ``sum(l) / sum(w)``. The gradient is ``2 d`` per element.

    Args:
      input: predictions, floating point, any shape.
      target: targets, the input's dtype, broadcastable with it.
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      weight: per-element weights of the input's shape (differentiable, as in PyTorch).

    Returns:
      A scalar, or the broadcast elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag; a weight not of the input's size.
      InputError: shapes that do not broadcast (PyTorch's ``RuntimeError``).
      TypeError: non-floating arrays, or dtypes that differ from the input's.

    Reproduces ``torch.nn.functional.mse_loss`` and ``torch.nn.MSELoss``.
    """
    reject_legacy("mse_loss", size_average, reduce)
    input, target = _checked("mse_loss", input, target)
    if weight is not None:
        weight = _sample_weight("mse_loss", weight, input)
        _check_weighted_reduction(reduction)
    else:
        check_reduction(reduction)
    return _kernel(input, target, weight, kind="mse", parameter=0.0, reduction=reduction)


def l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Array | None = None,
) -> Array:
    """Absolute error ``|input - target|``, as ``torch.nn.functional.l1_loss``.

    ``l = |d|`` with ``d = input - target`` (broadcast, with PyTorch's warning); its gradient
    is ``sgn(d)``: 0 where ``d == 0`` (and for NaN), as PyTorch's ``abs`` backward. With
    ``weight``: ``l = |d| * w`` and ``'mean'`` is ``sum(l) / sum(w)``.

    Args:
      input: predictions, floating point, any shape.
      target: targets, the input's dtype, broadcastable with it.
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      weight: per-element weights of the input's shape.

    Returns:
      A scalar, or the broadcast elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag; a weight not of the input's size.
      InputError: shapes that do not broadcast.
      TypeError: non-floating arrays, or dtypes that differ from the input's.

    Reproduces ``torch.nn.functional.l1_loss`` and ``torch.nn.L1Loss``.
    """
    reject_legacy("l1_loss", size_average, reduce)
    input, target = _checked("l1_loss", input, target)
    if weight is not None:
        weight = _sample_weight("l1_loss", weight, input)
        _check_weighted_reduction(reduction)
    else:
        check_reduction(reduction)
    return _kernel(input, target, weight, kind="l1", parameter=0.0, reduction=reduction)


def smooth_l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Array:
    """Smooth L1, as ``torch.nn.functional.smooth_l1_loss``.

    With ``z = |input - target|``: ``l = 0.5 * z**2 / beta`` where ``z < beta``, else
    ``z - 0.5 * beta`` (float32, in that order); ``beta == 0`` is :func:`l1_loss`, as PyTorch
    routes it. The gradient is ``d / beta`` inside, ``±1`` from ``|d| >= beta`` on.
    ``smooth_l1_loss(beta=b) == huber_loss(delta=b) / b``.

    Args:
      input: predictions, floating point, any shape.
      target: targets, the input's dtype, broadcastable with it.
      size_average: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduce: PyTorch's deprecated flag, kept for its position; only None is accepted.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      beta: the threshold, ``>= 0``.

    Returns:
      A scalar, or the broadcast elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction`` or deprecated flag.
      InputError: a negative ``beta``; shapes that do not broadcast.
      TypeError: a ``beta`` that is not a number; non-floating arrays or differing dtypes.

    Reproduces ``torch.nn.functional.smooth_l1_loss`` and ``torch.nn.SmoothL1Loss``.
    """
    reject_legacy("smooth_l1_loss", size_average, reduce)
    beta = real_number("smooth_l1_loss", "beta", beta)
    input, target = _checked("smooth_l1_loss", input, target)
    check_reduction(reduction)
    if beta == 0.0:
        return _kernel(input, target, None, kind="l1", parameter=0.0, reduction=reduction)
    if not beta >= 0:
        raise InputError("smooth_l1_loss does not support negative values for beta.")
    return _kernel(input, target, None, kind="smooth_l1", parameter=beta, reduction=reduction)


def huber_loss(
    input: Array,
    target: Array,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Array | None = None,
) -> Array:
    """Huber loss, as ``torch.nn.functional.huber_loss``.

    With ``z = |input - target|``: ``l = 0.5 * z**2`` where ``z < delta``, else
    ``delta * (z - 0.5 * delta)``; the gradient is ``d`` inside and ``±delta`` from
    ``|d| >= delta`` on. With ``weight`` (the input's shape), ``l * w`` and ``'mean'`` is the
    plain mean of ``l * w`` (not divided by ``sum(w)``, unlike :func:`mse_loss`: PyTorch's own
    difference). ``huber_loss(delta=1) == smooth_l1_loss(beta=1)``.

    Args:
      input: predictions, floating point, any shape.
      target: targets, the input's dtype, broadcastable with it.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      delta: the threshold, ``> 0``.
      weight: per-element weights of the input's shape.

    Returns:
      A scalar, or the broadcast elementwise loss with ``reduction='none'``.

    Raises:
      ValueError: a bad ``reduction``; a weight not of the input's size.
      InputError: a ``delta <= 0``; shapes that do not broadcast.
      TypeError: a ``delta`` that is not a number; non-floating arrays or differing dtypes.

    Reproduces ``torch.nn.functional.huber_loss`` and ``torch.nn.HuberLoss``.
    """
    delta = real_number("huber_loss", "delta", delta)
    input, target = _checked("huber_loss", input, target)
    if weight is not None:
        weight = _sample_weight("huber_loss", weight, input)
    else:
        check_reduction(reduction)
    if not delta > 0:
        raise InputError("huber_loss does not support non-positive values for delta.")
    if weight is not None:
        _check_weighted_reduction(reduction)
    return _kernel(input, target, weight, kind="huber", parameter=delta, reduction=reduction)
