"""``torchsem.optim.param_groups``: PyTorch's parameter-group errors and bookkeeping (stepping: the catalogue)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import optim

PARAMS = {"fc": {"weight": jnp.ones((2, 3)), "bias": jnp.ones(2)}, "bn": {"weight": jnp.ones(2)}}


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        ([], ValueError, "optimizer got an empty parameter list"),
        ({"params": "fc"}, TypeError, "groups must be a list of dicts"),
        ([{"lr": 0.1}], TypeError, "param group 0 must be a dict with a 'params' entry"),
        ([{"params": "fc", "betas": (0.9, 0.99)}], TypeError, r"sgd has no argument \['betas'\]"),
    ],
)
def test_bad_groups_are_refused_when_built(groups, error, message):
    with pytest.raises(error, match=message):
        optim.param_groups(optim.sgd, groups, lr=0.1)


def test_a_parameter_in_two_groups_is_pytorchs_error():
    tx = optim.param_groups(optim.sgd, [{"params": "fc"}, {"params": "fc.bias"}], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        tx.init(PARAMS)


def test_a_name_that_matches_nothing_lists_the_parameters():
    tx = optim.param_groups(optim.sgd, [{"params": "fc2"}], lr=0.1)
    with pytest.raises(ValueError, match="fc2"):
        tx.init(PARAMS)


def test_groups_resolve_defaults_and_leave_unlisted_parameters_alone():
    tx = optim.param_groups(optim.sgd, [{"params": "fc.weight", "weight_decay": 0.5}, {"params": "fc.bias"}], lr=0.1)
    assert [g["weight_decay"] for g in tx.param_groups] == [0.5, 0.0]
    assert all(g["lr"] == 0.1 for g in tx.param_groups)
    state = tx.init(PARAMS)
    grads = {"fc": {"weight": jnp.ones((2, 3)), "bias": None}, "bn": {"weight": jnp.ones(2)}}
    params, _ = optim.step(tx, grads, state, PARAMS)
    np.testing.assert_array_equal(params["bn"]["weight"], PARAMS["bn"]["weight"])  # in no group: never moves
    np.testing.assert_array_equal(params["fc"]["bias"], PARAMS["fc"]["bias"])  # None gradient: skipped
    np.testing.assert_allclose(params["fc"]["weight"], 1 - 0.1 * (1 + 0.5), rtol=1e-6)
