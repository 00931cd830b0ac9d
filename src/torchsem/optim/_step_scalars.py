"""Per-step scalars that PyTorch computes on Python floats, tabulated on the host by step.

PyTorch's single-tensor optimizers (``foreach=None`` on CPU, ``capturable=False``) keep each
parameter's step as a float32 tensor, read it back with ``.item()`` and compute their
step-dependent scalars on Python floats (float64): Adagrad's decayed learning rate, Adamax's
``lr / (1 - beta1**t)``, NAdam's momentum products, RAdam's rectification. A float32 kernel
then rounds the result once. JAX runs with float64 off, and the same formulas in float32
lose up to a few ulp (``1 - beta**t`` cancels), so each scalar is computed here in float64
exactly as PyTorch writes it, rounded once to float32, and looked up by the traced step.

A table ends where its values have settled for good (each builder says why its sequence
cannot change again, usually: monotone and at its float32 limit) or after ``TABLE_CAP``
steps; past a capped table the optimizer computes the value in float32, within a few ulp of
PyTorch's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._schedule import TABLE_CAP


@dataclasses.dataclass(frozen=True, eq=False)
class StepTable:
    """One scalar per step: ``values[t - 1]`` for step ``t`` (1-based, PyTorch's ``state["step"]``).

    Attributes:
      values: float32 (or bool) values for steps ``1 .. len(values)``.
      complete: whether the last value holds for every later step too; when False the table
        stopped at ``TABLE_CAP`` and later steps need a fallback.
    """

    values: np.ndarray
    complete: bool

    def __len__(self) -> int:
        return int(self.values.shape[0])


def tabulate(value: Callable[[float], float], limit: np.float32, block: int = 1024) -> StepTable:
    """A float32 table of ``value(step)`` (a Python float function of the step as PyTorch's ``.item()``).

    The table ends at the first step whose float32 value is ``limit``; the caller guarantees
    that the sequence is monotone towards ``limit``, so no later step differs.

    Args:
      value: PyTorch's float64 formula, called with ``1.0, 2.0, ...``.
      limit: the float32 value the sequence settles at.
      block: how many steps are computed before looking for the limit.
    """
    blocks: list[np.ndarray] = []
    for start in range(1, TABLE_CAP + 1, block):
        steps = range(start, min(start + block, TABLE_CAP + 1))
        values = np.array([value(float(step)) for step in steps], np.float64).astype(np.float32)
        hits = np.flatnonzero(values == limit)
        if hits.size:
            blocks.append(values[: hits[0] + 1])
            return StepTable(np.concatenate(blocks), True)
        blocks.append(values)
    return StepTable(np.concatenate(blocks), False)


def lookup(
    table: StepTable,
    step: jax.Array,
    shape: tuple[int, ...] = (),
    fallback: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """The table's value at a traced float32 ``step`` (>= 1), as an array of ``shape``.

    Gathering with one index per element (rather than a scalar broadcast afterwards) keeps
    XLA from rewriting ``x / c`` as ``x * (1 / c)``, which rounds differently from PyTorch's
    true division in about 16% of elements; a gather also keeps the table's bits as they are
    (XLA's CPU arithmetic flushes denormals, a table read does not).

    Args:
      table: the values.
      step: the parameter's step count after its increment, float32 scalar.
      shape: the result's shape (the shape of the tensor the scalar divides, or ``()``).
      fallback: ``step -> value`` in float32 for steps past an incomplete table (required then).
    """
    index = jnp.clip(step.astype(jnp.int32) - 1, 0, len(table) - 1)
    value = jnp.asarray(table.values)[jnp.broadcast_to(index, shape)]
    if table.complete:
        return value
    if fallback is None:  # pragma: no cover - internal
        raise ValueError("an incomplete table needs a fallback")
    return jnp.where(step <= len(table), value, jnp.broadcast_to(fallback(step), shape).astype(value.dtype))


def power(beta: float, step: jax.Array) -> jax.Array:
    """``beta ** step`` in float32 (used past a capped table only), from a two-part ``log(beta)``."""
    if beta == 0.0:
        return jnp.where(step == 0, jnp.float32(1.0), jnp.float32(0.0))
    log_beta = math.log(beta)
    high = np.float32(log_beta)
    low = np.float32(log_beta - float(high))
    return jnp.exp(step * high + step * low)
