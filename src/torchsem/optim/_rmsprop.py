"""RMSprop: ``torch.optim.RMSprop`` as an optax GradientTransformation, step for step."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._arguments import check_float_leaves, check_nonnegative
from ._common import (
    LearningRate,
    TorchOptimizer,
    build_optimizer,
    check_learning_rate,
    initial_count,
    learning_rate_at,
    next_count,
    rounded,
    scalar,
)
from ._kernels import decay_add_square, lerp
from ._skip_none import gradient_leaves, map_present


class RMSpropState(NamedTuple):
    """RMSprop's state, with PyTorch's per-parameter names.

    Every field but ``count`` is a tree shaped like the parameters (one leaf per parameter):

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]``: the steps this parameter has
        taken (a None gradient does not advance it). 0 means PyTorch holds no state yet.
      square_avg: ``state[p]["square_avg"]``, the running average of squared gradients.
      momentum_buffer: ``state[p]["momentum_buffer"]`` when ``momentum > 0``, else None.
      grad_avg: ``state[p]["grad_avg"]`` when ``centered``, else None.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    square_avg: Any
    momentum_buffer: Any
    grad_avg: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


def rmsprop(
    lr: LearningRate = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""RMSprop with PyTorch's semantics (``eps`` added after the square root), as an optax transformation.

    Per parameter with gradient :math:`g`, PyTorch's order of operations and roundings::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0   (L2, one FMA)
        v = alpha * v + ((1 - alpha) * g) * g    (product rounded, then one FMA)
        if centered:
            a = lerp(a, g, 1 - alpha)            (one FMA)
            denom = sqrt(v - a * a) + eps        (v - a * a: one FMA)
        else:
            denom = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / denom         (product rounded)
            p = p - lr * b                       (one FMA)
        else:
            p = p + (-lr * g) / denom

    A parameter whose gradient is None is skipped (no update, its state and step count
    untouched); a zero gradient is not skipped.

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first), as a PyTorch LR scheduler stepped after every
        ``optimizer.step()``. PyTorch's default 1e-2. Or a 1-element array, PyTorch's tensor
        ``lr`` (see :func:`torchsem.optim.sgd`: only ``alpha=``/``value=`` read it, so the steps
        are the float's).
      alpha: smoothing constant of the squared-gradient average (PyTorch accepts any
        ``alpha >= 0``).
      eps: added to the square root (optax's ``rmsprop`` adds it inside, see the README).
      weight_decay: L2 penalty added to the gradient.
      momentum: momentum factor (a buffer is kept when ``> 0``).
      centered: normalise by an estimate of the gradient's variance instead of its second moment.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid epsilon value: -1e-08``, ``Invalid momentum value: -0.9``,
        ``Invalid weight_decay value: -0.1``, ``Invalid alpha value: -0.5``.
      TypeError: an argument that is not a number.

    Reproduces ``torch.optim.RMSprop(params, lr, alpha, eps, weight_decay, momentum, centered,
    maximize=maximize)`` (``foreach=None`` on CPU: the single-tensor path; ``capturable`` and
    ``differentiable`` do not change the values and have no counterpart here).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    eps = check_nonnegative("eps", eps, "epsilon")
    momentum = check_nonnegative("momentum", momentum, "momentum")
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")
    alpha = check_nonnegative("alpha", alpha, "alpha")
    use_momentum = momentum > 0

    def init(params: Any) -> RMSpropState:
        check_float_leaves(jax.tree.leaves(params))
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        return RMSpropState(
            steps, zeros(), zeros() if use_momentum else None, zeros() if centered else None, initial_count(lr)
        )

    def parameter_step(lr_value, p, g, step, square_avg, *rest):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        if maximize:
            g = -g
        step = step + jnp.float32(1)
        if weight_decay != 0:
            g = g + scalar(weight_decay, dtype) * p
        square_avg = decay_add_square(square_avg, g, alpha)
        rest = list(rest)
        new_rest: list[jax.Array] = []
        if centered:
            grad_avg = lerp(rest.pop(), g, 1 - alpha)
            avg = jnp.sqrt(square_avg + (-grad_avg) * grad_avg)  # square_avg.addcmul(a, a, value=-1): one FMA
        else:
            avg = jnp.sqrt(square_avg)
        avg = avg + scalar(eps, dtype)
        neg_lr = -lr_value.astype(dtype)
        if use_momentum:
            buf = rounded(rest[0] * scalar(momentum, dtype)) + g / avg  # buf.mul_(momentum).addcdiv_(g, avg)
            new_rest.append(buf)
            new_p = p + neg_lr * buf  # p.add_(buf, alpha=-lr): one FMA
        else:
            new_p = p + (neg_lr * g) / avg  # p.addcdiv_(g, avg, value=-lr)
        if centered:
            new_rest.append(grad_avg)
        return (new_p, step, square_avg, *new_rest)

    def step(grads: Any, state: RMSpropState, params: Any) -> tuple[Any, RMSpropState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        trees = [state.step, state.square_avg]
        if use_momentum:
            trees.append(state.momentum_buffer)
        if centered:
            trees.append(state.grad_avg)
        new_params, new_trees = map_present(one, grads, params, trees)
        steps, square_avg, *rest = new_trees
        buffers = rest.pop(0) if use_momentum else None
        grad_avg = rest.pop(0) if centered else None
        return new_params, RMSpropState(steps, square_avg, buffers, grad_avg, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
