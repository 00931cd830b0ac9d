"""torchsem.losses' nll/mse/l1/smooth L1/Huber/BCE/KL and the torchsem.nn loss modules.

The fixed grid against PyTorch (every reduction, weights, ignore_index, K-d and unbatched
shapes, broadcasting, the BCE clamp, logits of ±100, NaN, 0-d and empty inputs, PyTorch's
error messages) is the ``losses_more`` scenario family (test_parity_catalogue.py, live or
recorded oracle). Here: randomised elementwise cases against live PyTorch, the loss modules
against their functional forms (unbound, bound to their buffers, jitted) and their
``state_dict`` against PyTorch's, the documented jit behaviour for values that cannot be
checked while tracing, and the checks torchsem words itself.
"""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import maybe_jit
from torchsem import losses
from torchsem.convert import load_torch_state_dict, to_torch_state_dict
from torchsem.nn import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)

_RNG = np.random.default_rng(2024)
_LOGITS = _RNG.standard_normal((4, 5)).astype(np.float32)
_LOG_PROBS = np.asarray(jax.nn.log_softmax(_LOGITS, axis=1))
_CLASSES = np.array([1, 4, -100, 0], np.int32)
_CLASSES_IGNORING_4 = np.array([1, 4, 2, 0], np.int32)
_CLASS_WEIGHT = np.array([0.5, 1.0, 1.5, 2.0, 0.25], np.float32)
_VALUES = _RNG.standard_normal((4, 5)).astype(np.float32)
_PROBS = _RNG.random((4, 5)).astype(np.float32)
_LABELS = (_RNG.random((4, 5)) > 0.5).astype(np.float32)
_ROW = (_RNG.random(5) + 0.5).astype(np.float32)

# (module, its functional form with the same arguments, input, target)
_MODULES = [
    (
        CrossEntropyLoss(weight=_CLASS_WEIGHT, label_smoothing=0.1),
        lambda x, t: losses.cross_entropy(x, t, weight=_CLASS_WEIGHT, label_smoothing=0.1),
        _LOGITS,
        _CLASSES,
    ),
    (
        NLLLoss(_CLASS_WEIGHT, None, 4, None, "sum"),
        lambda x, t: losses.nll_loss(x, t, _CLASS_WEIGHT, ignore_index=4, reduction="sum"),
        _LOG_PROBS,
        _CLASSES_IGNORING_4,
    ),
    (MSELoss(reduction="none"), lambda x, t: losses.mse_loss(x, t, reduction="none"), _LOGITS, _VALUES),
    (L1Loss(), losses.l1_loss, _LOGITS, _VALUES),
    (SmoothL1Loss(beta=0.5), lambda x, t: losses.smooth_l1_loss(x, t, beta=0.5), _LOGITS, _VALUES),
    (HuberLoss("sum", 2.0), lambda x, t: losses.huber_loss(x, t, "sum", 2.0), _LOGITS, _VALUES),
    (BCELoss(weight=_ROW), lambda x, t: losses.binary_cross_entropy(x, t, weight=_ROW), _PROBS, _LABELS),
    (
        BCEWithLogitsLoss(weight=_ROW, pos_weight=2 * _ROW),
        lambda x, t: losses.binary_cross_entropy_with_logits(x, t, weight=_ROW, pos_weight=2 * _ROW),
        _LOGITS,
        _LABELS,
    ),
    (
        KLDivLoss(reduction="batchmean", log_target=True),
        lambda x, t: losses.kl_div(x, t, reduction="batchmean", log_target=True),
        _LOG_PROBS,
        _LOG_PROBS[::-1].copy(),
    ),
]


