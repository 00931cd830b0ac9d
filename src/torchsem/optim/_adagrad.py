"""Adagrad: ``torch.optim.Adagrad`` as an optax GradientTransformation, step for step."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._arguments import check_float_leaves, check_nonnegative
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
from ._schedule import TABLE_CAP
from ._skip_none import gradient_leaves, map_present
from ._step_scalars import StepTable, lookup


class AdagradState(NamedTuple):
    """Adagrad's state, with PyTorch's per-parameter names.

    PyTorch's Adagrad makes every parameter's state in its constructor (not at the first
    step), so every parameter has ``step`` and ``sum`` from the start, as here.

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]`` (a None gradient does not advance it).
      sum: ``state[p]["sum"]``, the sum of squared gradients, starting at
        ``initial_accumulator_value``.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    sum: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


@functools.lru_cache(maxsize=64)
def _decay_table(lr: float, lr_decay: float) -> StepTable:
    """PyTorch's ``clr = lr / (1 + (step - 1) * lr_decay)`` for steps ``1 .. TABLE_CAP``, float64 rounded once.

    Only ``+``, ``*`` and ``/`` (IEEE-exact in numpy's float64 as on Python floats), so the
    table is computed vectorised. The values keep falling: the table always has the cap.
    """
    steps = np.arange(1, TABLE_CAP + 1, dtype=np.float64)
    return StepTable(np.asarray(lr / (1 + (steps - 1) * lr_decay), np.float32), False)


@functools.lru_cache(maxsize=64)
def _float32_decay_table(lr: float, lr_decay: float) -> StepTable:
    """``clr`` for a float32 0-d tensor ``lr``: a float32 division by the float64 divisor rounded to float32."""
    divisor = _divisor_table(lr_decay).values
    return StepTable(np.float32(lr) / divisor, False)


@functools.lru_cache(maxsize=64)
def _divisor_table(lr_decay: float) -> StepTable:
    """``1 + (step - 1) * lr_decay`` rounded once to float32 (the divisor of a scheduled learning rate)."""
    steps = np.arange(1, TABLE_CAP + 1, dtype=np.float64)
    return StepTable(np.asarray(1 + (steps - 1) * lr_decay, np.float32), False)


def adagrad(
    lr: LearningRate = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""Adagrad with PyTorch's semantics (accumulator starts at 0, ``eps`` after the square root).

    Per parameter with gradient :math:`g` and step count :math:`t` (its own, after the
    increment), PyTorch's order of operations and roundings::

        g = -g                                        if maximize
        g = g + weight_decay * p                      if weight_decay != 0   (L2, one FMA)
        clr = lr / (1 + (t - 1) * lr_decay)           (float64, rounded once)
        s = s + g * g                                 (one FMA)
        p = p + (-clr * g) / (sqrt(s) + eps)

    ``clr`` is PyTorch's float64 value rounded once to float32 for the first ``TABLE_CAP``
    (65536) steps of each parameter and computed in float32 after (a few ulp). With a
    learning-rate schedule ``clr = lr_t / (1 + (t - 1) * lr_decay)`` is divided in float32.
    A parameter whose gradient is None is skipped (no update, its step count untouched); a
    zero gradient is not skipped.

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first). PyTorch's default 1e-2. Or a 1-element array, PyTorch's
        tensor ``lr``: float32 (or signed integer) divides ``clr`` in float32 (by the float64
        divisor rounded to float32), as PyTorch's 0-d tensor does (float64: as a float).
      lr_decay: learning-rate decay per step of the parameter.
      weight_decay: L2 penalty added to the gradient.
      initial_accumulator_value: the starting value of ``sum`` (optax's ``adagrad`` starts at 0.1).
      eps: added to the square root.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid lr_decay value: -0.1``, ``Invalid weight_decay value: -0.1``,
        ``Invalid initial_accumulator_value value: -1``, ``Invalid epsilon value: -1e-10``.
      TypeError: an argument that is not a number.

    Reproduces ``torch.optim.Adagrad(params, lr, lr_decay, weight_decay,
    initial_accumulator_value, eps, maximize=maximize)`` (``foreach=None``, ``fused=None`` on
    CPU: the single-tensor path; sparse gradients are not supported).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    lr_decay = check_nonnegative("lr_decay", lr_decay, "lr_decay")
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")
    initial_accumulator_value = check_nonnegative(
        "initial_accumulator_value", initial_accumulator_value, "initial_accumulator_value"
    )
    eps = check_nonnegative("eps", eps, "epsilon")
    constant_lr, float32_lr = constant_learning_rate(lr)
    scheduled = constant_lr is None
    decays = lr_decay != 0
    if decays:
        if constant_lr is None:
            table = _divisor_table(float(lr_decay))
        elif float32_lr:
            table = _float32_decay_table(constant_lr, float(lr_decay))
        else:
            table = _decay_table(constant_lr, float(lr_decay))

    def init(params: Any) -> AdagradState:
        check_float_leaves(jax.tree.leaves(params))
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        sums = jax.tree.map(lambda p: jnp.full_like(p, scalar(initial_accumulator_value, p.dtype)), params)
        return AdagradState(steps, sums, initial_count(lr))

    def neg_clr(lr_value: jax.Array, step: jax.Array) -> jax.Array:
        """``-clr`` as ``addcdiv_(value=-clr)`` takes it (float32)."""
        if not decays:
            return -lr_value
        divisor_f32 = lambda s: 1 + (s - 1) * np.float32(lr_decay)  # noqa: E731  (past the table)
        if scheduled:
            return -(lr_value / lookup(table, step, fallback=divisor_f32))
        return -lookup(table, step, fallback=lambda s: lr_value / divisor_f32(s))

    def parameter_step(lr_value, p, g, step, total):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        step = step + jnp.float32(1)
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + scalar(weight_decay, dtype) * p
        total = total + g * g  # state_sum.addcmul_(g, g, value=1): one FMA
        std = jnp.sqrt(total) + scalar(eps, dtype)
        new_p = p + (neg_clr(lr_value, step).astype(dtype) * g) / std  # p.addcdiv_(g, std, value=-clr)
        return new_p, step, total

    def step(grads: Any, state: AdagradState, params: Any) -> tuple[Any, AdagradState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        new_params, (steps, sums) = map_present(one, grads, params, (state.step, state.sum))
        return new_params, AdagradState(steps, sums, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
