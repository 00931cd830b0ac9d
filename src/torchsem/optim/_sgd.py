"""SGD: ``torch.optim.SGD`` as an optax GradientTransformation, step for step."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from ._common import (
    LearningRate,
    Schedule,
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
from ._skip_none import gradient_leaves, map_present


class SGDState(NamedTuple):
    """SGD's state: PyTorch's per-parameter ``momentum_buffer``, and an update count.

    Attributes:
      momentum_buffer: a tree shaped like the parameters: PyTorch's
        ``optimizer.state[p]["momentum_buffer"]`` once it exists (the parameter has had a
        gradient). None when ``momentum == 0`` (PyTorch keeps no state then). Before it exists
        the buffer holds -0.0 everywhere when ``has_momentum_buffer`` is None, zeros otherwise.
      has_momentum_buffer: whether PyTorch's buffer exists, bool of shape ``(number of
        parameters,)`` in tree-leaf order, when ``dampening != 0`` or ``maximize``: the first
        step with a gradient starts the buffer as that gradient (dampening not applied). None
        otherwise (the common case): a buffer that was never written holds -0.0 everywhere,
        and ``momentum * -0.0 + g`` is ``g`` bit for bit (signed zeros included), which is
        PyTorch's first-step rule without a flag; :func:`torchsem.optim.state_dict` then
        reports a buffer that is -0.0 everywhere as absent, which differs from PyTorch only
        for a buffer built from gradients that were -0.0 in every element (backpropagated
        sums give +0.0; ``maximize`` negates zeros, hence the flags there). The update is
        PyTorch's either way. Saving the flag matters: every leaf of a jitted step's state
        costs a few microseconds per call, several percent of a small network's step.
      count: int32, the number of ``update`` calls so far, the argument of a learning-rate
        schedule; None when the learning rate is a number (PyTorch's SGD keeps no count).
    """

    momentum_buffer: Any
    has_momentum_buffer: Any
    # optax's field name (ScaleByScheduleState.count); it shadows tuple.count, which nothing calls here.
    count: jax.Array | None  # type: ignore[assignment]


def _check_float(param: jax.Array) -> None:
    if not jnp.issubdtype(jnp.result_type(param), jnp.floating):
        raise TypeError(f"torchsem.optim steps floating-point parameters, got a {jnp.result_type(param)} leaf")


def sgd(
    lr: LearningRate = 1e-3,
    momentum: float | Schedule = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> TorchOptimizer:
    r"""Stochastic gradient descent with PyTorch's semantics, as an optax transformation.

    Per parameter with gradient :math:`g` (PyTorch's order of operations and roundings)::

        g = -g                                  if maximize
        g = g + weight_decay * p                if weight_decay != 0   (L2, one FMA)
        if momentum != 0:
            b = g                               first step with a gradient (no dampening)
            b = momentum * b + (1 - dampening) * g   afterwards (product rounded, then one FMA)
            g = g + momentum * b                if nesterov, else g = b
        p = p - lr * g                          (one FMA)

    A parameter whose gradient is None is skipped: zero update, buffer untouched (PyTorch's
    ``.grad is None``). A zero gradient is not skipped: momentum and weight decay still move
    the parameter (PyTorch's ``zero_grad(set_to_none=False)``).

    Args:
      lr: learning rate, a number or an optax schedule called with the number of previous
        ``update`` calls (0 first), as a PyTorch LR scheduler stepped after every
        ``optimizer.step()``. PyTorch 2.13's default 1e-3. Or a 1-element float32, float64 or
        signed integer array, PyTorch's tensor ``lr`` (``alpha=-lr`` reads its value back, so the
        steps are those of the float; errors are PyTorch's, ``Tensor lr must be 1-element``).
      momentum: momentum factor, a number or an optax schedule (a scheduler's cycled momentum,
        ``OneCycleLR(...).momentum``) called with the update count like ``lr``; a schedule's
        values are taken to be nonzero (momentum buffers are always kept).
      dampening: dampening for momentum (not applied on the buffer's first step).
      weight_decay: L2 penalty added to the gradient.
      nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
      maximize: ascend instead of descend.

    Returns:
      A :class:`TorchOptimizer` (an ``optax.GradientTransformation``): ``update(grads, state,
      params)`` needs ``params`` and returns ``new_param - param``; ``step`` returns the new
      parameters exactly (see :func:`torchsem.optim.step`).

    Raises:
      ValueError: PyTorch's messages, e.g. ``Invalid learning rate: -0.1`` (an array is printed
        as PyTorch prints the tensor, ``tensor([-0.1000])``), ``Tensor lr must be 1-element`` and
        ``Nesterov momentum requires a momentum and zero dampening``.

    Reproduces ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov,
    maximize=maximize)`` (the default ``foreach=None`` path; the single-tensor and foreach
    implementations round identically).
    """
    lr = check_learning_rate(lr, nan_is_valid=True)
    scheduled_momentum = callable(momentum)
    factor = 0.0 if scheduled_momentum else check_number("momentum", momentum)  # the number, when it is one
    dampening = check_number("dampening", dampening)
    weight_decay = check_number("weight_decay", weight_decay)
    if factor < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if nesterov and ((not scheduled_momentum and factor <= 0) or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    use_momentum = scheduled_momentum or factor != 0
    flagged = use_momentum and (dampening != 0 or maximize)  # see SGDState.has_momentum_buffer

    def init(params: Any) -> SGDState:
        for leaf in jax.tree.leaves(params):
            _check_float(leaf)
        count = jnp.zeros((), jnp.int32) if scheduled_momentum else initial_count(lr)
        if not use_momentum:
            return SGDState(None, None, count)
        if not flagged:
            return SGDState(jax.tree.map(lambda p: jnp.full_like(p, -0.0), params), None, count)
        buffers = jax.tree.map(jnp.zeros_like, params)
        exists = jnp.zeros((len(jax.tree.leaves(params)),), bool)
        return SGDState(buffers, exists, count)

    def parameter_step(lr_value, momentum_value, p, g, *state):
        dtype = p.dtype
        g = rounded(g)  # a gradient arrives rounded, never fused with the product that made it
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + scalar(weight_decay, dtype) * p
        new_state: tuple = ()
        if use_momentum:
            buf = state[0]
            m = momentum_value.astype(dtype) if scheduled_momentum else scalar(factor, dtype)
            scaled = rounded(buf * m)  # buf.mul_(momentum): its own rounding
            if flagged:
                buf = jnp.where(state[1], scaled + scalar(1 - dampening, dtype) * g, g)
                new_state = (buf, jnp.ones((), bool))
            else:  # an unwritten buffer is -0.0: -0.0 + g == g exactly, PyTorch's buf = clone(g)
                buf = scaled + g
                new_state = (buf,)
            g = g + m * buf if nesterov else buf
        new_p = p + (-lr_value.astype(dtype)) * g  # p.add_(g, alpha=-lr): one FMA
        return (new_p, *new_state)

    def step(grads: Any, state: SGDState, params: Any) -> tuple[Any, SGDState]:
        lr_value = learning_rate_at(lr, state.count)
        momentum_value = None
        if scheduled_momentum:  # PyTorch's group["momentum"] as a cycling scheduler set it for this step
            schedule = cast(Schedule, momentum)
            momentum_value = jnp.asarray(schedule(state.count), jnp.float32)  # type: ignore[arg-type]  # init made it
        one = lambda p, g, *s: parameter_step(lr_value, momentum_value, p, g, *s)  # noqa: E731
        if flagged:
            # The attr-defined ignores: jaxlib ships no stub for PyTreeDef, so mypy cannot resolve its methods.
            treedef = jax.tree.structure(params)
            exists_tree = treedef.unflatten(list(state.has_momentum_buffer))  # type: ignore[attr-defined]
            new_params, (buffers, exists_tree) = map_present(one, grads, params, (state.momentum_buffer, exists_tree))
            # jaxlib ships no stub for PyTreeDef (mypy sees an unresolved type).
            leaves = treedef.num_leaves  # type: ignore[attr-defined]
            exists = (
                jnp.stack(treedef.flatten_up_to(exists_tree))  # type: ignore[attr-defined]
                if leaves
                else state.has_momentum_buffer
            )
        elif use_momentum:
            new_params, (buffers,) = map_present(one, grads, params, (state.momentum_buffer,))
            exists = None
        else:
            new_params, _ = map_present(one, grads, params, ())
            buffers, exists = None, None
        return new_params, SGDState(buffers, exists, next_count(state.count))

    return build_optimizer(init, step, gradient_leaves)
