"""Multi-layer recurrent networks: ``torch.nn.RNN``, ``GRU`` and ``LSTM``, time loop as ``lax.scan``.

PyTorch's constructor signatures, ``state_dict`` names (``weight_ih_l{k}{_reverse}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}``) in PyTorch's
order, its gate orders and both bias vectors, its initialisation (every parameter
``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` in that order, replayed by ``torch_init``),
shapes (time-major unless ``batch_first``, unbatched ``(L, H_in)`` inputs, initial states
``(D * num_layers, N, H_out)``) and errors. As PyTorch's CPU kernels do, each layer projects
the whole sequence through ``W_ih`` at once and scans only the recurrent part.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..convert import to_jax
from ..random import register_torch_init
from . import init as _init
from ._dropout import _scale_kept
from ._errors import InputError
from ._mode import merge_mode
from ._rnn_cell import (
    _check_bool,
    _check_size,
    _gru_step,
    _is_int,
    _linear,
    _lstm_step,
    _rnn_step,
    _scalar_type_name,
    _uniform_bound,
    _uniform_torch_init,
)
from ._torch_dropout import active_generator, torch_dropout_mask

__all__ = ["GRU", "LSTM", "RNN"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}
_NONLINEARITY_MODES = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
_MODE_MEANING = "True: PyTorch's eval(), False: train()"


@dataclasses.dataclass(frozen=True)
class _Spec:
    """One recurrent network's configuration, as PyTorch's ``RNNBase`` holds it."""

    name: str
    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """The hidden state's features, ``H_out``: ``proj_size`` when projecting."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in PyTorch's registration (``parameters()``) order."""
        gate_size = _GATES[self.mode] * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.output_size * self.directions
            for direction in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes[f"weight_ih{suffix}"] = (gate_size, layer_input)
                shapes[f"weight_hh{suffix}"] = (gate_size, self.output_size)
                if self.bias:
                    shapes[f"bias_ih{suffix}"] = (gate_size,)
                    shapes[f"bias_hh{suffix}"] = (gate_size,)
                if self.proj_size > 0:
                    shapes[f"weight_hr{suffix}"] = (self.proj_size, self.hidden_size)
        return shapes


def _validate(spec: _Spec) -> None:
    """``RNNBase.__init__``'s checks, in its order (the nonlinearity is checked before, by ``RNN``)."""
    dropout = spec.dropout
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
        )
    if _is_int(spec.num_layers) and dropout > 0 and spec.num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
            f"num_layers greater than 1, but got dropout={dropout} and num_layers={spec.num_layers}",
            stacklevel=5,  # _validate, __post_init__, the dataclass __init__, Flax's wrapper: the caller
        )
    _check_bool("bias", spec.bias)
    _check_bool("batch_first", spec.batch_first)
    _check_size(spec.name, "input_size", spec.input_size, 1)
    _check_size(spec.name, "hidden_size", spec.hidden_size, 1)
    if not _is_int(spec.num_layers):
        kind = type(spec.num_layers).__name__
        raise TypeError(
            f"num_layers should be of type int, got: {kind} ('{kind}' object cannot be interpreted as an integer)"
        )
    if spec.num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if not _is_int(spec.proj_size):
        raise TypeError(f"proj_size should be of type int, got: {type(spec.proj_size).__name__}")
    if spec.proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if spec.proj_size >= spec.hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")
    _check_bool("bidirectional", spec.bidirectional)


def _make_params(module: nn.Module, spec: _Spec, dtype: Any) -> dict[str, jax.Array]:
    bound = _uniform_bound(spec.hidden_size)
    init = _init.uniform(-bound, bound)
    return {name: module.param(name, init, shape, dtype) for name, shape in spec.shapes().items()}


def _torch_dtype(dtype: Any) -> str:
    return f"torch.{jnp.dtype(dtype).name}"


def _as_states(spec: _Spec, hx: Any) -> tuple[jax.Array, ...] | None:
    """``hx`` as a tuple of arrays: ``(h0,)``, or ``(h0, c0)`` for an LSTM; None stays None."""
    if hx is None:
        return None
    if spec.mode != "LSTM":
        return (to_jax(hx),)
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0) of two arrays, got {type(hx).__name__}")
    return to_jax(hx[0]), to_jax(hx[1])


