"""torchsem.tree: dotted leaf names in both orders, and selector classification."""

from __future__ import annotations

import collections
import dataclasses

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from torchsem import autograd, optim, tree


@dataclasses.dataclass
class _Pair:
    mu: object
    sigma: object


jax.tree_util.register_dataclass(_Pair, data_fields=["mu", "sigma"], meta_fields=[])


class _CustomKey:
    """A custom pytree key with several of the attributes key_name looks for."""

    def __init__(self, name):
        self.name = name
        self.idx = "idx-" + name

    def __str__(self):
        return "str-" + self.name


@jax.tree_util.register_pytree_with_keys_class
class _Custom:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def tree_flatten_with_keys(self):
        return [(_CustomKey("a"), self.a), (_CustomKey("b"), self.b)], None

    def tree_flatten(self):
        return [self.a, self.b], None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


Point = collections.namedtuple("Point", ["x", "y"])


def _net():
    # Registration order (PyTorch's): fc1 before bn1, weight before bias.
    return {"fc1": {"weight": np.ones((2, 3)), "bias": np.zeros(2)}, "bn1": {"weight": np.ones(2), "bias": np.zeros(2)}}


def test_key_name_of_every_jax_key_type():
    assert tree.key_name(jax.tree_util.DictKey("fc1")) == "fc1"
    assert tree.key_name(jax.tree_util.DictKey(3)) == "3"
    assert tree.key_name(jax.tree_util.SequenceKey(2)) == "2"
    assert tree.key_name(jax.tree_util.GetAttrKey("mu")) == "mu"
    assert tree.key_name(jax.tree_util.FlattenedIndexKey(1)) == "1"
    # Another key class: its key, idx or name attribute, the first it has; else str().
    assert tree.key_name(_CustomKey("a")) == "idx-a"
    assert tree.key_name(object.__new__(type("Bare", (), {"__str__": lambda self: "bare"}))) == "bare"


def test_path_name_joins_with_dots():
    path = (jax.tree_util.DictKey("layers"), jax.tree_util.SequenceKey(0), jax.tree_util.GetAttrKey("mu"))
    assert tree.path_name(path) == "layers.0.mu"
    assert tree.path_name(()) == ""


def test_leaf_names_are_in_tree_leaf_order():
    assert tree.leaf_names(_net()) == ["bn1.bias", "bn1.weight", "fc1.bias", "fc1.weight"]
    assert tree.leaf_names({"p": [Point(1, 2), _Pair(3, 4)]}) == ["p.0.x", "p.0.y", "p.1.mu", "p.1.sigma"]
    assert tree.leaf_names(_Custom(1, 2)) == ["idx-a", "idx-b"]
    assert tree.leaf_names(jnp.ones(3)) == [""]
    assert tree.leaf_names({}) == []


def test_leaf_names_is_leaf_keeps_none_and_masked_nodes():
    grads = {"b": None, "w": jnp.ones(2)}
    assert tree.leaf_names(grads) == ["w"]
    assert tree.leaf_names(grads, is_leaf=lambda x: x is None) == ["b", "w"]
    masked = {"b": optax.MaskedNode(), "w": jnp.ones(2)}
    assert tree.leaf_names(masked, is_leaf=lambda x: isinstance(x, optax.MaskedNode)) == ["b", "w"]


def test_flatten_named_and_back():
    params = flax.core.freeze(_net())
    flat = tree.flatten_named(params)
    assert list(flat) == ["bn1.bias", "bn1.weight", "fc1.bias", "fc1.weight"]
    assert flat["fc1.weight"] is params["fc1"]["weight"]
    rebuilt = tree.unflatten_named(params, {name: name for name in flat})
    assert isinstance(rebuilt, flax.core.FrozenDict)
    assert rebuilt["fc1"]["bias"] == "fc1.bias"
    partial = tree.unflatten_named(params, {"bn1.bias": 7})
    assert partial["bn1"]["bias"] == 7 and partial["fc1"]["weight"] is params["fc1"]["weight"]
    with pytest.raises(ValueError, match=r"no leaf is named 'fc2.weight'; the names are: bn1.bias, "):
        tree.unflatten_named(params, {"fc2.weight": 1})


def test_duplicate_dotted_names_are_errors():
    clash = {"a.b": 1, "a": {"b": 2}}
    assert tree.leaf_names(clash) == ["a.b", "a.b"]
    with pytest.raises(ValueError, match="two leaves share the dotted name 'a.b'"):
        tree.flatten_named(clash)
    with pytest.raises(ValueError, match="two leaves share the dotted name 'a.b'"):
        tree.flatten_mapping(clash)


