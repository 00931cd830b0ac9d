"""Shared pieces of the optimizers: argument checks, learning rates, float32 rounding control."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[jax.Array], Any]
"""An optax schedule: ``count -> learning rate`` (a scalar)."""

LearningRate = float | Schedule


def check_number(name: str, value: Any) -> float:
    """``value`` as a Python number, or a TypeError naming the argument (PyTorch compares it with floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return value  # type: ignore[return-value]


def check_learning_rate(lr: Any, *, nan_is_valid: bool) -> None:
    """PyTorch's learning-rate check: ``ValueError("Invalid learning rate: {lr}")``.

    Args:
      lr: a number or an optax schedule (a callable, checked when called, as PyTorch does not
        check scheduler outputs).
      nan_is_valid: SGD checks ``lr < 0.0`` (NaN passes), Adam ``not 0.0 <= lr`` (NaN fails).
    """
    if callable(lr):
        return
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(
            f"lr must be a float or an optax schedule (a callable count -> learning rate), "
            f"got {type(lr).__name__}: {lr!r}"
        )
    # cast: typeshed's numbers.Real has no __ge__, so mypy cannot type float <= Real.
    invalid = lr < 0.0 if nan_is_valid else not cast(float, lr) >= 0.0
    if invalid:
        raise ValueError(f"Invalid learning rate: {lr}")


def initial_count(lr: LearningRate) -> jax.Array | None:
    """The update count a schedule needs (int32 zero); None for a constant learning rate (PyTorch keeps none)."""
    return jnp.zeros((), jnp.int32) if callable(lr) else None


def next_count(count: jax.Array | None) -> jax.Array | None:
    return None if count is None else count + 1


def learning_rate_at(lr: LearningRate, count: jax.Array | None) -> jax.Array:
    """The learning rate for the update with this ``count`` (0 for the first update), as float32."""
    if callable(lr):
        # count is an int32 array whenever lr is a schedule (initial_count), never None.
        return jnp.asarray(lr(count), jnp.float32)  # type: ignore[arg-type]
    return jnp.asarray(np.float32(lr))


def scalar(value: float, dtype: Any) -> np.ndarray:
    """A Python float rounded once to the parameter's dtype, as PyTorch casts a scalar argument.

    PyTorch computes hyperparameter arithmetic (``1 - dampening``, ``lr / bias_correction1``) on
    Python floats (float64) and rounds the result once when a float32 kernel takes it.
    """
    return np.asarray(value, dtype=np.dtype(dtype))


def rounded(x: jax.Array) -> jax.Array:
    """``x`` unchanged, but kept from being fused into a following add as a fused multiply-add.

    XLA contracts ``a * b + c`` into one FMA (single rounding) whenever the product and the sum
    land in the same kernel. PyTorch's CPU kernels use FMA inside ``add(alpha=)``, ``lerp`` and
    ``addcmul``, but not across two separate ops (``buf.mul_(m)`` then ``.add_(g)`` rounds the
    product first). ``copysign(|x|, x)`` is the identity on every float (signed zeros and NaNs
    included) that the compiler does not see through, so the product is rounded on its own as
    in PyTorch.
    """
    return jnp.copysign(jnp.abs(x), x)


def delta(new: jax.Array, old: jax.Array) -> jax.Array:
    """The optax update that moves ``old`` to ``new``: ``new - old``.

    The optimizers compute PyTorch's new parameter with PyTorch's exact sequence of roundings
    and return its difference from the old one, so that ``optax.apply_updates`` gives back the
    same float32 value: ``old + fl(new - old) == new`` when ``old / 2 <= new <= 2 * old`` (the
    difference is then exact, Sterbenz) or ``|new - old| <= |new| / 2`` (its rounding error is
    under a quarter of new's last place). A step that crosses zero or shrinks a value by more
    than half can end one unit in the last place of ``max(|old|, |new|)`` away (no float32
    update can always do better); :func:`torchsem.optim.step` is exact there.
    PyTorch's own step is ``p.add_(g, alpha=-lr)``, one FMA: returning ``-lr * g`` instead
    would round twice and differ from PyTorch in about 9% of elements on a random test.
    """
    return new - old


ParameterStep = Callable[[Any, Any, Any], "tuple[Any, Any]"]
"""``(grads, state, params) -> (new_params, new_state)``: PyTorch's ``optimizer.step()``."""


class TorchOptimizer(optax.GradientTransformation):
    """An ``optax.GradientTransformation`` that can also give PyTorch's new parameters directly.

    ``init`` and ``update`` are optax's protocol (``update`` returns ``new - old``).
    ``step(grads, state, params) -> (new_params, new_state)`` returns PyTorch's new parameters
    bit for bit, also for the steps where ``old + (new - old)`` is not ``new`` in float32 (a
    parameter that crosses zero or shrinks by more than half in one step).
    :func:`torchsem.optim.step` uses it when present.
    """

    step: ParameterStep

    def __new__(cls, init: Callable[[Any], Any], update: Callable[..., Any], step: ParameterStep) -> TorchOptimizer:
        self = super().__new__(cls, init, update)
        self.step = step
        return self


def build_optimizer(
    init: Callable[[Any], Any], parameter_step: ParameterStep, check: Callable[[Any, Any], Any]
) -> TorchOptimizer:
    """A :class:`TorchOptimizer` from ``init`` and a traceable ``parameter_step``, both jitted.

    ``check(grads, params)`` runs first, outside the trace, so bad input fails with a clear error.
    """
    jitted_step = jax.jit(parameter_step)

    @jax.jit
    def jitted_update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        new_params, new_state = parameter_step(grads, state, params)
        return jax.tree.map(delta, new_params, params), new_state

    def update(grads: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        check(grads, params)
        return jitted_update(grads, state, params)

    def step(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        check(grads, params)
        return jitted_step(grads, state, params)

    return TorchOptimizer(init, update, step)


def step(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any) -> tuple[Any, Any]:
    """PyTorch's ``optimizer.step()``: ``(new_params, new_opt_state)``.

    With a torchsem optimizer (also inside :func:`torchsem.optim.freeze`) the new parameters
    are PyTorch's bit for bit; any other optax transformation goes through
    ``tx.update`` and ``optax.apply_updates``.

    Args:
      tx: the transformation.
      grads: gradients shaped like ``params`` (None allowed for torchsem's optimizers).
      opt_state: ``tx``'s state.
      params: the current parameters.
    """
    exact = getattr(tx, "step", None)
    if exact is not None:
        return exact(grads, opt_state, params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
