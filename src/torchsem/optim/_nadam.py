"""NAdam: ``torch.optim.NAdam`` as an optax GradientTransformation, step for step."""

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
from ._schedule import TABLE_CAP
from ._skip_none import gradient_leaves, map_present
from ._step_scalars import StepTable, lookup, power


class NAdamState(NamedTuple):
    """NAdam's state, with PyTorch's per-parameter names.

    Every field but ``count`` is a tree shaped like the parameters (one leaf per parameter):

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]`` (a None gradient does not advance
        it); 0 means PyTorch holds no state yet.
      mu_product: float32 scalars, ``state[p]["mu_product"]``: the product of the momentum
        coefficients ``mu_1 ... mu_t`` of this parameter's steps (1 before the first).
      exp_avg: ``state[p]["exp_avg"]``, the first moment.
      exp_avg_sq: ``state[p]["exp_avg_sq"]``, the second moment.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    mu_product: Any
    exp_avg: Any
    exp_avg_sq: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True, eq=False)
class _Tables:
    """NAdam's per-step scalars, PyTorch's float64 values rounded once to float32.

    ``mu_product`` is PyTorch's float32 state (``mu_product *= mu``: the float32 product of the
    state and ``mu`` rounded to float32, denormals kept); ``grad_coefficient`` and
    ``avg_coefficient`` are the ``value=`` of the two ``addcdiv_`` calls, for ``lr`` (or for
    ``lr = 1`` with a schedule, then multiplied by ``lr_t`` in float32).
    """

    bias_correction2: StepTable
    mu_product: StepTable
    grad_coefficient: StepTable
    avg_coefficient: StepTable


@functools.lru_cache(maxsize=64)
def _tables(lr: float, beta1: float, beta2: float, momentum_decay: float, float32_lr: bool = False) -> _Tables:
    """Run PyTorch's scalar arithmetic (``_single_tensor_nadam``) for steps ``1 .. TABLE_CAP``.

    With ``float32_lr`` (a float32 0-d tensor ``lr``) the coefficients are PyTorch's 0-d tensor
    arithmetic instead: ``(-lr * (1 - mu)) / (1 - P)`` and ``(-lr * mu_next) / (1 - P * mu_next)``
    in float32, each Python-float factor (``1 - mu``, ``1 - P``, ...) rounded to float32 first.

    The powers are Python's (``**`` on floats, as PyTorch's code); the rest is numpy float64
    (``+ - * /`` are IEEE-exact there as on Python floats) and, for ``mu_product *= mu``, a
    float32 running product rounded at every step with denormals kept, as PyTorch's CPU tensor.

    The sequences settle for good once ``mu_product`` stops changing (a fixed point of
    ``fl32(P * mu)`` stays one as ``mu`` grows; it is then 0 or the smallest denormal, and
    ``1 - P`` is exactly 1) and the coefficients and ``1 - beta2**t`` have reached their float32
    limits: from there each is monotone in ``t`` (``0.96 ** (t * momentum_decay)`` and
    ``beta2 ** t`` fall) and cannot move again. The tables stop there, or at the cap.
    """
    steps = [float(t) for t in range(1, TABLE_CAP + 2)]  # one more: mu_{t+1}
    mu_all = np.array([beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay))) for t in steps])
    mu, mu_next = mu_all[:-1], mu_all[1:]
    mu_product = np.multiply.accumulate(mu.astype(np.float32))  # float32 tensor *= Python float, step by step
    product = mu_product.astype(np.float64)
    zero = np.flatnonzero((1.0 - product == 0) | (1.0 - product * mu_next == 0))
    if zero.size:
        raise ZeroDivisionError(
            f"NAdam divides by 1 - mu_product, which is 0 at step {zero[0] + 1} for betas[0]={beta1}, "
            f"momentum_decay={momentum_decay} (PyTorch raises ZeroDivisionError in step())"
        )
    if float32_lr:
        neg_lr = -np.float32(lr)
        f32 = np.float32
        grad = (neg_lr * (1.0 - mu).astype(f32)) / (1.0 - product).astype(f32)
        avg = (neg_lr * mu_next.astype(f32)) / (1.0 - product * mu_next).astype(f32)
        grad_limit = (neg_lr * f32(1.0 - beta1)) / f32(1.0)
        avg_limit = (neg_lr * f32(beta1)) / f32(1.0)
    else:
        grad = (-lr * (1.0 - mu) / (1.0 - product)).astype(np.float32)
        avg = ((-lr * mu_next) / (1.0 - product * mu_next)).astype(np.float32)
        grad_limit, avg_limit = np.float32(-lr * (1.0 - beta1)), np.float32(-lr * beta1)
    columns = {
        "bc2": np.array([1 - beta2**t for t in steps[:-1]]).astype(np.float32),
        "mu_product": mu_product,
        "grad": grad,
        "avg": avg,
    }
    fixed = np.flatnonzero(mu_product[1:] == mu_product[:-1])
    fixed_from = int(fixed[0]) + 1 if fixed.size else TABLE_CAP  # mu_product's first repeat (0-based)
    limits = {"bc2": np.float32(1.0), "grad": grad_limit, "avg": avg_limit}

    def table(name: str) -> StepTable:
        values = columns[name]
        if name == "mu_product":
            end = fixed_from if fixed.size else None
        else:
            # bc2 is monotone on its own; the coefficients once mu_product is fixed (constant then
            # when momentum_decay is 0, mu being constant).
            start = 0 if name == "bc2" else fixed_from
            if name != "bc2" and momentum_decay == 0:
                at_limit = np.arange(start, TABLE_CAP) if fixed.size else np.array([], int)
            else:
                at_limit = start + np.flatnonzero(values[start:] == limits[name])
            end = int(at_limit[0]) if at_limit.size else None
        if end is None:
            return StepTable(values, False)
        return StepTable(values[: end + 1], True)

    return _Tables(table("bc2"), table("mu_product"), table("grad"), table("avg"))


def nadam(
    lr: LearningRate = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""NAdam with PyTorch's semantics (momentum schedule ``mu_t``), as an optax transformation.

    Per parameter with gradient :math:`g` and step count :math:`t` (its own), PyTorch's order
    of operations and roundings::

        g = -g                                       if maximize
        p = p * (1 - lr * weight_decay)              if decoupled_weight_decay
        g = g + weight_decay * p                     otherwise, if weight_decay != 0 (one FMA)
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        P = P * mu_t                                 (mu_product, float32 product)
        m = lerp(m, g, 1 - beta1)                    (one FMA)
        v = beta2 * v + ((1 - beta2) * g) * g        (product rounded, then one FMA)
        denom = sqrt(v / (1 - beta2**t)) + eps
        p = p + (-lr * (1 - mu_t) / (1 - P) * g) / denom
        p = p + (-lr * mu_{t+1} / (1 - P * mu_{t+1}) * m) / denom

    The scalars (the two coefficients, ``1 - beta2**t``) are PyTorch's float64 values rounded
    once to float32, and ``mu_product`` PyTorch's float32 running product (denormals kept,
    which XLA's CPU arithmetic would flush), tabulated by step: exact for the first
    ``TABLE_CAP`` (65536) steps of a parameter (or until they settle), computed in float32
    after (a few ulp). Being looked up by the step count, they assume the state's
    ``mu_product`` is the one PyTorch's run reaches after ``step`` steps, as every state made
    by PyTorch or here is. With a learning-rate schedule the coefficients are ``lr_t`` times the tabulated
    ``lr = 1`` values, in float32. A parameter whose gradient is None is skipped (no update,
    its state and step count untouched); a zero gradient is not skipped.

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first). PyTorch's default 2e-3. Or a 1-element array, PyTorch's
        tensor ``lr``: float32 (or signed integer) computes both coefficients and
        ``1 - lr * weight_decay`` in float32 as PyTorch's 0-d tensor ops do, exactly
        (float64: as a float; with a 0-d parameter and decoupled decay, NotImplementedError).
      betas: ``(beta1, beta2)``, each in ``[0, 1)``.
      eps: added to the denominator.
      weight_decay: weight decay, L2 (added to the gradient) or decoupled.
      momentum_decay: the momentum schedule's decay (PyTorch's default 4e-3).
      decoupled_weight_decay: NAdamW: decay the parameter instead of the gradient.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid epsilon value: -1e-08``, ``Invalid beta parameter at index 1: 1.0``,
        ``Invalid weight_decay value: -0.1``, ``Invalid momentum_decay value: -0.004``.
      TypeError: an argument that is not a number, or ``betas`` that is not a pair.
      ZeroDivisionError: ``1 - mu_product`` is 0 at some step (``betas[0]`` within float32
        rounding of 1 and a large ``momentum_decay``), where PyTorch's ``step()`` raises it.

    Reproduces ``torch.optim.NAdam(params, lr, betas, eps, weight_decay, momentum_decay,
    decoupled_weight_decay, maximize=maximize)`` (``foreach=None`` on CPU: the single-tensor
    path, ``capturable=False``).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    eps = check_nonnegative("eps", eps, "epsilon")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")
    momentum_decay = check_nonnegative("momentum_decay", momentum_decay, "momentum_decay")
    constant_lr, float32_lr = constant_learning_rate(lr)
    scheduled = constant_lr is None
    table_lr = 1.0 if constant_lr is None else constant_lr  # a schedule multiplies the lr = 1 coefficients
    tables = _tables(table_lr, float(beta1), float(beta2), float(momentum_decay), float32_lr)
    plain_lr = constant_lr if isinstance(lr, TensorLearningRate) else lr  # see adam
    unit_lr = np.float32(table_lr)

    def init(params: Any) -> NAdamState:
        check_float_leaves(jax.tree.leaves(params))
        if decoupled_weight_decay and weight_decay != 0:
            float64_tensor_lr_on_scalar(lr, params, "NAdam")
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        scalars = lambda value: jax.tree.map(lambda p: jnp.full((), value, jnp.float32), params)  # noqa: E731
        return NAdamState(scalars(0.0), scalars(1.0), zeros(), zeros(), initial_count(lr))

    def mu_f32(t: jax.Array) -> jax.Array:
        """``mu_t`` in float32 (past the tables only)."""
        return np.float32(beta1) * (1 - np.float32(0.5) * power(0.96, t * np.float32(momentum_decay)))

    def parameter_step(lr_value, p, g, step, mu_product, exp_avg, exp_avg_sq):
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
                    decay = float32_decay(table_lr, weight_decay).astype(dtype)
                else:
                    decay = scalar(1 - plain_lr * weight_decay, dtype)
                p = rounded(p * decay)  # param.mul_(1 - lr * weight_decay), rounded on its own
            else:
                g = g + scalar(weight_decay, dtype) * p
        old_product = mu_product
        mu_product = lookup(tables.mu_product, step, fallback=lambda t: old_product * mu_f32(t))

        def grad_fallback(t):
            return -unit_lr * (1 - mu_f32(t)) / (1 - mu_product)

        def avg_fallback(t):
            mu_next = mu_f32(t + 1)
            return (-unit_lr * mu_next) / (1 - mu_product * mu_next)

        grad_coefficient = lookup(tables.grad_coefficient, step, fallback=grad_fallback)
        avg_coefficient = lookup(tables.avg_coefficient, step, fallback=avg_fallback)
        if scheduled:
            grad_coefficient = lr_value * grad_coefficient
            avg_coefficient = lr_value * avg_coefficient
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = decay_add_square(exp_avg_sq, g, beta2)
        bias_correction2 = lookup(tables.bias_correction2, step, p.shape, fallback=lambda t: 1 - power(beta2, t))
        denom = jnp.sqrt(exp_avg_sq / bias_correction2.astype(dtype)) + scalar(eps, dtype)
        new_p = p + (grad_coefficient.astype(dtype) * g) / denom  # p.addcdiv_(g, denom, value=...)
        new_p = new_p + (avg_coefficient.astype(dtype) * exp_avg) / denom  # p.addcdiv_(exp_avg, denom, value=...)
        return new_p, step, mu_product, exp_avg, exp_avg_sq

    def step(grads: Any, state: NAdamState, params: Any) -> tuple[Any, NAdamState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        new_params, (steps, mu_product, exp_avg, exp_avg_sq) = map_present(
            one, grads, params, (state.step, state.mu_product, state.exp_avg, state.exp_avg_sq)
        )
        return new_params, NAdamState(steps, mu_product, exp_avg, exp_avg_sq, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
