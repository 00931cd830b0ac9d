"""None gradients: a parameter whose gradient is None is skipped, as ``optimizer.step()`` skips it.

``torchsem.autograd.grad`` returns None where PyTorch leaves ``.grad`` None (a frozen parameter,
one cut off by ``detach``). In JAX None is a pytree node without children, so a gradient tree
with None leaves flattens to fewer leaves than the parameters; the optimizers flatten it with
``is_leaf=lambda x: x is None`` against the parameters' structure and run the per-parameter
step only where a gradient exists. Which leaves are None is static structure: under ``jax.jit``
each pattern of None leaves is its own trace (PyTorch's frozen set rarely changes, so in
practice this is one or two compilations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp


def _is_none(x: Any) -> bool:
    return x is None


def gradient_leaves(grads: Any, params: Any) -> tuple[Any, list[Any], list[Any]]:
    """The parameters' tree structure, their leaves, and the gradients' leaves (None kept).

    Raises:
      ValueError: ``params`` is None, or the gradients are not shaped like the parameters.
    """
    if params is None:
        raise ValueError(
            "params is required: torch.optim's step reads the parameters (weight decay, and the new "
            "value is computed from them); call update(grads, state, params)"
        )
    param_leaves, treedef = jax.tree.flatten(params)
    grad_leaves, grad_treedef = jax.tree.flatten(grads, is_leaf=_is_none)
    if grad_treedef != treedef:  # type: ignore[operator]  # jaxlib ships no stub for PyTreeDef
        raise ValueError(
            "grads must have the structure of params (None allowed in place of a leaf's gradient); "
            f"got grads {grad_treedef} for params {treedef}"
        )
    for index, (p, g) in enumerate(zip(param_leaves, grad_leaves)):
        if g is None:
            continue
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"gradient {index} (tree leaf order) has shape {jnp.shape(g)}, its parameter has shape {jnp.shape(p)}"
            )
    return treedef, param_leaves, grad_leaves


def map_present(
    step: Callable[..., tuple[Any, ...]],
    grads: Any,
    params: Any,
    per_parameter_state: Sequence[Any],
) -> tuple[Any, list[Any]]:
    """Run ``step(param, grad, *state_leaves) -> (new_param, *new_state_leaves)`` where grad is not None.

    A leaf whose gradient is None keeps its value and its state leaves unchanged.

    Args:
      step: the per-parameter step.
      grads: gradients shaped like ``params``, None allowed for a leaf.
      params: the current parameters.
      per_parameter_state: state trees shaped like ``params`` (one leaf per parameter).

    Returns:
      ``(new_params, new_state_trees)``.
    """
    treedef, param_leaves, grad_leaves = gradient_leaves(grads, params)
    state_leaves = [treedef.flatten_up_to(tree) for tree in per_parameter_state]
    new_params: list[Any] = []
    new_state: list[list[Any]] = [[] for _ in per_parameter_state]
    for index, (p, g) in enumerate(zip(param_leaves, grad_leaves)):
        own_state = [leaves[index] for leaves in state_leaves]
        if g is None:
            new_p, new_own = p, own_state
        else:
            new_p, *new_own = step(p, g, *own_state)
        new_params.append(new_p)
        for column, value in zip(new_state, new_own):
            column.append(value)
    return treedef.unflatten(new_params), [treedef.unflatten(column) for column in new_state]
