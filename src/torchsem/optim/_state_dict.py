"""Optimizer state <-> PyTorch's ``optimizer.state_dict()``: its ``state``, or the whole dict with ``param_groups``.

PyTorch numbers parameters in the order they were given to the optimizer
(``model.parameters()``: the document's Net has ``bn1.weight, bn1.bias, fc1.weight,
fc1.bias``); torchsem numbers them in tree-leaf order of the parameters given to ``init``
(JAX sorts dict keys: ``bn1.bias, bn1.weight, fc1.bias, fc1.weight``). Pass ``order``, the
dotted names in PyTorch's order (``[name for name, _ in model.named_parameters()]``), to
number them as PyTorch does.

The whole dict, ``{"state": ..., "param_groups": [...]}``, needs the transformation (``tx=``)
built by :func:`torchsem.optim.param_groups` (``param_groups(optim.adamw, lr=1e-3)`` for a
single group of every parameter, ``param_groups(optim.adamw, [{"params": ...}, ...], ...)``
for several), which records PyTorch's entries per group. PyTorch numbers the parameters group
after group, each group's in ``order``; a parameter in no group has no number.

- Saving: each group lists every key PyTorch 2.13 puts there for that class, in PyTorch's
  order and with its values and types, then ``params`` (the group's indices). A scheduled
  ``lr`` (or cycled ``momentum`` / ``betas[0]``) is its value at the group's update count, a
  Python float (a :mod:`torchsem.optim.lr_scheduler` scheduler gives PyTorch's float64 value,
  another optax schedule its float32 one), and ``initial_lr`` follows when the scheduler knows
  the optimizer's lr before it (not for OneCycleLR, which also adds ``max_lr``, ``min_lr``,
  ``max_momentum``, ``base_momentum``: those keys are not reproduced).
- Loading: PyTorch's checks and messages (the number of groups, each group's size), then
  PyTorch's mapping: the k-th index of a loaded group's ``params`` is the k-th parameter of
  that group here. PyTorch's ``load_state_dict`` overwrites the groups' hyperparameters with
  the loaded ones; torchsem's are fixed when the transformation is built, so each loaded key
  that torchsem has must agree with it (a ValueError names the group and the key: rebuild
  the transformation with the loaded value). Not compared: PyTorch's implementation
  selectors (``foreach``, ``capturable``, ``differentiable``, ``fused``: torchsem reproduces
  the default CPU arithmetic), scheduled values and ``initial_lr`` (the scheduler's own
  ``state_dict`` holds its position; the update count stays ``opt_state``'s), and keys
  torchsem does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

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
from ._param_groups import IMPLEMENTATION_KEYS, NOT_OPTIMIZED, TorchLayout
from ._radam import RAdamState
from ._rmsprop import RMSpropState
from ._sgd import SGDState

TorchState = dict[int, dict[str, np.ndarray]]
"""PyTorch's ``optimizer.state_dict()["state"]``: ``{index: {name: array}}``."""

FullTorchState = dict[str, Any]
"""PyTorch's whole ``optimizer.state_dict()``: ``{"state": TorchState, "param_groups": [group, ...]}``."""

Indices = list[int | None]
"""PyTorch's index of every parameter leaf (tree-leaf order); None: not numbered (in no group)."""

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


def _positions(names: list[str], order: Sequence[str] | None) -> list[int]:
    """Each leaf's position (tree-leaf order) in ``order``, the names in PyTorch's order."""
    if order is None:
        return list(range(len(names)))
    order = list(order)
    if sorted(order) != sorted(names) or len(set(order)) != len(order):
        raise ValueError(f"order must name every parameter once; got {order}, the parameters are {names}")
    position = {name: index for index, name in enumerate(order)}
    return [position[name] for name in names]


def _torch_index(per_parameter_tree: Any, order: Sequence[str] | None) -> list[int]:
    """PyTorch's index of every leaf (tree-leaf order), from the names in PyTorch's order."""
    return _positions(leaf_names(per_parameter_tree, is_leaf=_is_masked), order)


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


def _reference(state: OptimizerState) -> Any:
    """The per-parameter tree that tells which parameters the state holds (None: SGD without momentum)."""
    return state.momentum_buffer if isinstance(state, SGDState) else state.step


@overload
def state_dict(
    opt_state: Any, order: Sequence[str] | None = None, *, tx: None = None, params: Any = None
) -> TorchState: ...