def _check_state_dims(spec: _Spec, states: tuple[jax.Array, ...], batched: bool) -> None:
    want = 3 if batched else 2
    kind = "batched 3-D" if batched else "unbatched 2-D"
    if spec.mode == "LSTM":
        if any(s.ndim != want for s in states):
            raise InputError(
                f"For {kind} input, hx and cx should also be {want}-D but got "
                f"({states[0].ndim}-D, {states[1].ndim}-D) tensors"
            )
    elif states[0].ndim != want:
        raise InputError(f"For {kind} input, hx should also be {want}-D but got {states[0].ndim}-D tensor")


def _check_forward_args(
    spec: _Spec, input: jax.Array, states: tuple[jax.Array, ...], param_dtype: Any, batch: int
) -> None:
    """PyTorch's ``check_forward_args``: the input's dtype and features, then each state's shape."""
    if input.dtype != jnp.dtype(param_dtype):
        source, target = _torch_dtype(input.dtype), _torch_dtype(param_dtype)
        raise ValueError(
            f"RNN input dtype ({source}) does not match weight dtype ({target}). "
            f"Convert input: input.to({target}), or convert model: model.to({source})"
        )
    if input.shape[-1] != spec.input_size:
        raise InputError(
            f"input.size(-1) must be equal to input_size. Expected {spec.input_size}, got {input.shape[-1]}"
        )
    layers = spec.num_layers * spec.directions
    expected = [(layers, batch, spec.output_size)]
    labels = ["Expected hidden size {}, got {}"]
    if spec.mode == "LSTM":
        expected.append((layers, batch, spec.hidden_size))
        labels = ["Expected hidden[0] size {}, got {}", "Expected hidden[1] size {}, got {}"]
    for state, shape, message in zip(states, expected, labels):
        if tuple(state.shape) != shape:
            raise InputError(message.format(shape, list(state.shape)))
    for state in states:
        if state.dtype != input.dtype:
            raise InputError(
                f"{spec.name}: hx must have the input's dtype {input.dtype}, got {state.dtype}; PyTorch: mat1 and "
                f"mat2 must have the same dtype, but got {_scalar_type_name(state.dtype)} and "
                f"{_scalar_type_name(param_dtype)}"
            )


_KINDS = ("weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr")


def _step_fn(spec: _Spec, precision: Any) -> Any:
    """One direction's time step ``(carry, igates_t, w_hh, b_hh, w_hr) -> (carry, h_t)``."""

    def step(
        carry: tuple[jax.Array, ...], ig: jax.Array, w_hh: jax.Array, b_hh: Any, w_hr: Any
    ) -> tuple[tuple[jax.Array, ...], jax.Array]:
        hgates = _linear(carry[0], w_hh, b_hh, precision)
        if spec.mode == "LSTM":
            h, c = _lstm_step(ig, hgates, carry[1])
            if w_hr is not None:
                h = jnp.matmul(h, w_hr.T, precision=precision)
            return (h, c), h
        h = _gru_step(ig, hgates, carry[0]) if spec.mode == "GRU" else _rnn_step(_nonlinearity(spec), ig, hgates)
        return (h,), h

    return step


def _layer(
    spec: _Spec,
    params: dict[str, jax.Array],
    layer: int,
    layer_input: jax.Array,
    states: list[tuple[jax.Array, ...]],
    precision: Any,
) -> tuple[jax.Array, list[tuple[jax.Array, ...]]]:
    """One layer over ``(T, N, features)``, every direction: its output and each direction's final state.

    As PyTorch's CPU path, the input projection (with ``b_ih``) is computed for every step at
    once and only the recurrence is scanned. Two directions share one scan: the reverse one
    reads the projected sequence backwards, and the step is vmapped over the directions.
    """
    suffixes = (f"_l{layer}", f"_l{layer}_reverse")[: spec.directions]
    step = _step_fn(spec, precision)
    if spec.directions == 1:
        w_ih, b_ih, w_hh, b_hh, w_hr = (params.get(f"{kind}{suffixes[0]}") for kind in _KINDS)
        assert w_ih is not None and w_hh is not None
        igates = _linear(layer_input, w_ih, b_ih, precision)
        final, outputs = jax.lax.scan(lambda c, ig: step(c, ig, w_hh, b_hh, w_hr), states[0], igates)
        return outputs, [final]

    def stacked(kind: str) -> jax.Array | None:
        if f"{kind}{suffixes[0]}" not in params:
            return None
        return jnp.stack([params[f"{kind}{suffix}"] for suffix in suffixes])

    w_ih, b_ih, w_hh, b_hh, w_hr = (stacked(kind) for kind in _KINDS)
    projected = jax.vmap(lambda w, b: _linear(layer_input, w, b, precision))(w_ih, b_ih)
    igates = jnp.stack([projected[0], jnp.flip(projected[1], 0)], axis=1)  # (T, D, N, G)
    carry = tuple(jnp.stack(parts) for parts in zip(*states))
    both = jax.vmap(step)
    final, outputs = jax.lax.scan(lambda c, ig: both(c, ig, w_hh, b_hh, w_hr), carry, igates)
    output = jnp.concatenate([outputs[:, 0], jnp.flip(outputs[:, 1], 0)], axis=-1)
    return output, [tuple(f[d] for f in final) for d in range(spec.directions)]


