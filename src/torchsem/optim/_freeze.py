"""Freezing: PyTorch's ``requires_grad=False`` for an optimizer, built on ``optax.partition``.

``optax.masked(inner, mask)`` does not freeze: it passes the masked-out updates through
untouched, so ``optax.apply_updates`` adds the raw gradient to a "frozen" leaf (with w=1, b=0,
x=1, y=-0.5 and the squared error (w*x + b - y)**2, one step of ``masked(sgd(0.1), {w: False,
b: True})`` moves w from 1 to 4, uphill). ``optax.chain(adam, zero_frozen)`` zeroes the final
update but still feeds the frozen gradients into Adam's moments. :func:`freeze` partitions the
parameters into a trainable part, stepped by the inner transformation (which never sees the
frozen leaves: they hold no state there), and a frozen part sent to ``optax.set_to_zero``, so
a frozen leaf cannot move whatever the inner transformation does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
import optax

from ..autograd import select_leaves
from ..tree import is_selector, leaf_names

Selection = Any | Callable[[str, Any], bool] | str | Iterable[str]
"""Which leaves: a bool pytree shaped like (or a prefix of) the parameters, a predicate
``(dotted_name, param) -> bool``, or dotted names ("fc1.weight") / prefixes ("fc1"), one or a
list, tuple or set of them (told apart by :func:`torchsem.tree.is_selector`)."""

_TRAINABLE = "trainable"
_FROZEN = "frozen"


def parameter_names(params: Any) -> list[str]:
    """PyTorch-style dotted names of the leaves, in tree-leaf order (``{'fc1': {'weight': w}}`` -> ``fc1.weight``).

    :func:`torchsem.tree.leaf_names`.
    """
    return leaf_names(params)


def _selection_mask(params: Any, selection: Selection, argument: str) -> list[bool]:
    """One bool per parameter leaf (tree-leaf order): whether ``selection`` selects it."""
    if is_selector(selection):
        return jax.tree.leaves(select_leaves(params, selection, argument))
    names = leaf_names(params)
    # A bool pytree, possibly a prefix of the parameters: broadcast each bool over its subtree.
    try:
        expanded = jax.tree.map(lambda flag, sub: jax.tree.map(lambda _: flag, sub), selection, params)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{argument} must be a bool pytree shaped like (or a prefix of) the parameters, "
            f"a predicate (name, param) -> bool, or parameter names {names}: {error}"
        ) from None
    flags = jax.tree.leaves(expanded)
    for name, flag in zip(names, flags):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{argument} must hold Python bools (a static mask), got {flag!r} for {name}")
    return [bool(f) for f in flags]


def freeze(
    tx: optax.GradientTransformation,
    frozen: Selection | None = None,
    *,
    trainable: Selection | None = None,
) -> optax.GradientTransformation:
    """Step only the trainable parameters with ``tx``; frozen ones never move and hold no state.

    Built on ``optax.partition({"trainable": tx, "frozen": optax.set_to_zero()}, labels)``.
    Give exactly one of ``frozen`` (positional or keyword) or ``trainable`` (keyword only).
    The positional argument is the *frozen* set, as in ``optax.transforms.freeze(mask)``
    (True = frozen) and as the name says: ``freeze(tx, "fc1.weight")`` is PyTorch's
    ``model.fc1.weight.requires_grad = False``. The labels are computed from the parameters
    passed to ``init`` and ``update`` (a static mask: changing it is a new trace).

    Gradients may hold None (``torchsem.autograd.grad``): a frozen leaf's None becomes a zero
    update; a trainable leaf's None goes to ``tx`` (torchsem's optimizers skip it as PyTorch).

    Args:
      tx: the inner transformation (a torchsem optimizer, or any optax transformation).
      frozen: what never moves: a bool pytree shaped like (or a prefix of) the parameters
        (True = frozen), a predicate ``(dotted_name, param) -> bool``, or dotted
        names/prefixes (``"fc1"`` is ``fc1.weight`` and ``fc1.bias``).
      trainable: keyword only, the complement in any of the same forms: what ``tx`` steps.

    Returns:
      An ``optax.GradientTransformation`` whose state is an ``optax.PartitionState``;
      ``update(grads, state, params)`` needs ``params``. When ``tx`` is a torchsem optimizer
      the result is a :class:`TorchOptimizer`, whose ``step`` is exact.

    Raises:
      ValueError: both or neither of ``trainable``/``frozen``; a name that matches no
        parameter (the message lists the parameters' names).

    Reproduces PyTorch's ``param.requires_grad = False`` as the optimizer sees it: no gradient,
    so ``optimizer.step()`` skips the parameter and keeps no state for it.
    """
    if (trainable is None) == (frozen is None):
        raise ValueError("give exactly one of frozen (positional or frozen=) or trainable=")

    def labels_of(params: Any) -> list[str]:
        if trainable is not None:
            flags = _selection_mask(params, trainable, "trainable")
        else:
            flags = [not f for f in _selection_mask(params, frozen, "frozen")]
        return [_TRAINABLE if t else _FROZEN for t in flags]

    from ._param_groups import partition_by_label

    transforms = {_TRAINABLE: tx, _FROZEN: optax.set_to_zero()}
    return partition_by_label(transforms, labels_of, "freeze", stateless=(_FROZEN,))
