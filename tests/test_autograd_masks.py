"""requires_grad masks by PyTorch-style names and predicates, and the names themselves."""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import autograd
from torchsem.models import Net


def _variables():
    return Net().init(jax.random.key(0), jnp.zeros((3, 3, 8)))


@pytest.mark.live_torch
def test_parameter_names_are_pytorchs_named_parameters_and_buffers():
    import torch.nn as tnn

    class net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.pool1, self.bn1, self.fc1 = tnn.AvgPool1d(2), tnn.BatchNorm1d(3), tnn.Linear(12, 4)

    model = net()
    names = autograd.named_leaves(_variables())
    assert {n for n in names if not n.startswith("batch_stats.")} == {n for n, _ in model.named_parameters()}
    assert {n.removeprefix("batch_stats.") for n in names if n.startswith("batch_stats.")} == {
        n for n, _ in model.named_buffers()
    }
    for name, parameter in model.named_parameters():
        assert names[name].shape == tuple(parameter.shape)


def test_default_is_every_floating_parameter_and_no_buffer():
    mask = autograd.requires_grad_mask(_variables())
    assert jax.tree.leaves(mask["params"]) == [True] * 4
    assert jax.tree.leaves(mask["batch_stats"]) == [False] * 3


@pytest.mark.parametrize(
    "trainable, frozen, expected",
    [
        (None, "fc1.weight", {"bn1.bias", "bn1.weight", "fc1.bias"}),
        ("fc1", None, {"fc1.bias", "fc1.weight"}),
        (["fc1.weight", "bn1"], "bn1.bias", {"fc1.weight", "bn1.weight"}),
        (lambda name, leaf: leaf.ndim == 2, None, {"fc1.weight"}),
        (None, lambda name, leaf: name.endswith(".bias"), {"bn1.weight", "fc1.weight"}),
        ("batch_stats.bn1.running_mean", None, {"batch_stats.bn1.running_mean"}),
    ],
)
def test_names_prefixes_and_predicates(trainable, frozen, expected):
    mask = autograd.requires_grad_mask(_variables(), trainable=trainable, frozen=frozen)
    selected = {name for name, flag in autograd.named_leaves(mask).items() if flag}
    assert selected == expected


def test_a_params_tree_is_named_without_the_collection():
    params = _variables()["params"]
    mask = autograd.requires_grad_mask(params, frozen="fc1.weight")
    assert mask == {"bn1": {"weight": True, "bias": True}, "fc1": {"weight": False, "bias": True}}


def test_a_prefix_matches_only_at_a_dot():
    params = {"fc1": {"weight": jnp.ones(2)}, "fc10": {"weight": jnp.ones(2)}}
    mask = autograd.requires_grad_mask(params, frozen="fc1")
    assert mask == {"fc1": {"weight": False}, "fc10": {"weight": True}}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frozen": "fc2"}, r"frozen: 'fc2' matches no variable; the names are: .*bn1.bias, bn1.weight, fc1.bias"),
        ({"trainable": ["fc1", "fc1.kernel"]}, r"trainable: 'fc1.kernel' matches no variable"),
        ({"frozen": lambda name, leaf: False}, r"frozen: predicate '<lambda>' matches no variable"),
    ],
)
def test_selectors_matching_nothing_are_errors_listing_the_names(kwargs, match):
    with pytest.raises(ValueError, match=match):
        autograd.requires_grad_mask(_variables(), **kwargs)


def test_selecting_an_integer_leaf_by_name_is_pytorchs_error():
    with pytest.raises(RuntimeError, match=autograd.FLOATING_ONLY_MESSAGE):
        autograd.requires_grad_mask(_variables(), trainable="batch_stats.bn1.num_batches_tracked")
    # A prefix covering an integer leaf selects only the floating ones.
    mask = autograd.requires_grad_mask(_variables(), trainable="batch_stats")
    assert mask["batch_stats"]["bn1"] == {"num_batches_tracked": False, "running_mean": True, "running_var": True}


@pytest.mark.parametrize("selector", [3, [1.5]])
def test_bad_selectors_are_type_errors(selector):
    with pytest.raises(TypeError, match="frozen must be"):
        autograd.requires_grad_mask(_variables(), frozen=selector)


def test_frozen_dicts_keep_their_type_and_work_with_grad():
    variables = flax.core.freeze(_variables())
    mask = autograd.requires_grad_mask(variables, frozen="bn1")
    assert isinstance(mask, flax.core.FrozenDict)

    def loss(v):
        return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(v["params"]))

    grads = autograd.grad(loss, requires_grad=mask)(variables)
    assert grads["params"]["bn1"]["weight"] is None
    np.testing.assert_array_equal(grads["params"]["fc1"]["weight"], np.ones((4, 12), np.float32))


def test_named_leaves_keeps_none_gradients():
    grads = {"fc1": {"weight": None, "bias": jnp.ones(4)}}
    named = autograd.named_leaves(grads)
    assert set(named) == {"fc1.weight", "fc1.bias"} and named["fc1.weight"] is None


def test_none_to_zeros_fills_only_the_nones():
    params = {"w": jnp.ones(2), "b": jnp.ones(3)}
    filled = autograd.none_to_zeros({"w": None, "b": jnp.full(3, 2.0)}, params)
    np.testing.assert_array_equal(filled["w"], np.zeros(2, np.float32))
    np.testing.assert_array_equal(filled["b"], np.full(3, 2.0, np.float32))
    with pytest.raises(ValueError, match="same structure"):
        autograd.none_to_zeros({"w": None}, params)
