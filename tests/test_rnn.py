"""torchsem.nn.RNN/GRU/LSTM and their cells: PyTorch's names, shapes, state_dict, dropout and errors.

The fixed grid (layers, directions, batch_first, bias, proj_size, nonlinearity, initial states,
unbatched inputs) and PyTorch's error messages are the ``rnn`` scenario family
(test_parity_catalogue.py, live or recorded oracle). Here: random LSTM/GRU shapes against live
PyTorch, ``state_dict`` round trips through ``torchsem.convert``, dropout between layers
(statistically: the masks come from JAX's generator), the ``deterministic`` flag, jit, and the
checks torchsem adds.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchsem import convert
from torchsem.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from torchsem.random import Generator, torch_init


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in _flat(item)]
    return [result]


def test_parameters_have_pytorchs_names_shapes_and_order():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    expected = []
    for layer, features in ((0, 3), (1, 4)):  # layer 1 reads both directions' projections, 2 * 2
        for suffix in ("", "_reverse"):
            expected += [
                (f"weight_ih_l{layer}{suffix}", (16, features)),
                (f"weight_hh_l{layer}{suffix}", (16, 2)),
                (f"bias_ih_l{layer}{suffix}", (16,)),
                (f"bias_hh_l{layer}{suffix}", (16,)),
                (f"weight_hr_l{layer}{suffix}", (2, 4)),
            ]
    assert list(lstm.torch_state_dict_keys()) == [name for name, _ in expected]
    shapes = jax.eval_shape(lstm.init, jax.random.key(0), jnp.zeros((5, 2, 3)))["params"]
    assert {name: shapes[name].shape for name in shapes} == dict(expected)
    assert GRU(3, 5, bias=False).torch_state_dict_keys() == ("weight_ih_l0", "weight_hh_l0")
    # An eager init keeps the registration order (JAX's transforms would sort the keys).
    params = RNN(2, 3, bidirectional=True).init(jax.random.key(0), jnp.zeros((4, 2)))["params"]
    assert list(params) == list(RNN(2, 3, bidirectional=True).torch_state_dict_keys())
    cell = jax.eval_shape(GRUCell(3, 5).init, jax.random.key(0), jnp.zeros((2, 3)))["params"]
    assert sorted(cell) == sorted(GRUCell(3, 5).torch_state_dict_keys()) and cell["weight_hh"].shape == (15, 5)


def test_default_init_is_uniform_within_one_over_sqrt_hidden():
    params = jax.jit(LSTM(3, 16, proj_size=4).init)(jax.random.key(0), jnp.zeros((2, 1, 3)))["params"]
    values = np.concatenate([np.ravel(v) for v in params.values()])
    assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.24  # bound 1/sqrt(16), not of proj_size
    assert abs(values.std() - 0.25 / np.sqrt(3)) < 0.01


@st.composite
def _recurrent_config(draw):
    kind = draw(st.sampled_from(["LSTM", "GRU"]))
    hidden = draw(st.integers(1, 4))
    kwargs = dict(
        num_layers=draw(st.integers(1, 2)),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bidirectional=draw(st.booleans()),
    )
    if kind == "LSTM":
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
    args = (draw(st.integers(1, 3)), hidden)
    length = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([None, 0, 1, 3]))  # None: unbatched
    return kind, args, kwargs, length, batch, draw(st.booleans())


@pytest.mark.live_torch
@settings(max_examples=5, deadline=None)
@given(config=_recurrent_config(), seed=st.integers(0, 2**16))
def test_random_lstm_and_gru_shapes_and_values_match_pytorch(config, seed):
    import torch

    kind, args, kwargs, length, batch, given_states = config
    torch.manual_seed(seed)
    reference = getattr(torch.nn, kind)(*args, **kwargs)
    module = {"LSTM": LSTM, "GRU": GRU}[kind](*args, **kwargs)
    rng = np.random.default_rng(seed)
    if batch is None:
        shape = (length, args[0])
    else:
        shape = (batch, length, args[0]) if kwargs["batch_first"] else (length, batch, args[0])
    x = rng.standard_normal(shape).astype(np.float32)
    hx = None
    if given_states:
        layers = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
        middle = () if batch is None else (batch,)
        h = rng.standard_normal((layers, *middle, kwargs.get("proj_size", 0) or args[1])).astype(np.float32)
        c = rng.standard_normal((layers, *middle, args[1])).astype(np.float32)
        hx = (h, c) if kind == "LSTM" else h
    torch_hx = None if hx is None else (tuple(map(torch.from_numpy, hx)) if kind == "LSTM" else torch.from_numpy(hx))
    expected = _flat(reference(torch.from_numpy(x), torch_hx))
    variables = {"params": {name: convert.to_jax(value) for name, value in reference.state_dict().items()}}
    actual = _flat(module.apply(variables, x, hx))
    assert [a.shape for a in actual] == [tuple(e.shape) for e in expected]
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "kind, args, kwargs, x_shape",
    [
        ("LSTM", (3, 5), dict(num_layers=2, bidirectional=True, proj_size=2), (4, 2, 3)),
        ("GRU", (3, 4), dict(bias=False, batch_first=True), (2, 4, 3)),
        ("RNNCell", (3, 4), dict(nonlinearity="relu"), (2, 3)),
        ("LSTMCell", (3, 4), {}, (2, 3)),
    ],
)
def test_state_dict_round_trips_through_convert(kind, args, kwargs, x_shape):
    import torch

    import torchsem.nn as tnn

    torch.manual_seed(3)
    reference = getattr(torch.nn, kind)(*args, **kwargs)
    module = getattr(tnn, kind)(*args, **kwargs)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    variables = torch_init(module, Generator(3), x)
    exported = convert.to_torch_state_dict(variables, key_order=module.torch_state_dict_keys())
    assert list(exported) == list(reference.state_dict())
    for name, value in reference.state_dict().items():
        assert np.array_equal(exported[name], value.numpy()), name
    # Perturbed weights go through PyTorch and back: the outputs agree.
    moved = {k: v + np.float32(0.1) * np.sign(v) for k, v in exported.items()}
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in moved.items()})
    variables = convert.load_torch_state_dict(variables, reference.state_dict())
    for a, e in zip(_flat(module.apply(variables, x)), _flat(reference(torch.from_numpy(x)))):
        np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_jit_equals_eager():
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    module = GRU(3, 4, batch_first=True)
    variables = _random_variables(module, x)
    eager = _flat(module.apply(variables, x))
    jitted = _flat(jax.jit(module.apply)(variables, x))
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _random_variables(module, *inputs, **kwargs):
    """Variables of the module's shapes, drawn with numpy: no compiled init for tests that need none."""
    shapes = jax.eval_shape(functools.partial(module.init, **kwargs), jax.random.key(0), *inputs)["params"]
    rng = np.random.default_rng(0)
    return {"params": {k: jnp.asarray(rng.uniform(-0.5, 0.5, s.shape).astype(np.float32)) for k, s in shapes.items()}}


