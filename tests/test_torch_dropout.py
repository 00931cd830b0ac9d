"""``torchsem.nn.torch_dropout``: PyTorch's own dropout masks, drawn from a ``torchsem.random.Generator``."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem.nn import Dropout, Dropout2d, torch_dropout
from torchsem.random import Generator

X = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)


def _three_dropouts(x):
    a = Dropout(0.3, deterministic=False).apply({}, x)
    b = Dropout2d(0.5, deterministic=False).apply({}, x)
    return a, b, Dropout(0.1, deterministic=False).apply({}, a)


@pytest.mark.live_torch
def test_masks_are_pytorchs_in_call_order(jit):
    import torch

    torch.manual_seed(5)
    xt = torch.from_numpy(X)
    first = torch.nn.Dropout(0.3)(xt)
    expected = [first, torch.nn.Dropout2d(0.5)(xt), torch.nn.Dropout(0.1)(first)]
    with torch_dropout(Generator(5)):
        got = maybe_jit(_three_dropouts, jit)(X)
    for e, a in zip(expected, got):
        np.testing.assert_array_equal(np.asarray(a), e.numpy())


def test_the_generator_advances_as_pytorchs_and_the_default_stays_flaxs():
    generator = Generator(7)
    with torch_dropout(generator):
        step = jax.jit(lambda x: Dropout(0.5, deterministic=False).apply({}, x))
        first, second = np.asarray(step(X)), np.asarray(step(X))
    assert not np.array_equal(first, second)  # each call draws new masks, as PyTorch's forward
    replay = Generator(7)
    keep = replay.bernoulli(X.shape, 0.5, dtype=np.bool_)
    np.testing.assert_array_equal(first != 0, keep)
    with pytest.raises(ValueError, match="needs a PRNG key for the 'dropout' rng stream"):
        Dropout(0.5, deterministic=False).apply({}, X)  # outside the block: Flax's rng, required


def test_only_a_torchsem_generator_is_accepted():
    with pytest.raises(TypeError, match="generator must be a torchsem.random.Generator, got int"), torch_dropout(5):
        pass


@pytest.mark.live_torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_the_dropout_between_rnn_layers_is_pytorchs(kind):
    import jax.numpy as jnp
    import torch

    import torchsem.nn
    from torchsem.random import torch_init

    kwargs = {"batch_first": True} if kind == "LSTM" else {"bidirectional": True}
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    torch.manual_seed(3)
    reference = getattr(torch.nn, kind)(4, 6, num_layers=3, dropout=0.4, **kwargs)
    expected = reference(torch.from_numpy(x))[0].detach().numpy()
    generator = Generator(3)
    module = getattr(torchsem.nn, kind)(4, 6, num_layers=3, dropout=0.4, **kwargs)
    variables = torch_init(module, generator, jnp.asarray(x), deterministic=True)
    with torch_dropout(generator):
        got = jax.jit(lambda v, x: module.apply(v, x, deterministic=False)[0])(variables, x)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
