"""The Transformer layers and stacks: PyTorch's initialisation, exact dropout, fast paths, the mode flag, errors.

The parity grid (family ``transformer``) runs through the module runner; these tests add what
it cannot express: a custom encoder, deeper stacks' initialisation, a training step with
``dropout=0.1`` whose masks are PyTorch's (``torch_dropout``), PyTorch's nested-tensor fast
path, state_dict round trips and torchsem's own API.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import autograd, convert
from torchsem.nn import (
    GELU,
    LayerNorm,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    torch_dropout,
)
from torchsem.random import Generator, torch_init

D, HEADS, FF, S, T, N = 8, 2, 16, 5, 4, 2
RNG = np.random.default_rng(0)
SRC = RNG.standard_normal((S, N, D)).astype(np.float32)
TGT = RNG.standard_normal((T, N, D)).astype(np.float32)


def _close(actual, expected, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def _state(module, variables):
    return convert.to_torch_state_dict(variables, key_order=module.torch_state_dict_keys())


def _assert_same_state(module, variables, reference):
    state = _state(module, variables)
    expected = reference.state_dict()
    assert list(state) == list(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(state[name], value.numpy(), err_msg=name)


def _quiet(build):
    """A PyTorch constructor without its nested-tensor notice (it is about PyTorch's fast path only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


@pytest.mark.live_torch
def test_transformer_init_replays_pytorch_with_deep_stacks_and_a_custom_encoder():
    """``Transformer``'s stacks (each layer drawn once and copied), then ``xavier_uniform_`` of every matrix."""
    import torch

    torch.manual_seed(11)
    reference = _quiet(lambda: torch.nn.Transformer(D, HEADS, 2, 3, FF))
    module = Transformer(D, HEADS, 2, 3, FF)
    _assert_same_state(module, torch_init(module, Generator(11), SRC, TGT, deterministic=True), reference)

    # The custom encoder is built (and draws) first, then the default decoder, then the reset.
    torch.manual_seed(12)
    encoder = _quiet(lambda: torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, HEADS, FF), 2))
    reference = torch.nn.Transformer(D, HEADS, num_decoder_layers=1, dim_feedforward=FF, custom_encoder=encoder)
    custom = TransformerEncoder(TransformerEncoderLayer(D, HEADS, FF), 2)
    module = Transformer(D, HEADS, num_decoder_layers=1, dim_feedforward=FF, custom_encoder=custom)
    _assert_same_state(module, torch_init(module, Generator(12), SRC, TGT, deterministic=True), reference)


def test_stack_copies_start_equal_and_transformer_redraws_them():
    stack = TransformerDecoder(TransformerDecoderLayer(D, HEADS, FF), 3, LayerNorm(D))
    state = _state(stack, torch_init(stack, Generator(0), TGT, SRC, deterministic=True))
    for name in ("self_attn.in_proj_weight", "multihead_attn.out_proj.weight", "linear2.bias"):
        np.testing.assert_array_equal(state[f"layers.0.{name}"], state[f"layers.2.{name}"])
    model = Transformer(D, HEADS, 1, 2, FF)
    state = _state(model, torch_init(model, Generator(0), SRC, TGT, deterministic=True))
    assert not np.array_equal(state["decoder.layers.0.linear1.weight"], state["decoder.layers.1.linear1.weight"])
    # The vectors are not redrawn: the copies keep the layer's linear biases, and MHA's zero biases.
    np.testing.assert_array_equal(state["decoder.layers.0.linear1.bias"], state["decoder.layers.1.linear1.bias"])
    assert not state["encoder.layers.0.self_attn.in_proj_bias"].any()


def test_generate_square_subsequent_mask():
    mask = np.asarray(Transformer.generate_square_subsequent_mask(4))
    assert mask.dtype == np.float32 and mask.shape == (4, 4)
    np.testing.assert_array_equal(np.isinf(mask), np.triu(np.ones((4, 4), bool), 1))
    assert np.all(mask[np.isinf(mask)] < 0) and not mask[~np.isinf(mask)].any()
    assert Transformer.generate_square_subsequent_mask(3, dtype=jnp.float16).dtype == jnp.float16
    with pytest.raises(TypeError, match="dtype must be floating point"):
        Transformer.generate_square_subsequent_mask(3, dtype=jnp.int32)


@pytest.mark.live_torch
def test_generate_square_subsequent_mask_is_pytorchs():
    import torch

    np.testing.assert_array_equal(
        np.asarray(Transformer.generate_square_subsequent_mask(5)),
        torch.nn.Transformer.generate_square_subsequent_mask(5),
    )


