"""Parameter groups: ``torch.optim.X([{"params": ..., "lr": ...}, ...], **defaults)`` as one optax transformation.

PyTorch's optimizers take a list of groups, each a set of parameters with its own
hyperparameters (the canonical use: no weight decay on biases and norm parameters);
hyperparameters a group does not set come from the optimizer's keyword arguments.
:func:`param_groups` builds one torchsem optimizer per group and steps each group's
parameters with its own, through ``optax.partition``. A parameter in no group is not given to
the optimizer, so it never moves and holds no state (as in PyTorch); a parameter in two groups
is PyTorch's ``ValueError``.

:func:`partition_by_label` is the mechanism, shared with :func:`torchsem.optim.freeze`: labels
computed from the parameters' names, one transformation per label, the exact ``step`` of
torchsem's optimizers kept.

PyTorch's layout: the transformation that :func:`param_groups` returns records each group as
``optimizer.state_dict()["param_groups"]`` lists it (``_torch_layout``): every key PyTorch
2.13 puts there for that class, in PyTorch's order (the keys the group sets, in the group's
order, then the constructor's defaults) and with PyTorch's values and types (a default
PyTorch spells ``0`` is the int ``0``; ``foreach=None``, ``capturable=False``... are PyTorch's
implementation selectors, which torchsem does not have). :func:`torchsem.optim.state_dict`
and :func:`torchsem.optim.load_state_dict` read it (``tx=``). ``param_groups(optim.adamw,
lr=1e-3)`` without groups is ``torch.optim.AdamW(model.parameters(), lr=1e-3)``: one group of
every parameter, the plain optimizer (same state, same step) with that record.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import TorchOptimizer
from ._common import step as optimizer_step

__all__ = ["NOT_OPTIMIZED", "ParamGroup", "TorchLayout", "param_groups", "partition_by_label"]

NOT_OPTIMIZED = "not_optimized"
"""The label of parameters that no group holds (stepped by ``optax.set_to_zero``)."""

LabelsOf = Callable[[Any], list[str]]
"""``params -> one label per parameter leaf (tree-leaf order)``."""


class ParamGroup(dict):
    """One group as PyTorch's ``optimizer.param_groups[i]`` shows it, without ``params``: its hyperparameters."""


_BETAS = (0.9, 0.999)

# PyTorch 2.13's ``optimizer.defaults`` per class: keys in the order its constructor builds the
# dict, values with the types of its signature's defaults (``momentum=0`` is an int there).
TORCH_DEFAULTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "SGD": (
        ("lr", 1e-3),
        ("momentum", 0),
        ("dampening", 0),
        ("weight_decay", 0),
        ("nesterov", False),
        ("maximize", False),
        ("foreach", None),
        ("differentiable", False),
        ("fused", None),
    ),
    "Adam": (
        ("lr", 1e-3),
        ("betas", _BETAS),
        ("eps", 1e-8),
        ("weight_decay", 0),
        ("amsgrad", False),
        ("maximize", False),
        ("foreach", None),
        ("capturable", False),
        ("differentiable", False),
        ("fused", None),
        ("decoupled_weight_decay", False),
    ),
    "AdamW": (
        ("lr", 1e-3),
        ("betas", _BETAS),
        ("eps", 1e-8),
        ("weight_decay", 1e-2),
        ("amsgrad", False),
        ("maximize", False),
        ("foreach", None),
        ("capturable", False),
        ("differentiable", False),
        ("fused", None),
        ("decoupled_weight_decay", True),
    ),
    "RMSprop": (
        ("lr", 1e-2),
        ("momentum", 0),
        ("alpha", 0.99),
        ("eps", 1e-8),
        ("centered", False),
        ("weight_decay", 0),
        ("capturable", False),
        ("foreach", None),
        ("maximize", False),
        ("differentiable", False),
    ),
    "Adagrad": (
        ("lr", 1e-2),
        ("lr_decay", 0),
        ("eps", 1e-10),
        ("weight_decay", 0),
        ("initial_accumulator_value", 0),
        ("foreach", None),
        ("maximize", False),
        ("differentiable", False),
        ("fused", None),
    ),
    "Adadelta": (
        ("lr", 1.0),
        ("rho", 0.9),
        ("eps", 1e-6),
        ("weight_decay", 0),
        ("maximize", False),
        ("capturable", False),
        ("foreach", None),
        ("differentiable", False),
    ),
    "Adamax": (
        ("lr", 2e-3),
        ("betas", _BETAS),
        ("eps", 1e-8),
        ("weight_decay", 0),
        ("foreach", None),
        ("maximize", False),
        ("differentiable", False),
        ("capturable", False),
    ),
    "NAdam": (
        ("lr", 2e-3),
        ("betas", _BETAS),
        ("eps", 1e-8),
        ("weight_decay", 0),
        ("momentum_decay", 4e-3),
        ("decoupled_weight_decay", False),
        ("maximize", False),
        ("foreach", None),
        ("capturable", False),
        ("differentiable", False),
    ),
    "RAdam": (
        ("lr", 1e-3),
        ("betas", _BETAS),
        ("eps", 1e-8),
        ("weight_decay", 0),
        ("maximize", False),
        ("foreach", None),
        ("capturable", False),
        ("decoupled_weight_decay", False),
        ("differentiable", False),
    ),
}
"""``torch.optim.X(params).defaults`` for each class torchsem reproduces (checked against live PyTorch)."""

