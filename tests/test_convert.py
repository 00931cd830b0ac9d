"""torchsem.convert: PyTorch state_dict <-> Flax variables.

The ``net`` scenario family (test_parity_catalogue.py) checks the round trip's keys, order,
dtypes and values and the strict-mode error text against the live or recorded oracle. Here:
live round trips from torch tensors, the numpy path without torch, and every error.
"""

from __future__ import annotations

from collections import OrderedDict

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import FrozenDict, freeze

from torchsem.convert import load_torch_state_dict, to_torch_state_dict
from torchsem.models import Net
from torchsem.nn import BatchNorm1d, Linear

_KEYS = [
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "bn1.num_batches_tracked",
    "fc1.weight",
    "fc1.bias",
]


def _variables():
    return Net().init(jax.random.key(0), jnp.zeros((2, 3, 8)), train=False)


def _numpy_state(seed: int = 0) -> OrderedDict:
    rng = np.random.default_rng(seed)
    return OrderedDict(
        [
            ("bn1.weight", rng.standard_normal(3).astype(np.float32)),
            ("bn1.bias", rng.standard_normal(3).astype(np.float32)),
            ("bn1.running_mean", rng.standard_normal(3).astype(np.float32)),
            ("bn1.running_var", rng.uniform(0.5, 2, 3).astype(np.float32)),
            ("bn1.num_batches_tracked", np.array(7, np.int64)),
            ("fc1.weight", rng.standard_normal((4, 12)).astype(np.float32)),
            ("fc1.bias", rng.standard_normal(4).astype(np.float32)),
        ]
    )


def _assert_same_state(actual, expected):
    assert list(actual) == list(expected)
    for key in expected:
        a, e = np.asarray(actual[key]), np.asarray(expected[key])
        assert a.dtype == e.dtype and a.shape == e.shape, key
        np.testing.assert_array_equal(a, e, err_msg=key)


def test_numpy_round_trip_is_bit_for_bit():
    state = _numpy_state()
    _assert_same_state(to_torch_state_dict(load_torch_state_dict(_variables(), state)), state)


def test_loaded_variables_keep_their_structure_and_dtypes():
    variables = load_torch_state_dict(_variables(), _numpy_state())
    assert jax.tree.structure(variables) == jax.tree.structure(_variables())
    assert variables["batch_stats"]["bn1"]["num_batches_tracked"].dtype == jnp.int32  # JAX's int64 without x64
    assert int(variables["batch_stats"]["bn1"]["num_batches_tracked"]) == 7
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(variables))


def _torch_net():
    import torch

    class net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3)
            self.fc1 = torch.nn.Linear(12, 4)

    return net()


@pytest.mark.live_torch
def test_pytorch_to_torchsem_to_pytorch_is_bit_for_bit():
    import torch

    torch.manual_seed(0)
    model = _torch_net()
    with torch.no_grad():
        model.bn1(model.pool1(torch.randn(5, 3, 8)))  # move the running statistics and the counter
        model.bn1.weight.mul_(1.5)
    state = model.state_dict()
    variables = load_torch_state_dict(_variables(), state)  # torch tensors, read by duck typing
    back = to_torch_state_dict(variables)
    _assert_same_state(back, OrderedDict((k, v.numpy()) for k, v in state.items()))
    reloaded = _torch_net()
    reloaded.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    for key, value in state.items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    assert int(reloaded.bn1.num_batches_tracked) == 1


class _Nested(nn.Module):
    """Registration order is not alphabetical, and a parent module owns a parameter itself."""

    def setup(self) -> None:
        self.zeta = Linear(3, 2)
        self.alpha = BatchNorm1d(2)
        self.scale = self.param("scale", nn.initializers.ones, (2,))

    def __call__(self, x, train: bool = False):
        return self.alpha(self.zeta(x), use_running_average=not train) * self.scale


def _nested_variables():
    return _Nested().init(jax.random.key(0), jnp.zeros((4, 3)))


