"""torchsem.nn.Dropout: PyTorch's train/eval behaviour with JAX's randomness.

The ``dropout`` scenario family (test_parity_catalogue.py) checks against the live or recorded
oracle: eval identity, p=0, p=1 (NaN for infinite inputs), the exact kept-entry scale, the kept
fraction, and PyTorch's ValueError. Here: the kept entries bit for bit under PyTorch's own mask
(live), the mask's statistics, the rng stream and the deterministic flag.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem.nn import Dropout
from torchsem.nn._dropout import _scale_kept

_P = [0.1, 0.2, 1 / 3, 0.5, 0.7, 0.9]


@pytest.mark.live_torch
@pytest.mark.parametrize("p", _P)
def test_kept_entries_equal_pytorchs_bit_for_bit_under_its_mask(p, jit):
    import torch

    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    torch.manual_seed(0)
    expected = torch.nn.functional.dropout(torch.from_numpy(x), p).numpy()
    keep = expected != 0  # x has no zeros, so the output is zero exactly where PyTorch dropped
    actual = maybe_jit(lambda v, k: _scale_kept(v, k, p), jit)(x, keep)
    np.testing.assert_array_equal(np.asarray(actual), expected)


@pytest.mark.parametrize("p", _P)
def test_mask_statistics(p, jit):
    n = 200_000
    y = maybe_jit(lambda key: Dropout(p).apply({}, jnp.ones(n), deterministic=False, rngs={"dropout": key}), jit)(
        jax.random.key(3)
    )
    kept = np.asarray(y) != 0
    # The kept fraction of n Bernoulli(1-p) draws has sd sqrt(p(1-p)/n) <= 1.1e-3; 5 sd allowed.
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # Kept entries are all the same float32 noise value 1/(1-p).
    np.testing.assert_array_equal(np.unique(np.asarray(y)[kept]), [np.float32(1) / np.float32(1 - p)])


def test_masks_are_independent_elementwise():
    y = (
        np.asarray(
            Dropout(0.5, deterministic=False).apply({}, jnp.ones((1000, 200)), rngs={"dropout": jax.random.key(0)})
        )
        != 0
    )
    # Neighbouring entries: P(both kept) = 1/4 when independent; sd of the estimate ~1e-3.
    assert abs((y[:, 1:] & y[:, :-1]).mean() - 0.25) < 6e-3
    assert abs((y[1:] & y[:-1]).mean() - 0.25) < 6e-3


def test_same_key_same_mask_other_key_other_mask(jit):
    run = maybe_jit(lambda key: Dropout(0.5, deterministic=False).apply({}, jnp.ones(256), rngs={"dropout": key}), jit)
    np.testing.assert_array_equal(run(jax.random.key(0)), run(jax.random.key(0)))
    assert not np.array_equal(run(jax.random.key(0)), run(jax.random.key(1)))


def test_explicit_rng_argument_replaces_the_stream():
    key = jax.random.key(7)
    a = Dropout(0.5, deterministic=False).apply({}, jnp.ones(64), rng=key)
    b = Dropout(0.5, deterministic=False).apply({}, jnp.ones(64), rngs={"dropout": jax.random.key(8)})
    c = Dropout(0.5, deterministic=False).apply({}, jnp.ones(64), rng=key)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_missing_rng_stream_in_training_names_it():
    with pytest.raises(
        ValueError, match=r"needs a PRNG key for the 'dropout' rng stream: pass rngs=\{'dropout': key\}"
    ):
        Dropout(0.5).apply({}, jnp.ones(4), deterministic=False)


def test_custom_rng_collection_is_named_in_the_error_and_used():
    with pytest.raises(ValueError, match="'noise' rng stream"):
        Dropout(0.5, False, rng_collection="noise").apply({}, jnp.ones(4), rngs={"dropout": jax.random.key(0)})
    Dropout(0.5, False, rng_collection="noise").apply({}, jnp.ones(4), rngs={"noise": jax.random.key(0)})


@pytest.mark.parametrize(
    "field, call, eval_mode", [(False, None, False), (True, None, True), (None, False, False), (None, True, True)]
)
def test_the_mode_is_given_once_field_or_call(field, call, eval_mode, jit):
    x = jnp.arange(1, 65, dtype=jnp.float32)
    y = maybe_jit(
        lambda v: Dropout(0.5, deterministic=field).apply(
            {}, v, deterministic=call, rngs={"dropout": jax.random.key(0)}
        ),
        jit,
    )(x)
    assert np.array_equal(y, x) == eval_mode


@pytest.mark.parametrize("field, call", [(False, True), (True, False), (True, True)])
def test_giving_the_mode_twice_is_an_error_as_flax_merge_param(field, call):
    with pytest.raises(
        ValueError,
        match=r'Dropout: Parameter "deterministic" was passed to the constructor and at '
        r"call time\. Should be passed just once\. \(True: PyTorch's eval\(\)",
    ):
        Dropout(0.5, deterministic=field).apply(
            {}, jnp.ones(4), deterministic=call, rngs={"dropout": jax.random.key(0)}
        )


def test_the_mode_has_no_silent_default_like_batchnorm():
    """PyTorch modules start in train(); a Flax layer that silently trains where eval was meant is a bug."""
    assert Dropout().deterministic is None and Dropout().p == 0.5
    with pytest.raises(
        ValueError,
        match=r'Dropout: Parameter "deterministic" must be passed to the constructor or '
        r"at call time",
    ):
        Dropout(0.5).apply({}, jnp.ones(4), rngs={"dropout": jax.random.key(0)})


def test_eval_and_p0_return_the_input_without_an_rng():
    x = jnp.arange(5.0)
    assert Dropout(0.5).apply({}, x, deterministic=True) is x
    assert Dropout(0.0).apply({}, x, deterministic=False) is x


def test_empty_input_needs_no_rng():
    assert Dropout(0.5).apply({}, jnp.zeros((0, 3)), deterministic=False).shape == (0, 3)


@pytest.mark.parametrize("p", [1.5, -0.1, 2])
def test_probability_outside_unit_interval_raises_pytorchs_error(p):
    with pytest.raises(ValueError, match=rf"^dropout probability has to be between 0 and 1, but got {p}$"):
        Dropout(p)


def test_non_numeric_probability_is_refused():
    with pytest.raises(TypeError, match="must be a real number"):
        Dropout("0.5")


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="must be floating point, got int32"):
        Dropout(0.5).apply({}, jnp.ones(3, jnp.int32), deterministic=True)


def test_gradient_is_the_mask_times_the_scale(jit):
    key = jax.random.key(5)

    def f(v):
        return Dropout(0.25).apply({}, v, deterministic=False, rngs={"dropout": key})

    x = jnp.linspace(1.0, 2.0, 128)
    y = f(x)
    grad = maybe_jit(jax.grad(lambda v: f(v).sum()), jit)(x)
    scale = np.float32(1) / np.float32(0.75)
    np.testing.assert_array_equal(np.asarray(grad), np.where(np.asarray(y) != 0, scale, np.float32(0)))
