"""Adadelta: ``torch.optim.Adadelta`` as an optax GradientTransformation, step for step."""

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
    check_number,
    initial_count,
    learning_rate_at,
    next_count,
    rounded,
    scalar,
)
from ._kernels import decay_add_square
from ._skip_none import gradient_leaves, map_present


class AdadeltaState(NamedTuple):
    """Adadelta's state, with PyTorch's per-parameter names.

    Attributes:
      step: float32 scalars, PyTorch's ``state[p]["step"]`` (a None gradient does not advance
        it); 0 means PyTorch holds no state yet.
      square_avg: ``state[p]["square_avg"]``, the running average of squared gradients.
      acc_delta: ``state[p]["acc_delta"]``, the running average of squared updates.
      count: int32, the number of ``update`` calls so far (a learning-rate schedule's
        argument); None when the learning rate is a number.
    """

    step: Any
    square_avg: Any
    acc_delta: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


def adadelta(
    lr: LearningRate = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""Adadelta with PyTorch's semantics, as an optax transformation.

    Per parameter with gradient :math:`g`, PyTorch's order of operations and roundings::

        g = -g                                      if maximize
        g = g + weight_decay * p                    if weight_decay != 0   (L2, one FMA)
        v = rho * v + ((1 - rho) * g) * g           (product rounded, then one FMA)
        d = (sqrt(u + eps) / sqrt(v + eps)) * g
        u = rho * u + ((1 - rho) * d) * d
        p = p - lr * d                              (one FMA)

    A parameter whose gradient is None is skipped (no update, its state and step count
    untouched); a zero gradient is not skipped.

    Args:
      lr: learning rate scaling the update, a number or an optax schedule called with the
        number of previous ``update`` calls (0 first). PyTorch's default 1.0. Or a 1-element
        array, PyTorch's tensor ``lr`` (see :func:`torchsem.optim.sgd`: ``alpha=-lr`` reads it,
        so the steps are the float's).
      rho: decay of both running averages, in ``[0, 1]``.
      eps: added inside both square roots.
      weight_decay: L2 penalty added to the gradient.
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation`` with an exact ``step``);
      ``update(grads, state, params)`` needs ``params``.

    Raises:
      ValueError: PyTorch's messages in PyTorch's order, e.g. ``Invalid learning rate: -1``,
        ``Invalid rho value: 1.5``, ``Invalid epsilon value: -1e-06``,
        ``Invalid weight_decay value: -0.1``.
      TypeError: an argument that is not a number.

    Reproduces ``torch.optim.Adadelta(params, lr, rho, eps, weight_decay, maximize=maximize)``
    (``foreach=None`` on CPU: the single-tensor path).
    """
    lr = check_learning_rate(lr, nan_is_valid=False)
    rho = check_number("rho", rho)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"Invalid rho value: {rho}")
    eps = check_nonnegative("eps", eps, "epsilon")
    weight_decay = check_nonnegative("weight_decay", weight_decay, "weight_decay")

    def init(params: Any) -> AdadeltaState:
        check_float_leaves(jax.tree.leaves(params))
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        steps = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        return AdadeltaState(steps, zeros(), zeros(), initial_count(lr))

    def parameter_step(lr_value, p, g, step, square_avg, acc_delta):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        step = step + jnp.float32(1)
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + scalar(weight_decay, dtype) * p
        eps_value = scalar(eps, dtype)
        square_avg = decay_add_square(square_avg, g, rho)
        # XLA rewrites x / sqrt(y) as x * rsqrt(y) (not PyTorch's rounding): divide by an opaque copy.
        std = rounded(jnp.sqrt(square_avg + eps_value))
        # delta.div_(std).mul_(g) is its own tensor: rounded, so that (with lr = 1, where -lr * delta
        # folds to -delta) XLA cannot fuse its product into the parameter's subtraction.
        delta = rounded((jnp.sqrt(acc_delta + eps_value) / std) * g)
        acc_delta = decay_add_square(acc_delta, delta, rho)
        new_p = p + (-lr_value.astype(dtype)) * delta  # p.add_(delta, alpha=-lr): one FMA
        return new_p, step, square_avg, acc_delta

    def step(grads: Any, state: AdadeltaState, params: Any) -> tuple[Any, AdadeltaState]:
        lr_value = learning_rate_at(lr, state.count)
        one = lambda p, g, *s: parameter_step(lr_value, p, g, *s)  # noqa: E731
        new_params, (steps, square_avg, acc_delta) = map_present(
            one, grads, params, (state.step, state.square_avg, state.acc_delta)
        )
        return new_params, AdadeltaState(steps, square_avg, acc_delta, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
