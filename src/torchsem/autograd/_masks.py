"""``requires_grad`` masks for Flax variables by PyTorch-style names (``"fc1.weight"``) or predicates.

PyTorch freezes a parameter with ``model.fc1.weight.requires_grad = False`` (or
``requires_grad_(False)``), addressing it by the dotted name ``named_parameters()`` gives.
Flax variables are nested dicts; their leaves get the same dotted names here, and
:func:`requires_grad_mask` turns names into the pytree of bools that
:func:`torchsem.autograd.grad` takes as ``requires_grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import jax

from ._grad import FLOATING_ONLY_MESSAGE, _with_note, is_differentiable_leaf

Selector = Union[str, Callable[[str, Any], bool], Sequence[Union[str, Callable[[str, Any], bool]]]]

_PARAMS = "params"


def _key_text(key: Any) -> str:
    for attribute in ("key", "idx", "name"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _is_none(value: Any) -> bool:
    return value is None


def _is_variables(tree: Any) -> bool:
    return isinstance(tree, Mapping) and _PARAMS in tree and all(isinstance(v, Mapping) for v in tree.values())


def named_leaves(tree: Any) -> dict[str, Any]:
    """Every leaf of Flax variables (or of a params tree) by its PyTorch-style dotted name.

    For a variables dict (one with a ``'params'`` collection) parameters are named without the
    collection (``"fc1.weight"``, as ``model.named_parameters()``), and leaves of other
    collections with it (``"batch_stats.bn1.running_mean"``). For any other pytree the name is
    the dotted path (``"fc1.weight"``). None entries (a gradient tree's "no grad") are kept.
    """
    return {name: leaf for name, leaf, _ in _named_entries(tree)}


def _named_entries(tree: Any) -> list[tuple[str, Any, bool]]:
    """``(name, leaf, is_parameter)`` for every leaf, in flattening order."""
    variables = _is_variables(tree)
    entries = []
    seen: set[str] = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]:
        parts = [_key_text(k) for k in path]
        is_parameter = not variables or (bool(parts) and parts[0] == _PARAMS)
        if variables and is_parameter:
            parts = parts[1:]
        name = ".".join(parts)
        if name in seen:
            raise ValueError(f"two variables share the name {name!r}; name them by their full path instead")
        seen.add(name)
        entries.append((name, leaf, is_parameter))
    return entries


def _selectors(selector: Selector | None, argument: str) -> list[str | Callable[[str, Any], bool]]:
    if selector is None:
        return []
    if isinstance(selector, str) or callable(selector):
        return [selector]
    if isinstance(selector, Sequence):
        items = list(selector)
        for item in items:
            if not (isinstance(item, str) or callable(item)):
                raise TypeError(f"{argument} must be names (str), predicates (name, leaf) -> bool, or a sequence of "
                                f"them; got an item of type {type(item).__name__}")
        return items
    raise TypeError(f"{argument} must be a name, a predicate or a sequence of them, got {type(selector).__name__}")


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
    chosen, _ = _select(_selectors(selector, argument), named, argument)
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
    trainable_items = _selectors(trainable, "trainable")
    frozen_items = _selectors(frozen, "frozen")
    if trainable is None:
        chosen = {n for n, leaf, is_parameter in entries if is_parameter and is_differentiable_leaf(leaf)}
    else:
        chosen, exact = _select(trainable_items, named, "trainable")
        for name in sorted(exact):
            if not is_differentiable_leaf(named[name]):
                raise _with_note(RuntimeError(FLOATING_ONLY_MESSAGE), f"trainable selects {name!r}, of dtype "
                                 f"{getattr(named[name], 'dtype', type(named[name]).__name__)}")
        chosen = {n for n in chosen if is_differentiable_leaf(named[n])}
    if frozen_items:
        removed, _ = _select(frozen_items, named, "frozen")
        chosen -= removed
    names = iter(named)
    return jax.tree.map(lambda _: next(names) in chosen, tree, is_leaf=_is_none)