IMPLEMENTATION_KEYS = ("foreach", "capturable", "differentiable", "fused")
"""PyTorch's implementation selectors: they pick a kernel, not the arithmetic torchsem reproduces
(its default CPU path); never compared when loading."""


def _torch_class(optimizer: Callable[..., Any]) -> str | None:
    from . import _adadelta, _adagrad, _adam, _adamax, _nadam, _radam, _rmsprop, _sgd

    classes: dict[Any, str] = {
        _sgd.sgd: "SGD",
        _adam.adam: "Adam",
        _adam.adamw: "AdamW",
        _rmsprop.rmsprop: "RMSprop",
        _adagrad.adagrad: "Adagrad",
        _adadelta.adadelta: "Adadelta",
        _adamax.adamax: "Adamax",
        _nadam.nadam: "NAdam",
        _radam.radam: "RAdam",
    }
    return classes.get(optimizer)


class TorchLayout(NamedTuple):
    """What PyTorch's ``optimizer.state_dict()["param_groups"]`` needs from a :func:`param_groups` transformation.

    Attributes:
      torch_class: the PyTorch class (``"AdamW"``).
      groups: each group's entries in PyTorch's key order, without ``params``; a value may be
        an optax schedule (``lr``, ``momentum``, ``betas[0]``), read at the group's update count.
      labels_of: ``params -> one label per leaf`` (``group{i}`` or :data:`NOT_OPTIMIZED`); None
        for the single group of ``param_groups(optimizer, **defaults)`` (every parameter).
    """

    torch_class: str
    groups: tuple[dict[str, Any], ...]
    labels_of: LabelsOf | None