@pytest.mark.live_torch
def test_training_step_with_pytorchs_dropout_masks():
    """``dropout=0.1`` in training: under ``torch_dropout`` the masks (attention weights, the three
    branch dropouts, in PyTorch's order) are PyTorch's, so outputs and gradients match."""
    import torch

    padding = np.zeros((N, S), bool)
    padding[1, -2:] = True
    torch.manual_seed(21)
    reference = torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1).train()
    x = torch.from_numpy(SRC.copy()).requires_grad_(True)
    cotangent = RNG.standard_normal(SRC.shape).astype(np.float32)
    y = reference(x, src_key_padding_mask=torch.from_numpy(padding))
    (y * torch.from_numpy(cotangent)).sum().backward()

    module = TransformerEncoderLayer(D, HEADS, FF, dropout=0.1)
    generator = Generator(21)
    variables = torch_init(module, generator, SRC, deterministic=True)  # advances as PyTorch's constructor

    def loss(params, x):
        out = module.apply({"params": params}, x, src_key_padding_mask=padding, deterministic=False)
        return jnp.sum(out * cotangent), out

    with torch_dropout(generator):  # jitted inside: the masks are drawn on the host, in call order
        step = jax.jit(autograd.value_and_grad(loss, argnums=(0, 1), has_aux=True))
        (_, out), (grads, dx) = step(variables["params"], SRC)
    _close(out, y.detach())
    _close(dx, x.grad)
    flat = convert.to_torch_state_dict({"params": grads})
    for name, parameter in reference.named_parameters():
        _close(flat[name], parameter.grad)


@pytest.mark.live_torch
def test_pytorch_nested_tensor_fast_path_zeros_the_padding():
    """PyTorch's inference fast path (no autograd, eval, ``batch_first``, a left-aligned padding
    mask) returns 0 at padded positions; its autograd path, and torchsem, compute them."""
    import torch

    src = np.swapaxes(SRC, 0, 1).copy()
    padding = np.zeros((N, S), bool)
    padding[1, -2:] = True
    torch.manual_seed(3)
    reference = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True), 2, enable_nested_tensor=True
    ).eval()
    assert reference.use_nested_tensor
    module = TransformerEncoder(TransformerEncoderLayer(D, HEADS, FF, batch_first=True), 2)
    variables = torch_init(module, Generator(3), src, deterministic=True)
    actual = np.asarray(module.apply(variables, src, src_key_padding_mask=padding, deterministic=True))
    slow = reference(torch.from_numpy(src).requires_grad_(True), src_key_padding_mask=torch.from_numpy(padding))
    _close(actual, slow.detach())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's note that nested tensors are a prototype
        fast = reference(torch.from_numpy(src), src_key_padding_mask=torch.from_numpy(padding)).numpy()
    assert not fast[1, -2:].any() and np.abs(actual[1, -2:]).min() > 0
    _close(actual[~padding], fast[~padding])  # elsewhere only rounding apart


@pytest.mark.live_torch
def test_state_dict_round_trip_and_a_callable_activation():
    import torch

    module = TransformerEncoderLayer(D, HEADS, FF, activation=GELU(approximate="tanh"), norm_first=True)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), SRC, deterministic=True))
    rng = np.random.default_rng(5)
    variables = jax.tree_util.tree_map(lambda s: jnp.asarray(0.5 * rng.standard_normal(s.shape), s.dtype), shapes)
    reference = torch.nn.TransformerEncoderLayer(
        D, HEADS, FF, activation=torch.nn.GELU(approximate="tanh"), norm_first=True
    ).eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in _state(module, variables).items()})
    expected = reference(torch.from_numpy(SRC).requires_grad_(True)).detach()
    _close(module.apply(variables, SRC, deterministic=True), expected)
    back = convert.load_torch_state_dict(variables, reference.state_dict())
    _close(module.apply(back, SRC, deterministic=True), expected)


def test_mode_flag_given_once_and_required_with_dropout():
    layer = TransformerEncoderLayer(D, HEADS, FF)  # dropout 0.1
    shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), SRC, deterministic=True))
    assert "self_attn" in shapes["params"]
    with pytest.raises(ValueError, match="TransformerEncoderLayer: .*deterministic"):
        jax.eval_shape(lambda: layer.init(jax.random.key(0), SRC))
    jax.eval_shape(lambda: TransformerEncoderLayer(D, HEADS, FF, dropout=0.0).init(jax.random.key(0), SRC))
    stack = TransformerEncoder(TransformerEncoderLayer(D, HEADS, FF), 2, deterministic=True)
    jax.eval_shape(lambda: stack.init(jax.random.key(0), SRC))  # the stack's flag reaches its layers
    with pytest.raises(ValueError, match="TransformerEncoder: .*deterministic"):
        jax.eval_shape(lambda: stack.init(jax.random.key(0), SRC, deterministic=False))


def test_bad_arguments():
    from torchsem.errors import InputError

    with pytest.raises(InputError, match="activation should be relu/gelu, not tanh"):
        TransformerEncoderLayer(D, HEADS, activation="tanh")
    with pytest.raises(TypeError, match="activation must be 'relu', 'gelu' or a callable"):
        TransformerDecoderLayer(D, HEADS, activation=3)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        Transformer(D, 3)
    with pytest.raises(TypeError, match="the layer must be a Flax module"):
        TransformerEncoder("layer", 2)
    with pytest.raises(InputError, match="the feature number of src and tgt must be equal to d_model"):
        jax.eval_shape(
            lambda: Transformer(D, HEADS, 1, 1, FF).init(jax.random.key(0), SRC, TGT[..., :6], deterministic=True)
        )
