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


@pytest.mark.live_torch
def test_the_state_of_every_group_reads_as_pytorchs_one_state_dict():
    import torch

    names = ["fc.weight", "fc.bias", "bn.weight"]
    tparams = {
        n: torch.nn.Parameter(torch.from_numpy(np.asarray(PARAMS[n.split(".")[0]][n.split(".")[1]]).copy()))
        for n in names
    }
    topt = torch.optim.AdamW(
        [{"params": [tparams["fc.weight"]]}, {"params": [tparams["fc.bias"], tparams["bn.weight"]], "lr": 0.1}]
    )
    tx = optim.param_groups(optim.adamw, [{"params": "fc.weight"}, {"params": ["fc.bias", "bn"], "lr": 0.1}])
    state, params = tx.init(PARAMS), PARAMS
    rng = np.random.default_rng(1)
    for _ in range(3):
        grads = {
            "fc": {
                "weight": rng.standard_normal((2, 3)).astype(np.float32),
                "bias": rng.standard_normal(2).astype(np.float32),
            },
            "bn": {"weight": rng.standard_normal(2).astype(np.float32)},
        }
        for n, p in tparams.items():
            p.grad = torch.from_numpy(grads[n.split(".")[0]][n.split(".")[1]].copy())
        topt.step()
        params, state = optim.step(tx, grads, state, params)
    expected = topt.state_dict()["state"]
    got = optim.state_dict(state, order=names)
    assert sorted(got) == sorted(expected) == [0, 1, 2]
    for index, entry in expected.items():
        for key, value in entry.items():
            np.testing.assert_allclose(got[index][key], value.numpy(), rtol=1e-5, atol=1e-7)