def _identity_second_layer(p: float):
    """A 2-layer ReLU RNN whose second layer passes its input through: relu(I x + 0 h) = x for x >= 0."""
    module = RNN(8, 8, num_layers=2, nonlinearity="relu", bias=False, dropout=p)
    x = np.random.default_rng(2).standard_normal((5, 64, 8)).astype(np.float32)
    params = dict(_random_variables(module, x, deterministic=True)["params"])
    params["weight_ih_l1"] = jnp.eye(8)
    params["weight_hh_l1"] = jnp.zeros((8, 8))
    return module, {"params": params}, x


def test_dropout_acts_between_layers_in_training_only():
    p = 0.3
    module, variables, x = _identity_second_layer(p)
    first_layer, _ = module.apply(variables, x, deterministic=True)  # eval: no dropout
    trained, _ = module.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(7)})
    first_layer, trained = np.asarray(first_layer), np.asarray(trained)
    positive = first_layer > 0
    kept = trained[positive] != 0
    # Kept entries are x / (1 - p) exactly as PyTorch scales them (x * float32(1 / (1 - p))).
    scale = np.float32(1.0) / np.float32(1.0 - p)
    np.testing.assert_array_equal(trained[positive][kept], first_layer[positive][kept] * scale)
    # ~1280 Bernoulli(0.7) draws: the kept fraction is 0.7 within 5 sd (0.064).
    assert abs(kept.mean() - (1 - p)) < 0.064
    other, _ = module.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(8)})
    assert not np.array_equal(np.asarray(other), trained)


