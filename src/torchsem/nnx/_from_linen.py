"""``from_linen``: a built torchsem linen module as NNX modules, container by container.

A linen ``Sequential`` / ``ModuleList`` / ``ModuleDict`` becomes the NNX container of the same
name whose members are converted in turn (the NNX model has the same children, named as
PyTorch names them); a module whose class has a twin (``torchsem.nn.Linear``) becomes that twin;
anything else (a user's linen module, a subclass with its own ``__call__``) is wrapped whole
with :func:`torchsem.nnx.wrap`, which needs an example input.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from .. import nn as _nn
from ._containers import ModuleDict, ModuleList, Sequential
from ._twin import mode_argument, wrap

__all__ = ["from_linen", "twin_of"]


def twin_of(linen_class: type) -> Any:
    """The ``torchsem.nnx`` class whose linen class is exactly ``linen_class``, or None.

    Args:
      linen_class: a linen module class (``torchsem.nn.Linear``).

    Returns:
      The twin class (``torchsem.nnx.Linear``), or None (a subclass is not its base's twin: its
      ``__call__`` may differ).
    """
    from . import _layers

    for name in _layers.LAYERS:
        candidate = getattr(_layers, name)
        if candidate.linen_class is linen_class:
            return candidate
    return None


def _shapes(values: tuple[Any, ...]) -> tuple[jax.ShapeDtypeStruct, ...]:
    return tuple(jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in values)


def _eval_mode(linen_module: nn.Module) -> dict[str, Any]:
    argument = mode_argument(type(linen_module))
    if argument in (None, "**") or getattr(linen_module, argument, None) is not None:
        return {}
    return {argument: argument != "train"}  # eval: train=False, use_running_average/deterministic=True


def _output_shape(linen_module: Any, example: tuple[jax.ShapeDtypeStruct, ...]) -> tuple[jax.ShapeDtypeStruct, ...]:
    """The shape of a Sequential layer's output on ``example`` (traced, never run)."""
    if not isinstance(linen_module, nn.Module):
        return _shapes((jax.eval_shape(linen_module, *example),))

    def call(key: jax.Array, *xs: jax.Array) -> Any:
        rngs = {"params": key, "dropout": key}
        return linen_module.init_with_output(rngs, *xs, **_eval_mode(linen_module))[0]

    return _shapes((jax.eval_shape(call, jax.random.key(0), *example),))


def from_linen(linen_module: Any, *example_inputs: Any, rngs: nnx.Rngs | None = None, **example_kwargs: Any) -> Any:
    """A built linen module as NNX modules: containers as NNX containers, layers as their twins.

    Args:
      linen_module: an unbound torchsem (or any Flax linen) module; anything else (an NNX
        module, a Sequential's ``jax.nn.relu``) is returned as it is.
      *example_inputs: arrays or ``jax.ShapeDtypeStruct`` of an example call; needed only where
        a module without a twin is wrapped (a Sequential hands its layers their input shapes).
      rngs: NNX rng streams (``params`` initialises; ``dropout`` draws masks).
      **example_kwargs: static keyword arguments of the example call (for a wrapped module).

    Returns:
      The NNX model: :class:`~torchsem.nnx.Sequential` / ``ModuleList`` / ``ModuleDict`` of the
      converted members, the module's twin, or :func:`~torchsem.nnx.wrap` of it.

    Raises:
      ValueError: a module without a twin and no example input to wrap it on.

    PyTorch counterpart: none (a PyTorch model is its own NNX form).
    """
    if not isinstance(linen_module, nn.Module):
        return linen_module
    kind = type(linen_module)
    if kind is _nn.Sequential:
        example: tuple[jax.ShapeDtypeStruct, ...] | None = _shapes(example_inputs) if example_inputs else None
        members = {}
        for index, layer in enumerate(linen_module.layers):
            name = layer.name if isinstance(layer, nn.Module) and layer.name is not None else str(index)
            members[name] = from_linen(layer, *(example or ()), rngs=rngs)
            if example is not None and index + 1 < len(linen_module.layers):
                example = _output_shape(layer, example)
        return Sequential(members)
    if kind in (_nn.ModuleList, _nn.ModuleDict):
        converted = {layer.name: from_linen(layer, rngs=rngs) for layer in linen_module.layers}
        return ModuleList(converted.values()) if kind is _nn.ModuleList else ModuleDict(converted)
    twin = twin_of(kind)
    if twin is not None:
        return twin.from_linen(linen_module.clone(parent=None, name=None), rngs=rngs)
    if not example_inputs:
        raise ValueError(
            f"torchsem.nnx.from_linen: {kind.__name__} has no torchsem.nnx twin; give an example input to wrap it on"
        )
    if rngs is None:
        raise TypeError("torchsem.nnx.from_linen: wrapping a module needs rngs (an nnx.Rngs)")
    return wrap(linen_module, *example_inputs, rngs=rngs, **example_kwargs)
