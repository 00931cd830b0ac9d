"""RAdam: ``torch.optim.RAdam`` as an optax GradientTransformation, step for step."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._arguments import check_betas, check_float_leaves, check_nonnegative
from ._common import (
    LearningRate,
    TensorLearningRate,
    TorchOptimizer,
    build_optimizer,
    check_learning_rate,
    constant_learning_rate,
    float32_decay,
    float64_tensor_lr_on_scalar,
    initial_count,
    learning_rate_at,
    next_count,
    rounded,
    scalar,
)
from ._kernels import decay_add_square, lerp
from ._skip_none import gradient_leaves, map_present
from ._step_scalars import StepTable, lookup, power, tabulate

RECTIFICATION_THRESHOLD = 5.0
"""PyTorch rectifies the step when ``rho_t > 5`` (optax's ``radam`` default threshold is 5 too)."""


class RAdamState(NamedTuple):
    """RAdam's state, with PyTorch's per-parameter names.

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]`` (a None gradient does not advance
        it); 0 means PyTorch holds no state yet.
      exp_avg: ``state[p]["exp_avg"]``, the first moment.
      exp_avg_sq: ``state[p]["exp_avg_sq"]``, the second moment.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    exp_avg: Any
    exp_avg_sq: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True, eq=False)
class _Tables:
    """RAdam's per-step scalars: PyTorch's float64 values rounded once to float32.

    ``bias_correction1`` divides ``exp_avg``; ``bias_correction2_sqrt`` multiplies the
    reciprocal of ``sqrt(exp_avg_sq) + eps``; ``rectification`` multiplies the rectified step
    (0 where ``rectified`` is False: the step is then plain momentum).
    """

    bias_correction1: StepTable
    bias_correction2_sqrt: StepTable
    rectified: StepTable
    rectification: StepTable


def _rho(beta2: float, step: float) -> tuple[float, float]:
    """PyTorch's ``rho_inf`` and ``rho_t`` (the approximated SMA's length) on Python floats."""
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf, rho_inf - 2 * step * (beta2**step) / (1 - beta2**step)


def _rectification(beta2: float, step: float) -> float | None:
    """PyTorch's ``_compute_rect()`` at this step, or None when the step is not rectified."""
    rho_inf, rho_t = _rho(beta2, step)
    if not rho_t > RECTIFICATION_THRESHOLD:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


@functools.lru_cache(maxsize=64)
def _tables(beta1: float, beta2: float) -> _Tables:
    """The tables for ``(beta1, beta2)``; every value is monotone in the step and stops at its float32 limit.

    ``1 - beta**t`` rises to 1. ``rho_t`` rises to ``rho_inf``: once it passes 5 the step stays
    rectified, and the rectification (positive there) rises to 1; when ``rho_inf <= 5`` no step
    ever is.
    """
    one = np.float32(1.0)
    bias_correction1 = tabulate(lambda t: 1 - beta1**t, one)
    bias_correction2_sqrt = tabulate(lambda t: (1 - beta2**t) ** 0.5, one)
    rho_inf = 2 / (1 - beta2) - 1
    if not rho_inf > RECTIFICATION_THRESHOLD:
        never = StepTable(np.zeros(1, np.float32), True)
        return _Tables(bias_correction1, bias_correction2_sqrt, StepTable(np.zeros(1, bool), True), never)
    rectification = tabulate(lambda t: _rectification(beta2, t) or 0.0, one)
    rectified = StepTable(rectification.values > 0, rectification.complete)
    return _Tables(bias_correction1, bias_correction2_sqrt, rectified, rectification)