@pytest.mark.live_torch
def test_order_is_pytorchs_module_traversal():
    import torch

    class Nested(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.zeta = torch.nn.Linear(3, 2)
            self.alpha = torch.nn.BatchNorm1d(2)
            self.scale = torch.nn.Parameter(torch.ones(2))

    expected = list(Nested().state_dict())
    assert list(to_torch_state_dict(_nested_variables())) == expected
    # A JAX transform sorts the module dicts; key_order restores PyTorch's order.
    sorted_variables = jax.jit(lambda v: v)(_nested_variables())
    assert list(to_torch_state_dict(sorted_variables, key_order=expected)) == expected


def test_within_a_module_weight_comes_before_bias_and_buffers_after_params():
    sorted_variables = jax.jit(lambda v: v)(_variables())  # dict keys now sorted: bias < weight
    assert list(to_torch_state_dict(sorted_variables)) == _KEYS


def test_key_order_must_name_every_key_once():
    with pytest.raises(ValueError, match=r"missing \['fc1.bias'\], unknown \['fc9.bias'\]"):
        to_torch_state_dict(_variables(), key_order=[*_KEYS[:-1], "fc9.bias"])


def test_other_collections_are_kept_on_load_and_left_out_on_export():
    variables = {**_variables(), "intermediates": {"fc1_out": (jnp.ones(2),)}}
    loaded = load_torch_state_dict(variables, _numpy_state())
    assert loaded["intermediates"] is variables["intermediates"]
    assert list(to_torch_state_dict(loaded)) == _KEYS


def test_frozen_dict_in_frozen_dict_out():
    loaded = load_torch_state_dict(freeze(_variables()), _numpy_state())
    assert isinstance(loaded, FrozenDict)
    _assert_same_state(to_torch_state_dict(loaded), _numpy_state())


def test_strict_error_lists_missing_unexpected_and_misshaped_keys_at_once():
    state = _numpy_state()
    del state["fc1.bias"], state["bn1.running_var"]
    state["fc1.weight"] = np.zeros((4, 11), np.float32)
    state["extra"] = np.zeros(1, np.float32)
    with pytest.raises(RuntimeError) as error:
        load_torch_state_dict(_variables(), state)
    assert str(error.value) == (
        "Error(s) in loading state_dict for variables:\n"
        '\tMissing key(s) in state_dict: "bn1.running_var", "fc1.bias". \n'
        '\tUnexpected key(s) in state_dict: "extra". \n'
        "\tsize mismatch for fc1.weight: copying a param with shape torch.Size([4, 11]) from checkpoint, "
        "the shape in current model is torch.Size([4, 12])."
    )


def test_non_strict_keeps_missing_values_and_ignores_unexpected_keys():
    variables = _variables()
    state = _numpy_state()
    del state["fc1.bias"]
    state["extra"] = np.zeros(1, np.float32)
    loaded = load_torch_state_dict(variables, state, strict=False)
    np.testing.assert_array_equal(loaded["params"]["fc1"]["bias"], variables["params"]["fc1"]["bias"])
    np.testing.assert_array_equal(loaded["params"]["fc1"]["weight"], state["fc1.weight"])


def test_non_strict_still_refuses_misshaped_values():
    state = _numpy_state()
    state["bn1.weight"] = np.zeros(2, np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for bn1.weight: .*torch.Size\(\[2\]\)"):
        load_torch_state_dict(_variables(), state, strict=False)


@pytest.mark.parametrize(
    "key, value, text",
    [
        ("fc1.weight", np.zeros((4, 12), np.float64), "float64 -> float32 would round the values"),
        ("bn1.num_batches_tracked", np.array(3.0, np.float32), "float32 -> int32 changes the kind of number"),
        ("bn1.weight", np.array([1, 2, 3], np.int64), "int64 -> float32 changes the kind of number"),
        ("bn1.num_batches_tracked", np.array(2**40, np.int64), "its values do not fit in int32"),
    ],
)
def test_lossy_or_kind_changing_dtypes_are_refused(key, value, text):
    state = _numpy_state()
    state[key] = value
    with pytest.raises(RuntimeError, match=rf"dtype mismatch for {key}: .*{text}"):
        load_torch_state_dict(_variables(), state)


def test_exact_dtype_conversions_are_allowed():
    state = _numpy_state()
    state["fc1.bias"] = state["fc1.bias"].astype(np.float16)
    state["bn1.num_batches_tracked"] = np.array(3, np.int64)
    loaded = load_torch_state_dict(_variables(), state)
    assert loaded["params"]["fc1"]["bias"].dtype == jnp.float32
    np.testing.assert_array_equal(loaded["params"]["fc1"]["bias"], state["fc1.bias"].astype(np.float32))


def test_one_element_vector_loads_into_a_scalar_like_pytorch():
    state = _numpy_state()
    state["bn1.num_batches_tracked"] = np.array([9], np.int64)
    loaded = load_torch_state_dict(_variables(), state)
    assert loaded["batch_stats"]["bn1"]["num_batches_tracked"].shape == ()
    assert int(loaded["batch_stats"]["bn1"]["num_batches_tracked"]) == 9


class _StateDict(OrderedDict):
    """An OrderedDict that can carry PyTorch's ``_metadata`` attribute."""


def test_num_batches_tracked_may_be_absent_from_pre_version_2_state():
    state = _numpy_state()
    del state["bn1.num_batches_tracked"]
    variables = _variables()
    loaded = load_torch_state_dict(variables, state)  # a plain dict has no metadata: PyTorch accepts it
    assert int(loaded["batch_stats"]["bn1"]["num_batches_tracked"]) == 0
    versioned = _StateDict(state)
    versioned._metadata = {"bn1": {"version": 2}}
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bn1.num_batches_tracked"'):
        load_torch_state_dict(variables, versioned)


@pytest.mark.live_torch
def test_num_batches_tracked_rule_matches_pytorch():
    import torch

    state = {k: torch.from_numpy(v) for k, v in _numpy_state().items() if k != "bn1.num_batches_tracked"}
    torch.nn.BatchNorm1d(3).load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("bn1.")})
    load_torch_state_dict(_variables(), state)  # neither raises


def test_state_dict_must_be_a_mapping():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got <class 'list'>."):
        load_torch_state_dict(_variables(), [1, 2])


def test_variables_must_be_a_mapping():
    with pytest.raises(TypeError, match="variables must be a mapping of Flax collections"):
        to_torch_state_dict([1, 2])


def test_exported_arrays_are_writable_copies():
    variables = _variables()
    state = to_torch_state_dict(variables)
    state["fc1.weight"][0, 0] = 123.0  # torch.from_numpy needs writable arrays
    assert float(variables["params"]["fc1"]["weight"][0, 0]) != 123.0
