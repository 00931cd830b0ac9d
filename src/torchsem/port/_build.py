"""Walk a PyTorch module tree: each layer becomes a torchsem layer, each other module a generated class.

``torch.nn`` layers torchsem reproduces map to :class:`~._leaves.Leaf`; ``Sequential``,
``ModuleList`` and ``ModuleDict`` to torchsem's containers of the same names (so the
variables keep PyTorch's ``"0"``, ``"1"`` names); any other module is traced in train and
eval mode and becomes a :class:`ClassSpec`. Identical classes (same code, same layers) are
generated once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import PortError
from ._graph import Body
from ._leaves import CONTAINERS, Leaf, is_supported_leaf, leaf_of, supported_layers
from ._trace import trace_forward


@dataclasses.dataclass(frozen=True)
class Generated:
    """An instance of a generated class, by the class's name."""

    cls: str


@dataclasses.dataclass(frozen=True)
class Container:
    """A torchsem ``Sequential``/``ModuleList``/``ModuleDict`` of members (key, expression)."""

    kind: str
    members: tuple[tuple[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class Custom:
    """A hand-written Flax module given for a submodule: imported from ``module``, built with ``fields``."""

    module: str
    qualname: str
    fields: tuple[tuple[str, Any], ...]
    flags: tuple[str, ...]


Expr = Leaf | Generated | Container | Custom


@dataclasses.dataclass(frozen=True)
class ClassSpec:
    """A generated linen class: the submodules it builds and its traced train and eval bodies.

    Attributes:
      name: the class name (the PyTorch class's, numbered when two differ).
      origin: the PyTorch class, ``module.QualName``.
      paths: where in the model it is used.
      children: (attribute name, expression), in PyTorch's registration order.
      train: the body traced after ``module.train()``.
      eval: the body traced after ``module.eval()``, or None when it is the same.
    """

    name: str
    origin: str
    paths: tuple[str, ...]
    children: tuple[tuple[str, Any], ...]
    train: Body
    eval: Body | None


LeafFactory = Callable[[Any], Any]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _has_state(module: Any) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


class Builder:
    """Turns a PyTorch module tree into generated classes (``classes``, dependencies first)."""

    def __init__(self, leaves: Mapping[Any, LeafFactory] | None, render: Callable[[ClassSpec], str]) -> None:
        self.leaves = dict(leaves or {})
        self.render = render
        self.classes: list[ClassSpec] = []
        self._texts: dict[str, str] = {}  # rendered text without the name -> class name
        self._used_names: set[str] = set()

    def _override(self, module: Any, path: str) -> LeafFactory | None:
        if path in self.leaves:
            return self.leaves[path]
        for key, factory in self.leaves.items():
            if isinstance(key, type) and type(module) is key:
                return factory
        return None

    def expression(self, module: Any, path: str) -> Expr:
        """The torchsem form of ``module`` (at ``path``)."""
        factory = self._override(module, path)
        if factory is not None:
            return _custom(factory(module), path)
        name = type(module).__name__
        if type(module).__module__.startswith("torch.nn.") and name in CONTAINERS:
            return Container(
                name, tuple((key, self.expression(child, _join(path, key))) for key, child in module.named_children())
            )
        if is_supported_leaf(module):
            return leaf_of(module, path)
        if type(module).__module__.startswith("torch.nn."):
            raise PortError(
                f"{path or 'the model'}: torch.nn.{name} has no torchsem layer; supported: "
                f"{', '.join(supported_layers())}. Port it by hand and pass it in (leaves={{'{path}': factory}})"
            )
        return Generated(self.generate(module, path))

    def generate(self, module: Any, path: str) -> str:
        """Trace ``module`` and add its class (or find the identical one); its name."""
        train = trace_forward(module, path, True)
        evaluation = trace_forward(module, path, False)
        called = {op.target.split(".")[0] for body in (train, evaluation) for op in body.ops if op.kind == "module"}
        first_calls = {}
        for body in (evaluation, train):
            for op in reversed(body.ops):
                if op.kind == "module":
                    first_calls[op.target.split(".")[0]] = op
        children = []
        for key, child in module.named_children():
            if key in called:
                try:
                    children.append((key, self.expression(child, _join(path, key))))
                except PortError as error:
                    raise _located(error, first_calls[key]) from None
            elif _has_state(child):
                raise PortError(
                    f"{_join(path, key)} ({type(child).__name__}) holds parameters or buffers but "
                    f"{path or 'the model'}'s forward never calls it: its state_dict entries would have no "
                    "variable. Delete it from the model before porting (del model." + _join(path, key) + ")"
                )
        origin = f"{type(module).__module__}.{type(module).__qualname__}"
        spec = ClassSpec(
            "", origin, (path or "<model>",), tuple(children), train, None if train == evaluation else evaluation
        )
        text = self.render(dataclasses.replace(spec, paths=()))
        if text in self._texts:
            name = self._texts[text]
            index = next(i for i, c in enumerate(self.classes) if c.name == name)
            existing = self.classes[index]
            self.classes[index] = dataclasses.replace(existing, paths=(*existing.paths, path or "<model>"))
            return name
        base = type(module).__name__
        base = base[0].upper() + base[1:] if base[0].islower() else base
        name, n = base, 1
        while name in self._used_names:
            name, n = f"{base}_{n}", n + 1
        self._used_names.add(name)
        self._texts[text] = name
        self.classes.append(dataclasses.replace(spec, name=name))
        return name


def _located(error: PortError, op: Any) -> PortError:
    """The error with the graph node that calls the submodule, once (the innermost call site)."""
    if getattr(error, "located", False):
        return error
    where = f", called at {op.where}" if op.where else ""
    located = PortError(f"{error} [graph node {op.name}: call_module {op.target}{where}]")
    located.located = True  # type: ignore[attr-defined]
    return located


def _custom(module: Any, path: str) -> Custom:
    import flax.linen as nn

    from ._modes import mode_flags

    if not isinstance(module, nn.Module):
        raise PortError(f"leaves[{path!r}] returned {type(module).__name__}, not a flax.linen.Module")
    cls = type(module)
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        raise PortError(
            f"leaves[{path!r}]: {cls.__qualname__} must be importable (defined at the top level of a module that "
            "is not __main__) so that the generated source can import it"
        )
    fields = []
    for field in dataclasses.fields(module):
        if field.name in ("parent", "name"):
            continue
        value = getattr(module, field.name)
        if field.default is not dataclasses.MISSING and value is field.default:
            continue
        if not (value is None or isinstance(value, (bool, int, float, str, tuple))):
            raise PortError(f"leaves[{path!r}]: field {field.name}={value!r} has no literal form in generated source")
        fields.append((field.name, value))
    return Custom(cls.__module__, cls.__qualname__, tuple(fields), mode_flags(cls))