def _nonlinearity(spec: _Spec) -> str:
    return "tanh" if spec.mode == "RNN_TANH" else "relu"


def _dropout_keys(module: nn.Module, spec: _Spec, training: bool, rng_collection: str) -> tuple[jax.Array, ...]:
    """One key per dropout between layers (none in eval, with ``dropout == 0`` or one layer)."""
    if not training or spec.dropout in (0, 1) or spec.num_layers == 1:
        return ()  # no dropout acts, or p = 1 zeroes every element without a mask
    if active_generator() is not None:
        return ()  # torch_dropout: PyTorch's masks from its generator, no Flax key
    if not module.has_rng(rng_collection):
        raise ValueError(
            f"{spec.name}(dropout={spec.dropout}) in training mode (deterministic=False) needs a PRNG key for the "
            f"'{rng_collection}' rng stream: pass rngs={{'{rng_collection}': key}} to init/apply, "
            "or deterministic=True for eval mode"
        )
    return tuple(module.make_rng(rng_collection) for _ in range(spec.num_layers - 1))


def _between_layers(spec: _Spec, layer_output: jax.Array, key: jax.Array | None, generator: Any) -> jax.Array:
    """PyTorch's ``dropout(layer_output, p, train=True)`` between two layers, mask from ``key``.

    Under ``torch_dropout(generator)`` the mask is PyTorch's own: ``bernoulli_`` on the layer's
    time-major ``(L, N, D * H)`` output, as PyTorch's C++ stack draws it after each layer.
    """
    if spec.dropout == 1:
        return layer_output * jnp.zeros((), layer_output.dtype)  # x * 0: NaN stays NaN, as in PyTorch
    if generator is not None:
        keep = torch_dropout_mask(generator, tuple(layer_output.shape), spec.dropout)
        return _scale_kept(layer_output, keep, spec.dropout)
    assert key is not None
    keep = jax.random.bernoulli(key, 1.0 - spec.dropout, layer_output.shape)
    return _scale_kept(layer_output, keep, spec.dropout)


