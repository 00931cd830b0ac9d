"""torchsem.optim.freeze: PyTorch's ``requires_grad=False`` for an optimizer, and optax's pitfalls.

The PyTorch side comes from the catalogue's recorded/live outputs (family ``optim``,
``optim/freeze/...``), so these run without PyTorch too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import maybe_jit
from torchsem import optim
from torchsem.compare import get

_W, _B, _X, _Y = 1.0, 0.0, 1.0, -0.5


def _grads():
    return jax.grad(lambda p: (p["w"] * _X + p["b"] - _Y) ** 2)({"w": jnp.float32(_W), "b": jnp.float32(_B)})


def test_optax_masked_moves_the_frozen_leaf_where_pytorch_and_freeze_do_not(oracle, jit):
    torch_out = oracle.outputs(get("optim/freeze/masked-pitfall"))
    assert float(torch_out["w"]) == 1.0 and torch_out["w_grad"] is None  # PyTorch: frozen, no grad
    params = {"w": jnp.float32(_W), "b": jnp.float32(_B)}
    grads = _grads()
    assert float(grads["w"]) == 3.0

    masked = optax.masked(optax.sgd(0.1), {"w": False, "b": True})
    updates, _ = maybe_jit(masked.update, jit)(grads, masked.init(params), params)
    pitfall = optax.apply_updates(params, updates)
    assert float(pitfall["w"]) == 4.0  # the raw gradient was added: 1 -> 4, uphill

    for frozen in ("w", ["w"], lambda name, leaf: name == "w"):
        tx = optim.freeze(optim.sgd(0.1), frozen=frozen)
        updates, _ = maybe_jit(tx.update, jit)(grads, tx.init(params), params)
        fixed = optax.apply_updates(params, updates)
        assert float(fixed["w"]) == float(torch_out["w"])
        np.testing.assert_allclose(float(fixed["b"]), float(torch_out["b"]), rtol=1e-6)


def test_chained_zeroing_still_feeds_adam_where_freeze_keeps_no_state(oracle, jit):
    scenario = get("optim/freeze/adam-keeps-no-state-for-frozen")
    torch_out = oracle.outputs(scenario)
    assert not torch_out["has_state0"].any()  # PyTorch: no Adam state for the frozen parameter
    inputs = scenario.make_inputs()
    params = [jnp.asarray(inputs["param0"]), jnp.asarray(inputs["param1"])]
    grads = [jnp.asarray(inputs["grads0"][0]), jnp.asarray(inputs["grads1"][0])]

    chained = optax.chain(optax.adam(0.05), optax.masked(optax.set_to_zero(), [True, False]))
    _, state = maybe_jit(chained.update, jit)(grads, chained.init(params), params)
    first_moments = optax.tree_utils.tree_get(state, "mu")
    assert np.any(np.asarray(first_moments[0]) != 0)  # the frozen gradient went into Adam's moment

    tx = optim.freeze(optim.adam(0.05), trainable=[False, True])
    new_params, state = maybe_jit(lambda g, s, p: optim.step(tx, g, s, p), jit)(grads, tx.init(params), params)
    inner = state.inner_states["trainable"].inner_state
    assert isinstance(inner.exp_avg[0], optax.MaskedNode)  # no state at all for the frozen leaf
    assert sorted(optim.state_dict(state)) == [1]
    np.testing.assert_array_equal(new_params[0], params[0])
    np.testing.assert_allclose(np.asarray(new_params[1]), torch_out["param1"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optim.state_dict(state)[1]["exp_avg"], torch_out["exp_avg1"][0], rtol=1e-6)


def test_frozen_leaves_never_move_whatever_the_inner_transformation_does(oracle, jit):
    torch_out = oracle.outputs(get("optim/freeze/masked-pitfall"))
    params = {"w": jnp.float32(_W), "b": jnp.float32(_B)}
    wild = optax.chain(optax.add_decayed_weights(5.0), optax.sgd(1.0, momentum=0.9))  # moves every leaf
    tx = optim.freeze(wild, frozen="w")
    state = tx.init(params)
    update = maybe_jit(tx.update, jit)
    for grads in (_grads(), {"w": None, "b": jnp.float32(1.0)}):
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        assert float(params["w"]) == float(torch_out["w"]) == 1.0


@pytest.fixture
def net_params():
    return {
        "bn1": {"weight": jnp.ones(3), "bias": jnp.zeros(3)},
        "fc1": {"weight": jnp.full((4, 12), 0.5), "bias": jnp.zeros(4)},
    }


@pytest.mark.parametrize(
    "spec",
    [
        dict(frozen="fc1.weight"),
        dict(frozen=["fc1.weight"]),
        dict(trainable=["bn1", "fc1.bias"]),
        dict(trainable=lambda name, leaf: name != "fc1.weight"),
        dict(trainable={"bn1": True, "fc1": {"weight": False, "bias": True}}),
    ],
    ids=["frozen-name", "frozen-list", "trainable-prefixes", "predicate", "bool-pytree-prefix"],
)
def test_selection_forms_agree(net_params, spec, jit):
    tx = optim.freeze(optim.sgd(0.1, momentum=0.9, weight_decay=0.5), **spec)
    grads = jax.tree.map(jnp.ones_like, net_params)
    new, state = maybe_jit(lambda g, s, p: optim.step(tx, g, s, p), jit)(grads, tx.init(net_params), net_params)
    np.testing.assert_array_equal(new["fc1"]["weight"], net_params["fc1"]["weight"])
    assert not np.array_equal(new["fc1"]["bias"], net_params["fc1"]["bias"])
    assert isinstance(state.inner_states["trainable"].inner_state.momentum_buffer["fc1"]["weight"], optax.MaskedNode)
    # PyTorch's numbering (named_parameters order) skips nothing: the frozen weight is index 2, without state.
    order = ["bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias"]
    assert sorted(optim.state_dict(state, order=order)) == [0, 1, 3]


def test_names_that_match_nothing_list_the_parameters(net_params):
    tx = optim.freeze(optim.sgd(0.1), frozen=["fc1.weights"])
    with pytest.raises(
        ValueError,
        match=r"frozen: 'fc1.weights' matches no variable; the names are: "
        r"bn1.bias, bn1.weight, fc1.bias, fc1.weight$",
    ):
        tx.init(net_params)
    predicate = optim.freeze(optim.sgd(0.1), trainable=lambda name, param: name.startswith("fc2"))
    with pytest.raises(ValueError, match=r"trainable: predicate '<lambda>' matches no variable"):
        predicate.init(net_params)


@pytest.mark.parametrize("spelling", ["positional", "keyword", "optax-mask"])
def test_the_positional_argument_is_the_frozen_set_as_in_optax(net_params, spelling, jit):
    """``freeze(tx, X)`` freezes X, as ``optax.transforms.freeze(mask)`` and ``X.requires_grad = False``."""
    mask = {"bn1": {"weight": False, "bias": False}, "fc1": {"weight": True, "bias": False}}
    tx = {
        "positional": lambda: optim.freeze(optim.sgd(0.1), "fc1.weight"),
        "keyword": lambda: optim.freeze(optim.sgd(0.1), frozen="fc1.weight"),
        "optax-mask": lambda: optim.freeze(optim.sgd(0.1), mask),
    }[spelling]()
    grads = jax.tree.map(jnp.ones_like, net_params)
    new, _ = maybe_jit(lambda g, s, p: optim.step(tx, g, s, p), jit)(grads, tx.init(net_params), net_params)
    np.testing.assert_array_equal(new["fc1"]["weight"], net_params["fc1"]["weight"])  # frozen: never moves
    for module, name in [("fc1", "bias"), ("bn1", "weight"), ("bn1", "bias")]:
        np.testing.assert_array_equal(new[module][name], net_params[module][name] - np.float32(0.1))
    reference = optax.transforms.freeze(mask)  # optax's meaning of the same mask: True = frozen
    optax_updates, _ = reference.update(grads, reference.init(net_params), net_params)
    np.testing.assert_array_equal(optax_updates["fc1"]["weight"], np.zeros_like(net_params["fc1"]["weight"]))


def test_freeze_argument_errors(net_params):
    with pytest.raises(ValueError, match=r"exactly one of frozen \(positional or frozen=\) or trainable="):
        optim.freeze(optim.sgd(0.1))
    with pytest.raises(ValueError, match=r"exactly one of frozen \(positional or frozen=\) or trainable="):
        optim.freeze(optim.sgd(0.1), "fc1", trainable="bn1")
    with pytest.raises(TypeError, match="takes from 1 to 2 positional arguments"):
        optim.freeze(optim.sgd(0.1), "fc1", "bn1")  # trainable is keyword-only: no silent swap
    with pytest.raises(TypeError, match="must hold Python bools"):
        optim.freeze(optim.sgd(0.1), trainable={"bn1": 1, "fc1": True}).init(net_params)
    with pytest.raises(ValueError, match="params is required"):
        tx = optim.freeze(optim.sgd(0.1), frozen="fc1")
        tx.update(net_params, tx.init(net_params))


def test_freeze_step_and_update_agree_with_none_gradients(net_params, jit):
    tx = optim.freeze(optim.adam(0.1), frozen="fc1.weight")
    grads = {"bn1": {"weight": None, "bias": jnp.ones(3)}, "fc1": {"weight": None, "bias": jnp.ones(4)}}
    state = tx.init(net_params)
    updates, state_u = maybe_jit(tx.update, jit)(grads, state, net_params)
    new, state_s = maybe_jit(lambda g, s, p: optim.step(tx, g, s, p), jit)(grads, state, net_params)
    applied = optax.apply_updates(net_params, updates)
    jax.tree.map(np.testing.assert_array_equal, applied, new)
    assert optim.state_dict(state_u).keys() == optim.state_dict(state_s).keys() == {0, 2}  # the biases
    np.testing.assert_array_equal(updates["bn1"]["weight"], np.zeros(3))
