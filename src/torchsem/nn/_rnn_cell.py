"""Recurrent cells: ``torch.nn.RNNCell``, ``GRUCell`` and ``LSTMCell``, one time step with PyTorch's gates.

The step arithmetic here is shared with the multi-layer ``RNN``/``GRU``/``LSTM`` (``_rnn.py``),
which feed it input projections computed for the whole sequence at once, as PyTorch's CPU
kernels do. Every parameter is drawn from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` in
PyTorch's registration order (``torch_init`` replays it bit for bit).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..convert import to_jax
from ..random import register_torch_init
from . import init as _init
from ._errors import InputError

__all__ = ["GRUCell", "LSTMCell", "RNNCell"]

_NONLINEARITIES = ("tanh", "relu")
# PyTorch's ScalarType names, as its matmul dtype check prints them.
_SCALAR_TYPE_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "bfloat16": "BFloat16",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
}


def _scalar_type_name(dtype: Any) -> str:
    name = jnp.dtype(dtype).name
    return _SCALAR_TYPE_NAMES.get(name, name)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_size(owner: str, name: str, value: Any, minimum: int) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be greater than zero" if minimum == 1 else f"{owner}: {name} must be >= 0")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def _uniform_bound(hidden_size: int) -> float:
    # reset_parameters: stdv = 1.0 / math.sqrt(self.hidden_size), for every weight and bias.
    return 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0


def _linear(x: jax.Array, weight: jax.Array, bias: jax.Array | None, precision: Any) -> jax.Array:
    """``x W^T + b`` (PyTorch's ``at::linear``)."""
    y = jnp.matmul(x, weight.T, precision=precision)
    return y if bias is None else y + bias


def _rnn_step(nonlinearity: str, igates: jax.Array, hgates: jax.Array) -> jax.Array:
    """Elman update ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, ``act`` tanh or ReLU."""
    gates = hgates + igates
    return jnp.tanh(gates) if nonlinearity == "tanh" else jax.nn.relu(gates)


def _gru_step(igates: jax.Array, hgates: jax.Array, h: jax.Array) -> jax.Array:
    """GRU update with PyTorch's gate order ``(r, z, n)``, the reset gate applied to ``W_hn h + b_hn``.

        r = sigmoid(i_r + h_r),  z = sigmoid(i_z + h_z),  n = tanh(i_n + r * h_n),
        h' = (1 - z) * n + z * h,  computed as PyTorch does: (h - n) * z + n

    where ``i_* = W_i* x + b_i*`` and ``h_* = W_h* h + b_h*`` are the thirds of the projections.
    """
    i_r, i_z, i_n = jnp.split(igates, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hgates, 3, axis=-1)
    reset = jax.nn.sigmoid(h_r + i_r)
    update = jax.nn.sigmoid(h_z + i_z)
    new = jnp.tanh(i_n + h_n * reset)
    return (h - new) * update + new


def _lstm_step(igates: jax.Array, hgates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """LSTM update with PyTorch's gate order ``(i, f, g, o)``; returns ``(o * tanh(c'), c')``.

    i, f, o = sigmoid(.),  g = tanh(.)  over the quarters of W_ih x + b_ih + W_hh h + b_hh,
    c' = f * c + i * g,  h' = o * tanh(c')  (then W_hr h' with a projection)
    """
    gates = hgates + igates
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    cy = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(cy), cy


@functools.partial(jax.jit, static_argnames=("kind", "precision"))
def _cell(
    kind: str,
    params: tuple[jax.Array, jax.Array, jax.Array | None, jax.Array | None],
    input: jax.Array,
    states: tuple[jax.Array, ...],
    *,
    precision: Any,
) -> tuple[jax.Array, ...]:
    """One step of a ``'tanh'``/``'relu'``/``'gru'``/``'lstm'`` cell on a batched input: the new states.

    Compiled once per configuration, so an eager call runs one program instead of dispatching
    each operation; inlined under an outer ``jax.jit``.
    """
    w_ih, w_hh, b_ih, b_hh = params
    igates = _linear(input, w_ih, b_ih, precision)
    hgates = _linear(states[0], w_hh, b_hh, precision)
    if kind == "lstm":
        return _lstm_step(igates, hgates, states[1])
    if kind == "gru":
        return (_gru_step(igates, hgates, states[0]),)
    return (_rnn_step(kind, igates, hgates),)


def _uniform_torch_init(module: Any, params: dict[str, np.ndarray], generator: Any) -> dict[str, np.ndarray]:
    """PyTorch's recurrent ``reset_parameters``: ``uniform_(-stdv, stdv)`` for every parameter, in order.

    ``stdv = 1 / sqrt(hidden_size)`` (the cell size, also for a projected LSTM); the order is
    PyTorch's ``parameters()`` order, ``module.torch_state_dict_keys()``.
    """
    bound = _uniform_bound(module.hidden_size)
    drawn = {}
    for name in module.torch_state_dict_keys():
        value = params[name]
        drawn[name] = generator.uniform(value.shape, -bound, bound, dtype=value.dtype)
    return drawn


def _check_input_dims(name: str, input: jax.Array) -> None:
    if input.ndim not in (1, 2):
        raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")


def _check_step_shapes(input: jax.Array, input_size: int, states: Sequence[jax.Array], hidden_size: int) -> None:
    """PyTorch's ``check_rnn_cell_forward_input`` / ``_hidden``, on the batched (2-D) input."""
    if input.shape[1] != input_size:
        raise InputError(f"input has inconsistent input_size: got {input.shape[1]} expected {input_size}")
    for label, state in enumerate(states):
        if input.shape[0] != state.shape[0]:
            raise InputError(
                f"Input batch size {input.shape[0]} doesn't match hidden{label} batch size {state.shape[0]}"
            )
        if state.ndim > 1 and state.shape[1] != hidden_size:
            raise InputError(
                f"hidden{label} has inconsistent hidden_size: got {state.shape[1]}, expected {hidden_size}"
            )
        if state.ndim != 2:
            # PyTorch reads sizes 0 and 1 only; a 1-D state beside a batch, or a 3-D one beside an
            # unbatched input, would fail deeper inside its kernel.
            raise InputError(
                f"hidden{label} must be (batch, hidden_size) = ({input.shape[0]}, {hidden_size}) for this input, "
                f"got shape {tuple(state.shape)}"
            )


def _check_step_dtypes(name: str, input: jax.Array, states: Sequence[jax.Array], param_dtype: Any) -> None:
    for value in (input, *states):
        if value.dtype != jnp.dtype(param_dtype):
            raise InputError(
                f"{name}: the input and hidden states must have the parameters' dtype {jnp.dtype(param_dtype)}, "
                f"got {value.dtype}; PyTorch: mat1 and mat2 must have the same dtype, but got "
                f"{_scalar_type_name(value.dtype)} and {_scalar_type_name(param_dtype)}"
            )


def _cell_params(
    module: nn.Module, input_size: int, hidden_size: int, chunks: int, bias: bool, dtype: Any
) -> tuple[jax.Array, jax.Array, jax.Array | None, jax.Array | None]:
    """A cell's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (None without bias), in PyTorch's order."""
    bound = _uniform_bound(hidden_size)
    init = _init.uniform(-bound, bound)
    rows = chunks * hidden_size
    w_ih = module.param("weight_ih", init, (rows, input_size), dtype)
    w_hh = module.param("weight_hh", init, (rows, hidden_size), dtype)
    if not bias:
        return w_ih, w_hh, None, None
    return w_ih, w_hh, module.param("bias_ih", init, (rows,), dtype), module.param("bias_hh", init, (rows,), dtype)


def _cell_keys(bias: bool) -> tuple[str, ...]:
    return ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if bias else ("weight_ih", "weight_hh")


def _validate_cell(name: str, input_size: Any, hidden_size: Any, bias: Any) -> None:
    _check_size(name, "input_size", input_size, 0)
    _check_size(name, "hidden_size", hidden_size, 1)
    _check_bool("bias", bias)


class RNNCell(nn.Module):
    """One Elman step ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, as ``torch.nn.RNNCell``.

    Variables (collection ``params``), PyTorch's names and order: ``weight_ih``
    ``(hidden_size, input_size)``, ``weight_hh`` ``(hidden_size, hidden_size)``, ``bias_ih``
    and ``bias_hh`` ``(hidden_size,)`` (absent with ``bias=False``), each
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.

    The call is PyTorch's ``cell(input, hx)`` returning the new hidden state, not Flax's
    ``(carry, x) -> (carry, y)`` cell convention.

    Attributes:
      input_size: features of the input.
      hidden_size: features of the hidden state.
      bias: whether to learn ``bias_ih`` and ``bias_hh``.
      nonlinearity: ``'tanh'`` or ``'relu'`` (PyTorch refuses another value when called;
        torchsem when built, with PyTorch's RuntimeError and message).
      param_dtype: the parameters' dtype.
      precision: the matmul precision (full float32 by default).

    Reproduces ``torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')``.
    """

    input_size: int
    hidden_size: int
    bias: bool = True
    nonlinearity: str = "tanh"
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        _validate_cell("RNNCell", self.input_size, self.hidden_size, self.bias)
        if self.nonlinearity not in _NONLINEARITIES:
            raise InputError(f"Unknown nonlinearity: {self.nonlinearity}")
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return _cell_keys(self.bias)

    @nn.compact
    def __call__(self, input: Any, hx: Any = None) -> jax.Array:
        """One step.

        Args:
          input: ``(N, input_size)`` or unbatched ``(input_size,)``.
          hx: the hidden state, ``(N, hidden_size)`` / ``(hidden_size,)``; None is zeros.

        Returns:
          The new hidden state, shaped as ``hx``.

        Raises:
          ValueError: an input or state that is not 1-D or 2-D (PyTorch's ValueError and message).
          InputError: sizes or dtypes PyTorch refuses (its RuntimeError and message).
        """
        input, (h,), batched = _prepare("RNNCell", input, hx, 1, self.hidden_size, ("hidden",))
        _check_step_shapes(input, self.input_size, (h,), self.hidden_size)
        _check_step_dtypes("RNNCell", input, (h,), self.param_dtype)
        w_ih, w_hh, b_ih, b_hh = _cell_params(self, self.input_size, self.hidden_size, 1, self.bias, self.param_dtype)
        (h,) = _cell(self.nonlinearity, (w_ih, w_hh, b_ih, b_hh), input, (h,), precision=self.precision)
        return h if batched else h[0]


class GRUCell(nn.Module):
    """One GRU step with PyTorch's gate order ``(r, z, n)``, as ``torch.nn.GRUCell``.

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    Variables: ``weight_ih`` ``(3*hidden_size, input_size)``, ``weight_hh``
    ``(3*hidden_size, hidden_size)``, ``bias_ih``, ``bias_hh`` ``(3*hidden_size,)``, the thirds
    in ``r, z, n`` order, each ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``. (Flax's
    ``GRUCell`` has one bias on the input side only and applies ``r`` before the hidden
    projection's bias, so it cannot load these weights.)

    Attributes:
      input_size, hidden_size, bias, param_dtype, precision: as :class:`RNNCell`.

    Reproduces ``torch.nn.GRUCell(input_size, hidden_size, bias=True)``.
    """

    input_size: int
    hidden_size: int
    bias: bool = True
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        _validate_cell("GRUCell", self.input_size, self.hidden_size, self.bias)
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return _cell_keys(self.bias)

    @nn.compact
    def __call__(self, input: Any, hx: Any = None) -> jax.Array:
        """One step.

        Args:
          input: ``(N, input_size)`` or unbatched ``(input_size,)``.
          hx: the hidden state, ``(N, hidden_size)`` / ``(hidden_size,)``; None is zeros.

        Returns:
          The new hidden state, shaped as ``hx``.

        Raises:
          ValueError: an input or state that is not 1-D or 2-D (PyTorch's ValueError and message).
          InputError: sizes or dtypes PyTorch refuses (its RuntimeError and message).
        """
        input, (h,), batched = _prepare("GRUCell", input, hx, 1, self.hidden_size, ("hidden",))
        _check_step_shapes(input, self.input_size, (h,), self.hidden_size)
        _check_step_dtypes("GRUCell", input, (h,), self.param_dtype)
        w_ih, w_hh, b_ih, b_hh = _cell_params(self, self.input_size, self.hidden_size, 3, self.bias, self.param_dtype)
        (h,) = _cell("gru", (w_ih, w_hh, b_ih, b_hh), input, (h,), precision=self.precision)
        return h if batched else h[0]


class LSTMCell(nn.Module):
    """One LSTM step with PyTorch's gate order ``(i, f, g, o)`` and both biases, as ``torch.nn.LSTMCell``.

        (i, f, g, o) = W_ih x + b_ih + W_hh h + b_hh, split in quarters
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c')

    Variables: ``weight_ih`` ``(4*hidden_size, input_size)``, ``weight_hh``
    ``(4*hidden_size, hidden_size)``, ``bias_ih``, ``bias_hh`` ``(4*hidden_size,)``, each
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``. (Flax's ``LSTMCell`` has one bias per
    gate, on the hidden side, and separate ``Dense`` layers per gate; flax issue #3746.)

    Attributes:
      input_size, hidden_size, bias, param_dtype, precision: as :class:`RNNCell`.

    Reproduces ``torch.nn.LSTMCell(input_size, hidden_size, bias=True)``.
    """

    input_size: int
    hidden_size: int
    bias: bool = True
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        _validate_cell("LSTMCell", self.input_size, self.hidden_size, self.bias)
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return _cell_keys(self.bias)

    @nn.compact
    def __call__(self, input: Any, hx: tuple[Any, Any] | None = None) -> tuple[jax.Array, jax.Array]:
        """One step.

        Args:
          input: ``(N, input_size)`` or unbatched ``(input_size,)``.
          hx: ``(h, c)``, each ``(N, hidden_size)`` / ``(hidden_size,)``; None is zeros.

        Returns:
          ``(h', c')``, shaped as ``hx``.

        Raises:
          ValueError: an input or state that is not 1-D or 2-D (PyTorch's ValueError and message).
          InputError: sizes or dtypes PyTorch refuses (its RuntimeError and message).
        """
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise InputError(
                "lstm_cell expects two hidden states"
                + ("" if isinstance(hx, (tuple, list)) else f" (a tuple (h, c)), got {type(hx).__name__}")
            )
        input, (h, c), batched = _prepare("LSTMCell", input, hx, 2, self.hidden_size, ("hx[0]", "hx[1]"))
        _check_step_shapes(input, self.input_size, (h, c), self.hidden_size)
        _check_step_dtypes("LSTMCell", input, (h, c), self.param_dtype)
        w_ih, w_hh, b_ih, b_hh = _cell_params(self, self.input_size, self.hidden_size, 4, self.bias, self.param_dtype)
        h, c = _cell("lstm", (w_ih, w_hh, b_ih, b_hh), input, (h, c), precision=self.precision)
        return (h, c) if batched else (h[0], c[0])


def _prepare(
    name: str, input: Any, hx: Any, count: int, hidden_size: int, labels: tuple[str, ...]
) -> tuple[jax.Array, tuple[jax.Array, ...], bool]:
    """The batched input, the batched states (zeros when ``hx`` is None) and whether the input was batched.

    PyTorch's cell ``forward``: the input must be 1-D or 2-D, each state 1-D or 2-D; an
    unbatched input gets a batch axis, and so does every state given with it.
    """
    input = to_jax(input)
    _check_input_dims(name, input)
    states = None if hx is None else tuple(to_jax(s) for s in (hx if count > 1 else (hx,)))
    if states is not None:
        for label, state in zip(labels, states):
            if state.ndim not in (1, 2):
                what = "hidden" if count == 1 else label
                raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {state.ndim}D instead")
    batched = input.ndim == 2
    if not batched:
        input = input[None]
    if states is None:
        zeros = jnp.zeros((input.shape[0], hidden_size), input.dtype)
        return input, (zeros,) * count, batched
    return input, tuple(s if batched else s[None] for s in states), batched


register_torch_init(RNNCell, _uniform_torch_init)
register_torch_init(GRUCell, _uniform_torch_init)
register_torch_init(LSTMCell, _uniform_torch_init)