@overload
def state_dict(
    opt_state: Any, order: Sequence[str] | None = None, *, tx: optax.GradientTransformation, params: Any = None
) -> FullTorchState: ...


def state_dict(
    opt_state: Any,
    order: Sequence[str] | None = None,
    *,
    tx: optax.GradientTransformation | None = None,
    params: Any = None,
) -> TorchState | FullTorchState:
    """The state as PyTorch's ``optimizer.state_dict()["state"]``, or, given ``tx``, the whole ``state_dict()``.

    Parameters PyTorch holds no state for (never had a gradient, frozen, or SGD without
    momentum) are absent, as in PyTorch; Adagrad, whose constructor makes every parameter's
    state, lists every parameter that is not frozen. Keys are PyTorch's, in its order. Arrays
    are numpy; ``step`` (and NAdam's ``mu_product``) are float32 scalars as PyTorch's.

    Args:
      opt_state: the state of any torchsem optimizer (:func:`sgd`, :func:`adam`,
        :func:`adamw`, :func:`rmsprop`, :func:`adagrad`, :func:`adadelta`, :func:`adamax`,
        :func:`nadam`, :func:`radam`), also when wrapped (by :func:`freeze`, ``optax.chain``...).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order),
        ``[n for n, _ in model.named_parameters()]``. Without ``tx`` and with
        :func:`param_groups`, the indices are the positions in ``order`` (name the parameters
        group after group to number them as PyTorch does); with ``tx``, PyTorch's numbering
        is computed from the groups.
      tx: the :func:`param_groups` transformation (``param_groups(optim.adamw, lr=...)`` for
        one group of every parameter): return ``{"state": ..., "param_groups": [...]}`` as
        PyTorch's ``optimizer.state_dict()`` (see the module's notes).
      params: the parameters (with ``tx``), to label the groups' members; needed only where
        the state does not show them (SGD without momentum in several groups).

    Returns:
      ``{index: {name: array}}``; with ``tx``, ``{"state": that, "param_groups": [{key:
      value, ..., "params": [index, ...]}, ...]}``.

    Raises:
      ValueError: ``order`` does not name every parameter once; no or several optimizer
        states where one is expected; SGD without momentum in groups and no ``params``.
      TypeError: ``tx`` was not built by :func:`param_groups` from a torchsem optimizer.

    Several torchsem states (one per group of :func:`param_groups`, each holding its own
    parameters) are merged into the one ``state`` dict PyTorch keeps.
    Reproduces ``torch.optim.Optimizer.state_dict()``.
    """
    if tx is not None:
        return _full_state_dict(opt_state, order, _layout_of(tx), params)
    found = _find(opt_state)
    if len(found) > 1:
        merged: TorchState = {}
        for state in found:
            merged.update(_state_dict_of(state, lambda tree: _torch_index(tree, order)))
        return dict(sorted(merged.items()))
    return _state_dict_of(_the_state(opt_state), lambda tree: _torch_index(tree, order))


def _state_dict_of(state: OptimizerState, indices: Any) -> TorchState:
    """One torchsem state's entries; ``indices(per_parameter_tree)`` numbers its leaves (None: skip)."""
    result: TorchState = {}
    if isinstance(state, SGDState):
        if state.momentum_buffer is None:
            return result
        index_of = indices(state.momentum_buffer)
        flags = None if state.has_momentum_buffer is None else iter(np.asarray(state.has_momentum_buffer))
        for leaf, buf in enumerate(_leaves(state.momentum_buffer)):
            if _is_masked(buf):
                continue
            buf = np.asarray(buf)
            exists = bool(next(flags)) if flags is not None else not _never_written(buf)
            if exists and index_of[leaf] is not None:
                result[index_of[leaf]] = {"momentum_buffer": buf}
        return dict(sorted(result.items()))
    keys = _keys(state)
    columns = {key: _leaves(getattr(state, key)) for key in keys}
    index_of = indices(state.step)
    always = isinstance(state, _MADE_IN_CONSTRUCTOR)
    for leaf, step in enumerate(columns["step"]):
        if _is_masked(step) or index_of[leaf] is None or (not always and float(step) == 0.0):
            continue
        entry = {key: np.asarray(columns[key][leaf]) for key in keys}
        entry["step"] = np.asarray(step, np.float32)
        result[index_of[leaf]] = entry
    return dict(sorted(result.items()))