def _torch_group(torch_class: str, group: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """One group's entries as PyTorch's ``add_param_group`` orders them: the group's own keys, then the defaults."""
    table = dict(TORCH_DEFAULTS[torch_class])
    resolved = {**table, **{k: v for k, v in defaults.items() if k in table}}
    entries = {k: v for k, v in group.items() if k != "params"}
    for key, value in resolved.items():
        entries.setdefault(key, value)
    return entries


def _leaves(grads: Any, params: Any, what: str) -> tuple[Any, list[Any], list[Any]]:
    if params is None:
        raise ValueError(f"params is required: {what} labels the parameters by name; call update(grads, state, params)")
    param_leaves, treedef = jax.tree.flatten(params)
    grad_leaves, grad_treedef = jax.tree.flatten(grads, is_leaf=lambda x: x is None)
    if grad_treedef != treedef:  # type: ignore[operator]  # jaxlib ships no stub for PyTreeDef
        raise ValueError(
            f"grads must have the structure of params (None allowed for a leaf); "
            f"got grads {grad_treedef} for params {treedef}"
        )
    return treedef, param_leaves, grad_leaves


def partition_by_label(
    transforms: Mapping[str, optax.GradientTransformation],
    labels_of: LabelsOf,
    what: str,
    stateless: Sequence[str] = (),
) -> optax.GradientTransformation:
    """Step each parameter with the transformation of its label; ``optax.partition`` with None gradients.

    A leaf whose gradient is None goes to its transformation as None (torchsem's optimizers skip
    it, as ``optimizer.step()`` skips a parameter without ``.grad``), except under a
    ``stateless`` label (``optax.set_to_zero``: the leaf never moves), which gets zeros. When
    every stateful transformation is a torchsem optimizer, the result is a
    :class:`TorchOptimizer` whose ``step`` gives PyTorch's parameters bit for bit.

    Args:
      transforms: label -> transformation.
      labels_of: the label of each parameter leaf, computed from the parameters (a static
        labelling: a different one is a new trace).
      what: the caller's name, for errors.
      stateless: the labels whose transformation is ``optax.set_to_zero()``.
    """
    zeroed = set(stateless)

    def partition(params: Any) -> optax.GradientTransformation:
        treedef = jax.tree.structure(params)
        labels = treedef.unflatten(labels_of(params))  # type: ignore[attr-defined]  # no PyTreeDef stub
        return optax.partition(dict(transforms), labels)

    def init(params: Any) -> Any:
        return partition(params).init(params)

    def update(grads: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        treedef, param_leaves, grad_leaves = _leaves(grads, params, what)
        labels = labels_of(params)
        grads = treedef.unflatten(
            [
                jnp.zeros_like(p) if g is None and lab in zeroed else g
                for p, g, lab in zip(param_leaves, grad_leaves, labels)
            ]
        )
        updates, new_state = partition(params).update(grads, state, params)
        update_leaves = jax.tree.flatten(updates, is_leaf=lambda x: x is None)[0]
        updates = treedef.unflatten(
            [jnp.zeros_like(p) if u is None else u for p, u in zip(param_leaves, update_leaves)]
        )
        return updates, new_state

    stateful = {label: tx for label, tx in transforms.items() if label not in zeroed}
    if any(getattr(tx, "step", None) is None for tx in stateful.values()):
        return optax.GradientTransformation(init, update)

    def step(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        # Each stateful label's own exact step on its leaves (MaskedNode elsewhere, as
        # optax.partition hands them over); leaves of a stateless label stay as they are.
        treedef, param_leaves, grad_leaves = _leaves(grads, params, what)
        labels = labels_of(params)
        hidden = optax.MaskedNode()
        new_leaves = list(param_leaves)
        inner_states = dict(state.inner_states)
        for label, tx in stateful.items():
            mine = [lab == label for lab in labels]
            if not any(mine):
                continue
            sub_params = treedef.unflatten([p if m else hidden for p, m in zip(param_leaves, mine)])
            sub_grads = treedef.unflatten([g if m else hidden for g, m in zip(grad_leaves, mine)])
            inner = state.inner_states[label]
            stepped, new_inner = optimizer_step(tx, sub_grads, inner.inner_state, sub_params)
            values = iter(jax.tree.leaves(stepped))
            new_leaves = [next(values) if m else p for p, m in zip(new_leaves, mine)]
            inner_states[label] = inner._replace(inner_state=new_inner)
        return treedef.unflatten(new_leaves), state._replace(inner_states=inner_states)

    return TorchOptimizer(init, update, step)


def _group_label(index: int) -> str:
    return f"group{index}"


def param_groups(
    optimizer: Callable[..., optax.GradientTransformation],
    groups: Sequence[Mapping[str, Any]] | None = None,
    **defaults: Any,
) -> optax.GradientTransformation:
    """``torch.optim.X(groups, **defaults)``: one torchsem optimizer per parameter group.

    ``param_groups(optim.sgd, [{"params": decayed, "weight_decay": 5e-4}, {"params":
    not_decayed}], lr=0.1, momentum=0.9)`` is PyTorch's ``SGD([{"params": [...],
    "weight_decay": 5e-4}, {"params": [...]}], lr=0.1, momentum=0.9)``. A group's ``params``
    selects parameters as :func:`torchsem.optim.freeze` does: dotted names or prefixes
    (``"fc1"``, ``["layer1", "fc.bias"]``), a predicate ``(dotted_name, param) -> bool`` (e.g.
    ``lambda name, p: p.ndim <= 1`` for biases and norm parameters), or a bool pytree.

    Within a group PyTorch's numbering (its ``state_dict``) follows the ``order`` given to
    :func:`torchsem.optim.state_dict` (``model.named_parameters()`` order), as
    ``[p for n, p in model.named_parameters() if selected(n)]`` lists them; groups are
    numbered one after the other.

    Args:
      optimizer: a torchsem optimizer factory (``torchsem.optim.sgd``, ``adamw``, ...).
      groups: PyTorch's list of group dicts, each with ``params`` and any of ``optimizer``'s
        keyword arguments. None (the default): ``torch.optim.X(model.parameters(),
        **defaults)``, one group of every parameter; the result is then ``optimizer(**defaults)``
        itself (its state and step unchanged) with the group recorded.
      **defaults: the hyperparameters of every group that does not set its own.

    Returns:
      A transformation (a :class:`TorchOptimizer` with an exact ``step``) whose
      ``param_groups`` attribute lists each group's resolved hyperparameters, as PyTorch's
      ``optimizer.param_groups`` (without the ``params``); ``update`` needs ``params``. When
      ``optimizer`` is one of torchsem's nine, ``_torch_layout`` (a :class:`TorchLayout`) holds
      the groups as PyTorch's ``state_dict()`` lists them, for :func:`torchsem.optim.state_dict`.

    Raises:
      TypeError: a group is not a dict with ``params``, or sets an argument ``optimizer`` does
        not take. ValueError: no groups; a parameter in more than one group (PyTorch's
        message); a name that matches no parameter.
    """
    from ._freeze import _selection_mask

    torch_class = _torch_class(optimizer)
    single = groups is None
    if groups is None:
        groups = [{"params": lambda name, p: True}]
    if isinstance(groups, Mapping) or not isinstance(groups, Sequence) or isinstance(groups, str):
        raise TypeError(f"groups must be a list of dicts (PyTorch's param groups), got {type(groups).__name__}")
    if not groups:
        raise ValueError("optimizer got an empty parameter list")
    accepted = inspect.signature(optimizer).parameters
    transforms: dict[str, optax.GradientTransformation] = {}
    resolved: list[ParamGroup] = []
    for index, group in enumerate(groups):
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"param group {index} must be a dict with a 'params' entry, got {group!r}")
        options = {**defaults, **{k: v for k, v in group.items() if k != "params"}}
        unknown = sorted(k for k in options if k not in accepted)
        if unknown:
            raise TypeError(
                f"param group {index}: {getattr(optimizer, '__name__', optimizer)} has no argument {unknown}"
            )
        transforms[_group_label(index)] = optimizer(**options)
        hyper = {
            name: options.get(name, p.default)
            for name, p in accepted.items()
            if p.default is not inspect.Parameter.empty
        }
        resolved.append(ParamGroup(hyper))
    layout_groups = (
        tuple(_torch_group(torch_class, group, defaults) for group in groups) if torch_class is not None else ()
    )
    if single:
        tx = transforms[_group_label(0)]
        _record(tx, tuple(resolved), None if torch_class is None else TorchLayout(torch_class, layout_groups, None))
        return tx
    transforms[NOT_OPTIMIZED] = optax.set_to_zero()
    selections = [group["params"] for group in groups]

    def labels_of(params: Any) -> list[str]:
        flags = [
            _selection_mask(params, selection, f"param group {i} params") for i, selection in enumerate(selections)
        ]
        labels = []
        for leaf in range(len(flags[0]) if flags else 0):
            owners = [i for i, f in enumerate(flags) if f[leaf]]
            if len(owners) > 1:
                raise ValueError("some parameters appear in more than one parameter group")
            labels.append(_group_label(owners[0]) if owners else NOT_OPTIMIZED)
        return labels

    tx = partition_by_label(transforms, labels_of, "param_groups", stateless=(NOT_OPTIMIZED,))
    _record(tx, tuple(resolved), None if torch_class is None else TorchLayout(torch_class, layout_groups, labels_of))
    return tx


def _record(tx: optax.GradientTransformation, resolved: tuple[ParamGroup, ...], layout: TorchLayout | None) -> None:
    """Attach the groups' resolved hyperparameters and PyTorch's layout to ``tx`` (a :class:`TorchOptimizer`)."""
    if isinstance(tx, TorchOptimizer):
        # A NamedTuple subclass instance takes attributes (TorchOptimizer does the same for step).
        tx.param_groups = resolved
        tx._torch_layout = layout
