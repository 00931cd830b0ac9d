"""``torchsem.nn.MultiheadAttention``: mask properties against live PyTorch, jit, errors, state_dict round trips.

The parity grid (family ``attention``) runs through the module runner; these tests add random
masks (hypothesis, against live PyTorch), the cases the runner cannot express (self-attention
with one tensor for query, key and value, mismatched mask types and their warning, PyTorch's
inference fast path) and torchsem's own API.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchsem import convert
from torchsem.nn import MultiheadAttention
from torchsem.random import Generator, torch_init

E, H, L, S, N = 8, 2, 4, 5, 2
RNG = np.random.default_rng(0)
Q = RNG.standard_normal((L, N, E)).astype(np.float32)
K = RNG.standard_normal((S, N, E)).astype(np.float32)
V = RNG.standard_normal((S, N, E)).astype(np.float32)


def _variables(module, *inputs, seed=0):
    return torch_init(module, Generator(seed), *inputs)


def _random_variables(module, *inputs, **kwargs):
    """Variables of the module's shapes filled with N(0, 0.5) (traced, not compiled: no init to run)."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *inputs, **kwargs))
    rng = np.random.default_rng(1)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(0.5 * rng.standard_normal(s.shape), s.dtype), shapes)


def _torch(seed=0, **kwargs):
    import torch

    torch.manual_seed(seed)
    return torch.nn.MultiheadAttention(E, H, **kwargs)


def _close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, equal_nan=True)


def _as_mask(bits, kind):
    """A bool mask (True: masked) or its float form with ``-inf`` where True and N(0, 1)-ish values elsewhere."""
    if kind == "bool":
        return bits
    values = np.linspace(-1.0, 1.0, bits.size, dtype=np.float32).reshape(bits.shape)
    return np.where(bits, np.float32(-np.inf), values).astype(np.float32)


@st.composite
def _mask_setups(draw):
    kind = draw(st.sampled_from(["bool", "float"]))  # one kind for both masks: mixing warns (tested below)
    attn = draw(st.sampled_from([None, "2d", "3d"]))
    padding = draw(st.booleans())
    attn_bits = None if attn is None else draw(hnp.arrays(np.bool_, (L, S) if attn == "2d" else (N * H, L, S)))
    padding_bits = draw(hnp.arrays(np.bool_, (N, S))) if padding else None
    return {
        "attn_mask": None if attn_bits is None else _as_mask(attn_bits, kind),
        "key_padding_mask": None if padding_bits is None else _as_mask(padding_bits, kind),
        "need_weights": draw(st.booleans()),
        "average_attn_weights": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
    }


_INITIALISED: dict[bool, dict] = {}


@pytest.mark.live_torch
@settings(max_examples=8, deadline=None)
@given(setup=_mask_setups())
def test_random_masks_match_pytorch(setup):
    """Any bool or float key_padding_mask / attn_mask (rows fully masked included: NaN or 0 as PyTorch)."""
    import torch

    batch_first = setup.pop("batch_first")
    q, k, v = (np.swapaxes(x, 0, 1) if batch_first else x for x in (Q, K, V))
    module = MultiheadAttention(E, H, batch_first=batch_first)
    if batch_first not in _INITIALISED:  # once per layout: torch_init traces the module
        _INITIALISED[batch_first] = _variables(module, q, k, v)
    variables = _INITIALISED[batch_first]
    reference = _torch(batch_first=batch_first)
    torch_kwargs = {
        name: torch.from_numpy(value) if isinstance(value, np.ndarray) else value for name, value in setup.items()
    }
    expected = reference(*(torch.from_numpy(x) for x in (q, k, v)), **torch_kwargs)
    actual = module.apply(variables, q, k, v, **setup)
    _close(actual[0], expected[0].detach())
    assert (actual[1] is None) == (expected[1] is None)
    if expected[1] is not None:
        _close(actual[1], expected[1].detach())


