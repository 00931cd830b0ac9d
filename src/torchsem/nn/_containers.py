"""Containers: ``torch.nn.Sequential`` (children named ``"0"``, ``"1"``, ...) and ``torch.nn.Identity``.

``Sequential(Linear(4, 3), ReLU(), Linear(3, 1))`` takes its layers positionally, as PyTorch,
and names them ``"0"``, ``"1"``, ``"2"`` (or by the keys of an ``OrderedDict``/``dict``), so its
variables flatten to PyTorch's ``state_dict`` keys (``0.weight``, ``2.bias``) through
:func:`torchsem.convert.to_torch_state_dict`. Layers are Flax modules or plain callables
(``jax.nn.relu``); a layer constructed with an explicit ``name=`` keeps it.

Flax's own ``nn.Sequential`` takes a list and names its children ``layers_0``, ``layers_1``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.linen.module import _unspecified_parent

Array = jax.Array


def _adopt(name: str, layer: Any) -> Any:
    """A Flax module as an unbound copy named ``name``; a plain callable as it is."""
    if isinstance(layer, nn.Module):
        # parent=None: also detaches a layer built inside another module's compact method, which
        # Flax would otherwise bind to that module (``Linear_0``) instead of this container.
        return layer.clone(parent=None, name=name)
    if not callable(layer):
        raise TypeError(f"Sequential: {type(layer).__name__} is not a Module subclass (nor a callable)")
    return layer


class Sequential(nn.Module):
    """Apply the layers in order, as ``torch.nn.Sequential(*layers)`` / ``Sequential(OrderedDict)``.

    The output of each layer is the input of the next; an empty ``Sequential`` is the identity.
    Keyword arguments of the call (``deterministic=``, ``use_running_average=``, ``train=``) are
    passed to each layer whose ``__call__`` accepts them, so one flag drives every Dropout and
    BatchNorm inside, as ``model.train()``/``model.eval()`` drive PyTorch's.

    Attributes:
      layers: the layers as a tuple, each already named (``"0"``, ``"1"``, ... by default).
    """

    layers: tuple[Any, ...] = ()

    # Children keep the names given here ("0", "1") instead of Flax's attribute-based "layers_0".
    preserve_adopted_names = True

    def __init__(
        self,
        *args: Any,
        layers: tuple[Any, ...] | None = None,
        parent: Any = _unspecified_parent,
        name: str | None = None,
    ) -> None:
        if layers is None:  # PyTorch's form; ``layers=`` is how Flax's clone rebuilds the module
            if len(args) == 1 and isinstance(args[0], Mapping):
                items = [(str(key), value) for key, value in args[0].items()]
            else:
                items = [(str(index), value) for index, value in enumerate(args)]
            layers = tuple(_adopt(key, value) for key, value in items)
        elif args:
            raise TypeError("Sequential: give the layers positionally (PyTorch's form) or as layers=, not both")
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "name", name)
        self.__post_init__()

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Any:
        """``seq[i]`` is the layer; ``seq[a:b]`` a Sequential of those layers, their names kept (as PyTorch)."""
        if isinstance(index, slice):
            return Sequential(
                layers=tuple(
                    layer.clone(parent=None) if isinstance(layer, nn.Module) else layer for layer in self.layers[index]
                )
            )
        return self.layers[index]

    @nn.compact
    def __call__(self, input: Any, **kwargs: Any) -> Any:
        """Run the layers in order; each gets the keyword arguments its ``__call__`` accepts."""
        output = input
        for layer in self.layers:
            output = layer(output, **_accepted(layer, kwargs))
        return output


def _accepted(layer: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if not kwargs:
        return {}
    target = type(layer).__call__ if isinstance(layer, nn.Module) else layer
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(kwargs)
    return {key: value for key, value in kwargs.items() if key in parameters}


class Identity(nn.Module):
    """Return the input unchanged, as ``torch.nn.Identity(*args, **kwargs)`` (the arguments are ignored)."""

    def __init__(self, *args: Any, parent: Any = _unspecified_parent, name: str | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "name", name)
        self.__post_init__()

    def __call__(self, input: Any) -> Any:
        """The input itself."""
        return input
