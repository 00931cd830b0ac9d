"""torchsem.losses.cross_entropy against torch.nn.functional.cross_entropy.

The fixed grid over every option (layouts, target kinds, weights, reductions, smoothing,
ignore_index, empty and all-ignored batches) and PyTorch's error messages is the
``cross_entropy`` scenario family (test_parity_catalogue.py, live or recorded oracle). Here:
randomised cases against live PyTorch, the documented jit behaviour for out-of-range indices,
and the checks torchsem words itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import maybe_jit
from torchsem.losses import cross_entropy


@st.composite
def _cases(draw):
    n_classes = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    batch = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))) if layout == "spatial" else ()
    shape = (n_classes,) if layout == "unbatched" else (batch, n_classes, *spatial)
    probabilities = draw(st.booleans())
    options = {
        "reduction": draw(st.sampled_from(["none", "mean", "sum"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
    }
    if not probabilities and draw(st.booleans()):
        options["ignore_index"] = draw(st.integers(0, n_classes - 1))
    weighted = draw(st.booleans())
    return shape, probabilities, options, weighted, draw(st.integers(0, 2**16))


@pytest.mark.live_torch
@settings(max_examples=40)
@given(case=_cases(), use_jit=st.booleans())
def test_random_cases_match_pytorch_loss_and_gradients(case, use_jit):
    import torch
    import torch.nn.functional as F

    shape, probabilities, options, weighted, seed = case
    rng = np.random.default_rng(seed)
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    if probabilities:
        target = rng.random(shape).astype(np.float32)
        target /= target.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    else:
        target = rng.integers(0, n_classes, () if len(shape) == 1 else (shape[0], *shape[2:]))
    weight = (rng.random(n_classes) + 0.1).astype(np.float32) if weighted else None

    x_torch = torch.from_numpy(x).requires_grad_(True)
    loss_torch = F.cross_entropy(
        x_torch, torch.from_numpy(target), None if weight is None else torch.from_numpy(weight), **options
    )
    cotangent = rng.standard_normal(tuple(loss_torch.shape)).astype(np.float32)
    (grad_torch,) = torch.autograd.grad(loss_torch, x_torch, torch.from_numpy(cotangent))

    jax_target = target if probabilities else target.astype(np.int32)
    loss_fn = lambda v: cross_entropy(v, jax_target, weight, **options)  # noqa: E731
    loss = maybe_jit(loss_fn, use_jit)(x)
    grad = maybe_jit(lambda v, c: jax.vjp(loss_fn, v)[1](c)[0], use_jit)(x, cotangent)
    assert loss.shape == tuple(loss_torch.shape)
    np.testing.assert_allclose(loss, loss_torch.detach().numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(grad, grad_torch.numpy(), rtol=1e-5, atol=1e-6)


def test_the_documents_loss_is_the_mean_negative_log_softmax(jit):
    logits = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 1.0, 0.0]], np.float32)
    loss = maybe_jit(lambda v: cross_entropy(v, jnp.array([1, 1, 1])), jit)(logits)
    expected = -np.mean(logits[:, 1] - np.log(np.exp(logits.astype(np.float64)).sum(axis=1)))
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_out_of_range_index_raises_in_eager_mode():
    with pytest.raises(IndexError, match=r"^Target 4 is out of bounds\.$"):
        cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 4]))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_out_of_range_index_under_jit_gives_nan_loss_and_nan_row_gradient(reduction):
    # Documented behaviour: under jit the targets are abstract and cannot raise; the bad element's
    # loss and its row's gradient are NaN instead of silently reading another class.
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    target = jnp.array([0, 7, 2])
    loss = np.asarray(jax.jit(lambda v, t: cross_entropy(v, t, reduction=reduction))(x, target))
    grad = np.asarray(jax.jit(jax.grad(lambda v, t: cross_entropy(v, t, reduction=reduction).sum()))(x, target))
    if reduction == "none":
        assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
    else:
        assert np.isnan(loss)
    assert np.isnan(grad[1]).all() and np.isfinite(grad[[0, 2]]).all()


def test_ignored_targets_are_not_out_of_range_under_jit():
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    loss = jax.jit(cross_entropy)(x, jnp.array([0, -100, 2]))
    assert np.isfinite(loss)


def test_negative_label_smoothing_is_refused():
    # PyTorch ignores a negative value silently (treats it as 0); torchsem refuses it.
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0. Got: -0.1"):
        cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), label_smoothing=-0.1)


@pytest.mark.parametrize(
    "make, error, text",
    [
        (lambda: cross_entropy(jnp.zeros(()), jnp.array(0)), ValueError, "input must have a class axis"),
        (
            lambda: cross_entropy(jnp.zeros((2, 3), jnp.int32), jnp.array([0, 1])),
            TypeError,
            "input \\(the logits\\) must be floating point, got int32",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3)), jnp.array([0.0, 1.0])),
            RuntimeError,
            r"got float32 \(PyTorch: expected target dtype to be Long or Byte, but got Float\)",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3)), jnp.array([True, False])),
            RuntimeError,
            r"got bool \(PyTorch: expected target dtype to be Long or Byte, but got Bool\)",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3)), jnp.array(1)),
            ValueError,
            r"^Expected input batch_size \(2\) to match target batch_size \(0\)\.$",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 3), jnp.int32)),
            TypeError,
            "Expected floating point type for target with class probabilities, got int32",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), weight=jnp.ones(3, jnp.int32)),
            TypeError,
            r"weight dtype int32 differs from input dtype float32 \(PyTorch: expected scalar type Float but found Int",
        ),
        (
            lambda: cross_entropy(jnp.zeros((2, 3), jnp.bfloat16), jnp.array([0, 1]), weight=jnp.ones(3)),
            TypeError,
            "weight dtype float32 differs from input dtype bfloat16",
        ),
    ],
)
def test_bad_arguments_are_named(make, error, text):
    with pytest.raises(error, match=text):
        make()


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8])
def test_any_integer_target_dtype_is_accepted(dtype, jit):
    # PyTorch takes int64 and uint8 only; int32 is JAX's default integer.
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    reference = cross_entropy(x, np.array([3, 0, 2], np.int32))
    loss = maybe_jit(lambda v, t: cross_entropy(v, t), jit)(x, np.array([3, 0, 2], dtype))
    np.testing.assert_array_equal(loss, reference)


@pytest.mark.live_torch
def test_weighted_mean_divides_by_the_summed_target_weights():
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    target, weight = np.array([0, 0, 2, 1]), np.array([0.2, 1.0, 3.0], np.float32)
    expected = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(target), torch.from_numpy(weight)).item()
    unreduced = cross_entropy(x, target.astype(np.int32), weight, reduction="none")
    np.testing.assert_allclose(float(unreduced.sum() / weight[target].sum()), expected, rtol=1e-6)
    np.testing.assert_allclose(cross_entropy(x, target.astype(np.int32), weight), expected, rtol=1e-6)
