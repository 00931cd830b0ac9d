"""``torchsem.optim.state_dict`` / ``load_state_dict`` with ``tx=``: PyTorch's whole ``optimizer.state_dict()``.

Live: round trips both ways with PyTorch (SGD with momentum, Adam, AdamW; two or three groups:
no weight decay on biases and norms, a learning rate per block), the dict torchsem writes
against the one PyTorch writes, and the table of PyTorch's defaults. Without torch: the
catalogue's ``param_groups`` scenarios (recorded), and torchsem's own checks here.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import optim
from torchsem.optim._param_groups import TORCH_DEFAULTS
from torchsem.tree import unflatten_mapping

# In PyTorch's order (the order a model's named_parameters() would list them).
SHAPES = {
    "embed.weight": (5, 3),
    "block1.weight": (4, 3),
    "block1.bias": (4,),
    "norm.weight": (4,),
    "norm.bias": (4,),
    "head.weight": (2, 4),
    "head.bias": (2,),
}
ORDER = list(SHAPES)
TEMPLATE = {
    "block1": {"bias": 0, "weight": 0},
    "embed": {"weight": 0},
    "head": {"bias": 0, "weight": 0},
    "norm": {"bias": 0, "weight": 0},
}


def _tree(flat):
    return unflatten_mapping(TEMPLATE, {n: jnp.asarray(v) for n, v in flat.items()})


def _flat(tree):
    return {n: np.asarray(tree[n.split(".")[0]][n.split(".")[1]]) for n in ORDER}


def _decayed(name):
    return len(SHAPES[name]) > 1


# (case, torch class, torchsem factory, [(torch member names, torchsem selector, overrides)], defaults)
CASES = [
    (
        "sgd-momentum-no-decay-on-biases-and-norms",
        "SGD",
        optim.sgd,
        [
            ([n for n in ORDER if _decayed(n)], lambda n, p: p.ndim > 1, {"weight_decay": 5e-4}),
            ([n for n in ORDER if not _decayed(n)], lambda n, p: p.ndim <= 1, {}),
        ],
        {"lr": 0.1, "momentum": 0.9},
    ),
    (
        "adam-per-block-lr-three-groups",
        "Adam",
        optim.adam,
        [
            (["embed.weight"], "embed", {"lr": 1e-3}),
            (["block1.weight", "block1.bias"], "block1", {"lr": 3e-3, "betas": (0.8, 0.99)}),
            (["norm.weight", "norm.bias", "head.weight", "head.bias"], ["norm", "head"], {"amsgrad": True}),
        ],
        {"lr": 1e-2, "weight_decay": 1e-4},
    ),
    (
        "adamw-no-decay-on-biases-and-norms",
        "AdamW",
        optim.adamw,
        [
            ([n for n in ORDER if _decayed(n)], lambda n, p: p.ndim > 1, {}),
            ([n for n in ORDER if not _decayed(n)], lambda n, p: p.ndim <= 1, {"weight_decay": 0.0}),
        ],
        {"lr": 1e-2, "weight_decay": 0.1},
    ),
]


def _rng_inputs(seed):
    rng = np.random.default_rng(seed)
    init = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [{n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()} for _ in range(6)]
    return init, grads


def _torchsem_tx(factory, groups, defaults):
    return optim.param_groups(factory, [{"params": sel, **over} for _, sel, over in groups], **defaults)


class _TorchRun:
    def __init__(self, torch_class, groups, defaults, values):
        import torch

        self.torch = torch
        self.params = {n: torch.nn.Parameter(torch.from_numpy(np.array(values[n]))) for n in ORDER}
        cls = getattr(torch.optim, torch_class)
        self.optimizer = cls(
            [{"params": [self.params[n] for n in names], **over} for names, _, over in groups], **defaults
        )

    def step(self, grads):
        for name, p in self.params.items():
            p.grad = self.torch.from_numpy(grads[name].copy())
        self.optimizer.step()

    def values(self):
        return {n: p.detach().numpy().copy() for n, p in self.params.items()}


def _assert_same_state_dict(got, expected):
    """Structure, keys and key order, values and types of the groups; every buffer at float32 tolerance."""
    assert list(got) == list(expected) == ["state", "param_groups"]
    assert len(got["param_groups"]) == len(expected["param_groups"])
    for ours, theirs in zip(got["param_groups"], expected["param_groups"]):
        assert list(ours) == list(theirs)
        for key in theirs:
            assert ours[key] == theirs[key], key
            assert type(ours[key]) is type(theirs[key]), key
    assert list(got["state"]) == list(expected["state"])
    for index, entry in expected["state"].items():
        assert list(got["state"][index]) == list(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(got["state"][index][key], value.numpy(), rtol=1e-5, atol=1e-6)


def _assert_close(got, expected):
    for name in ORDER:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.live_torch
@pytest.mark.parametrize(("case", "torch_class", "factory", "groups", "defaults"), CASES, ids=[c[0] for c in CASES])
def test_state_dict_is_pytorchs_and_loads_both_ways(case, torch_class, factory, groups, defaults):
    import torch

    init, grads = _rng_inputs(7)
    reference = _TorchRun(torch_class, groups, defaults, init)
    tx = _torchsem_tx(factory, groups, defaults)
    params = _tree(init)
    state = tx.init(params)
    for g in grads[:3]:
        reference.step(g)
        params, state = optim.step(tx, _tree(g), state, params)

    # torchsem's whole state_dict is PyTorch's.
    ours = optim.state_dict(state, ORDER, tx=tx)
    _assert_same_state_dict(ours, reference.optimizer.state_dict())

    # PyTorch's -> torchsem (tensors), then both continue.
    loaded = optim.load_state_dict(tx.init(params), reference.optimizer.state_dict(), ORDER, tx=tx)
    from_torch = (params, loaded)
    # torchsem's -> PyTorch (a fresh optimizer on torchsem's parameters), then both continue.
    into_torch = _TorchRun(torch_class, groups, defaults, _flat(params))
    into_torch.optimizer.load_state_dict(
        {
            "state": {i: {k: torch.from_numpy(np.array(v)) for k, v in e.items()} for i, e in ours["state"].items()},
            "param_groups": ours["param_groups"],
        }
    )
    for g in grads[3:]:
        reference.step(g)
        into_torch.step(g)
        from_torch = optim.step(tx, _tree(g), from_torch[1], from_torch[0])
    _assert_close(_flat(from_torch[0]), reference.values())
    _assert_close(into_torch.values(), reference.values())
    _assert_same_state_dict(optim.state_dict(from_torch[1], ORDER, tx=tx), reference.optimizer.state_dict())


@pytest.mark.live_torch
@pytest.mark.parametrize("torch_class", sorted(TORCH_DEFAULTS))
def test_the_defaults_table_is_pytorchs(torch_class):
    import inspect

    import torch

    defaults = getattr(torch.optim, torch_class)([torch.nn.Parameter(torch.zeros(2))]).defaults
    assert [(k, v, type(v)) for k, v in defaults.items()] == [(k, v, type(v)) for k, v in TORCH_DEFAULTS[torch_class]]
    factory = {v: k for k, v in _CLASS_OF.items()}[torch_class]
    assert set(inspect.signature(factory).parameters) <= set(defaults)


_CLASS_OF = {
    optim.sgd: "SGD",
    optim.adam: "Adam",
    optim.adamw: "AdamW",
    optim.rmsprop: "RMSprop",
    optim.adagrad: "Adagrad",
    optim.adadelta: "Adadelta",
    optim.adamax: "Adamax",
    optim.nadam: "NAdam",
    optim.radam: "RAdam",
}


@pytest.mark.live_torch
def test_a_pytorch_dict_with_indices_of_its_own_loads_by_position():
    """PyTorch maps a loaded group's k-th index to the group's k-th parameter, whatever the numbers."""
    init, grads = _rng_inputs(3)
    _, _, factory, groups, defaults = CASES[2]
    reference = _TorchRun("AdamW", groups, defaults, init)
    for g in grads[:2]:
        reference.step(g)
    saved = reference.optimizer.state_dict()
    renumber = {old: 100 + 7 * old for old in range(len(ORDER))}
    shifted = {
        "state": {renumber[i]: e for i, e in saved["state"].items()},
        "param_groups": [{**g, "params": [renumber[i] for i in g["params"]]} for g in saved["param_groups"]],
    }
    tx = _torchsem_tx(factory, groups, defaults)
    params = _tree(init)
    state = optim.load_state_dict(tx.init(params), shifted, ORDER, tx=tx)
    _assert_same_state_dict(optim.state_dict(state, ORDER, tx=tx), saved)


# ---------------------------------------------------------------- without torch


def _two_group_adamw(**second):
    return optim.param_groups(
        optim.adamw, [{"params": lambda n, p: p.ndim > 1}, {"params": lambda n, p: p.ndim <= 1, **second}], lr=1e-2
    )


def _stepped(tx, steps=2):
    init, grads = _rng_inputs(5)
    params = _tree(init)
    state = tx.init(params)
    for g in grads[:steps]:
        params, state = optim.step(tx, _tree(g), state, params)
    return params, state


def test_a_loaded_hyperparameter_that_differs_names_the_group_and_key():
    tx = _two_group_adamw(weight_decay=0.0)
    params, state = _stepped(tx)
    saved = optim.state_dict(state, ORDER, tx=tx)
    saved["param_groups"][1] = {**saved["param_groups"][1], "weight_decay": 0.05}
    with pytest.raises(ValueError, match=r"loaded param group 1 has weight_decay=0.05, .* 1 has weight_decay=0.0"):
        optim.load_state_dict(tx.init(params), saved, ORDER, tx=tx)
    saved["param_groups"][1] = {**saved["param_groups"][1], "weight_decay": 0.0, "betas": [0.9, 0.99]}
    with pytest.raises(ValueError, match=r"loaded param group 1 has betas=\[0.9, 0.99\]"):
        optim.load_state_dict(tx.init(params), saved, ORDER, tx=tx)


def test_implementation_selectors_and_a_float32_tensor_lr_are_accepted():
    tx = _two_group_adamw(weight_decay=0.0)
    params, state = _stepped(tx)
    saved = optim.state_dict(state, ORDER, tx=tx)
    saved["param_groups"] = [
        {**g, "fused": True, "foreach": False, "capturable": True, "lr": np.float32(g["lr"]) * np.ones((), np.float32)}
        for g in saved["param_groups"]
    ]
    saved["param_groups"][0]["betas"] = list(saved["param_groups"][0]["betas"])  # a list is PyTorch's too
    loaded = optim.load_state_dict(tx.init(params), saved, ORDER, tx=tx)
    again = optim.state_dict(loaded, ORDER, tx=tx)
    for index, entry in saved["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(again["state"][index][key], value)


def test_state_of_an_index_no_group_lists_is_refused():
    tx = _two_group_adamw(weight_decay=0.0)
    params, state = _stepped(tx)
    saved = optim.state_dict(state, ORDER, tx=tx)
    saved["state"][99] = saved["state"][0]
    with pytest.raises(ValueError, match="loaded state for parameter 99, which no loaded param group lists"):
        optim.load_state_dict(tx.init(params), saved, ORDER, tx=tx)


def test_the_whole_dict_needs_a_param_groups_transformation():
    tx = optim.adamw(lr=1e-2)
    params = _tree(_rng_inputs(1)[0])
    state = tx.init(params)
    with pytest.raises(TypeError, match="tx must be built by torchsem.optim.param_groups"):
        optim.state_dict(state, ORDER, tx=tx)
    whole = optim.state_dict(state, ORDER, tx=optim.param_groups(optim.adamw, lr=1e-2))
    with pytest.raises(TypeError, match="needs tx="):
        optim.load_state_dict(state, whole, ORDER)


def test_one_group_of_every_parameter_is_the_plain_optimizer():
    params, state = _stepped(optim.param_groups(optim.sgd, lr=0.1, momentum=0.9), steps=3)
    plain_params, plain_state = _stepped(optim.sgd(lr=0.1, momentum=0.9), steps=3)
    for name in ORDER:
        np.testing.assert_array_equal(_flat(params)[name], _flat(plain_params)[name])
    assert optim.state_dict(state, ORDER).keys() == optim.state_dict(plain_state, ORDER).keys()
    whole = optim.state_dict(state, ORDER, tx=optim.param_groups(optim.sgd, lr=0.1, momentum=0.9))
    assert whole["param_groups"][0]["params"] == list(range(len(ORDER)))
    assert list(whole["state"]) == list(range(len(ORDER)))


def test_sgd_without_momentum_in_groups_needs_params():
    tx = optim.param_groups(optim.sgd, [{"params": "head"}, {"params": ["embed", "block1", "norm"]}], lr=0.1)
    params, state = _stepped(tx)
    with pytest.raises(ValueError, match="pass params="):
        optim.state_dict(state, ORDER, tx=tx)
    whole = optim.state_dict(state, ORDER, tx=tx, params=params)
    assert whole["state"] == {}
    # head.weight and head.bias first (group 0), then the others in ORDER.
    assert [g["params"] for g in whole["param_groups"]] == [[0, 1], [2, 3, 4, 5, 6]]
    assert optim.load_state_dict(tx.init(params), whole, ORDER, tx=tx, params=params) is not None
