"""Adamax: ``torch.optim.Adamax`` as an optax GradientTransformation, step for step."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._arguments import check_betas, check_float_leaves, check_nonnegative
from ._common import (
    LearningRate,
    TorchOptimizer,
    build_optimizer,
    check_learning_rate,
    constant_learning_rate,
    initial_count,
    learning_rate_at,
    next_count,
    rounded,
    scalar,
)
from ._kernels import lerp
from ._schedule import BiasCorrections
from ._skip_none import gradient_leaves, map_present


class AdamaxState(NamedTuple):
    """Adamax's state, with PyTorch's per-parameter names.

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]`` (a None gradient does not advance
        it); 0 means PyTorch holds no state yet.
      exp_avg: ``state[p]["exp_avg"]``, the first moment.
      exp_inf: ``state[p]["exp_inf"]``, the exponentially weighted infinity norm.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    exp_avg: Any
    exp_inf: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


def adamax(
    lr: LearningRate = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""Adamax with PyTorch's semantics (``eps`` inside the maximum), as an optax transformation.

    Per parameter with gradient :math:`g` and step count :math:`t` (its own), PyTorch's order
    of operations and roundings::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0   (L2, one FMA)
        m = lerp(m, g, 1 - beta1)                (one FMA)
        u = max(beta2 * u, |g| + eps)
        p = p + (-(lr / (1 - beta1**t)) * m) / u

    The step size is PyTorch's float64 value rounded once to float32 (with a learning-rate
    schedule ``lr_t / (1 - beta1**t)`` is divided in float32). No square root: the steps are
    PyTorch's bit for bit. A parameter whose gradient is None is skipped (no update, its state
    and step count untouched); a zero gradient is not skipped.

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first). PyTorch's default 2e-3. Or a 1-element array, PyTorch's
        tensor ``lr``: float32 (or signed integer) divides ``lr / (1 - beta1**t)`` in float32,
        as PyTorch's 0-d tensor does (float64: as a float).
      betas: ``(beta1, beta2)``, each in ``[0, 1)``.
      eps: added to ``|g|`` inside the maximum (optax's ``adamax`` adds it to the denominator).
      weight_decay: L2 penalty added to the gradient.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid epsilon value: -1e-08``, ``Invalid beta parameter at index 0: 1.0``,
        ``Invalid weight_decay value: -0.1``.
      TypeError: an argument that is not a number, or ``betas`` that is not a pair.

    Reproduces ``torch.optim.Adamax(params, lr, betas, eps, weight_decay, maximize=maximize)``
    (``foreach=None`` on CPU: the single-tensor path, ``capturable=False``).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    eps = check_nonnegative("eps", eps, "epsilon")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")
    lr_number, float32_lr = constant_learning_rate(lr)
    corrections = BiasCorrections(lr_number, float(beta1), float(beta2), float32_lr)

    def init(params: Any) -> AdamaxState:
        check_float_leaves(jax.tree.leaves(params))
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        return AdamaxState(steps, zeros(), zeros(), initial_count(lr))

    def parameter_step(lr_value, p, g, step, exp_avg, exp_inf):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        if maximize:
            g = -g
        step = step + jnp.float32(1)
        if weight_decay != 0:
            g = g + scalar(weight_decay, dtype) * p
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        # torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf); both propagate NaN.
        exp_inf = jnp.maximum(rounded(exp_inf * scalar(beta2, dtype)), jnp.abs(g) + scalar(eps, dtype))
        neg_step_size = corrections.neg_step_size(step, lr_value).astype(dtype)
        new_p = p + (neg_step_size * exp_avg) / exp_inf  # p.addcdiv_(exp_avg, exp_inf, value=-clr)
        return new_p, step, exp_avg, exp_inf

    def step(grads: Any, state: AdamaxState, params: Any) -> tuple[Any, AdamaxState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        new_params, (steps, exp_avg, exp_inf) = map_present(
            one, grads, params, (state.step, state.exp_avg, state.exp_inf)
        )
        return new_params, AdamaxState(steps, exp_avg, exp_inf, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
