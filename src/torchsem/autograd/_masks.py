"""``requires_grad`` masks for Flax variables by PyTorch-style names (``"fc1.weight"``) or predicates.

PyTorch freezes a parameter with ``model.fc1.weight.requires_grad = False`` (or
``requires_grad_(False)``), addressing it by the dotted name ``named_parameters()`` gives.
Flax variables are nested dicts; their leaves get the same dotted names here, and
:func:`requires_grad_mask` turns names into the pytree of bools that
:func:`torchsem.autograd.grad` takes as ``requires_grad``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from ..tree import Selector, is_selector, key_name, path_name, selector_items
from ._grad import FLOATING_ONLY_MESSAGE, _with_note, is_differentiable_leaf

_PARAMS = "params"


def _is_none(value: Any) -> bool:
    return value is None


def _is_variables(tree: Any) -> bool:
    return isinstance(tree, Mapping) and _PARAMS in tree and all(isinstance(v, Mapping) for v in tree.values())


def named_leaves(tree: Any) -> dict[str, Any]:
    """Every leaf of Flax variables (or of a params tree) by its PyTorch-style dotted name.

    For a variables dict (one with a ``'params'`` collection) parameters are named without the
    collection (``"fc1.weight"``, as ``model.named_parameters()``), and leaves of other
    collections with it (``"batch_stats.bn1.running_mean"``). For any other pytree the name is
    the dotted path (``"fc1.weight"``, :func:`torchsem.tree.path_name`), in tree-leaf order.
    None entries (a gradient tree's "no grad") are kept.
    """
    return {name: leaf for name, leaf, _ in _named_entries(tree)}


def _named_entries(tree: Any) -> list[tuple[str, Any, bool]]:
    """``(name, leaf, is_parameter)`` for every leaf, in flattening order."""
    variables = _is_variables(tree)
    entries = []
    seen: set[str] = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]:
        is_parameter = not variables or (bool(path) and key_name(path[0]) == _PARAMS)
        name = path_name(path[1:] if variables and is_parameter else path)
        if name in seen:
            raise ValueError(f"two variables share the name {name!r}; name them by their full path instead")
        seen.add(name)
        entries.append((name, leaf, is_parameter))
    return entries


def _name_matches(pattern: str, name: str) -> bool:
    return name == pattern or name.startswith(pattern + ".")


def _select(items: list, named: dict[str, Any], argument: str) -> tuple[set[str], set[str]]:
    """Names selected, and the subset selected by an exact name (not a prefix or predicate)."""
    chosen: set[str] = set()
    exact: set[str] = set()
    for item in items:
        if isinstance(item, str):
            hits = {n for n in named if _name_matches(item, n)}
            if item in named:
                exact.add(item)
            label = repr(item)
        else:
            hits = {n for n, leaf in named.items() if item(n, leaf)}
            label = f"predicate {getattr(item, '__name__', item)!r}"
        if not hits:
            raise ValueError(f"{argument}: {label} matches no variable; the names are: {', '.join(named)}")
        chosen |= hits
    return chosen, exact


def select_leaves(tree: Any, selector: Selector, argument: str = "selector") -> Any:
    """A pytree of bools shaped like ``tree``: the leaves that names, prefixes or predicates pick.

    Names are those of :func:`named_leaves`; a name also selects, as a prefix at a dot, every
    leaf below it; a predicate is called as ``predicate(name, leaf)``. No dtype filtering.

    Raises:
      ValueError: a name or predicate that matches nothing (the message names ``argument`` and
        lists every name).
    """
    named = named_leaves(tree)
    chosen, _ = _select(selector_items(selector, argument), named, argument)
    names = iter(named)
    return jax.tree.map(lambda _: next(names) in chosen, tree, is_leaf=_is_none)


def requires_grad_mask(tree: Any, trainable: Selector | None = None, frozen: Selector | None = None) -> Any:
    """A pytree of bools shaped like ``tree``: which leaves require grad.

    The functional ``p.requires_grad_(flag)`` over ``model.named_parameters()``.

    Names are those of :func:`named_leaves`. A name selects the leaf of that name and, as a
    prefix at a dot, every leaf below it (``"bn1"`` selects ``bn1.weight`` and ``bn1.bias``).
    A predicate is called as ``predicate(name, leaf)``.

    Args:
      tree: Flax variables (``{'params': ..., 'batch_stats': ...}``) or a params tree.
      trainable: what requires grad. None: PyTorch's default, every floating parameter (for a
        variables dict only the ``'params'`` collection: buffers such as BatchNorm's running
        statistics never require grad). Given: only the selected floating leaves.
      frozen: leaves that do not require grad (``requires_grad = False``), applied after ``trainable``.

    Returns:
      The mask, with ``tree``'s structure.

    Raises:
      ValueError: a name or predicate that matches nothing (the message lists every name).
      RuntimeError: an integer leaf selected by its exact name in ``trainable`` (PyTorch's
        ``only Tensors of floating point dtype can require gradients``).
    """
    entries = _named_entries(tree)
    named = {name: leaf for name, leaf, _ in entries}
    trainable_items = selector_items(trainable, "trainable")
    frozen_items = selector_items(frozen, "frozen")
    if trainable is None:
        chosen = {n for n, leaf, is_parameter in entries if is_parameter and is_differentiable_leaf(leaf)}
    else:
        chosen, exact = _select(trainable_items, named, "trainable")
        for name in sorted(exact):
            if not is_differentiable_leaf(named[name]):
                raise _with_note(
                    RuntimeError(FLOATING_ONLY_MESSAGE),
                    f"trainable selects {name!r}, of dtype {getattr(named[name], 'dtype', type(named[name]).__name__)}",
                )
        chosen = {n for n in chosen if is_differentiable_leaf(named[n])}
    if frozen_items:
        removed, _ = _select(frozen_items, named, "frozen")
        chosen -= removed
    names = iter(named)
    return jax.tree.map(lambda _: next(names) in chosen, tree, is_leaf=_is_none)


def resolve_requires_grad(tree: Any, requires_grad: Any = None, frozen: Selector | None = None) -> Any:
    """The ``requires_grad`` argument of :func:`torchsem.autograd.grad` from names or a bool pytree.

    What ``torchsem.train.make_train_step`` and ``torchsem.parallel.make_train_step`` take:
    ``requires_grad`` a bool pytree (a prefix of ``tree``, returned as it is) or a selector
    (names, prefixes, predicates: :func:`requires_grad_mask`'s ``trainable``), and ``frozen``
    a selector of what does not require grad.

    Returns:
      None (PyTorch's default, every floating leaf) when both are None; else a bool pytree.

    Raises:
      ValueError: ``frozen`` given together with a bool-pytree ``requires_grad``; and the
        errors of :func:`requires_grad_mask`.
    """
    if requires_grad is None and frozen is None:
        return None
    if requires_grad is not None and not is_selector(requires_grad):
        if frozen is not None:
            raise ValueError("give frozen= names or a requires_grad= bool pytree, not both")
        return requires_grad
    return requires_grad_mask(tree, trainable=requires_grad, frozen=frozen)
