"""Containers: ``torch.nn.Sequential``, ``ModuleList``, ``ModuleDict`` (children named as PyTorch) and ``Identity``.

``Sequential(Linear(4, 3), ReLU(), Linear(3, 1))`` takes its layers positionally, as PyTorch,
and names them ``"0"``, ``"1"``, ``"2"`` (or by the keys of an ``OrderedDict``/``dict``), so its
variables flatten to PyTorch's ``state_dict`` keys (``0.weight``, ``2.bias``) through
:func:`torchsem.convert.to_torch_state_dict`. Layers are Flax modules or plain callables
(``jax.nn.relu``); a layer constructed with an explicit ``name=`` keeps it.

``ModuleList([...])`` and ``ModuleDict({...})`` hold submodules without running them, as
PyTorch's: assign one in ``setup`` (or build it in a compact method with ``name=``) and call its
members, and their variables are ``blocks.0.weight``, ``heads.cls.bias`` as in PyTorch's
``state_dict``. Flax's own ``nn.Sequential`` and a plain list attribute name their children
``layers_0``, ``blocks_0``.
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
        _init_container(self, layers, parent, name)

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


def _init_container(module: nn.Module, layers: tuple[Any, ...], parent: Any, name: str | None) -> None:
    object.__setattr__(module, "layers", tuple(layers))
    object.__setattr__(module, "parent", parent)
    object.__setattr__(module, "name", name)
    module.__post_init__()


def _no_forward(kind: str) -> NotImplementedError:
    return NotImplementedError(f'Module [{kind}] is missing the required "forward" function')


class ModuleList(nn.Module):
    """Submodules in a list, named ``"0"``, ``"1"``, ..., as ``torch.nn.ModuleList(modules)``.

    Indexing (negative too), slicing (a ModuleList of the same members, names kept; inside
    ``apply`` a tuple of the bound members, as Flax cannot create a module there), ``len`` and
    iteration as PyTorch. Like PyTorch's, it has no forward: calling it raises
    ``NotImplementedError``. Flax modules are immutable, so there is no ``append``: build the
    list whole (``ModuleList([Block() for _ in range(n)])``).

    Attributes:
      layers: the members as a tuple, each named by its index.
    """

    layers: tuple[Any, ...] = ()

    preserve_adopted_names = True

    def __init__(
        self,
        modules: Any = None,
        *,
        layers: tuple[Any, ...] | None = None,
        parent: Any = _unspecified_parent,
        name: str | None = None,
    ) -> None:
        if layers is None:
            layers = tuple(_adopt_member("ModuleList", str(i), m) for i, m in enumerate(modules or ()))
        elif modules is not None:
            raise TypeError("ModuleList: give the modules positionally (PyTorch's form) or as layers=, not both")
        _init_container(self, layers, parent, name)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            if self.scope is not None:
                # Bound (inside apply): the members themselves; Flax cannot create a module here.
                return tuple(self.layers[index])
            return ModuleList(layers=tuple(layer.clone(parent=None) for layer in self.layers[index]), parent=None)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"'{type(index).__name__}' object cannot be interpreted as an integer")
        if not -len(self.layers) <= index < len(self.layers):
            raise IndexError(f"index {index} is out of range")
        return self.layers[index]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """PyTorch's ModuleList has no forward; neither has this."""
        raise _no_forward("ModuleList")


class ModuleDict(nn.Module):
    """Submodules by name, in insertion order, as ``torch.nn.ModuleDict(modules)``.

    ``d[key]``, ``key in d``, ``len``, iteration over the keys, ``keys()``, ``values()``,
    ``items()`` as PyTorch; keys must be strings without ``"."`` (PyTorch's TypeError and
    KeyError). No forward, as PyTorch's.

    Attributes:
      layers: the members as a tuple, each named by its key.
    """

    layers: tuple[Any, ...] = ()

    preserve_adopted_names = True

    def __init__(
        self,
        modules: Mapping[str, Any] | Any = None,
        *,
        layers: tuple[Any, ...] | None = None,
        parent: Any = _unspecified_parent,
        name: str | None = None,
    ) -> None:
        if layers is None:
            items = list(modules.items()) if isinstance(modules, Mapping) else list(modules or ())
            members: dict[str, Any] = {}
            for key, module in items:
                if not isinstance(key, str):
                    raise TypeError(f"module name should be a string. Got {type(key).__name__}")
                if "." in key:
                    raise KeyError(f'module name can\'t contain ".", got: {key}')
                if key == "":
                    raise KeyError('module name can\'t be empty string ""')
                members[key] = _adopt_member("ModuleDict", key, module)
            layers = tuple(members.values())
        elif modules is not None:
            raise TypeError("ModuleDict: give the modules positionally (PyTorch's form) or as layers=, not both")
        _init_container(self, layers, parent, name)

    def _members(self) -> dict[str, Any]:
        return {layer.name: layer for layer in self.layers}

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members())

    def __contains__(self, key: object) -> bool:
        return key in self._members()

    def __getitem__(self, key: str) -> Any:
        return self._members()[key]

    def keys(self) -> list[str]:
        return list(self._members())

    def values(self) -> list[Any]:
        return list(self.layers)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._members().items())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """PyTorch's ModuleDict has no forward; neither has this."""
        raise _no_forward("ModuleDict")


def _adopt_member(kind: str, name: str, module: Any) -> Any:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{type(module).__name__} is not a Module subclass")
    return module.clone(parent=None, name=name)


class Identity(nn.Module):
    """Return the input unchanged, as ``torch.nn.Identity(*args, **kwargs)`` (the arguments are ignored)."""

    def __init__(self, *args: Any, parent: Any = _unspecified_parent, name: str | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "name", name)
        self.__post_init__()

    def __call__(self, input: Any) -> Any:
        """The input itself."""
        return input
