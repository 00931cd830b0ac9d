"""Adam and AdamW: ``torch.optim.Adam`` / ``torch.optim.AdamW`` as optax transformations."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from ._common import (
    CheckedLearningRate,
    LearningRate,
    Schedule,
    TensorLearningRate,
    TorchOptimizer,
    build_optimizer,
    check_learning_rate,
    check_number,
    constant_learning_rate,
    float32_decay,
    float64_tensor_lr_on_scalar,
    initial_count,
    learning_rate_at,
    next_count,
    rounded,
    scalar,
)
from ._schedule import BiasCorrections
from ._skip_none import gradient_leaves, map_present


class AdamState(NamedTuple):
    """Adam's state, with PyTorch's per-parameter names.

    Every field but ``count`` is a tree shaped like the parameters (one leaf per parameter):

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]``: the number of steps this parameter
        has taken. A step with a None gradient does not advance it (PyTorch counts per
        parameter; optax's Adam keeps one count for all). 0 means PyTorch has no state yet.
      exp_avg: the first moment, ``state[p]["exp_avg"]``.
      exp_avg_sq: the second moment, ``state[p]["exp_avg_sq"]``.
      max_exp_avg_sq: ``state[p]["max_exp_avg_sq"]`` when ``amsgrad``, else None.
      count: int32, the number of ``update`` calls so far, the argument of a learning-rate
        schedule (which PyTorch applies per optimizer, not per parameter); None when the
        learning rate is a number.
    """

    step: Any
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


def _check_adam_arguments(
    lr: Any, betas: Any, eps: Any, weight_decay: Any
) -> tuple[CheckedLearningRate, float | Schedule, float]:
    # PyTorch's checks, in PyTorch's order, with its messages.
    lr = check_learning_rate(lr, nan_is_valid=False)
    check_number("eps", eps)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of floats (beta1, beta2), got {betas!r}")
    scheduled = callable(betas[0])  # a cycling scheduler's momentum: PyTorch does not check scheduler values
    beta1 = betas[0] if scheduled else check_number("betas[0]", betas[0])
    beta2 = check_number("betas[1]", betas[1])
    check_number("weight_decay", weight_decay)
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not scheduled and not 0.0 <= beta1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
    if not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
    if not weight_decay >= 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if not ((scheduled or isinstance(beta1, float)) and isinstance(beta2, float)):
        raise ValueError("betas must be either both floats or both Tensors")
    return lr, beta1, beta2


def _adam(
    lr: LearningRate,
    betas: tuple[float | Schedule, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> TorchOptimizer:
    lr, beta1, beta2 = _check_adam_arguments(lr, betas, eps, weight_decay)
    scheduled_beta1 = callable(beta1)
    constant_beta1 = 0.0 if scheduled_beta1 else cast(float, beta1)  # unused with a schedule
    lr_number, float32_lr = constant_learning_rate(lr)
    corrections = BiasCorrections(lr_number, constant_beta1, beta2, float32_lr)
    # A float64 tensor lr computes as a Python float; the float path keeps lr as given (a numpy
    # float32 lr computes 1 - lr * weight_decay in float32 in PyTorch too).
    plain_lr = lr.value if isinstance(lr, TensorLearningRate) else lr
    # exp_avg.lerp_(grad, 1 - beta1): PyTorch's lerp takes w = float32(1 - beta1) and computes
    # start + w * (end - start) for |w| < 0.5, else end + (w - 1) * (end - start), each one FMA.
    lerp_weight = np.float32(1 - constant_beta1)
    lerp_small = bool(abs(lerp_weight) < 0.5)

    def init(params: Any) -> AdamState:
        for leaf in jax.tree.leaves(params):
            if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
                raise TypeError(f"torchsem.optim steps floating-point parameters, got a {jnp.result_type(leaf)} leaf")
        if decoupled and weight_decay != 0:
            float64_tensor_lr_on_scalar(lr, params, "AdamW")
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        count = jnp.zeros((), jnp.int32) if scheduled_beta1 else initial_count(lr)
        return AdamState(steps, zeros(), zeros(), zeros() if amsgrad else None, count)

    def parameter_step(lr_value, beta1_value, weight_value, p, g, step, exp_avg, exp_avg_sq, *maybe_max):
        dtype = p.dtype
        g = rounded(g)
        if maximize:
            g = -g
        step = step + np.float32(1)
        if weight_decay != 0:
            if decoupled:
                if callable(lr):
                    decay = 1 - lr_value.astype(dtype) * scalar(weight_decay, dtype)
                elif float32_lr:  # a float32 0-d tensor lr: 1 - lr * weight_decay in float32
                    decay = float32_decay(cast(float, lr_number), weight_decay).astype(dtype)
                else:
                    decay = scalar(1 - plain_lr * weight_decay, dtype)
                p = rounded(p * decay)  # param.mul_(1 - lr * weight_decay), rounded on its own
            else:
                g = g + scalar(weight_decay, dtype) * p
        difference = g - exp_avg
        if scheduled_beta1:  # PyTorch's lerp picks its formula by the weight, here known per step only
            w = weight_value.astype(dtype)
            exp_avg = jnp.where(jnp.abs(w) < 0.5, exp_avg + w * difference, g + (w - np.float32(1)) * difference)
        elif lerp_small:
            exp_avg = exp_avg + lerp_weight.astype(dtype) * difference
        else:
            exp_avg = g + (lerp_weight - np.float32(1)).astype(dtype) * difference
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg_sq = rounded(exp_avg_sq * scalar(beta2, dtype)) + (scalar(1 - beta2, dtype) * g) * g
        new_max: tuple = ()
        second = exp_avg_sq
        if amsgrad:
            second = jnp.maximum(maybe_max[0], exp_avg_sq)
            new_max = (second,)
        denom = jnp.sqrt(second) / corrections.bias_correction2_sqrt(step, p.shape).astype(dtype) + scalar(eps, dtype)
        if scheduled_beta1:
            # PyTorch: lr / (1 - beta1_t ** step) in float64; here in float32 (a few ulp away).
            neg_step_size = (-(lr_value / -jnp.expm1(step * jnp.log(beta1_value)))).astype(dtype)
        else:
            neg_step_size = corrections.neg_step_size(step, lr_value).astype(dtype)
        new_p = p + (neg_step_size * exp_avg) / denom  # param.addcdiv_(exp_avg, denom, value=-step_size)
        return (new_p, step, exp_avg, exp_avg_sq, *new_max)

    def step(grads: Any, state: AdamState, params: Any) -> tuple[Any, AdamState]:
        lr_value = learning_rate_at(lr, state.count)
        beta1_value = weight_value = None
        if scheduled_beta1:  # PyTorch's group["betas"][0] as a cycling scheduler set it for this step
            schedule = cast(Schedule, beta1)
            beta1_value = jnp.asarray(schedule(state.count), jnp.float32)  # type: ignore[arg-type]  # init made it
            # 1 - beta1 is computed in float64 and rounded once where the schedule can (complement), else in float32.
            complement = getattr(schedule, "complement", None)
            weight = complement(state.count) if complement is not None else 1 - beta1_value
            weight_value = jnp.asarray(weight, jnp.float32)
        one = lambda p, g, *s: parameter_step(lr_value, beta1_value, weight_value, p, g, *s)  # noqa: E731
        trees = (state.step, state.exp_avg, state.exp_avg_sq) + ((state.max_exp_avg_sq,) if amsgrad else ())
        new_params, new_trees = map_present(one, grads, params, trees)
        steps, exp_avg, exp_avg_sq, *maybe_max = new_trees
        return new_params, AdamState(
            steps, exp_avg, exp_avg_sq, maybe_max[0] if amsgrad else None, next_count(state.count)
        )

    return build_optimizer(init, step, gradient_leaves)


_MATH = r"""
    Per parameter with gradient :math:`g`, step count :math:`t` (its own), PyTorch's order of
    operations and roundings::

        g = -g                                   if maximize
        t = t + 1
        {decay}
        m = lerp(m, g, 1 - beta1)                (one FMA)
        v = beta2 * v + ((1 - beta2) * g) * g    (product rounded, then one FMA)
        v_max = max(v_max, v)                    if amsgrad (then used for v)
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps
        p = p + (-(lr / (1 - beta1**t)) * m) / denom

    The bias corrections are PyTorch's float64 values rounded once to float32 (exact at every
    step). A parameter whose gradient is None is skipped: zero update, moments and its step
    count untouched. A zero gradient is not skipped.
