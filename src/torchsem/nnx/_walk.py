"""The walk over an NNX model in PyTorch's ``state_dict`` order: a module's own state, then its children in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flax import nnx

from ._twin import Twin

__all__ = ["Entry", "walk"]

Entry = tuple[tuple[str, ...], Any]
"""``(path, node)``: a :class:`Twin`, or an NNX Variable held by a plain NNX module."""


def _children(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, (list, tuple)):
        return [(str(i), value) for i, value in enumerate(node)]
    if isinstance(node, dict):
        return [(str(key), value) for key, value in node.items()]
    # vars() keeps assignment order: a model built as PyTorch's __init__ builds it lists its
    # children in PyTorch's registration order (NNX's own traversal sorts them by name).
    return [(name, value) for name, value in vars(node).items() if not name.startswith("_")]


def _state_kind(value: Any) -> int:
    # PyTorch's state_dict lists a module's parameters, then its buffers, then its submodules.
    if isinstance(value, nnx.Param):
        return 0
    if isinstance(value, nnx.BatchStat):
        return 1
    return 2


def walk(model: Any, prefix: tuple[str, ...] = (), seen: set[int] | None = None) -> Iterator[Entry]:
    """Every :class:`Twin` and every Param/BatchStat outside a twin, in PyTorch's ``state_dict`` order.

    A node reached twice (a shared layer) is visited once, as PyTorch's ``state_dict`` keeps
    the first name of a shared module.

    Args:
      model: an NNX module (or a list/tuple/dict of them).
      prefix: the path of ``model``.
      seen: ids already visited (internal).

    Yields:
      ``(path, twin_or_variable)``.
    """
    seen = set() if seen is None else seen
    if id(model) in seen:
        return
    seen.add(id(model))
    if isinstance(model, Twin):
        yield prefix, model
        return
    children = _children(model)
    for name, value in sorted(children, key=lambda item: _state_kind(item[1])):
        if isinstance(value, (nnx.Param, nnx.BatchStat)):
            if id(value) not in seen:
                seen.add(id(value))
                yield (*prefix, name), value
        elif isinstance(value, (nnx.Module, list, tuple, dict)):
            yield from walk(value, (*prefix, name), seen)
