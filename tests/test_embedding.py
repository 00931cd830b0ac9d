"""torchsem.nn.Embedding: PyTorch's padding_idx, max_norm state change, index checks and state_dict.

The fixed lookup/gradient cases, the max_norm sequences (two forwards with an SGD step between
them) and PyTorch's error messages are the ``embedding`` scenario family
(test_parity_catalogue.py, live or recorded oracle). Here: what happens under ``jax.jit``,
the ``params`` collection ``max_norm`` writes to, a table read twice in one call, ``state_dict``
round trips, and torchsem's own argument checks.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import convert
from torchsem.nn import Embedding
from torchsem.random import Generator, torch_init


@pytest.mark.live_torch
def test_negative_padding_idx_is_stored_normalised_as_pytorch():
    import torch

    assert Embedding(10, 3, padding_idx=-1).padding_idx == torch.nn.Embedding(10, 3, padding_idx=-1).padding_idx == 9


def test_max_norm_needs_the_params_collection_mutable():
    table = Embedding(10, 4, max_norm=1.0)
    indices = jnp.array([1, 2])
    variables = table.init(jax.random.key(0), indices)
    with pytest.raises(ValueError, match=r"mutable=\['params'\]"):
        table.apply(variables, indices)
    _, updated = table.apply(variables, indices, mutable=["params"])
    norms = np.linalg.norm(np.asarray(updated["params"]["weight"]), axis=1)
    before = np.linalg.norm(np.asarray(variables["params"]["weight"]), axis=1)
    assert np.all(norms[[1, 2]] <= 1.0) and np.array_equal(norms[3:], before[3:])  # only looked-up rows move


@pytest.mark.live_torch
def test_init_does_not_renormalise_as_pytorchs_constructor_does_not():
    import torch

    torch.manual_seed(4)
    reference = torch.nn.Embedding(10, 4, max_norm=0.5)
    variables = torch_init(Embedding(10, 4, max_norm=0.5), Generator(4), np.arange(10))
    assert np.array_equal(np.asarray(variables["params"]["weight"]), reference.weight.detach().numpy())


class _Tied(nn.Module):
    """One table read twice in a call (a tied input/output embedding reads it the same way)."""

    @nn.compact
    def __call__(self, first, second):
        table = Embedding(10, 4, max_norm=1.0)
        return table(first), table(second)


@pytest.mark.live_torch
def test_a_second_lookup_in_the_same_call_sees_the_renormalised_rows():
    import torch

    first, second = np.array([1, 5]), np.array([5, 6, 1])
    torch.manual_seed(2)
    reference = torch.nn.Embedding(10, 4, max_norm=1.0)
    expected = (reference(torch.from_numpy(first)), reference(torch.from_numpy(second)))
    model = _Tied()
    variables = torch_init(model, Generator(2), first, second)
    (a, b), updated = model.apply(variables, first, second, mutable=["params"])
    np.testing.assert_allclose(a, expected[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, expected[1].detach().numpy(), rtol=1e-5, atol=1e-6)
    weight = np.asarray(updated["params"]["Embedding_0"]["weight"])
    np.testing.assert_allclose(weight, reference.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_out_of_range_indices_raise_eagerly_and_read_nan_under_jit():
    table = Embedding(5, 3)
    variables = table.init(jax.random.key(0), jnp.array([0]))
    with pytest.raises(IndexError, match="index out of range in self"):
        table.apply(variables, jnp.array([0, 5]))

    def loss(params, indices):
        return jnp.sum(table.apply({"params": params}, indices))

    indices = jnp.array([1, 7, -1])
    out = jax.jit(table.apply)(variables, indices)
    assert np.isnan(np.asarray(out[1:])).all() and np.isfinite(np.asarray(out[0])).all()
    grad = np.asarray(jax.jit(jax.grad(loss))(variables["params"], indices)["weight"])
    expected = np.zeros((5, 3), np.float32)
    expected[1] = 1.0  # the out-of-range lookups add nothing, they do not wrap around
    np.testing.assert_array_equal(grad, expected)


def test_jit_equals_eager_with_max_norm_padding_and_frequency_scaling():
    table = Embedding(8, 3, padding_idx=2, max_norm=0.7, norm_type=3.0, scale_grad_by_freq=True)
    indices = jnp.array([[2, 3, 3], [5, 2, 0]])
    variables = table.init(jax.random.key(1), indices)

    def run(params, indices):
        def loss(p):
            y, updated = table.apply({"params": p}, indices, mutable=["params"])
            return jnp.sum(y * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape)), updated

        return jax.value_and_grad(loss, has_aux=True)(params)

    eager = run(variables["params"], indices)
    jitted = jax.jit(run)(variables["params"], indices)
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # XLA fuses the loss's sum differently
    assert not np.asarray(eager[1]["weight"][2]).any()  # the padding row gets no gradient


@pytest.mark.live_torch
def test_state_dict_round_trips_through_convert():
    import torch

    torch.manual_seed(0)
    reference = torch.nn.Embedding(6, 3, padding_idx=1)
    with torch.no_grad():
        reference.weight += 0.5
    table = Embedding(6, 3, padding_idx=1)
    indices = np.array([[0, 1], [5, 1]])
    variables = convert.load_torch_state_dict(table.init(jax.random.key(0), indices), reference.state_dict())
    np.testing.assert_array_equal(table.apply(variables, indices), reference(torch.from_numpy(indices)).detach())
    exported = convert.to_torch_state_dict(variables)
    assert list(exported) == ["weight"]
    torch.nn.Embedding(6, 3, padding_idx=1).load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()})


def test_argument_checks():
    with pytest.raises(NotImplementedError, match="sparse"):
        Embedding(4, 2, sparse=True)
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError):  # also a ValueError, for code that does not expect PyTorch's type
        Embedding(4, 2, padding_idx=-5)
    with pytest.raises(TypeError, match="max_norm"):
        Embedding(4, 2, max_norm="1")
    with pytest.raises(TypeError, match="scale_grad_by_freq"):
        Embedding(4, 2, scale_grad_by_freq=1)