@pytest.mark.live_torch
def test_self_attention_with_one_tensor_matches_pytorch():
    """``mha(x, x, x)``: PyTorch's packed self-attention path; the input's gradient sums its three uses."""
    import torch

    module = MultiheadAttention(E, H)
    variables = _variables(module, Q, Q, Q)
    reference = _torch()
    x = torch.from_numpy(Q.copy()).requires_grad_(True)
    out, weights = reference(x, x, x)
    (out.sum() + weights.square().sum()).backward()

    def loss(x):
        out, weights = module.apply(variables, x, x, x)
        return jnp.sum(out) + jnp.sum(weights**2)

    _close(module.apply(variables, Q, Q, Q)[0], out.detach())
    _close(jax.grad(loss)(jnp.asarray(Q)), x.grad, atol=3e-6)


@pytest.mark.live_torch
def test_mismatched_mask_types_warn_and_merge_as_pytorch():
    import torch

    padding = np.zeros((N, S), bool)
    padding[:, -1] = True
    attn = np.linspace(-1, 1, L * S, dtype=np.float32).reshape(L, S)
    module = MultiheadAttention(E, H)
    variables = _variables(module, Q, K, V)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _torch()(
            *map(torch.from_numpy, (Q, K, V)), torch.from_numpy(padding), attn_mask=torch.from_numpy(attn)
        )
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask is deprecated"):
        actual = module.apply(variables, Q, K, V, padding, attn_mask=attn)
    _close(actual[0], expected[0].detach())
    _close(actual[1], expected[1].detach())


@pytest.mark.live_torch
def test_pytorch_fast_path_is_the_same_function_rounded_otherwise():
    """Without autograd, in eval, ``batch_first`` self-attention: PyTorch's ``_native_multi_head_attention``.

    torchsem computes PyTorch's math / SDPA paths; the fast path rounds differently (measured
    here: a few 1e-7), within float32 tolerance.
    """
    import torch

    x = np.swapaxes(Q, 0, 1).copy()
    padding = np.zeros((N, L), bool)
    padding[1, -2:] = True
    module = MultiheadAttention(E, H, batch_first=True)
    variables = _variables(module, x, x, x)
    reference = _torch(batch_first=True).eval()
    with torch.no_grad():
        xt = torch.from_numpy(x)
        fast = reference(xt, xt, xt, key_padding_mask=torch.from_numpy(padding))
    actual = module.apply(variables, x, x, x, padding)
    _close(actual[0], fast[0])
    _close(actual[1], fast[1])


@pytest.mark.live_torch
def test_state_dict_round_trip_with_pytorch():
    """torchsem's variables load into PyTorch's module and back; both then compute the same."""
    import torch

    module = MultiheadAttention(E, H, kdim=6, vdim=5, add_bias_kv=True)
    k, v = K[..., :6].copy(), V[..., :5].copy()
    variables = _random_variables(module, Q, k, v)  # not PyTorch's values
    state = convert.to_torch_state_dict(variables, key_order=module.torch_state_dict_keys())
    reference = _torch(kdim=6, vdim=5, add_bias_kv=True)
    assert list(state) == list(reference.state_dict())
    reference.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
    expected = reference(*map(torch.from_numpy, (Q, k, v)))
    _close(module.apply(variables, Q, k, v)[0], expected[0].detach())
    back = convert.load_torch_state_dict(variables, reference.state_dict())
    for name, value in convert.to_torch_state_dict(back).items():
        np.testing.assert_array_equal(value, state[name])


