"""PyTorch-style dotted names for pytree leaves (``"fc1.weight"``), and leaf selectors.

PyTorch addresses a parameter by the dotted name ``model.named_parameters()`` gives; the
same variable in Flax is a path of keys (``variables['params']['fc1']['weight']``), named
here by joining the keys with ``'.'``. Every part of torchsem that names a leaf (masks,
freezing, optimizer state, the inspector, retained gradients, ``state_dict`` conversion,
the port checker) uses this module, so a name means the same thing everywhere.

A key becomes its text: a dict key (``DictKey``) and a flattened index
(``FlattenedIndexKey``) as ``str(key.key)``, a sequence index (``SequenceKey``) as
``str(key.idx)``, an attribute (``GetAttrKey``: dataclasses, namedtuples) as its ``name``;
a key of another class (a custom pytree's) by its ``key``, ``idx`` or ``name`` attribute,
the first it has, else ``str(key)``.

Two leaf orders, for two purposes:

- **tree-leaf order** (:func:`leaf_names`, :func:`flatten_named`, :func:`unflatten_named`):
  ``jax.tree``'s flattening order, in which dict keys are sorted (``bn1.bias`` before
  ``bn1.weight``). Masks, labels and optimizer state are lists in this order, so names that
  go with them must be too. Any pytree; ``is_leaf`` as in ``jax.tree.flatten`` (pass
  ``lambda x: x is None`` to keep a gradient tree's None entries).
- **mapping order** (:func:`mapping_leaves`, :func:`flatten_mapping`,
  :func:`unflatten_mapping`): nested mappings walked in their own (insertion) order, every
  value that is not a mapping a leaf (None, tuples and arrays included). Flax's ``init``
  creates variables in registration order, which is PyTorch's ``state_dict`` order, and
  this order keeps it (:mod:`torchsem.convert` builds PyTorch's traversal on it).

Selectors: a parameter is selected by its name, by a name prefix at a dot (``"fc1"`` is
``fc1.weight`` and ``fc1.bias``), by a predicate ``(name, leaf) -> bool``, or by a list,
tuple or set of those. Arguments that also take a bool pytree (``torchsem.optim.freeze``,
``torchsem.train.make_train_step``'s ``requires_grad``) tell the two apart with
:func:`is_selector`; :func:`selector_items` normalises a selector to a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeGuard, cast

import jax

__all__ = [
    "Selector",
    "flatten_mapping",
    "flatten_named",
    "is_selector",
    "key_name",
    "leaf_names",
    "mapping_leaves",
    "path_name",
    "selector_items",
    "unflatten_mapping",
    "unflatten_named",
]

Predicate = Callable[[str, Any], bool]
Selector = str | Predicate | Sequence[str | Predicate] | AbstractSet[str | Predicate]
"""A name or name prefix (``"fc1.weight"``, ``"fc1"``), a predicate ``(name, leaf) -> bool``,
or a list, tuple or set of them."""

_KEY_ATTRIBUTES = ("key", "idx", "name")


# ----------------------------------------------------------------------------------------------
# Names of keys and paths
# ----------------------------------------------------------------------------------------------


def key_name(key: Any) -> str:
    """The text of one path entry of ``jax.tree_util.tree_flatten_with_path``.

    ``DictKey('fc1')`` -> ``'fc1'``, ``SequenceKey(0)`` -> ``'0'``, ``GetAttrKey('mu')`` ->
    ``'mu'``, ``FlattenedIndexKey(2)`` -> ``'2'``; another object by its ``key``, ``idx`` or
    ``name`` attribute (the first it has), else ``str(key)``.
    """
    if isinstance(key, (jax.tree_util.DictKey, jax.tree_util.FlattenedIndexKey)):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return str(key.name)
    for attribute in _KEY_ATTRIBUTES:
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def path_name(path: Iterable[Any]) -> str:
    """The dotted name of a key path (``(DictKey('fc1'), DictKey('weight'))`` -> ``'fc1.weight'``; ``()`` -> ``''``)."""
    return ".".join(key_name(key) for key in path)


def _check_unique(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two leaves share the dotted name {name!r}")
        seen.add(name)


# ----------------------------------------------------------------------------------------------
# Tree-leaf order: any pytree, jax.tree's flattening order (dict keys sorted)
# ----------------------------------------------------------------------------------------------


def leaf_names(tree: Any, *, is_leaf: Callable[[Any], bool] | None = None) -> list[str]:
    """The dotted name of every leaf, in tree-leaf order (``jax.tree.leaves(tree, is_leaf=is_leaf)``'s).

    ``{'fc1': {'weight': w, 'bias': b}}`` -> ``['fc1.bias', 'fc1.weight']``. A tree that is a
    single leaf has the name ``''``. Names are not checked for uniqueness.
    """
    return [path_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]]


def flatten_named(tree: Any, *, is_leaf: Callable[[Any], bool] | None = None) -> dict[str, Any]:
    """``{dotted name: leaf}`` in tree-leaf order.

    Raises:
      ValueError: two leaves with the same dotted name (``{'a.b': x, 'a': {'b': y}}``).
    """
    entries = [(path_name(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]]
    _check_unique(name for name, _ in entries)
    return dict(entries)


def unflatten_named(template: Any, flat: Mapping[str, Any], *, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """``template``'s structure with each leaf replaced by ``flat[its dotted name]``; leaves ``flat`` lacks are kept.

    The inverse of :func:`flatten_named`: ``unflatten_named(t, flatten_named(t)) == t``.

    Raises:
      ValueError: a name in ``flat`` that is no leaf of ``template`` (the message lists the names).
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(template, is_leaf=is_leaf)
    names = [path_name(path) for path, _ in with_paths]
    _check_unknown(flat, names)
    return jax.tree.unflatten(treedef, [flat.get(name, leaf) for name, (_, leaf) in zip(names, with_paths)])


def _check_unknown(flat: Mapping[str, Any], names: Sequence[str]) -> None:
    known = set(names)
    unknown = [name for name in flat if name not in known]
    if unknown:
        raise ValueError(f"no leaf is named {', '.join(map(repr, unknown))}; the names are: {', '.join(names)}")


# ----------------------------------------------------------------------------------------------
# Mapping order: nested mappings in their own order (PyTorch's registration order survives)
# ----------------------------------------------------------------------------------------------


def mapping_leaves(tree: Any) -> list[tuple[tuple[str, ...], Any]]:
    """``(key path, leaf)`` for every leaf of nested mappings, in the mappings' own order.

    Every value that is not a ``Mapping`` is a leaf (None, tuples, arrays); keys become
    ``str(key)``. ``{'fc1': {'weight': w, 'bias': b}}`` -> ``[(('fc1', 'weight'), w),
    (('fc1', 'bias'), b)]``; a tree that is not a mapping is the one leaf ``((), tree)``; an
    empty mapping has no leaves.
    """
    if not isinstance(tree, Mapping):
        return [((), tree)]
    leaves: list[tuple[tuple[str, ...], Any]] = []

    def visit(node: Mapping[Any, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = (*prefix, str(key))
            if isinstance(value, Mapping):
                visit(value, path)
            else:
                leaves.append((path, value))

    visit(tree, ())
    return leaves


def flatten_mapping(tree: Any) -> dict[str, Any]:
    """``{dotted name: leaf}`` over nested mappings, in their own order (see :func:`mapping_leaves`).

    Raises:
      ValueError: two leaves with the same dotted name.
    """
    entries = [(".".join(path), leaf) for path, leaf in mapping_leaves(tree)]
    _check_unique(name for name, _ in entries)
    return dict(entries)


def unflatten_mapping(template: Any, flat: Mapping[str, Any]) -> Any:
    """``template`` with each leaf replaced by ``flat[its dotted name]``; leaves ``flat`` lacks are kept.

    The inverse of :func:`flatten_mapping`. The mappings keep their order and their type (a
    ``FrozenDict`` stays one; a mapping type is rebuilt as ``type(mapping)(dict)``).

    Raises:
      ValueError: a name in ``flat`` that is no leaf of ``template`` (the message lists the names).
    """
    _check_unknown(flat, [".".join(path) for path, _ in mapping_leaves(template)])

    def rebuild(node: Any, prefix: tuple[str, ...]) -> Any:
        if not isinstance(node, Mapping):
            name = ".".join(prefix)
            return flat.get(name, node)
        out = {key: rebuild(value, (*prefix, str(key))) for key, value in node.items()}
        return out if type(node) is dict else cast(Any, type(node))(out)

    return rebuild(template, ())


# ----------------------------------------------------------------------------------------------
# Selectors
# ----------------------------------------------------------------------------------------------


def _is_item(value: Any) -> bool:
    return isinstance(value, str) or callable(value)


def is_selector(value: Any) -> TypeGuard[Selector]:
    """Whether ``value`` selects leaves by name rather than being a bool pytree.

    True for a name, a predicate, any set (a set is never a pytree node, so never a bool
    pytree), and a list, tuple or other sequence whose items are all names or predicates
    (the empty list included: it selects nothing). False otherwise: a bool pytree
    (``{'fc1': False}``, ``[True, False]``), and None.
    """
    if _is_item(value) or isinstance(value, AbstractSet):
        return True
    return isinstance(value, Sequence) and all(_is_item(item) for item in value)


def _set_order(item: Any) -> tuple[int, str]:
    return (0, item) if isinstance(item, str) else (1, getattr(item, "__qualname__", repr(item)))


def selector_items(selector: Selector | None, argument: str) -> list[str | Predicate]:
    """A selector as a list of names and predicates: None -> ``[]``, one item -> ``[item]``.

    A set is sorted (names first, alphabetically), so the result, and which item an error
    names first, does not depend on hashing.

    Raises:
      TypeError: ``selector`` is not a selector, or holds an item that is neither a name nor a
        predicate (the messages name ``argument``).
    """
    if selector is None:
        return []
    if _is_item(selector):
        return [cast("str | Predicate", selector)]
    if isinstance(selector, AbstractSet):
        items = sorted(selector, key=_set_order)
    elif isinstance(selector, Sequence):
        items = list(selector)
    else:
        raise TypeError(f"{argument} must be a name, a predicate or a sequence of them, got {type(selector).__name__}")
    for item in items:
        if not _is_item(item):
            raise TypeError(
                f"{argument} must be names (str), predicates (name, leaf) -> bool, or a sequence of "
                f"them; got an item of type {type(item).__name__}"
            )
    return items