@pytest.mark.live_torch
def test_dropout_keep_fraction_matches_pytorchs_statistically():
    import torch

    p = 0.3
    module, variables, x = _identity_second_layer(p)
    reference = torch.nn.RNN(8, 8, num_layers=2, nonlinearity="relu", bias=False, dropout=p)
    reference.load_state_dict({k: torch.from_numpy(convert.host_copy(v)) for k, v in variables["params"].items()})
    with torch.no_grad():
        torch.manual_seed(0)
        torch_trained = reference(torch.from_numpy(x))[0].numpy()
        reference.eval()
        torch_first = reference(torch.from_numpy(x))[0].numpy()
    first, _ = module.apply(variables, x, deterministic=True)
    np.testing.assert_allclose(first, torch_first, rtol=1e-5, atol=1e-6)  # eval: dropout vanishes in both
    trained, _ = module.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(7)})
    positive = torch_first > 0
    torch_kept = (torch_trained[positive] != 0).mean()
    kept = (np.asarray(trained)[positive] != 0).mean()
    # Two independent fractions of ~1280 Bernoulli(0.7) draws: sd of the difference 0.018; 5 sd.
    assert abs(kept - torch_kept) < 0.09
    scales = torch_trained[positive][torch_trained[positive] != 0] / torch_first[positive][torch_trained[positive] != 0]
    np.testing.assert_allclose(scales, 1 / (1 - p), rtol=1e-6)


def test_deterministic_flag_is_needed_only_where_dropout_acts():
    x = jnp.zeros((5, 2, 3))
    plain = GRU(3, 4, num_layers=2)
    jax.eval_shape(plain.apply, _random_variables(plain, x), x)  # no dropout: train() and eval() agree
    module = LSTM(3, 4, num_layers=2, dropout=0.5)
    variables = _random_variables(module, x, deterministic=True)
    with pytest.raises(ValueError, match="deterministic"):
        module.apply(variables, x)
    with pytest.raises(ValueError, match="deterministic"):
        LSTM(3, 4, num_layers=2, dropout=0.5, deterministic=True).apply(variables, x, deterministic=False)
    with pytest.raises(ValueError, match="'dropout' rng stream"):
        module.apply(variables, x, deterministic=False)
    # p = 1 zeroes without a mask, so it needs no key.
    jax.eval_shape(functools.partial(LSTM(3, 4, num_layers=2, dropout=1.0).apply, deterministic=False), variables, x)


@pytest.mark.live_torch
def test_one_layer_dropout_warns_as_pytorch_and_is_no_error():
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.nn.LSTM(4, 5, dropout=0.5)
        LSTM(4, 5, dropout=0.5)
    torch_warning, ours = caught[0], caught[-1]
    assert str(ours.message) == str(torch_warning.message) and ours.category is torch_warning.category


def test_hx_must_match_the_input_dtype_and_be_a_pair_for_an_lstm():
    x = jnp.zeros((5, 2, 3))
    module = LSTM(3, 4)
    variables = _random_variables(module, x)
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        module.apply(variables, x, jnp.zeros((1, 2, 4)))
    h = jnp.zeros((1, 2, 4))
    with pytest.raises(RuntimeError, match="hx must have the input's dtype float32, got float16"):
        module.apply(variables, x, (h.astype(jnp.float16), h))
    cell = LSTMCell(3, 4)
    with pytest.raises(RuntimeError, match="lstm_cell expects two hidden states"):
        cell.init(jax.random.key(0), jnp.zeros((2, 3)), (jnp.zeros((2, 4)),))


def test_constructor_checks_that_pytorch_leaves_to_later():
    with pytest.raises(RuntimeError, match="Unknown nonlinearity: sigmoid"):
        RNNCell(3, 4, nonlinearity="sigmoid")  # PyTorch raises this at the first call
    with pytest.raises(TypeError, match="bidirectional should be of type bool"):
        GRU(3, 4, bidirectional=1)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        GRUCell(3, 0)


@pytest.mark.live_torch
def test_an_empty_batch_runs_as_in_pytorch():
    import torch

    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 4, num_layers=2)
    module = LSTM(3, 4, num_layers=2)
    x = np.zeros((5, 0, 3), np.float32)
    variables = convert.load_torch_state_dict(jax.jit(module.init)(jax.random.key(0), x), reference.state_dict())
    actual = _flat(module.apply(variables, x))
    assert [a.shape for a in actual] == [tuple(e.shape) for e in _flat(reference(torch.from_numpy(x)))]