# ------------------------------------------------------------------ PyTorch's param_groups


class _Group:
    """One parameter group: its torchsem state, its members (leaf positions) and PyTorch's entries."""

    def __init__(self, state: OptimizerState, names: list[str], members: list[int], entries: dict[str, Any]) -> None:
        self.state = state
        self.names = names
        self.members = members
        self.entries = entries
        self.indices: list[int] = []


def _layout_of(tx: Any) -> TorchLayout:
    layout = getattr(tx, "_torch_layout", None)
    if not isinstance(layout, TorchLayout):
        raise TypeError(
            "tx must be built by torchsem.optim.param_groups from a torchsem optimizer "
            "(param_groups(optim.adamw, lr=...) for one group of every parameter): a bare optimizer "
            f"does not record PyTorch's param_groups entries; got {type(tx).__name__}"
        )
    return layout


def _partition_of(opt_state: Any, labels: list[str]) -> Mapping[str, Any]:
    """The ``inner_states`` mapping of :func:`param_groups`' ``optax.partition`` (keys ``group0``...)."""
    found: list[Mapping[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, Mapping):
            if all(label in node for label in labels) and NOT_OPTIMIZED in node:
                found.append(node)
                return
            for value in node.values():
                visit(value)
        elif isinstance(node, (tuple, list)) and not isinstance(node, _STATE_TYPES):
            for value in node:
                visit(value)

    visit(opt_state)
    if len(found) != 1:
        raise ValueError(f"expected one param_groups state (groups {labels}) in opt_state, found {len(found)}")
    return found[0]


def _groups(opt_state: Any, order: Sequence[str] | None, layout: TorchLayout, params: Any) -> list[_Group]:
    """Each group with its members and PyTorch's indices (group after group, each in ``order``)."""
    labels = [f"group{index}" for index in range(len(layout.groups))]
    if layout.labels_of is None:
        state = _the_state(opt_state)
        reference = _reference(state)
        tree = params if reference is None else reference
        if tree is None:
            raise ValueError("pass params=: SGD without momentum keeps no per-parameter state to number")
        names = leaf_names(tree, is_leaf=_is_masked)
        groups = [_Group(state, names, list(range(len(names))), layout.groups[0])]
    else:
        partition = _partition_of(opt_state, labels)
        states = [_the_state(partition[label]) for label in labels]
        leaf_labels = None if params is None else layout.labels_of(params)
        groups = []
        for label, state, entries in zip(labels, states, layout.groups):
            reference = _reference(state)
            if leaf_labels is not None:
                names = leaf_names(params)
                members = [leaf for leaf, own in enumerate(leaf_labels) if own == label]
            elif reference is not None:
                names = leaf_names(reference, is_leaf=_is_masked)
                members = [leaf for leaf, value in enumerate(_leaves(reference)) if not _is_masked(value)]
            else:
                raise ValueError(
                    f"pass params=: {label}'s SGD without momentum keeps no per-parameter state to tell its members"
                )
            groups.append(_Group(state, names, members, entries))
    position = _positions(groups[0].names, order)
    next_index = 0
    for group in groups:
        group.members.sort(key=lambda leaf: position[leaf])
        group.indices = list(range(next_index, next_index + len(group.members)))
        next_index += len(group.members)
    return groups


def _leaf_indices(group: _Group) -> Indices:
    index_of: Indices = [None] * len(group.names)
    for leaf, index in zip(group.members, group.indices):
        index_of[leaf] = index
    return index_of


def _value_at(schedule: Any, count: int) -> float:
    """A schedule's value at ``count`` as the Python float PyTorch's group holds."""
    from .lr_scheduler import LRScheduler, MomentumSchedule

    if isinstance(schedule, LRScheduler):
        return float(schedule.lrs(count + 1)[count])
    if isinstance(schedule, MomentumSchedule):
        return float(schedule.values(count + 1)[count])
    return float(np.asarray(schedule(jnp.asarray(count, jnp.int32))))


def _is_scheduled(value: Any) -> bool:
    return callable(value) or (isinstance(value, (tuple, list)) and any(callable(v) for v in value))


def _entries_now(group: _Group) -> dict[str, Any]:
    """The group's PyTorch entries with every schedule read at the group's update count, then ``initial_lr``."""
    count_array = getattr(group.state, "count", None)
    count = 0 if count_array is None else int(count_array)
    entries: dict[str, Any] = {}
    for key, value in group.entries.items():
        if isinstance(value, (tuple, list)) and _is_scheduled(value):
            value = type(value)(_value_at(v, count) if callable(v) else v for v in value)
        elif callable(value):
            value = _value_at(value, count)
        entries[key] = value
    lr = group.entries.get("lr")
    start = getattr(lr, "_start_lr", None)
    initial = start() if start is not None else None
    if initial is not None:  # PyTorch's LRScheduler adds it to the group it starts from
        entries["initial_lr"] = float(initial)
    return entries


def _full_state_dict(opt_state: Any, order: Sequence[str] | None, layout: TorchLayout, params: Any) -> FullTorchState:
    groups = _groups(opt_state, order, layout, params)
    state: TorchState = {}
    packed: list[dict[str, Any]] = []
    for group in groups:
        index_of = _leaf_indices(group)
        state.update(_state_dict_of(group.state, lambda tree, index_of=index_of: index_of))
        packed.append({**_entries_now(group), "params": list(group.indices)})
    return {"state": dict(sorted(state.items())), "param_groups": packed}


def _plain(value: Any) -> Any:
    """A hyperparameter as a comparable value: arrays and tensors (PyTorch's tensor lr) as numpy."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return host_copy(value)


def _agrees(ours: Any, loaded: Any) -> bool:
    ours, loaded = _plain(ours), _plain(loaded)
    if isinstance(loaded, np.ndarray):  # a tensor hyperparameter: ours rounded to its dtype
        return loaded.size == 1 and np.asarray(ours, loaded.dtype) == loaded.reshape(())
    if isinstance(ours, tuple) or isinstance(loaded, tuple):
        return (
            isinstance(ours, tuple)
            and isinstance(loaded, tuple)
            and len(ours) == len(loaded)
            and all(_agrees(a, b) for a, b in zip(ours, loaded))
        )
    return bool(ours == loaded)


def _check_entries(index: int, group: _Group, loaded: Mapping[str, Any]) -> None:
    for key, ours in group.entries.items():
        if key in IMPLEMENTATION_KEYS or key not in loaded or _is_scheduled(ours):
            continue
        if not _agrees(ours, loaded[key]):
            raise ValueError(
                f"loaded param group {index} has {key}={loaded[key]!r}, but this torchsem transformation's group "
                f"{index} has {key}={ours!r}: torchsem's hyperparameters are fixed when the transformation is built "
                f"(PyTorch's load_state_dict would overwrite them); build it with {key}={loaded[key]!r}"
            )


def _is_full(torch_state: Any) -> bool:
    return isinstance(torch_state, Mapping) and "param_groups" in torch_state and "state" in torch_state


def load_state_dict(
    opt_state: Any,
    torch_state: Mapping[Any, Any],
    order: Sequence[str] | None = None,
    *,
    tx: optax.GradientTransformation | None = None,
    params: Any = None,
) -> Any:
    """``opt_state`` with its per-parameter buffers replaced by PyTorch's.

    Args:
      opt_state: a state of the right shape, e.g. ``tx.init(params)``.
      torch_state: PyTorch's ``optimizer.state_dict()["state"]`` (tensors or arrays), or,
        with ``tx``, the whole ``optimizer.state_dict()`` (``state`` and ``param_groups``). A
        parameter it lacks gets PyTorch's "no state" (zeros, buffer absent, step 0,
        ``mu_product`` 1). Adagrad's must hold every parameter that is not frozen (PyTorch's
        Adagrad makes its state in the constructor).
      order: the parameters' dotted names in PyTorch's order (default: tree-leaf order).
      tx: the :func:`param_groups` transformation, needed for the whole dict: its groups are
        matched with the loaded ones as PyTorch's ``load_state_dict`` matches them, and its
        hyperparameters checked against theirs (see the module's notes).
      params: the parameters, where the state does not show a group's members (as
        :func:`state_dict`).

    Returns:
      The new optimizer state (same structure as ``opt_state``).

    Raises:
      ValueError: PyTorch's ``loaded state dict has a different number of parameter groups``
        and ``loaded state dict contains a parameter group that doesn't match the size of
        optimizer's group``; a loaded hyperparameter that differs from torchsem's (naming the
        group and key); an index with no parameter, a frozen parameter with state, a missing
        or unexpected buffer name, a shape that differs, or an Adagrad parameter without state.
      TypeError: the whole dict without a :func:`param_groups` ``tx``.

    Reproduces ``torch.optim.Optimizer.load_state_dict(state_dict)``.
    """
    if _is_full(torch_state):
        if tx is None:
            raise TypeError(
                "a whole optimizer state_dict (with param_groups) needs tx=, the torchsem.optim.param_groups "
                "transformation; pass torch_state['state'] to load the per-parameter state alone"
            )
        return _load_full(opt_state, torch_state, order, _layout_of(tx), params)
    state = _the_state(opt_state)
    reference = _reference(state)
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
        by_leaf[leaf] = entry
    return _replace(opt_state, state, _loaded_state(state, by_leaf, list(index_of)))


def _load_full(
    opt_state: Any, torch_state: Mapping[str, Any], order: Sequence[str] | None, layout: TorchLayout, params: Any
) -> Any:
    groups = _groups(opt_state, order, layout, params)
    saved_groups = list(torch_state["param_groups"])
    if len(saved_groups) != len(groups):
        raise ValueError("loaded state dict has a different number of parameter groups")
    if any(len(saved["params"]) != len(group.members) for saved, group in zip(saved_groups, groups)):
        raise ValueError(
            "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
        )
    for index, (saved, group) in enumerate(zip(saved_groups, groups)):
        _check_entries(index, group, saved)
    # PyTorch's id_map: the k-th loaded index of a group is the group's k-th parameter here.
    where: dict[int, tuple[int, int]] = {}
    for number, (saved, group) in enumerate(zip(saved_groups, groups)):
        for loaded_index, leaf in zip(saved["params"], group.members):
            where[int(loaded_index)] = (number, leaf)
    by_group: list[dict[int, Mapping[str, Any]]] = [{} for _ in groups]
    for loaded_index, entry in torch_state["state"].items():
        if int(loaded_index) not in where:
            raise ValueError(
                f"loaded state for parameter {loaded_index}, which no loaded param group lists "
                f"(they list {sorted(where)})"
            )
        number, leaf = where[int(loaded_index)]
        by_group[number][leaf] = entry
    for group, by_leaf in zip(groups, by_group):
        if _reference(group.state) is None:
            if by_leaf:
                numbers = sorted(group.indices[group.members.index(leaf)] for leaf in by_leaf)
                raise ValueError(f"loaded state for parameters {numbers}, but SGD without momentum keeps none")
            continue
        opt_state = _replace(opt_state, group.state, _loaded_state(group.state, by_leaf, _leaf_indices(group)))
    return opt_state


def _loaded_state(state: OptimizerState, by_leaf: Mapping[int, Mapping[str, Any]], index_of: Indices) -> Any:
    """``state`` with the entries of ``by_leaf`` (leaf position -> PyTorch's entry) loaded; ``index_of`` names them."""
    if isinstance(state, SGDState):
        fields = ["momentum_buffer"]
    else:
        fields = _keys(state)
    reference_leaves = _leaves(_reference(state))
    for leaf, entry in by_leaf.items():
        if _is_masked(reference_leaves[leaf]):
            raise ValueError(f"PyTorch state for parameter {index_of[leaf]}, which is frozen here (it holds none)")
        if set(entry) != set(fields):
            raise ValueError(
                f"PyTorch state for parameter {index_of[leaf]} has {sorted(entry)}, expected {sorted(fields)}"
            )
    if isinstance(state, _MADE_IN_CONSTRUCTOR):
        missing = sorted(
            index
            for leaf, (value, index) in enumerate(zip(reference_leaves, index_of))
            if not _is_masked(value) and index is not None and leaf not in by_leaf
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

    if isinstance(state, SGDState):
        if state.has_momentum_buffer is None:  # dampening 0: an absent buffer is -0.0 everywhere
            return state._replace(momentum_buffer=column("momentum_buffer", lambda p: jnp.full_like(p, -0.0)))
        exists = jnp.asarray([i in by_leaf for i, leaf in enumerate(reference_leaves) if not _is_masked(leaf)], bool)
        return state._replace(momentum_buffer=column("momentum_buffer", jnp.zeros_like), has_momentum_buffer=exists)

    def no_state(name: str) -> Any:
        if name in _NO_STATE:
            return lambda leaf: jnp.full_like(leaf, _NO_STATE[name])
        return jnp.zeros_like

    return state._replace(**{name: column(name, no_state(name)) for name in fields})


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