def test_jit_agrees_with_eager_and_masks_are_traced():
    module = MultiheadAttention(E, H)
    variables = _random_variables(module, Q, K, V)
    padding = np.zeros((N, S), bool)
    padding[0, 1:3] = True

    def run(q, k, v, padding):
        return module.apply(variables, q, k, v, padding, need_weights=False)[0]

    eager = run(Q, K, V, padding)
    _close(jax.jit(run)(Q, K, V, padding), eager, rtol=1e-6, atol=1e-7)
    # A padded key changes nothing for a batch entry it does not belong to, and its own column gets no weight.
    weights = module.apply(variables, Q, K, V, padding)[1]
    assert np.all(np.asarray(weights)[0, :, 1:3] == 0)


def test_init_matches_pytorchs_layout_without_torch():
    """``torch_init``'s shapes, names and order are PyTorch's (the values are checked by the grid)."""
    module = MultiheadAttention(E, H, bias=True, add_bias_kv=True, kdim=6)
    variables = _variables(module, Q, K[..., :6], V)
    state = convert.to_torch_state_dict(variables, key_order=module.torch_state_dict_keys())
    assert [(name, value.shape) for name, value in state.items()] == [
        ("q_proj_weight", (E, E)),
        ("k_proj_weight", (E, 6)),
        ("v_proj_weight", (E, E)),
        ("in_proj_bias", (3 * E,)),
        ("bias_k", (1, 1, E)),
        ("bias_v", (1, 1, E)),
        ("out_proj.weight", (E, E)),
        ("out_proj.bias", (E,)),
    ]
    assert not state["in_proj_bias"].any() and not state["out_proj.bias"].any()


def test_mode_is_required_only_with_dropout():
    def init(module, **kwargs):
        return jax.eval_shape(lambda: module.init(jax.random.key(0), Q, K, V, **kwargs))

    init(MultiheadAttention(E, H))  # dropout 0: train and eval compute the same
    with pytest.raises(ValueError, match="deterministic"):
        init(MultiheadAttention(E, H, dropout=0.1))
    with pytest.raises(ValueError, match="deterministic"):
        init(MultiheadAttention(E, H, deterministic=True), deterministic=True)
    module = MultiheadAttention(E, H, dropout=1.0)
    variables = _random_variables(module, Q, K, V, deterministic=True)
    with pytest.raises(ValueError, match="needs a PRNG key for the 'dropout' rng stream"):
        MultiheadAttention(E, H, dropout=0.5).apply(variables, Q, K, V, deterministic=False)

    @jax.jit
    def train(key):
        return module.apply(variables, Q, K, V, deterministic=False, rngs={"dropout": key})

    # p = 1 drops every attention weight: the output is out_proj's bias alone, as in PyTorch.
    out, weights = train(jax.random.key(1))
    assert not np.asarray(weights).any()
    _close(out, np.broadcast_to(variables["params"]["out_proj"]["bias"], out.shape))


@pytest.mark.live_torch
def test_dropout_one_drops_every_weight_as_pytorch():
    """``dropout=1`` in training is deterministic: every attention weight is 0, in both of PyTorch's paths."""
    import torch

    module = MultiheadAttention(E, H, dropout=1.0)
    variables = torch_init(module, Generator(0), Q, K, V, deterministic=True)
    reference = _torch(dropout=1.0).train()
    for need_weights in (True, False):
        expected = reference(*map(torch.from_numpy, (Q, K, V)), need_weights=need_weights)
        actual = module.apply(variables, Q, K, V, need_weights=need_weights, deterministic=False)
        _close(actual[0], expected[0].detach())
        if need_weights:
            _close(actual[1], expected[1].detach())


def test_bad_arguments():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        MultiheadAttention(8, 0)
    with pytest.raises(TypeError, match="embed_dim must be an int"):
        MultiheadAttention(8.0, 2)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        MultiheadAttention(8, 2, dropout=1.5)
    with pytest.raises(TypeError, match="query must be floating point"):
        MultiheadAttention(E, H).init(jax.random.key(0), Q.astype(np.int32), K, V)
    with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask are supported"):
        MultiheadAttention(E, H).init(jax.random.key(0), Q, K, V, np.zeros((N, S), np.int32))