def test_mapping_order_keeps_registration_order():
    net = _net()
    assert tree.mapping_leaves(net)[0] == (("fc1", "weight"), net["fc1"]["weight"])
    assert list(tree.flatten_mapping(net)) == ["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias"]
    # Only mappings are nodes: None, tuples and arrays are leaves; keys become str.
    odd = {"g": None, "t": (1, 2), 0: {"w": 3}}
    assert tree.flatten_mapping(odd) == {"g": None, "t": (1, 2), "0.w": 3}
    assert tree.flatten_mapping(5) == {"": 5}
    assert tree.flatten_mapping({}) == {}


def test_unflatten_mapping_keeps_order_and_types():
    params = flax.core.freeze(_net())
    flat = tree.flatten_mapping(params)
    rebuilt = tree.unflatten_mapping(params, {k: i for i, k in enumerate(flat)})
    assert isinstance(rebuilt, flax.core.FrozenDict) and isinstance(rebuilt["fc1"], flax.core.FrozenDict)
    assert tree.flatten_mapping(rebuilt) == {"fc1.weight": 0, "fc1.bias": 1, "bn1.weight": 2, "bn1.bias": 3}
    kept = tree.unflatten_mapping({"a": {"b": 1, "c": 2}}, {"a.c": 9})
    assert kept == {"a": {"b": 1, "c": 9}} and type(kept) is dict
    with pytest.raises(ValueError, match="no leaf is named 'a.d'"):
        tree.unflatten_mapping({"a": {"b": 1}}, {"a.d": 0})


names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
nested = st.recursive(st.integers(), lambda children: st.dictionaries(names, children, max_size=4), max_leaves=12)


@given(nested)
def test_both_orders_name_the_same_leaves(value):
    # The two orders differ only in order: the same names for the same leaves.
    flat_tree = tree.flatten_named(value)
    flat_mapping = tree.flatten_mapping(value)
    if not isinstance(value, dict):
        assert flat_tree == flat_mapping == {"": value}
        return
    assert flat_tree == flat_mapping
    assert list(flat_tree) == tree.leaf_names(value)
    assert tree.unflatten_named(value, flat_tree) == value
    assert tree.unflatten_mapping(value, flat_mapping) == value


@pytest.mark.parametrize(
    "value",
    [
        "fc1",
        lambda name, leaf: True,
        ["fc1", "bn1.weight"],
        ("fc1",),
        [],
        (),
        {"fc1"},
        frozenset(),
        {"a": 1}.keys(),
        ["fc1", lambda name, leaf: False],
    ],
)
def test_selectors(value):
    assert tree.is_selector(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"fc1": False},
        [True, False],
        (False,),
        flax.core.freeze({"fc1": True}),
        True,
        3,
        jnp.ones(2),
        ["fc1", True],
        Point(True, False),
    ],
)
def test_bool_pytrees_and_others_are_not_selectors(value):
    assert not tree.is_selector(value)


def test_selector_items_normalises():
    predicate = lambda name, leaf: True  # noqa: E731
    assert tree.selector_items(None, "frozen") == []
    assert tree.selector_items("fc1", "frozen") == ["fc1"]
    assert tree.selector_items(predicate, "frozen") == [predicate]
    assert tree.selector_items(("b", "a"), "frozen") == ["b", "a"]
    assert tree.selector_items({"fc1", "bn1", predicate}, "frozen") == ["bn1", "fc1", predicate]
    with pytest.raises(TypeError, match="frozen must be a name, a predicate or a sequence of them, got int"):
        tree.selector_items(3, "frozen")
    with pytest.raises(TypeError, match="trainable must be names .*got an item of type float"):
        tree.selector_items([1.5], "trainable")


def test_every_part_of_torchsem_uses_the_same_names():
    params = {"fc1": {"weight": jnp.ones((2, 3)), "bias": jnp.zeros(2)}, "layers": [{"w": jnp.ones(1)}]}
    expected = ["fc1.bias", "fc1.weight", "layers.0.w"]
    assert tree.leaf_names(params) == expected
    assert optim.parameter_names(params) == expected
    assert list(autograd.named_leaves(params)) == expected
    # A set of names is a selector for the mask builders and freeze alike.
    mask = autograd.requires_grad_mask(params, frozen={"fc1.weight", "layers"})
    assert jax.tree.leaves(mask) == [True, False, False]
    tx = optim.freeze(optim.sgd(0.1), {"fc1.weight", "layers"})
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert [bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates)] == [True, False, False]


def test_resolve_requires_grad():
    params = {"fc1": {"weight": jnp.ones(2), "bias": jnp.ones(2)}}
    assert autograd.resolve_requires_grad(params) is None
    bools = {"fc1": {"weight": False, "bias": True}}
    assert autograd.resolve_requires_grad(params, bools) is bools
    assert autograd.resolve_requires_grad(params, frozen="fc1.weight") == bools
    assert autograd.resolve_requires_grad(params, "fc1.bias") == bools
    assert autograd.resolve_requires_grad(params, {"fc1.bias"}) == bools
    with pytest.raises(ValueError, match="give frozen= names or a requires_grad= bool pytree, not both"):
        autograd.resolve_requires_grad(params, bools, frozen="fc1")
