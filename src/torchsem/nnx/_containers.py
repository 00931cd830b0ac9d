"""``torchsem.nnx.Sequential``, ``ModuleList``, ``ModuleDict``: PyTorch's containers as NNX modules.

The members are attributes named as PyTorch names them (``"0"``, ``"1"``, ... or the keys), so
the NNX paths and the ``state_dict`` keys are PyTorch's (``('0', 'weight')``, ``0.weight``,
``heads.cls.bias``). The mode needs no handing on: ``model.train()`` / ``model.eval()`` /
``nnx.view`` reach every module inside through NNX's graph, as PyTorch's ``train()`` recurses.
Unlike the linen containers, these are mutable, as PyTorch's are (``append``, ``insert``,
``del``, ``d[key] = module``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flax import nnx

__all__ = ["ModuleDict", "ModuleList", "Sequential"]


def _no_forward(kind: str) -> NotImplementedError:
    return NotImplementedError(f'Module [{kind}] is missing the required "forward" function')


def _member(module: Any) -> Any:
    """A ModuleList/ModuleDict member: an NNX module (PyTorch's ``add_module`` check and message)."""
    if not isinstance(module, nnx.Module):
        raise TypeError(f"{type(module).__name__} is not a Module subclass")
    return module


class _Container(nnx.Module):
    """Members held as attributes, their names (in PyTorch's order) in ``_names``."""

    _names: tuple[str, ...]

    def _set_members(self, items: Iterable[tuple[str, Any]]) -> None:
        for name in getattr(self, "_names", ()):
            delattr(self, name)
        items = list(items)
        for name, value in items:
            setattr(self, name, value)
        self._names = tuple(name for name, _ in items)

    def _items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self._names]

    def __len__(self) -> int:
        return len(self._names)


class Sequential(_Container):
    """Apply the layers in order, as ``torch.nn.Sequential(*layers)`` / ``Sequential(OrderedDict)``.

    The children are attributes named ``"0"``, ``"1"``, ... (or by the mapping's keys), so the
    NNX paths and the ``state_dict`` keys are PyTorch's (``('0', 'weight')``, ``0.weight``).
    Layers are NNX modules or plain callables (``jax.nn.relu``).

    PyTorch counterpart: ``torch.nn.Sequential``.
    """

    def __init__(self, *layers: Any) -> None:
        """Hold ``layers`` (positionally, or one mapping of names to layers) in order.

        Args:
          *layers: NNX modules or callables, or a single mapping of names to them.

        Raises:
          TypeError: a layer that is not callable.
        """
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            items = [(str(key), value) for key, value in layers[0].items()]
        else:
            items = [(str(index), value) for index, value in enumerate(layers)]
        for _, layer in items:
            if not callable(layer):
                raise TypeError(f"Sequential: {type(layer).__name__} is not a Module subclass (nor a callable)")
        self._set_members(items)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return (getattr(self, name) for name in self._names)

    def __getitem__(self, index: int | slice) -> Any:
        """``seq[i]``: the i-th layer (negative indices count from the end); ``seq[a:b]``: a Sequential, names kept.

        Raises:
          IndexError: ``index`` out of range (PyTorch's message).
        """
        if isinstance(index, slice):
            return Sequential(OrderedDict(self._items()[index]))
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range")
        return getattr(self, self._names[index])

    def append(self, layer: Any) -> Sequential:
        """Add ``layer`` at the end, named by its position (``torch.nn.Sequential.append``).

        Returns:
          This Sequential.
        """
        self._set_members([*self._items(), (str(len(self)), layer)])
        return self

    def __call__(self, input: Any) -> Any:
        """Run the layers in order, each on the previous one's output.

        Args:
          input: the first layer's input.

        Returns:
          The last layer's output (``input`` itself for an empty Sequential).
        """
        output = input
        for layer in self:
            output = layer(output)
        return output


