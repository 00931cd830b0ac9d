"""Adam's bias corrections, rounded exactly as PyTorch rounds them, for a traced step count.

PyTorch (``foreach=None`` on CPU runs ``_single_tensor_adam`` with ``capturable=False``) keeps the
step as a float32 tensor but reads it back with ``.item()`` and computes on Python floats::

    bias_correction1 = 1 - beta1 ** step            # float64
    bias_correction2 = 1 - beta2 ** step            # float64
    step_size = lr / bias_correction1               # float64, rounded to float32 by addcdiv_
    bias_correction2_sqrt = bias_correction2 ** 0.5 # float64, rounded to float32 by div

Computing ``1 - beta2 ** step`` in float32 instead loses up to 1.3e-5 relatively at step 1
(cancellation), so the corrections are precomputed on the host in float64, rounded once to
float32 exactly like PyTorch, and looked up by step. Both corrections are monotone in the step
and reach their float32 limit (``-lr`` and 1) after a finite number of steps (``-lr``: about
170 steps for beta1=0.9; 1: about 16,600 steps for beta2=0.999); the tables stop there, so the
lookup is exact at every step. A table is capped at ``TABLE_CAP`` entries (betas extremely close
to 1); past the cap the value is computed in float32 as ``-expm1(step * log(beta))``, within a
few ulp of PyTorch's.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

TABLE_CAP = 1 << 16
"""The most steps a bias-correction table holds (256 KiB of float32)."""


@functools.lru_cache(maxsize=128)
def _table(kind: str, beta: float, lr: float) -> tuple[np.ndarray, bool]:
    """float32 values for steps 1, 2, ... until the limit is reached (or TABLE_CAP), and whether it was."""
    if kind == "neg_step_size":

        def value(step: float) -> float:
            return -(lr / (1 - beta**step))

        limit = np.float32(-lr)
    elif kind == "neg_step_size_float32":
        # A float32 0-d tensor lr: ``lr / bias_correction1`` is a float32 division by the
        # float64 correction rounded to float32, then negated (exact).
        def value(step: float) -> float:
            return float(-(np.float32(lr) / np.float32(1 - beta**step)))

        limit = -np.float32(lr)
    elif kind == "bias_correction1":

        def value(step: float) -> float:
            return 1 - beta**step

        limit = np.float32(1.0)
    elif kind == "bias_correction2_sqrt":

        def value(step: float) -> float:
            return (1 - beta**step) ** 0.5

        limit = np.float32(1.0)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    values: list[np.float32] = []
    for step in range(1, TABLE_CAP + 1):
        values.append(np.float32(value(float(step))))
        if values[-1] == limit:
            return np.array(values, dtype=np.float32), True
    return np.array(values, dtype=np.float32), False


def _log_beta_parts(beta: float) -> tuple[np.float32, np.float32]:
    log_beta = math.log(beta)
    high = np.float32(log_beta)
    return high, np.float32(log_beta - float(high))


def _one_minus_power(beta: float, step: jax.Array) -> jax.Array:
    """``1 - beta ** step`` in float32 without cancellation (used past TABLE_CAP only)."""
    high, low = _log_beta_parts(beta)
    return -jnp.expm1(step * high + step * low)


def _lookup(kind: str, beta: float, lr: float, step: jax.Array, shape: tuple[int, ...] = ()) -> tuple[jax.Array, bool]:
    table, complete = _table(kind, beta, lr)
    index = jnp.clip(step.astype(jnp.int32) - 1, 0, table.shape[0] - 1)
    # Gathering with an index per element (not gathering a scalar and broadcasting it) keeps
    # XLA from rewriting ``x / broadcast(c)`` as ``x * broadcast(1 / c)``, which rounds
    # differently from PyTorch's true division in about 15% of elements.
    return jnp.asarray(table)[jnp.broadcast_to(index, shape)], complete


class BiasCorrections:
    """Adam's per-step scalars for one ``(lr, beta1, beta2)``.

    Args:
      lr: the learning rate when it is a number (the step size is then exact); None when it is a
        schedule (the step size is then ``-(lr_t / bias_correction1)`` in float32, where ``lr_t``
        is the schedule's float32 value: PyTorch would divide in float64).
      beta1, beta2: Adam's betas.
      float32_lr: ``lr`` is a float32 (or integer) tensor learning rate: PyTorch's step size is
        then ``lr / float32(1 - beta1**t)`` divided in float32, which the table holds exactly.
    """

    def __init__(self, lr: float | None, beta1: float, beta2: float, float32_lr: bool = False) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.step_size_kind = "neg_step_size_float32" if float32_lr else "neg_step_size"

    def neg_step_size(self, step: jax.Array, lr_value: jax.Array) -> jax.Array:
        """``-(lr / (1 - beta1 ** step))`` rounded to float32, as ``addcdiv_(value=-step_size)`` takes it."""
        if self.lr is not None:
            value, complete = _lookup(self.step_size_kind, self.beta1, float(self.lr), step)
            if complete:
                return value
            fallback = -(lr_value / _one_minus_power(self.beta1, step))
            return jnp.where(step <= TABLE_CAP, value, fallback)
        value, complete = _lookup("bias_correction1", self.beta1, 0.0, step)
        if not complete:
            value = jnp.where(step <= TABLE_CAP, value, _one_minus_power(self.beta1, step))
        return -(lr_value / value)

    def bias_correction2_sqrt(self, step: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """``(1 - beta2 ** step) ** 0.5`` rounded to float32, as an array of ``shape`` (the divisor of ``sqrt(v)``)."""
        value, complete = _lookup("bias_correction2_sqrt", self.beta2, 0.0, step, shape)
        if complete:
            return value
        return jnp.where(step <= TABLE_CAP, value, jnp.sqrt(_one_minus_power(self.beta2, step)))
