"""``state_dict`` / ``load_state_dict`` of an NNX model with PyTorch's keys, order and loading rules."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from flax import nnx

from .. import convert
from ._twin import Twin
from ._walk import walk

__all__ = ["IncompatibleKeys", "linen_variables", "load_state_dict", "state_dict"]


class IncompatibleKeys(NamedTuple):
    """``load_state_dict``'s result: the keys missing from the state_dict and the unexpected ones.

    PyTorch counterpart: ``torch.nn.modules.module._IncompatibleKeys``.
    """

    missing_keys: list[str]
    unexpected_keys: list[str]


_Writer = tuple[str, tuple[str, ...], Any, tuple[str, ...]]  # (collection, full path, twin or Variable, own path)


def _collect(model: Any) -> tuple[dict[str, Any], list[str], list[_Writer]]:
    """The whole model as one linen variables tree at its NNX paths, PyTorch's key order, and who owns each leaf."""
    variables: dict[str, Any] = {"params": {}, "batch_stats": {}}
    order: list[str] = []
    owners: list[_Writer] = []

    def put(collection: str, path: tuple[str, ...], value: Any) -> None:
        node = variables[collection]
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value

    for prefix, node in walk(model):
        if isinstance(node, Twin):
            own = node.linen_variables()
            for collection, path in node._leaves:
                leaf: Any = own[collection]
                for name in path:
                    leaf = leaf[name]
                put(collection, (*prefix, *path), leaf)
                owners.append((collection, (*prefix, *path), node, path))
            order.extend(".".join((*prefix, key)) for key in node.torch_state_dict_keys())
        else:
            collection = "params" if isinstance(node, nnx.Param) else "batch_stats"
            put(collection, prefix, node.get_value())
            owners.append((collection, prefix, node, ()))
            order.append(".".join(prefix))
    return {k: v for k, v in variables.items() if v}, order, owners


def linen_variables(model: Any) -> dict[str, Any]:
    """The model's state as one linen variables dict (``{'params': ..., 'batch_stats': ...}``) at its NNX paths.

    Args:
      model: an NNX model of torchsem twins (and plain NNX Variables).

    Returns:
      Nested dicts in PyTorch's registration order, as :mod:`torchsem.convert` reads them.
    """
    return _collect(model)[0]


def state_dict(model: Any) -> OrderedDict[str, np.ndarray]:
    """A PyTorch ``state_dict`` of numpy arrays: PyTorch's keys (the NNX paths joined by ``.``) in PyTorch's order.

    Args:
      model: an NNX model of torchsem twins.

    Returns:
      An ``OrderedDict`` of fresh numpy arrays (integers as int64, as PyTorch's
      ``num_batches_tracked``), loadable with ``torch_model.load_state_dict(...)`` after
      ``torch.from_numpy``.

    PyTorch counterpart: ``module.state_dict()``.
    """
    variables, order, _ = _collect(model)
    return convert.to_torch_state_dict(variables, key_order=order)


def load_state_dict(model: Any, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
    """Copy a PyTorch ``state_dict`` into the model's Variables, with ``module.load_state_dict``'s rules.

    Values may be torch tensors, numpy or JAX arrays; each is copied
    (:func:`torchsem.convert.host_copy`), so changing the source later cannot reach the model.
    The checks and messages are :func:`torchsem.convert.load_torch_state_dict`'s (PyTorch's).

    Args:
      model: an NNX model of torchsem twins (changed in place).
      state_dict: PyTorch keys to values.
      strict: whether missing and unexpected keys are errors.

    Returns:
      The missing and unexpected keys.

    Raises:
      RuntimeError: PyTorch's ``Error(s) in loading state_dict`` message.

    PyTorch counterpart: ``module.load_state_dict(state_dict, strict)``.
    """
    variables, order, owners = _collect(model)
    loaded = convert.load_torch_state_dict(variables, state_dict, strict=strict)
    for collection, path, owner, own in owners:
        value: Any = loaded[collection]
        for name in path:
            value = value[name]
        (owner._variable(own) if isinstance(owner, Twin) else owner).set_value(value)
    missing = [key for key in order if key not in state_dict]
    unexpected = [key for key in state_dict if key not in set(order)]
    return IncompatibleKeys(missing, unexpected)
