"""Direct tests of the CNN-toolkit modules beyond the parity catalogue: naming, mode passing, channel masks."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torchsem.nn as tnn
from torchsem import convert
from torchsem.nn._padding import pad


def test_sequential_names_inside_a_compact_parent():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU(), tnn.Linear(3, 1), name="body")(x)

    variables = Net().init(jax.random.key(0), jnp.ones((1, 2)))
    assert list(convert.to_torch_state_dict(variables)) == [
        "body.0.weight",
        "body.0.bias",
        "body.2.weight",
        "body.2.bias",
    ]


def test_sequential_passes_the_mode_to_layers_that_take_it():
    seq = tnn.Sequential(tnn.Dropout(1.0), tnn.ReLU(), tnn.Dropout2d(1.0))
    x = jnp.ones((2, 3, 2, 2))
    assert np.array_equal(seq.apply({}, x, deterministic=True), x)
    assert np.array_equal(seq.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)}), x * 0)
    assert len(seq) == 3 and isinstance(seq[1], tnn.ReLU)


def test_prelu_init_keyword_and_clone():
    layer = tnn.PReLU(3, init=0.1)
    assert layer.init_value == 0.1 and layer.clone().init_value == 0.1
    params = layer.init(jax.random.key(0), jnp.ones((2, 3)))["params"]
    np.testing.assert_array_equal(params["weight"], np.full(3, 0.1, np.float32))


@pytest.mark.parametrize(
    ("module", "shape", "mask_shape"),
    [
        (tnn.Dropout1d(0.5), (4, 8, 16), (4, 8, 1)),
        (tnn.Dropout1d(0.5), (8, 16), (8, 1)),
        (tnn.Dropout2d(0.5), (4, 8, 3, 3), (4, 8, 1, 1)),
        (tnn.Dropout3d(0.5), (8, 2, 3, 3), (8, 1, 1, 1)),
    ],
)
def test_channel_dropout_zeroes_whole_channels(module, shape, mask_shape):
    x = jnp.ones(shape)
    y = np.asarray(module.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)}))
    kept = y != 0
    spatial = tuple(i for i, size in enumerate(mask_shape) if size == 1)
    channel_kept = kept.any(axis=spatial, keepdims=True)
    assert channel_kept.shape == mask_shape
    assert np.array_equal(kept, np.broadcast_to(channel_kept, shape))  # a channel is kept or dropped whole
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < kept.mean() < 1


def test_pad_reflect_matches_numpy_and_crops():
    x = np.arange(10.0, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(pad(x, (2, 3), "reflect"), np.pad(x, ((0, 0), (2, 3)), mode="reflect"))
    np.testing.assert_array_equal(pad(x, (-1, 2), "replicate"), np.pad(x, ((0, 0), (0, 2)), mode="edge")[:, 1:])
    np.testing.assert_array_equal(pad(x, (1, -2), "constant", 7.0)[:, 0], [7.0, 7.0])