@pytest.mark.parametrize("case", _MODULES, ids=[type(m).__name__ for m, *_ in _MODULES])
def test_module_is_its_functional_form_unbound_bound_and_jitted(case, jit):
    module, functional, x, target = case
    expected = functional(x, target)
    np.testing.assert_array_equal(module(x, target), expected)
    variables = module.init(jax.random.key(0), x, target)
    # Eagerly the same operations run, bit for bit; XLA's fusion under jit may move the last bit.
    same = np.testing.assert_allclose if jit else np.testing.assert_array_equal
    tolerance = {"rtol": 1e-6, "atol": 1e-7} if jit else {}
    same(maybe_jit(lambda v, a, b: module.apply(v, a, b), jit)(variables, x, target), expected, **tolerance)
    grad = maybe_jit(jax.grad(lambda a: module.apply(variables, a, target).sum()), jit)(x)
    same(grad, jax.grad(lambda a: functional(a, target).sum())(x), **tolerance)


def test_weights_are_buffers_named_as_in_pytorchs_state_dict():
    class Model(nn.Module):
        @nn.compact
        def __call__(self, x, target):
            return BCEWithLogitsLoss(weight=_ROW, pos_weight=2 * _ROW, name="criterion")(x, target)

    variables = Model().init(jax.random.key(0), _LOGITS, _LABELS)
    state = to_torch_state_dict(variables)
    assert list(state) == ["criterion.weight", "criterion.pos_weight"]
    np.testing.assert_array_equal(state["criterion.pos_weight"], 2 * _ROW)
    # The buffer, not the constructor's array, is what the loss uses: load other values, get their loss.
    ones = {"criterion.weight": np.ones(5, np.float32), "criterion.pos_weight": np.ones(5, np.float32)}
    loaded = load_torch_state_dict(variables, ones)
    np.testing.assert_allclose(
        Model().apply(loaded, _LOGITS, _LABELS), losses.binary_cross_entropy_with_logits(_LOGITS, _LABELS), rtol=1e-6
    )


@pytest.mark.live_torch
def test_state_dict_keys_match_pytorchs_modules():
    import torch

    weight = torch.from_numpy(_ROW)
    for torch_module, module, x, target in [
        (torch.nn.CrossEntropyLoss(weight=weight), CrossEntropyLoss(weight=_ROW), _LOGITS, _CLASSES),
        (torch.nn.NLLLoss(), NLLLoss(), _LOG_PROBS, _CLASSES),
        (torch.nn.BCELoss(weight=weight), BCELoss(weight=_ROW), _PROBS, _LABELS),
        (torch.nn.BCEWithLogitsLoss(pos_weight=weight), BCEWithLogitsLoss(pos_weight=_ROW), _LOGITS, _LABELS),
        (torch.nn.MSELoss(), MSELoss(), _LOGITS, _VALUES),
    ]:
        state = to_torch_state_dict(module.init(jax.random.key(0), x, target))
        assert list(state) == list(torch_module.state_dict()), type(module).__name__


def test_applied_without_its_buffers_a_module_uses_the_constructors_weight():
    module = CrossEntropyLoss(weight=_CLASS_WEIGHT)
    np.testing.assert_array_equal(module.apply({}, _LOGITS, _CLASSES), module(_LOGITS, _CLASSES))


def test_the_buffer_is_a_copy_of_the_constructors_array():
    weight = _CLASS_WEIGHT.copy()
    module = NLLLoss(weight=weight)
    variables = module.init(jax.random.key(0), _LOG_PROBS, _CLASSES)
    before = module.apply(variables, _LOG_PROBS, _CLASSES)
    weight[:] = 100.0  # the caller's memory changes; the module's state does not
    np.testing.assert_array_equal(module.apply(variables, _LOG_PROBS, _CLASSES), before)


_ELEMENTWISE = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "bce", "bce_logits", "kl_div"]


@st.composite
def _elementwise_cases(draw):
    loss = draw(st.sampled_from(_ELEMENTWISE))
    # Few shapes, so that eager JAX reuses its compiled operations from one example to the next.
    shape = draw(st.sampled_from([(), (5,), (4, 5), (2, 3, 5)]))
    reductions = ["none", "mean", "sum"] + (["batchmean"] if loss == "kl_div" else [])
    options = {"reduction": draw(st.sampled_from(reductions))}
    if loss == "smooth_l1_loss":
        options["beta"] = draw(st.sampled_from([0.0, 0.25, 1.0, 3.0]))
    if loss == "huber_loss":
        options["delta"] = draw(st.sampled_from([0.25, 1.0, 3.0]))
    if loss == "kl_div":
        options["log_target"] = draw(st.booleans())
    weighted = loss in ("mse_loss", "l1_loss", "huber_loss", "bce", "bce_logits") and draw(st.booleans())
    pos_weighted = loss == "bce_logits" and draw(st.booleans())
    return loss, shape, options, weighted, pos_weighted, draw(st.integers(0, 2**16))


