"""Host memory torchsem does not own is copied before JAX reads it.

``jnp.asarray(numpy_view)`` may defer its host copy while JAX has work queued, so an in-place
change to the source after the call returns (PyTorch's BatchNorm updating ``running_mean``,
``optimizer.step()``, a data loader reusing its buffer) would reach the "immutable" JAX array.
Each test queues real work first (the condition under which the copy is deferred), then
changes the source in place and checks the JAX side still holds the old values. Each one
fails when ``torchsem.convert.host_copy`` returns a view instead of a copy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import optim
from torchsem.convert import host_copy, load_torch_state_dict, to_jax
from torchsem.nn import BatchNorm1d, Linear
from torchsem.random import Generator, register_torch_init, torch_init

_LOADS = 20  # the corruption was seen in 200 of 200 loads; 20 makes a miss vanishingly unlikely


@pytest.fixture
def busy():
    """Queue a few large matmuls, not waited for, so that host copies are deferred."""
    big = jnp.ones((1500, 1500))
    matmul = jax.jit(lambda a: (a @ a).sum())

    def queue():
        return [matmul(big) for _ in range(3)]

    matmul(big).block_until_ready()  # compile outside the measured window
    return queue


def _bn_variables():
    return BatchNorm1d(3, momentum=0.5).init(jax.random.key(0), jnp.ones((4, 3)), use_running_average=True)


@pytest.mark.live_torch
def test_a_loaded_torch_state_dict_does_not_follow_the_tensors(busy):
    import torch

    for _ in range(_LOADS):
        pending = busy()
        module = torch.nn.BatchNorm1d(3, momentum=0.5)
        variables = load_torch_state_dict(_bn_variables(), module.state_dict())
        module(torch.randn(4, 3) + 10)  # PyTorch updates running_mean/var in place
        assert float(module.running_mean.abs().min()) > 1.0
        np.testing.assert_array_equal(np.asarray(variables["batch_stats"]["running_mean"]), np.zeros(3, np.float32))
        np.testing.assert_array_equal(np.asarray(variables["batch_stats"]["running_var"]), np.ones(3, np.float32))
        jax.block_until_ready(pending)


def test_a_loaded_numpy_state_dict_does_not_follow_the_arrays(busy):
    for _ in range(_LOADS):
        pending = busy()
        state = {
            "weight": np.ones(3, np.float32),
            "bias": np.zeros(3, np.float32),
            "running_mean": np.zeros(3, np.float32),
            "running_var": np.ones(3, np.float32),
            "num_batches_tracked": np.array(0, np.int32),
        }
        variables = load_torch_state_dict(_bn_variables(), state)
        for value in state.values():
            value += 5
        np.testing.assert_array_equal(np.asarray(variables["batch_stats"]["running_mean"]), np.zeros(3, np.float32))
        np.testing.assert_array_equal(np.asarray(variables["params"]["weight"]), np.ones(3, np.float32))
        jax.block_until_ready(pending)


def test_a_loaded_optimizer_state_does_not_follow_the_arrays(busy):
    params = {"w": jnp.ones(3)}
    tx = optim.adam(0.1)
    initial = jax.block_until_ready(tx.init(params))
    for _ in range(_LOADS):
        torch_state = {
            0: {
                "step": np.array(2.0, np.float32),
                "exp_avg": np.full(3, 0.5, np.float32),
                "exp_avg_sq": np.full(3, 0.25, np.float32),
            }
        }
        pending = busy()
        state = optim.load_state_dict(initial, torch_state)
        torch_state[0]["exp_avg"] *= 3
        torch_state[0]["exp_avg_sq"] *= 3
        loaded = optim.state_dict(state)[0]
        np.testing.assert_array_equal(loaded["exp_avg"], np.full(3, 0.5, np.float32))
        np.testing.assert_array_equal(loaded["exp_avg_sq"], np.full(3, 0.25, np.float32))
        jax.block_until_ready(pending)


class _ViewInit(Linear):
    """A Linear whose registered replay returns views of one shared buffer, with JAX work queued."""


_SHARED = np.zeros((2, 3), np.float32)
_QUEUED: list = []


def _replay_into_shared(module, own, generator):
    _SHARED[...] = generator.rand((2, 3))
    _QUEUED.append(_QUEUE[0]())  # JAX is busy when torch_init turns the replay's arrays into JAX arrays
    return {"weight": _SHARED, "bias": _SHARED[0, :2]}


_QUEUE: list = []
register_torch_init(_ViewInit, _replay_into_shared)


def test_torch_init_copies_what_a_replay_returns(busy):
    _QUEUE[:] = [busy]
    for seed in range(_LOADS):
        variables = torch_init(_ViewInit(3, 2), Generator(seed), jnp.ones((1, 3)))
        pending = _QUEUED.pop()
        expected = np.array(_SHARED, copy=True)
        _SHARED[...] = -1
        np.testing.assert_array_equal(np.asarray(variables["params"]["weight"]), expected)
        np.testing.assert_array_equal(np.asarray(variables["params"]["bias"]), expected[0, :2])
        jax.block_until_ready(pending)


def test_host_copy_owns_its_memory():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    copied = host_copy(source[:, 1])
    assert copied.flags.owndata and copied.flags.writeable
    source[:] = 0
    np.testing.assert_array_equal(copied, [1, 4])


def test_to_jax_keeps_dtype_and_jax_arrays():
    array = jnp.arange(3, dtype=jnp.int32)
    assert to_jax(array) is array
    assert to_jax(np.arange(3, dtype=np.int64), jnp.int32).dtype == jnp.int32
    assert to_jax(np.float32(2.5)).dtype == jnp.float32


@pytest.mark.live_torch
def test_host_copy_of_a_torch_tensor_is_detached_memory():
    import torch

    tensor = torch.arange(4.0, requires_grad=True)
    copied = host_copy(tensor)
    with torch.no_grad():
        tensor.add_(10)
    np.testing.assert_array_equal(copied, [0, 1, 2, 3])


def test_a_sharded_batch_does_not_follow_the_loader_buffer(busy):
    from torchsem import parallel

    mesh = parallel.data_mesh()
    rows = len(jax.devices())
    for _ in range(_LOADS):
        buffer = np.zeros((rows, 3), np.float32)  # a loader that refills one buffer per batch
        pending = busy()
        sharded = parallel.shard_batch(buffer, mesh)
        buffer += 7
        np.testing.assert_array_equal(np.asarray(sharded), np.zeros((rows, 3), np.float32))
        jax.block_until_ready(pending)
