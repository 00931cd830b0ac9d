"""Optimizer state <-> PyTorch's ``optimizer.state_dict()["state"]``.

PyTorch numbers parameters in the order they were given to the optimizer
(``model.parameters()``: the document's Net has ``bn1.weight, bn1.bias, fc1.weight,
fc1.bias``); torchsem numbers them in tree-leaf order of the parameters given to ``init``
(JAX sorts dict keys: ``bn1.bias, bn1.weight, fc1.bias, fc1.weight``). Pass ``order``, the
dotted names in PyTorch's order (``[name for name, _ in model.named_parameters()]``), to
number them as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..convert import host_copy
from ..tree import leaf_names
from ._adam import AdamState
from ._sgd import SGDState

TorchState = dict[int, dict[str, np.ndarray]]


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def _leaves(tree: Any) -> list[Any]:
    """Leaves in parameter order, a MaskedNode (a frozen parameter) kept as a leaf."""
    return jax.tree.leaves(tree, is_leaf=_is_masked)


def _torch_index(per_parameter_tree: Any, order: Sequence[str] | None) -> list[int]:
    """PyTorch's index of every leaf (tree-leaf order), from the names in PyTorch's order."""
    names = leaf_names(per_parameter_tree, is_leaf=_is_masked)
    if order is None:
        return list(range(len(names)))
    order = list(order)
    if sorted(order) != sorted(names) or len(set(order)) != len(order):
        raise ValueError(f"order must name every parameter once; got {order}, the parameters are {names}")
    position = {name: index for index, name in enumerate(order)}
    return [position[name] for name in names]


def _find(opt_state: Any) -> list[SGDState | AdamState]:
    found: list[SGDState | AdamState] = []

    def visit(node: Any) -> None:
        if isinstance(node, (SGDState, AdamState)):
            found.append(node)
        elif isinstance(node, Mapping):
            for value in node.values():
                visit(value)
        elif isinstance(node, (tuple, list)):
            for value in node:
                visit(value)

    visit(opt_state)
    return found


def _the_state(opt_state: Any) -> SGDState | AdamState:
    found = _find(opt_state)
    if len(found) != 1:
        raise ValueError(
            f"expected exactly one torchsem SGDState or AdamState in the optimizer state, found {len(found)}"
        )
    return found[0]


def _never_written(buffer: np.ndarray) -> bool:
    """An SGD buffer without flags (dampening 0) that was never written: -0.0 everywhere."""
    return bool(np.all(buffer == 0) and np.all(np.signbit(buffer)))


def state_dict(opt_state: Any, order: Sequence[str] | None = None) -> TorchState:
    """The state as PyTorch's ``optimizer.state_dict()["state"]``: ``{index: {name: array}}``.

    Parameters PyTorch holds no state for (never had a gradient, frozen, or SGD without
    momentum) are absent, as in PyTorch. Arrays are numpy; ``step`` is a float32 scalar as
    PyTorch's.

    Args:
      opt_state: the state of :func:`sgd`, :func:`adam` or :func:`adamw`, also when wrapped
        (by :func:`freeze`, ``optax.chain``...).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order).
    """
    state = _the_state(opt_state)
    result: TorchState = {}
    if isinstance(state, SGDState):
        if state.momentum_buffer is None:
            return result
        index_of = _torch_index(state.momentum_buffer, order)
        flags = None if state.has_momentum_buffer is None else iter(np.asarray(state.has_momentum_buffer))
        for leaf, buf in enumerate(_leaves(state.momentum_buffer)):
            if _is_masked(buf):
                continue
            buf = np.asarray(buf)
            exists = bool(next(flags)) if flags is not None else not _never_written(buf)
            if exists:
                result[index_of[leaf]] = {"momentum_buffer": buf}
        return dict(sorted(result.items()))
    names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if state.max_exp_avg_sq is not None else [])
    columns = [_leaves(getattr(state, name)) for name in names]
    index_of = _torch_index(state.step, order)
    for leaf, step in enumerate(_leaves(state.step)):
        if _is_masked(step) or float(step) == 0.0:
            continue
        entry = {"step": np.asarray(step, np.float32)}
        entry.update({name: np.asarray(column[leaf]) for name, column in zip(names, columns)})
        result[index_of[leaf]] = entry
    return dict(sorted(result.items()))


def load_state_dict(
    opt_state: Any, torch_state: Mapping[int, Mapping[str, Any]], order: Sequence[str] | None = None
) -> Any:
    """``opt_state`` with its per-parameter buffers replaced by PyTorch's.

    Args:
      opt_state: a state of the right shape, e.g. ``tx.init(params)``.
      torch_state: PyTorch's ``optimizer.state_dict()["state"]`` (tensors or arrays); a
        parameter it lacks gets PyTorch's "no state" (zeros, buffer absent, step 0).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order).

    Returns:
      The new optimizer state (same structure as ``opt_state``).

    Raises:
      ValueError: an index with no parameter, a frozen parameter with state, a missing or
        unexpected buffer name, or a shape that differs.
    """
    state = _the_state(opt_state)
    if isinstance(state, SGDState):
        fields = {"momentum_buffer": "momentum_buffer"} if state.momentum_buffer is not None else {}
        reference = state.momentum_buffer
    else:
        fields = {"step": "step", "exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}
        if state.max_exp_avg_sq is not None:
            fields["max_exp_avg_sq"] = "max_exp_avg_sq"
        reference = state.exp_avg
    if reference is None:  # SGD without momentum: PyTorch keeps no state
        if torch_state:
            raise ValueError(f"PyTorch state for parameters {sorted(torch_state)}, but SGD without momentum keeps none")
        return opt_state
    reference_leaves = _leaves(reference)
    index_of = _torch_index(reference, order)
    leaf_of = {index: leaf for leaf, index in enumerate(index_of)}
    by_leaf: dict[int, Mapping[str, Any]] = {}
    for index, entry in torch_state.items():
        leaf = leaf_of.get(int(index))
        if leaf is None or _is_masked(reference_leaves[leaf]):
            raise ValueError(
                f"PyTorch state for parameter {index}, which has no optimizer state here "
                f"({len(reference_leaves)} parameters, frozen ones hold none)"
            )
        if set(entry) != set(fields):
            raise ValueError(f"PyTorch state for parameter {index} has {sorted(entry)}, expected {sorted(fields)}")
        by_leaf[leaf] = entry

    def column(name: str, default: Any) -> Any:
        leaves, treedef = jax.tree.flatten(getattr(state, name), is_leaf=_is_masked)
        new = []
        for index, leaf in enumerate(leaves):
            if _is_masked(leaf):
                new.append(leaf)
                continue
            if index in by_leaf:
                value = host_copy(by_leaf[index][name])
                if value.shape != jnp.shape(leaf):
                    raise ValueError(
                        f"PyTorch {name} for parameter {index_of[index]} has shape {value.shape}, "
                        f"expected {jnp.shape(leaf)}"
                    )
                new.append(jnp.asarray(value, jnp.result_type(leaf)))
            else:
                new.append(default(leaf))
        return jax.tree.unflatten(treedef, new)

    new_state: SGDState | AdamState
    if isinstance(state, SGDState):
        if state.has_momentum_buffer is None:  # dampening 0: an absent buffer is -0.0 everywhere
            new_state = state._replace(momentum_buffer=column("momentum_buffer", lambda p: jnp.full_like(p, -0.0)))
        else:
            exists = jnp.asarray(
                [i in by_leaf for i, leaf in enumerate(reference_leaves) if not _is_masked(leaf)], bool
            )
            new_state = state._replace(
                momentum_buffer=column("momentum_buffer", jnp.zeros_like), has_momentum_buffer=exists
            )
    else:
        new_state = state._replace(
            step=column("step", jnp.zeros_like),
            exp_avg=column("exp_avg", jnp.zeros_like),
            exp_avg_sq=column("exp_avg_sq", jnp.zeros_like),
            max_exp_avg_sq=column("max_exp_avg_sq", jnp.zeros_like) if state.max_exp_avg_sq is not None else None,
        )
    return _replace(opt_state, state, new_state)


def _replace(node: Any, old: Any, new: Any) -> Any:
    """``node`` with the object ``old`` (found by identity) replaced by ``new``."""
    if node is old:
        return new
    if isinstance(node, (SGDState, AdamState)):
        return node
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return type(node)(*(_replace(value, old, new) for value in node))
    if isinstance(node, tuple):
        return tuple(_replace(value, old, new) for value in node)
    if isinstance(node, list):
        return [_replace(value, old, new) for value in node]
    if isinstance(node, Mapping):
        # ignore: mypy sees Mapping's argument-less constructor; a concrete mapping (FrozenDict) takes a dict.
        return type(node)({key: _replace(value, old, new) for key, value in node.items()})  # type: ignore[call-arg]
    return node
