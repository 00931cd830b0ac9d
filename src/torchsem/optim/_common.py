"""Shared pieces of the optimizers: argument checks, learning rates, float32 rounding control."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[jax.Array], Any]
"""An optax schedule: ``count -> learning rate`` (a scalar)."""


@dataclasses.dataclass(frozen=True)
class TensorLearningRate:
    """A learning rate given as a 1-element array, PyTorch's ``lr=torch.tensor(...)``.

    PyTorch's single-tensor optimizers squeeze it to a 0-d tensor and compute the step's
    scalars with it (``lr / bias_correction1``, ``1 - lr * weight_decay``) as 0-d tensor ops
    in its dtype: float32 arithmetic (each Python float rounded to float32 first) for a
    float32 or integer tensor (an integer one promotes to float32), float64 for a float64 one,
    which is then the same as a Python float. A ``value=``/``alpha=`` argument reads it back
    with ``.item()``.

    Attributes:
      value: the learning rate as PyTorch's arithmetic sees it (the float32 value for a
        float32 or integer array).
      float32: whether that arithmetic is float32 (False: float64, a Python float's).
      dtype: the array's dtype.
    """

    value: float
    float32: bool
    dtype: np.dtype


LearningRate = float | Schedule | np.ndarray | jax.Array | TensorLearningRate
"""What the optimizers take as ``lr``: a number, an optax schedule or a 1-element array (PyTorch's tensor ``lr``).

A :class:`TensorLearningRate` (an array already checked) is taken as it is.
"""

CheckedLearningRate = float | Schedule | TensorLearningRate
"""``lr`` after :func:`check_learning_rate`: an array becomes a :class:`TensorLearningRate`."""

_TENSOR_LR_KINDS = "fi"  # numpy dtype kinds torchsem takes: floating (float32/float64) and signed integers


def torch_tensor_format(array: np.ndarray) -> str:
    """``f"{tensor}"`` for the 1-element tensor PyTorch would hold (what its error messages print).

    A 0-d tensor formats as its ``.item()`` (``Tensor.__format__``): ``-0.10000000149011612``
    for a float32 -0.1. Any other prints as its repr, PyTorch's ``_Formatter`` with the default
    print options: an integral float as ``-2.``, one below 1e-4 or above 1e8 in magnitude as
    ``-1.0000e-05``, any other as ``-0.1000``; NaN and infinities as ``nan`` / ``-inf``; a
    dtype other than float32, int64 and bool is named after the value
    (``tensor([-3], dtype=torch.int32)``).
    """
    value = array.reshape(()).item()
    if array.ndim == 0:
        return f"{value}"
    if array.dtype.kind == "f":
        if math.isnan(value) or math.isinf(value):
            text = f"{value:.0f}"
        elif value == 0.0:
            text = "0." if math.copysign(1.0, value) > 0 else "-0."
        else:
            magnitude = abs(value)
            sci = magnitude > 1.0e8 or magnitude < 1.0e-4
            if sci:
                text = f"{value:.4e}"
            elif value == math.ceil(value):
                text = f"{value:.0f}."
            else:
                text = f"{value:.4f}"
    else:
        text = f"{value}"
    text = "[" * array.ndim + text + "]" * array.ndim
    if array.dtype not in (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)):
        text += f", dtype=torch.{array.dtype.name}"
    return f"tensor({text})"


def check_number(name: str, value: Any) -> float:
    """``value`` as a Python number, or a TypeError naming the argument (PyTorch compares it with floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return value  # type: ignore[return-value]


def _tensor_learning_rate(lr: np.ndarray | jax.Array, *, nan_is_valid: bool) -> TensorLearningRate:
    """PyTorch's constructor checks for a tensor ``lr``, then the arithmetic its steps will use."""
    try:
        array = np.asarray(lr)
    except jax.errors.TracerArrayConversionError as error:
        raise TypeError(
            "a traced array cannot be a learning rate (PyTorch checks its value when the optimizer is "
            "made); build the optimizer outside jax.jit, or pass an optax schedule"
        ) from error
    if array.size != 1:
        raise ValueError("Tensor lr must be 1-element")
    if array.dtype.kind not in _TENSOR_LR_KINDS or (array.dtype.itemsize < 4 and array.dtype.kind == "f"):
        raise TypeError(
            f"torchsem takes a float32, float64 or signed integer array as the learning rate, got {array.dtype} "
            "(PyTorch would compute its step scalars in that dtype)"
        )
    value = array.reshape(()).item()
    # SGD checks lr < 0.0 (NaN passes), the others not 0.0 <= lr (NaN fails).
    if (value < 0.0) if nan_is_valid else not value >= 0.0:
        raise ValueError(f"Invalid learning rate: {torch_tensor_format(array)}")
    if array.dtype == np.float64:
        return TensorLearningRate(float(value), False, array.dtype)
    # float32 as it is; an integer tensor promotes to float32 (the default dtype) in every op.
    return TensorLearningRate(float(np.float32(value)), True, array.dtype)


def check_learning_rate(lr: Any, *, nan_is_valid: bool) -> CheckedLearningRate:
    """PyTorch's learning-rate check: ``ValueError("Invalid learning rate: {lr}")``; returns the learning rate.

    Args:
      lr: a number, an optax schedule (a callable, checked when called, as PyTorch does not
        check scheduler outputs), or a 1-element numpy or JAX array (PyTorch's tensor ``lr``;
        a ``torch.Tensor`` via ``.numpy()``), of dtype float32, float64 or a signed integer.
      nan_is_valid: SGD checks ``lr < 0.0`` (NaN passes), Adam ``not 0.0 <= lr`` (NaN fails).

    Returns:
      ``lr`` itself for a number or a schedule; a :class:`TensorLearningRate` for an array.

    Raises:
      ValueError: PyTorch's ``Tensor lr must be 1-element`` (an array of another size) or
        ``Invalid learning rate: ...`` (the array printed as PyTorch prints the tensor).
      TypeError: ``lr`` is neither, or an array of another dtype or a traced one.
    """
    if callable(lr):
        return cast(Schedule, lr)
    if isinstance(lr, TensorLearningRate):
        return lr
    if isinstance(lr, (np.ndarray, jax.Array)):
        return _tensor_learning_rate(lr, nan_is_valid=nan_is_valid)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(
            f"lr must be a float or an optax schedule (a callable count -> learning rate) or a 1-element "
            f"array, got {type(lr).__name__}: {lr!r}"
        )
    # cast: typeshed's numbers.Real has no __ge__, so mypy cannot type float <= Real.
    invalid = lr < 0.0 if nan_is_valid else not cast(float, lr) >= 0.0
    if invalid:
        raise ValueError(f"Invalid learning rate: {lr}")
    return cast(float, lr)


def constant_learning_rate(lr: CheckedLearningRate) -> tuple[float | None, bool]:
    """``(value, float32)``: the learning rate's number (None for a schedule) and whether its arithmetic is float32.

    A Python float and a float64 array compute ``lr / bias_correction1`` and the like in
    float64 (``float32`` False); a float32 or integer array in float32.
    """
    if isinstance(lr, TensorLearningRate):
        return lr.value, lr.float32
    if callable(lr):
        return None, False
    return float(lr), False


def float64_tensor_lr_on_scalar(lr: Any, params: Any, optimizer: str) -> None:
    """A NotImplementedError for a float64 array ``lr`` with a 0-d parameter where PyTorch then computes in float64.

    PyTorch's ``param.mul_(1 - lr * weight_decay)`` (and RAdam's ``exp_avg_hat * lr``) with a
    float64 0-d ``lr`` and a 0-d float32 parameter promotes to float64 (a dimensioned parameter
    does not), which float32 JAX cannot round the same way.
    """
    if not (isinstance(lr, TensorLearningRate) and lr.dtype == np.float64):
        return
    if any(jnp.ndim(leaf) == 0 for leaf in jax.tree.leaves(params)):
        raise NotImplementedError(
            f"{optimizer} with a float64 array learning rate and a 0-d parameter: PyTorch computes that "
            "parameter's step in float64; pass the learning rate as a float or a float32 array"
        )


def float32_decay(lr: float, weight_decay: float) -> np.float32:
    """``1 - lr * weight_decay`` as PyTorch computes it for a float32 0-d ``lr``: two float32 ops on the host."""
    return np.float32(1) - np.float32(lr) * np.float32(weight_decay)


def initial_count(lr: CheckedLearningRate) -> jax.Array | None:
    """The update count a schedule needs (int32 zero); None for a constant learning rate (PyTorch keeps none)."""
    return jnp.zeros((), jnp.int32) if callable(lr) else None


def next_count(count: jax.Array | None) -> jax.Array | None:
    return None if count is None else count + 1


def learning_rate_at(lr: CheckedLearningRate, count: jax.Array | None) -> jax.Array:
    """The learning rate for the update with this ``count`` (0 for the first update), as float32."""
    if isinstance(lr, TensorLearningRate):
        return jnp.asarray(np.float32(lr.value))
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
