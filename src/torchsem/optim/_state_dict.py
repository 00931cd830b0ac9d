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
from ._adadelta import AdadeltaState
from ._adagrad import AdagradState
from ._adam import AdamState
from ._adamax import AdamaxState
from ._nadam import NAdamState
from ._radam import RAdamState
from ._rmsprop import RMSpropState
from ._sgd import SGDState

TorchState = dict[int, dict[str, np.ndarray]]

_KEYS: dict[type, tuple[str, ...]] = {
    AdamState: ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    RMSpropState: ("step", "square_avg", "momentum_buffer", "grad_avg"),
    AdagradState: ("step", "sum"),
    AdadeltaState: ("step", "square_avg", "acc_delta"),
    AdamaxState: ("step", "exp_avg", "exp_inf"),
    NAdamState: ("step", "mu_product", "exp_avg", "exp_avg_sq"),
    RAdamState: ("step", "exp_avg", "exp_avg_sq"),
}
"""PyTorch's per-parameter state keys, in the order ``optimizer.state_dict()`` lists them (a
field that is None, an option not taken, is left out). Each of these states has a per-parameter
``step``: 0 means PyTorch holds no state for the parameter yet."""

_MADE_IN_CONSTRUCTOR = (AdagradState,)
"""States PyTorch makes for every parameter in the optimizer's constructor, not at its first step."""

_NO_STATE = {"step": 0.0, "mu_product": 1.0}
"""The value of a scalar field before the parameter's first step (other fields: zeros)."""

_STATE_TYPES: tuple[type, ...] = (SGDState, *_KEYS)

OptimizerState = Any
"""One of the torchsem optimizers' state NamedTuples."""


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


def _find(opt_state: Any) -> list[OptimizerState]:
    found: list[OptimizerState] = []

    def visit(node: Any) -> None:
        if isinstance(node, _STATE_TYPES):
            found.append(node)
        elif isinstance(node, Mapping):
            for value in node.values():
                visit(value)
        elif isinstance(node, (tuple, list)):
            for value in node:
                visit(value)

    visit(opt_state)
    return found


def _the_state(opt_state: Any) -> OptimizerState:
    found = _find(opt_state)
    if len(found) != 1:
        names = ", ".join(t.__name__ for t in _STATE_TYPES)
        raise ValueError(
            f"expected exactly one torchsem optimizer state ({names}) in the optimizer state, found {len(found)}"
        )
    return found[0]


def _keys(state: OptimizerState) -> list[str]:
    return [key for key in _KEYS[type(state)] if getattr(state, key) is not None]


def _never_written(buffer: np.ndarray) -> bool:
    """An SGD buffer without flags (dampening 0) that was never written: -0.0 everywhere."""
    return bool(np.all(buffer == 0) and np.all(np.signbit(buffer)))


def state_dict(opt_state: Any, order: Sequence[str] | None = None) -> TorchState:
    """The state as PyTorch's ``optimizer.state_dict()["state"]``: ``{index: {name: array}}``.

    Parameters PyTorch holds no state for (never had a gradient, frozen, or SGD without
    momentum) are absent, as in PyTorch; Adagrad, whose constructor makes every parameter's
    state, lists every parameter that is not frozen. Keys are PyTorch's, in its order. Arrays
    are numpy; ``step`` (and NAdam's ``mu_product``) are float32 scalars as PyTorch's.

    Args:
      opt_state: the state of any torchsem optimizer (:func:`sgd`, :func:`adam`,
        :func:`adamw`, :func:`rmsprop`, :func:`adagrad`, :func:`adadelta`, :func:`adamax`,
        :func:`nadam`, :func:`radam`), also when wrapped (by :func:`freeze`, ``optax.chain``...).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order). With
        :func:`param_groups`, PyTorch numbers the parameters group after group, in the order
        each group lists them.

    Several torchsem states (one per group of :func:`param_groups`, each holding its own
    parameters) are merged into the one ``state`` dict PyTorch keeps.
    """
    found = _find(opt_state)
    if len(found) > 1:
        merged: TorchState = {}
        for state in found:
            merged.update(_state_dict_of(state, order))
        return dict(sorted(merged.items()))
    return _state_dict_of(_the_state(opt_state), order)


def _state_dict_of(state: OptimizerState, order: Sequence[str] | None) -> TorchState:
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
    keys = _keys(state)
    columns = {key: _leaves(getattr(state, key)) for key in keys}
    index_of = _torch_index(state.step, order)
    always = isinstance(state, _MADE_IN_CONSTRUCTOR)
    for leaf, step in enumerate(columns["step"]):
        if _is_masked(step) or (not always and float(step) == 0.0):
            continue
        entry = {key: np.asarray(columns[key][leaf]) for key in keys}
        entry["step"] = np.asarray(step, np.float32)
        result[index_of[leaf]] = entry
    return dict(sorted(result.items()))


def load_state_dict(
    opt_state: Any, torch_state: Mapping[int, Mapping[str, Any]], order: Sequence[str] | None = None
) -> Any:
    """``opt_state`` with its per-parameter buffers replaced by PyTorch's.

    Args:
      opt_state: a state of the right shape, e.g. ``tx.init(params)``.
      torch_state: PyTorch's ``optimizer.state_dict()["state"]`` (tensors or arrays); a
        parameter it lacks gets PyTorch's "no state" (zeros, buffer absent, step 0,
        ``mu_product`` 1). Adagrad's must hold every parameter that is not frozen (PyTorch's
        Adagrad makes its state in the constructor).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order).

    Returns:
      The new optimizer state (same structure as ``opt_state``).

    Raises:
      ValueError: an index with no parameter, a frozen parameter with state, a missing or
        unexpected buffer name, a shape that differs, or an Adagrad parameter without state.
    """
    state = _the_state(opt_state)
    if isinstance(state, SGDState):
        fields = ["momentum_buffer"] if state.momentum_buffer is not None else []
        reference = state.momentum_buffer
    else:
        fields = _keys(state)
        reference = state.step
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
    if isinstance(state, _MADE_IN_CONSTRUCTOR):
        missing = sorted(
            index_of[leaf]
            for leaf, value in enumerate(reference_leaves)
            if not _is_masked(value) and leaf not in by_leaf
        )
        if missing:
            raise ValueError(
                f"PyTorch's {type(state).__name__[: -len('State')]} holds state for every parameter from its "
                f"constructor; torch_state lacks parameters {missing}"
            )

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

    new_state: OptimizerState
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

        def no_state(name: str) -> Any:
            if name in _NO_STATE:
                return lambda leaf: jnp.full_like(leaf, _NO_STATE[name])
            return jnp.zeros_like

        new_state = state._replace(**{name: column(name, no_state(name)) for name in fields})
    return _replace(opt_state, state, new_state)


def _replace(node: Any, old: Any, new: Any) -> Any:
    """``node`` with the object ``old`` (found by identity) replaced by ``new``."""
    if node is old:
        return new
    if isinstance(node, _STATE_TYPES):
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