"""


def adam(
    lr: LearningRate = 1e-3,
    betas: tuple[float | Schedule, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    """Adam with PyTorch's semantics (L2 weight decay added to the gradient).

    {math}
    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first); with a schedule the step size ``lr_t / (1 - beta1**t)`` is
        divided in float32. Or a 1-element array, PyTorch's tensor ``lr``: float32 (or a signed
        integer, which PyTorch promotes to float32) computes ``lr / (1 - beta1**t)`` and
        ``1 - lr * weight_decay`` as float32 tensor ops, as PyTorch does (float64: as a float).
      betas: ``(beta1, beta2)``, each in [0, 1); ``beta1`` may be a schedule (a cycling scheduler's
        ``momentum``, called with the update count), then ``1 - beta1**t`` is computed in float32.
      eps: added to the denominator.
      weight_decay: L2 penalty added to the gradient (PyTorch's Adam; see :func:`adamw`).
      amsgrad: keep the maximum of the second moments.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages, e.g. ``Invalid beta parameter at index 0: 1.0``.

    Reproduces ``torch.optim.Adam(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)``.
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=False)


def adamw(
    lr: LearningRate = 1e-3,
    betas: tuple[float | Schedule, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    """AdamW with PyTorch's semantics: decoupled weight decay, PyTorch's default 1e-2 (optax's is 1e-4).

    {math}
    Args:
      lr: learning rate, a number, an optax schedule or a 1-element array (see :func:`adam`; a
        float64 array with a 0-d parameter and ``weight_decay`` is a NotImplementedError, as
        PyTorch decays that parameter in float64).
      betas: ``(beta1, beta2)``, each in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled decay: the parameter is first multiplied by ``1 - lr * weight_decay``.
      amsgrad: keep the maximum of the second moments.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Reproduces ``torch.optim.AdamW(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)``.
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


adam.__doc__ = (adam.__doc__ or "").replace(
    "{math}",
    _MATH.format(decay="g = g + weight_decay * p                 if weight_decay != 0   (L2, one FMA)").strip("\n"),
)
adamw.__doc__ = (adamw.__doc__ or "").replace(
    "{math}", _MATH.format(decay="p = p * (1 - lr * weight_decay)          (decoupled, before the moments)").strip("\n")
)