class ModuleList(_Container):
    """NNX modules in a list, named ``"0"``, ``"1"``, ..., as ``torch.nn.ModuleList(modules)``.

    Indexing (negative too), slicing (a ModuleList of the same members, renumbered, as
    PyTorch's), assignment, ``del``, ``append``, ``extend``, ``insert``, ``len`` and iteration,
    with PyTorch's renumbering. Like PyTorch's, it has no forward.

    PyTorch counterpart: ``torch.nn.ModuleList``.
    """

    def __init__(self, modules: Iterable[Any] | None = None) -> None:
        """Hold ``modules`` in order.

        Args:
          modules: NNX modules (torchsem twins or any ``nnx.Module``).

        Raises:
          TypeError: a member that is not an NNX module (PyTorch's message).
        """
        self._set_members((str(i), _member(m)) for i, m in enumerate(modules or ()))

    def _index(self, index: int) -> int:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"'{type(index).__name__}' object cannot be interpreted as an integer")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range")
        return index % len(self)

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, name) for name in self._names)

    def __getitem__(self, index: int | slice) -> Any:
        """``modules[i]`` is the member; ``modules[a:b]`` a ModuleList of those members (renumbered).

        Raises:
          IndexError: ``index`` out of range; TypeError: not an integer (PyTorch's messages).
        """
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        return getattr(self, self._names[self._index(index)])

    def __setitem__(self, index: int, module: Any) -> None:
        """``modules[i] = module`` (``torch.nn.ModuleList.__setitem__``)."""
        members = list(self)
        members[self._index(index)] = _member(module)
        self._set_members((str(i), m) for i, m in enumerate(members))

    def __delitem__(self, index: int | slice) -> None:
        """``del modules[i]`` / ``del modules[a:b]``; the rest are renumbered, as PyTorch's."""
        members = list(self)
        del members[index if isinstance(index, slice) else self._index(index)]
        self._set_members((str(i), m) for i, m in enumerate(members))

    def append(self, module: Any) -> ModuleList:
        """Add ``module`` at the end (``torch.nn.ModuleList.append``).

        Returns:
          This ModuleList.
        """
        return self.extend([module])

    def extend(self, modules: Iterable[Any]) -> ModuleList:
        """Add ``modules`` at the end (``torch.nn.ModuleList.extend``).

        Returns:
          This ModuleList.
        """
        self._set_members((str(i), m) for i, m in enumerate([*self, *map(_member, modules)]))
        return self

    def insert(self, index: int, module: Any) -> None:
        """Insert ``module`` before ``index`` (``torch.nn.ModuleList.insert``)."""
        members = list(self)
        members.insert(index, _member(module))
        self._set_members((str(i), m) for i, m in enumerate(members))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """PyTorch's ModuleList has no forward; neither has this.

        Raises:
          NotImplementedError: always (PyTorch's message).
        """
        raise _no_forward("ModuleList")


class ModuleDict(_Container):
    """NNX modules by name, in insertion order, as ``torch.nn.ModuleDict(modules)``.

    ``d[key]``, ``d[key] = module``, ``del d[key]``, ``key in d``, ``len``, iteration over the
    keys, ``keys()``, ``values()``, ``items()``, ``update()``, ``pop()`` as PyTorch's; keys must be
    strings without ``"."``, not empty and not an attribute of the class (PyTorch's TypeError and
    KeyError). No forward, as PyTorch's.

    PyTorch counterpart: ``torch.nn.ModuleDict``.
    """

    def __init__(self, modules: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        """Hold ``modules`` (a mapping, or ``(key, module)`` pairs) in order.

        Raises:
          TypeError: a key that is not a string, or a member that is not an NNX module.
          KeyError: a key with ``"."``, an empty key, or one naming an attribute of the class.
        """
        self._set_members([])
        self.update(modules or {})

    def _checked(self, key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"module name should be a string. Got {type(key).__name__}")
        if "." in key:
            raise KeyError(f'module name can\'t contain ".", got: {key}')
        if key == "":
            raise KeyError('module name can\'t be empty string ""')
        if key not in self._names and hasattr(type(self), key):
            raise KeyError(f"attribute '{key}' already exists")
        if key.startswith("_"):
            raise KeyError(
                f"torchsem.nnx.ModuleDict: a key may not start with '_' (NNX keeps such attributes private): {key}"
            )
        return key

    def __getitem__(self, key: str) -> Any:
        """``d[key]``: the member.

        Raises:
          KeyError: no such key.
        """
        if key not in self._names:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, module: Any) -> None:
        """``d[key] = module``: a new key goes last; an existing one keeps its place (as PyTorch's)."""
        key, module = self._checked(key), _member(module)
        items = dict(self._items())
        items[key] = module
        self._set_members(items.items())

    def __delitem__(self, key: str) -> None:
        """``del d[key]``."""
        items = dict(self._items())
        del items[key]
        self._set_members(items.items())

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def keys(self) -> list[str]:
        """The keys in order."""
        return list(self._names)

    def values(self) -> list[Any]:
        """The members in order."""
        return [module for _, module in self._items()]

    def items(self) -> list[tuple[str, Any]]:
        """``(key, member)`` pairs in order."""
        return self._items()

    def update(self, modules: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Add or replace members from a mapping or ``(key, module)`` pairs (``torch.nn.ModuleDict.update``)."""
        for key, module in modules.items() if isinstance(modules, Mapping) else modules:
            self[key] = module

    def pop(self, key: str) -> Any:
        """Remove ``key`` and return its member (``torch.nn.ModuleDict.pop``)."""
        module = self[key]
        del self[key]
        return module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """PyTorch's ModuleDict has no forward; neither has this.

        Raises:
          NotImplementedError: always (PyTorch's message).
        """
        raise _no_forward("ModuleDict")