@functools.partial(jax.jit, static_argnames=("spec", "training", "precision", "generator"))
def _stack(
    params: dict[str, jax.Array],
    input: jax.Array,
    states: tuple[jax.Array, ...],
    keys: tuple[jax.Array, ...],
    *,
    spec: _Spec,
    training: bool,
    precision: Any,
    generator: Any = None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Every layer and direction over a batched input: ``(output, final states)``.

    One compiled program per configuration, so an eager call (and its gradient) runs three
    compiled programs rather than dispatching every step's operations; under an outer
    ``jax.jit`` it is inlined.
    """
    layer_input = jnp.swapaxes(input, 0, 1) if spec.batch_first else input
    finals: list[tuple[jax.Array, ...]] = []
    for layer in range(spec.num_layers):
        first = layer * spec.directions
        layer_states = [tuple(s[first + d] for s in states) for d in range(spec.directions)]
        layer_input, layer_finals = _layer(spec, params, layer, layer_input, layer_states, precision)
        finals += layer_finals
        if training and spec.dropout > 0 and layer < spec.num_layers - 1:
            layer_input = _between_layers(spec, layer_input, keys[layer] if keys else None, generator)
    output = jnp.swapaxes(layer_input, 0, 1) if spec.batch_first else layer_input
    return output, tuple(jnp.stack([f[i] for f in finals]) for i in range(len(states)))


def _forward(
    module: nn.Module,
    spec: _Spec,
    input: Any,
    hx: Any,
    training: bool,
    param_dtype: Any,
    precision: Any,
    rng_collection: str,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """PyTorch's ``RNN``/``GRU``/``LSTM.forward``: checks in its order, then the stacked scans.

    The parameters are made after the checks: an eager ``init`` on bad input fails before it
    spends time drawing them.
    """
    input = to_jax(input)
    if input.ndim not in (2, 3):
        tensor = " tensor" if spec.mode.startswith("RNN") else ""
        raise ValueError(f"{spec.name}: Expected input to be 2D or 3D, got {input.ndim}D{tensor} instead")
    batched = input.ndim == 3
    batch_axis = 0 if spec.batch_first else 1
    states = _as_states(spec, hx)
    if states is not None:
        _check_state_dims(spec, states, batched)
    if not batched:
        input = jnp.expand_dims(input, batch_axis)
        if states is not None:
            states = tuple(s[:, None] for s in states)
    batch = input.shape[batch_axis]
    layers = spec.num_layers * spec.directions
    if states is None:
        h0 = jnp.zeros((layers, batch, spec.output_size), input.dtype)
        states = (h0, jnp.zeros((layers, batch, spec.hidden_size), input.dtype)) if spec.mode == "LSTM" else (h0,)
    _check_forward_args(spec, input, states, param_dtype, batch)
    if input.shape[1 - batch_axis] == 0:
        raise InputError("Expected sequence length to be larger than 0 in RNN")

    params = _make_params(module, spec, param_dtype)
    keys = _dropout_keys(module, spec, training, rng_collection)
    generator = active_generator() if training and spec.dropout not in (0, 1) and spec.num_layers > 1 else None
    output, final_states = _stack(
        params, input, states, keys, spec=spec, training=training, precision=precision, generator=generator
    )
    if not batched:
        output = jnp.squeeze(output, batch_axis)
        final_states = tuple(jnp.squeeze(s, 1) for s in final_states)
    return output, final_states


def _spec_of(module: Any) -> _Spec:
    """The configuration of an ``RNN``/``GRU``/``LSTM`` (a function: Flax intercepts module methods)."""
    name = _family(module)
    mode = _NONLINEARITY_MODES.get(module.nonlinearity, "RNN_TANH") if name == "RNN" else name
    return _Spec(
        name, mode, module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
        module.dropout, module.bidirectional, getattr(module, "proj_size", 0),
    )  # fmt: skip


def _family(module: Any) -> str:
    """``'RNN'``, ``'GRU'`` or ``'LSTM'``: the torchsem class the module is (or derives from)."""
    for klass in type(module).__mro__:
        if klass.__name__ in ("RNN", "GRU", "LSTM") and klass.__module__ == __name__:
            return klass.__name__
    raise TypeError(f"{type(module).__name__} is not an RNN, GRU or LSTM")


def _training(module: Any, spec: _Spec, deterministic: bool | None) -> bool:
    """Whether the call trains: the ``deterministic`` flag, needed only where dropout makes it matter."""
    if module.deterministic is None and deterministic is None and not (spec.dropout > 0 and spec.num_layers > 1):
        return False  # no dropout between layers: train() and eval() compute the same thing
    return not merge_mode(spec.name, "deterministic", module.deterministic, deterministic, _MODE_MEANING)


class RNN(nn.Module):
    """A multi-layer Elman RNN, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, as ``torch.nn.RNN``.

    ``act`` is tanh or ReLU. Variables (collection ``params``), per layer ``k`` and direction
    (``_reverse`` for the backward one), in PyTorch's order: ``weight_ih_l{k}``
    ``(H, H_in or D*H)``, ``weight_hh_l{k}`` ``(H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    ``(H,)``, all ``U(-1/sqrt(H), 1/sqrt(H))``.

    Attributes:
      input_size: features of the input, ``H_in``.
      hidden_size: features of the hidden state, ``H``.
      num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s output.
      nonlinearity: ``'tanh'`` or ``'relu'``.
      bias: whether to learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
      batch_first: inputs and outputs are ``(N, L, features)`` instead of ``(L, N, features)``
        (the states stay ``(D * num_layers, N, H_out)``, as in PyTorch).
      dropout: the probability of zeroing each output of every layer but the last, in
        training only (PyTorch warns, as here, when there is only one layer).
      bidirectional: also run each layer over the reversed sequence (``D = 2``); the two
        outputs are concatenated, forward first.
      deterministic: eval mode when True, training when False; give it here or to the call,
        not both. Needed only when dropout acts (``dropout > 0`` and ``num_layers > 1``);
        training draws its masks from the ``rng_collection`` stream (Flax's ``'dropout'``),
        so they differ from PyTorch's.
      rng_collection: the rng stream of the dropout masks.
      param_dtype: the parameters' dtype (the input's must match, as in PyTorch).
      precision: the matmul precision (full float32 by default).

    Reproduces ``torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh',
    bias=True, batch_first=False, dropout=0.0, bidirectional=False)``.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    nonlinearity: str = "tanh"
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    deterministic: bool | None = None
    rng_collection: str = "dropout"
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        if self.nonlinearity not in _NONLINEARITY_MODES:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        _validate(_spec_of(self))
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return tuple(_spec_of(self).shapes())

    @nn.compact
    def __call__(self, input: Any, hx: Any = None, deterministic: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """Run the network over a sequence.

        Args:
          input: ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``.
          hx: the initial hidden state ``(D * num_layers, N, H)`` (``(D * num_layers, H)``
            unbatched); None is zeros.
          deterministic: eval mode when True; see the attribute.

        Returns:
          ``(output, h_n)``: every step's last-layer hidden state ``(L, N, D * H)`` and the
          final hidden state of every layer and direction ``(D * num_layers, N, H)``.

        Raises:
          ValueError: an input that is not 2-D or 3-D, or not of ``param_dtype`` (PyTorch's
            ValueError and message); dropout in training without its mode or rng.
          InputError: a feature count, state shape or empty sequence PyTorch refuses (its
            RuntimeError and message).
        """
        spec = _spec_of(self)
        training = _training(self, spec, deterministic)
        output, (h_n,) = _forward(
            self, spec, input, hx, training, self.param_dtype, self.precision, self.rng_collection
        )
        return output, h_n


class GRU(nn.Module):
    """A multi-layer GRU with PyTorch's gate order ``(r, z, n)`` and both biases, as ``torch.nn.GRU``.

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Variables per layer ``k`` (and ``_reverse``), PyTorch's order: ``weight_ih_l{k}``
    ``(3H, H_in or D*H)``, ``weight_hh_l{k}`` ``(3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    ``(3H,)``, thirds in ``r, z, n`` order, all ``U(-1/sqrt(H), 1/sqrt(H))``.

    Attributes:
      input_size: features of the input, ``H_in``.
      hidden_size: features of the hidden state, ``H``.
      num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s output.
      bias: whether to learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
      batch_first: inputs and outputs are ``(N, L, features)`` instead of ``(L, N, features)``
        (the states stay ``(D * num_layers, N, H_out)``, as in PyTorch).
      dropout: the probability of zeroing each output of every layer but the last, in
        training only (PyTorch warns, as here, when there is only one layer).
      bidirectional: also run each layer over the reversed sequence (``D = 2``); the two
        outputs are concatenated, forward first.
      deterministic: eval mode when True, training when False; give it here or to the call,
        not both. Needed only when dropout acts (``dropout > 0`` and ``num_layers > 1``);
        training draws its masks from the ``rng_collection`` stream (Flax's ``'dropout'``),
        so they differ from PyTorch's.
      rng_collection: the rng stream of the dropout masks.
      param_dtype: the parameters' dtype (the input's must match, as in PyTorch).
      precision: the matmul precision (full float32 by default).

    Reproduces ``torch.nn.GRU(input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    deterministic: bool | None = None
    rng_collection: str = "dropout"
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        _validate(_spec_of(self))
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return tuple(_spec_of(self).shapes())

    @nn.compact
    def __call__(self, input: Any, hx: Any = None, deterministic: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """Run the network over a sequence.

        Args:
          input: ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``.
          hx: the initial hidden state ``(D * num_layers, N, H)`` (``(D * num_layers, H)``
            unbatched); None is zeros.
          deterministic: eval mode when True; see the attribute.

        Returns:
          ``(output, h_n)``: ``(L, N, D * H)`` and ``(D * num_layers, N, H)``.

        Raises:
          ValueError: an input that is not 2-D or 3-D, or not of ``param_dtype`` (PyTorch's
            ValueError and message); dropout in training without its mode or rng.
          InputError: a feature count, state shape or empty sequence PyTorch refuses (its
            RuntimeError and message).
        """
        spec = _spec_of(self)
        training = _training(self, spec, deterministic)
        output, (h_n,) = _forward(
            self, spec, input, hx, training, self.param_dtype, self.precision, self.rng_collection
        )
        return output, h_n


class LSTM(nn.Module):
    """A multi-layer LSTM with PyTorch's gate order ``(i, f, g, o)`` and both biases, as ``torch.nn.LSTM``.

        (i_t, f_t, g_t, o_t) = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, split in quarters
        c_t = sigmoid(f_t) * c_{t-1} + sigmoid(i_t) * tanh(g_t)
        h_t = sigmoid(o_t) * tanh(c_t)            (then h_t = W_hr h_t with proj_size > 0)

    Variables per layer ``k`` (and ``_reverse``), PyTorch's order: ``weight_ih_l{k}``
    ``(4H, H_in or D*H_out)``, ``weight_hh_l{k}`` ``(4H, H_out)``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` ``(4H,)``, ``weight_hr_l{k}`` ``(proj_size, H)`` when projecting; all
    ``U(-1/sqrt(H), 1/sqrt(H))``. ``H_out`` is ``proj_size`` when projecting, else ``H``.

    Attributes:
      input_size: features of the input, ``H_in``.
      hidden_size: features of the hidden state, ``H``.
      num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s output.
      bias: whether to learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
      batch_first: inputs and outputs are ``(N, L, features)`` instead of ``(L, N, features)``
        (the states stay ``(D * num_layers, N, H_out)``, as in PyTorch).
      dropout: the probability of zeroing each output of every layer but the last, in
        training only (PyTorch warns, as here, when there is only one layer).
      bidirectional: also run each layer over the reversed sequence (``D = 2``); the two
        outputs are concatenated, forward first.
      deterministic: eval mode when True, training when False; give it here or to the call,
        not both. Needed only when dropout acts (``dropout > 0`` and ``num_layers > 1``);
        training draws its masks from the ``rng_collection`` stream (Flax's ``'dropout'``),
        so they differ from PyTorch's.
      rng_collection: the rng stream of the dropout masks.
      param_dtype: the parameters' dtype (the input's must match, as in PyTorch).
      precision: the matmul precision (full float32 by default).
      proj_size: project each hidden state to this many features through ``weight_hr_l{k}``; 0: none.

    Reproduces ``torch.nn.LSTM(input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, proj_size=0)``.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    deterministic: bool | None = None
    rng_collection: str = "dropout"
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        _validate(_spec_of(self))
        super().__post_init__()

    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return tuple(_spec_of(self).shapes())

    @nn.compact
    def __call__(
        self, input: Any, hx: tuple[Any, Any] | None = None, deterministic: bool | None = None
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Run the network over a sequence.

        Args:
          input: ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``.
          hx: ``(h_0, c_0)``: ``(D * num_layers, N, H_out)`` and ``(D * num_layers, N, H)``
            (without ``N`` unbatched); None is zeros.
          deterministic: eval mode when True; see the attribute.

        Returns:
          ``(output, (h_n, c_n))``: ``(L, N, D * H_out)``, ``(D * num_layers, N, H_out)`` and
          ``(D * num_layers, N, H)``.

        Raises:
          ValueError: an input that is not 2-D or 3-D, or not of ``param_dtype`` (PyTorch's
            ValueError and message); dropout in training without its mode or rng.
          InputError: a feature count, state shape or empty sequence PyTorch refuses (its
            RuntimeError and message).
        """
        spec = _spec_of(self)
        training = _training(self, spec, deterministic)
        output, (h_n, c_n) = _forward(
            self, spec, input, hx, training, self.param_dtype, self.precision, self.rng_collection
        )
        return output, (h_n, c_n)


register_torch_init(RNN, _uniform_torch_init)
register_torch_init(GRU, _uniform_torch_init)
register_torch_init(LSTM, _uniform_torch_init)