@pytest.mark.live_torch
@settings(max_examples=15)
@given(case=_elementwise_cases())
def test_random_elementwise_cases_match_pytorch_loss_and_gradients(case):
    import torch
    import torch.nn.functional as F

    loss, shape, options, weighted, pos_weighted, seed = case
    rng = np.random.default_rng(seed)
    x = np.asarray(2 * rng.standard_normal(shape), np.float32)
    target = np.asarray(rng.standard_normal(shape), np.float32)
    name = {"bce": "binary_cross_entropy", "bce_logits": "binary_cross_entropy_with_logits"}.get(loss, loss)
    if loss == "bce":
        x = np.asarray(rng.random(shape), np.float32)
    if loss in ("bce", "bce_logits", "kl_div"):
        target = np.asarray(rng.random(shape), np.float32)
    extra = {}
    if weighted:
        extra["weight"] = np.asarray(rng.random(shape) + 0.1, np.float32)
    if pos_weighted:
        extra["pos_weight"] = np.asarray(3 * rng.random(shape[-1:]), np.float32)

    tx, tt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(target).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's kl_div 'mean' warning
        expected = getattr(F, name)(tx, tt, **{k: torch.from_numpy(v) for k, v in extra.items()}, **options)
    cotangent = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
    torch_grads = torch.autograd.grad(expected, [tx, tt], torch.from_numpy(cotangent))

    actual, pullback = jax.vjp(lambda a, b: getattr(losses, name)(a, b, **extra, **options), x, target)
    grads = pullback(jnp.asarray(cotangent))
    np.testing.assert_allclose(actual, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    for grad, torch_grad in zip(grads, torch_grads):
        np.testing.assert_allclose(grad, torch_grad.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize(
    ("size_average", "reduce", "equivalent"),
    [(False, None, "sum"), (None, False, "none"), (True, True, "mean"), (False, False, "none")],
)
def test_deprecated_size_average_and_reduce_are_refused_with_the_reduction_they_mean(size_average, reduce, equivalent):
    text = f"pass reduction='{equivalent}' instead"
    with pytest.raises(ValueError, match=text):
        losses.mse_loss(_VALUES, _VALUES, size_average, reduce)
    with pytest.raises(ValueError, match=text):
        losses.nll_loss(_LOG_PROBS, _CLASSES, None, size_average, -100, reduce)
    with pytest.raises(ValueError, match=f"NLLLoss: .*{text}"):
        NLLLoss(size_average=size_average, reduce=reduce)


def test_elementwise_mean_is_refused_rather_than_converted():
    # PyTorch takes the deprecated spelling with a warning.
    with pytest.raises(ValueError, match="deprecated spelling of 'mean'"):
        losses.l1_loss(_VALUES, _VALUES, reduction="elementwise_mean")


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda: losses.mse_loss(_VALUES, _VALUES.astype(jnp.bfloat16)), TypeError, "target dtype bfloat16 differs"),
        (lambda: losses.l1_loss(_VALUES, _CLASSES), TypeError, "l1_loss: target must be floating point, got int32"),
        (lambda: losses.huber_loss(_CLASSES, _CLASSES), TypeError, "huber_loss: input must be floating point"),
        (
            lambda: losses.mse_loss(_VALUES, _VALUES, weight=_VALUES.astype(jnp.bfloat16)),
            TypeError,
            "weight dtype bfloat16 differs",
        ),
        (lambda: losses.smooth_l1_loss(_VALUES, _VALUES, beta="1"), TypeError, "beta must be a real number"),
        (lambda: losses.huber_loss(_VALUES, _VALUES, delta=True), TypeError, "delta must be a real number"),
        (lambda: losses.kl_div(_LOG_PROBS, _PROBS, log_target=1), TypeError, "log_target must be a bool"),
        (lambda: losses.nll_loss(_LOG_PROBS.astype(np.int32), _CLASSES), TypeError, "input .* floating point"),
        (
            lambda: losses.nll_loss(_LOG_PROBS, _CLASSES, weight=_CLASS_WEIGHT.astype(jnp.bfloat16)),
            TypeError,
            "weight dtype bfloat16 differs from input dtype float32",
        ),
        (
            lambda: losses.binary_cross_entropy_with_logits(_LOGITS, _LABELS, pos_weight=_CLASSES),
            TypeError,
            "pos_weight must be floating point",
        ),
        (lambda: losses.nll_loss(_LOG_PROBS, _CLASSES, ignore_index=1.5), TypeError, "ignore_index must be an int"),
        (lambda: HuberLoss(delta="2"), TypeError, r"^delta must be a float or int, got: <class 'str'>$"),
    ],
)
def test_bad_arguments_are_named(make, error, text):
    with pytest.raises(error, match=text):
        make()


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_broadcast_targets_warn_as_pytorch(jitted):
    expected = (
        r"^Using a target size \(torch.Size\(\[5\]\)\) that is different to the input size "
        r"\(torch.Size\(\[4, 5\]\)\)\. This will likely lead to incorrect results due to broadcasting\. "
        r"Please ensure they have the same size\.$"
    )
    with pytest.warns(UserWarning, match=expected):
        loss = maybe_jit(lambda a, b: losses.mse_loss(a, b, reduction="none"), jitted)(_VALUES, _ROW)
    assert loss.shape == (4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.kl_div(_LOG_PROBS, _ROW)  # kl_div broadcasts silently, as in PyTorch


def test_values_that_cannot_be_checked_under_jit_give_nan():
    # Documented: under jit a class index or a probability cannot raise, its element's loss is NaN.
    unreduced = jax.jit(lambda x, t: losses.nll_loss(x, t, reduction="none"))
    nll = np.asarray(unreduced(_LOG_PROBS, jnp.array([0, 7, -100, 2])))
    assert np.isnan(nll[1]) and np.isfinite(nll[[0, 2, 3]]).all()
    assert np.isnan(jax.jit(losses.nll_loss)(_LOG_PROBS, jnp.array([0, 7, 1, 2])))
    probabilities = np.array([0.5, 1.5, -0.5, 0.25], np.float32)
    targets = np.array([0.5, 0.5, 0.5, 2.0], np.float32)
    bce = np.asarray(jax.jit(lambda p, t: losses.binary_cross_entropy(p, t, reduction="none"))(probabilities, targets))
    assert np.isfinite(bce[0]) and np.isnan(bce[1:]).all()


def test_values_are_still_checked_under_eager_grad():
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        jax.grad(lambda p: losses.binary_cross_entropy(p, _LABELS[0, :2]))(np.array([0.5, 1.5], np.float32))
    with pytest.raises(IndexError, match=r"^Target 7 is out of bounds\."):  # JAX adds a note after it
        jax.grad(lambda x: losses.nll_loss(x, jnp.array([0, 7, 1, 2])))(_LOG_PROBS)


def test_bce_gradient_is_finite_at_probabilities_0_and_1():
    # PyTorch's (x - y) / max(x (1 - x), 1e-12), where autodiff of the -100 clamp would give 0.
    probabilities, targets = np.array([0.0, 1.0, 0.0], np.float32), np.array([1.0, 0.0, 0.0], np.float32)
    grad = jax.grad(lambda p: losses.binary_cross_entropy(p, targets, reduction="sum"))(probabilities)
    np.testing.assert_allclose(grad, [-1e12, 1e12, 0.0], rtol=1e-6)
    np.testing.assert_allclose(losses.binary_cross_entropy(probabilities, targets, reduction="none"), [100, 100, 0])