def radam(
    lr: LearningRate = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""RAdam with PyTorch's semantics (rectified when ``rho_t > 5``), as an optax transformation.

    Per parameter with gradient :math:`g` and step count :math:`t` (its own), PyTorch's order
    of operations and roundings::

        g = -g                                        if maximize
        p = p * (1 - lr * weight_decay)               if decoupled_weight_decay
        g = g + weight_decay * p                      otherwise, if weight_decay != 0 (one FMA)
        m = lerp(m, g, 1 - beta1)                     (one FMA)
        v = beta2 * v + ((1 - beta2) * g) * g         (product rounded, then one FMA)
        m_hat = m / (1 - beta1**t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        if rho_t > 5:
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - ((m_hat * lr) * ((1 / (sqrt(v) + eps)) * sqrt(1 - beta2**t))) * r
        else:
            p = p - m_hat * lr

    Each product is rounded on its own, as PyTorch's separate tensor ops round them. The
    scalars (``1 - beta1**t``, ``sqrt(1 - beta2**t)``, ``r``, whether ``rho_t > 5``) are PyTorch's
    float64 values rounded once to float32, tabulated by step until they settle (at most
    ``TABLE_CAP`` = 65536 steps of a parameter; computed in float32 after, a few ulp). A
    parameter whose gradient is None is skipped (no update, its state and step count
    untouched); a zero gradient is not skipped.

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first). PyTorch's default 1e-3. Or a 1-element array, PyTorch's
        tensor ``lr``: float32 (or signed integer) computes ``1 - lr * weight_decay`` in float32
        as PyTorch does (float64: as a float; with a 0-d parameter, NotImplementedError, as
        PyTorch computes ``m_hat * lr`` in float64 there).
      betas: ``(beta1, beta2)``, each in ``[0, 1)``.
      eps: added to ``sqrt(v)`` (optax's ``radam`` too, but it also differs in ``eps_root``).
      weight_decay: weight decay, L2 (added to the gradient) or decoupled.
      decoupled_weight_decay: RAdamW: decay the parameter instead of the gradient.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid epsilon value: -1e-08``, ``Invalid beta parameter at index 0: -0.1``,
        ``Invalid weight_decay value: -0.1``.
      TypeError: an argument that is not a number, or ``betas`` that is not a pair.

    Reproduces ``torch.optim.RAdam(params, lr, betas, eps, weight_decay, decoupled_weight_decay,
    maximize=maximize)`` (``foreach=None`` on CPU: the single-tensor path, ``capturable=False``).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    eps = check_nonnegative("eps", eps, "epsilon")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")
    scheduled = callable(lr)
    constant_lr, float32_lr = constant_learning_rate(lr)
    plain_lr = constant_lr if isinstance(lr, TensorLearningRate) else lr  # see adam
    tables = _tables(float(beta1), float(beta2))
    rho_inf = np.float32(2 / (1 - beta2) - 1)
    rect_denominator = np.float32((rho_inf - 4) * (rho_inf - 2))

    def init(params: Any) -> RAdamState:
        check_float_leaves(jax.tree.leaves(params))
        # exp_avg_hat * lr: a 0-d parameter and a float64 0-d lr promote to float64 in PyTorch.
        float64_tensor_lr_on_scalar(lr, params, "RAdam")
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        return RAdamState(steps, zeros(), zeros(), initial_count(lr))

    def rho_f32(t: jax.Array) -> jax.Array:
        """``rho_t`` in float32 (past the tables only)."""
        beta_t = power(beta2, t)
        return rho_inf - 2 * t * beta_t / (1 - beta_t)

    def rect_f32(t: jax.Array) -> jax.Array:
        rho_t = rho_f32(t)
        return jnp.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / (rect_denominator * rho_t))

    def parameter_step(lr_value, p, g, step, exp_avg, exp_avg_sq):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        if maximize:
            g = -g
        step = step + jnp.float32(1)
        if weight_decay != 0:
            if decoupled_weight_decay:
                if scheduled:
                    decay = 1 - lr_value.astype(dtype) * scalar(weight_decay, dtype)
                elif float32_lr:  # a float32 0-d tensor lr: 1 - lr * weight_decay in float32
                    decay = float32_decay(constant_lr, weight_decay).astype(dtype)
                else:
                    decay = scalar(1 - plain_lr * weight_decay, dtype)
                p = rounded(p * decay)  # param.mul_(1 - lr * weight_decay), rounded on its own
            else:
                g = g + scalar(weight_decay, dtype) * p
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = decay_add_square(exp_avg_sq, g, beta2)
        bias_correction1 = lookup(tables.bias_correction1, step, p.shape, fallback=lambda t: 1 - power(beta1, t))
        corrected = exp_avg / bias_correction1.astype(dtype)
        plain = corrected * lr_value.astype(dtype)
        correction2_sqrt = lookup(tables.bias_correction2_sqrt, step, fallback=lambda t: jnp.sqrt(1 - power(beta2, t)))
        # (bias_correction2 ** 0.5) / (sqrt(v) + eps): Python float / tensor is reciprocal() * float.
        adaptive = (1 / (jnp.sqrt(exp_avg_sq) + scalar(eps, dtype))) * correction2_sqrt.astype(dtype)
        rectification = lookup(tables.rectification, step, fallback=rect_f32).astype(dtype)
        rectified = lookup(tables.rectified, step, fallback=lambda t: rho_f32(t) > RECTIFICATION_THRESHOLD)
        update = jnp.where(rectified, (plain * adaptive) * rectification, plain)
        new_p = p - rounded(update)  # param.add_(update, alpha=-1.0): the update is its own tensor
        return new_p, step, exp_avg, exp_avg_sq

    def step(grads: Any, state: RAdamState, params: Any) -> tuple[Any, RAdamState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        new_params, (steps, exp_avg, exp_avg_sq) = map_present(
            one, grads, params, (state.step, state.exp_avg, state.exp_avg_sq)
        )
        return new_params, RAdamState(steps, exp_avg, exp_avg_sq, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
