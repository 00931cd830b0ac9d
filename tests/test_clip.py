"""torchsem's gradient clipping against torch.nn.utils (live), and its optax contract.

The parity grid (norm types, a None gradient, non-finite norms, the error) is the ``clip``
family of the catalogue; here: random problems against live PyTorch, the exact factor
PyTorch computes (reciprocal, then the product, the +1e-6), None handling, jit/scan, and
argument errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchsem.errors import InputError
from torchsem.optim import ClipGradNormState, clip_grad_norm, clip_grad_value

F32 = np.float32


def _torch_clip(grads, call, **options):
    import torch

    params = [torch.nn.Parameter(torch.zeros(np.shape(g) if g is not None else (2,))) for g in grads]
    for param, grad in zip(params, grads):
        param.grad = None if grad is None else torch.from_numpy(np.array(grad, F32))
    total = getattr(torch.nn.utils, call)(params, **options)
    clipped = [None if p.grad is None else p.grad.numpy() for p in params]
    return clipped, (None if total is None else total.numpy())


@pytest.mark.live_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.5, -math.inf, 0.0])
def test_clip_grad_norm_matches_pytorch(norm_type):
    rng = np.random.default_rng(int(norm_type * 10) if math.isfinite(norm_type) else 99)
    shapes = [(3,), (5, 7), (2500,), (4,)]
    grads = [rng.standard_normal(s).astype(F32) * F32(rng.uniform(0.01, 5)) for s in shapes]
    grads[3] = None
    tx_grads = [None if g is None else jnp.asarray(g) for g in grads]
    for max_norm in (1e-3, 1e4):  # clipping, and a factor clamped to 1
        expected, expected_norm = _torch_clip(grads, "clip_grad_norm_", max_norm=max_norm, norm_type=norm_type)
        tx = clip_grad_norm(max_norm, norm_type)
        clipped, state = tx.update(tx_grads, tx.init(grads))
        # The per-tensor sums are XLA's order, PyTorch's CPU kernels use their own: last bits only.
        np.testing.assert_allclose(np.asarray(state.total_norm), expected_norm, rtol=1e-5)
        for got, want in zip(clipped, expected):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)


@pytest.mark.live_torch
@pytest.mark.parametrize("norm_type", [math.inf, 1.0, 2.0])
def test_clip_factor_is_pytorchs_bit_for_bit(norm_type):
    """With norms that are exact in any summation order, the clipped gradients are PyTorch's bits."""
    grads = [np.array([3.0, -4.0, 0.5], F32), np.array([[0.25, -1.5], [2.0, 0.0]], F32)]  # sums exact in float32
    for max_norm in (0.1, 2.999999, 4.9999995, 1e6):
        expected, expected_norm = _torch_clip(grads, "clip_grad_norm_", max_norm=max_norm, norm_type=norm_type)
        tx = clip_grad_norm(max_norm, norm_type)
        update = jax.jit(tx.update) if max_norm == 0.1 else tx.update
        clipped, state = update([jnp.asarray(g) for g in grads], tx.init(grads))
        assert np.asarray(state.total_norm) == expected_norm
        for got, want in zip(clipped, expected):
            np.testing.assert_array_equal(np.asarray(got), want)


def test_the_factor_has_pytorchs_epsilon():
    """A norm just under max_norm is still scaled (by max_norm / (norm + 1e-6)); optax's is not."""
    g = {"w": jnp.array([0.6, 0.8], jnp.float32) * F32(0.9999995)}  # norm 0.9999995
    tx = clip_grad_norm(1.0)
    clipped, state = tx.update(g, tx.init(g))
    factor = F32(1) / (state.total_norm + F32(1e-6)) * F32(1.0)
    assert factor < 1
    np.testing.assert_array_equal(np.asarray(clipped["w"]), np.asarray(g["w"] * factor))
    plain, _ = optax.clip_by_global_norm(1.0).update(g, optax.clip_by_global_norm(1.0).init(g))
    np.testing.assert_array_equal(np.asarray(plain["w"]), np.asarray(g["w"]))


def test_none_gradients_and_empty_trees():
    grads = {"a": jnp.ones(3), "b": None, "c": {"d": jnp.full((2,), 4.0)}}
    tx = clip_grad_norm(1.0)
    clipped, state = tx.update(grads, tx.init({"a": jnp.ones(3), "b": jnp.ones(1), "c": {"d": jnp.ones(2)}}))
    assert clipped["b"] is None
    assert float(state.total_norm) == pytest.approx(math.sqrt(3.0 + 32.0), rel=1e-6)  # norm of (sqrt 3, sqrt 32)
    clipped, state = tx.update({"a": None, "b": None}, state)
    assert clipped == {"a": None, "b": None} and float(state.total_norm) == 0.0
    value = clip_grad_value(0.5)
    out, empty = value.update(grads, value.init(grads))
    assert out["b"] is None and isinstance(empty, optax.EmptyState)
    np.testing.assert_array_equal(np.asarray(out["c"]["d"]), np.full(2, 0.5, F32))


def test_state_keeps_its_dtype_under_scan():
    params = {"w": jnp.zeros((3,), jnp.float32)}
    tx = clip_grad_norm(0.5)
    state = tx.init(params)
    assert isinstance(state, ClipGradNormState) and state.total_norm.dtype == jnp.float32

    def body(state, g):
        clipped, state = tx.update({"w": g}, state)
        return state, (clipped["w"], state.total_norm)

    grads = jnp.arange(12.0, dtype=jnp.float32).reshape(4, 3)
    _, (clipped, norms) = jax.lax.scan(body, state, grads)
    np.testing.assert_allclose(np.asarray(norms), np.linalg.norm(np.asarray(grads), axis=1), rtol=1e-6)
    assert np.all(np.linalg.norm(np.asarray(clipped), axis=1) <= 0.5)


def test_nonfinite_error_eager_and_jit():
    message = (
        "The total norm of order 2.0 for gradients from `parameters` is non-finite, so it cannot be clipped. "
        "To disable this error and scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
    )
    grads = [jnp.array([1.0, jnp.inf]), jnp.ones(2)]
    tx = clip_grad_norm(1.0, error_if_nonfinite=True)
    with pytest.raises(InputError) as caught:
        tx.update(grads, tx.init(grads))
    assert str(caught.value) == message and isinstance(caught.value, RuntimeError)
    jitted = jax.jit(tx.update)
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jax.block_until_ready(jitted(grads, tx.init(grads)))
    fine = [jnp.ones(2), jnp.ones(2)]
    clipped, _ = jitted(fine, tx.init(fine))
    np.testing.assert_allclose(np.asarray(clipped[0]), np.full(2, 0.5 / (1 + 5e-7), F32), rtol=1e-6)
    unchecked = clip_grad_norm(1.0)
    clipped, state = unchecked.update(grads, unchecked.init(grads))
    assert math.isinf(float(state.total_norm))
    np.testing.assert_array_equal(np.asarray(clipped[0]), np.array([0.0, np.nan], F32))  # 0 * inf


@pytest.mark.live_torch
@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 1), clip_value=st.sampled_from([0.1, 0.3, 1.0, -0.2, 0.0]))
def test_clip_grad_value_matches_pytorch_bit_for_bit(seed, clip_value):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(7).astype(F32), None, rng.standard_normal((3, 50)).astype(F32)]
    grads[0][2] = np.nan
    grads[2][0, 0] = -0.0
    expected, _ = _torch_clip(grads, "clip_grad_value_", clip_value=clip_value)
    tx = clip_grad_value(clip_value)
    clipped, _ = jax.jit(tx.update)([None if g is None else jnp.asarray(g) for g in grads], tx.init(grads))
    for got, want in zip(clipped, expected):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_array_equal(np.asarray(got), want)
            np.testing.assert_array_equal(np.signbit(np.asarray(got)), np.signbit(want))


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: clip_grad_norm("abc"), ValueError, "could not convert string to float: 'abc'"),
        (lambda: clip_grad_norm(1.0, norm_type="fro"), ValueError, "could not convert string to float: 'fro'"),
        (lambda: clip_grad_norm(True), TypeError, "max_norm must be a real number"),
        (lambda: clip_grad_norm(1.0, norm_type=None), TypeError, "norm_type must be a real number"),
        (lambda: clip_grad_norm(1.0, error_if_nonfinite=1), TypeError, "error_if_nonfinite must be a bool"),
        (lambda: clip_grad_value([0.1]), TypeError, "clip_value must be a real number"),
    ],
)
def test_argument_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_integer_gradients_are_rejected():
    for tx in (clip_grad_norm(1.0), clip_grad_value(1.0)):
        with pytest.raises(TypeError, match="floating-point gradients"):
            tx.update([jnp.ones(3, jnp.int32)], tx.init([jnp.ones(3)]))
    inf_norm = clip_grad_norm(1.0, norm_type="inf")  # PyTorch's documented spelling
    grads = [jnp.array([-3.0, 2.0])]
    assert float(inf_norm.update(grads, inf_norm.init(grads))[1].total_norm) == 3.0
