"""The port's intermediate form: one traced ``forward`` as plain data (no torch objects).

A :class:`Body` is a list of :class:`Op` in execution order, each naming the value it makes,
with arguments that are literals, :class:`Ref`\\ s to earlier values, or containers of those.
The source generator writes it as Python; nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class Ref:
    """An earlier value of the body, by its Python name."""

    name: str


@dataclasses.dataclass(frozen=True)
class DType:
    """A dtype argument (``x.to(torch.float64)``), by its name (``"float64"``)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Array:
    """A small constant tensor the traced code made: its values as nested lists, and dtype name."""

    values: Any
    dtype: str


@dataclasses.dataclass(frozen=True)
class Op:
    """One node of the traced graph.

    Attributes:
      name: the Python name of the value it makes.
      kind: ``"module"`` (a submodule call; ``target`` its dotted path below the traced module),
        ``"function"`` (``target`` a key of the function table), ``"method"`` (a tensor method by
        name), ``"getattr"`` (``x.shape``), ``"param"``/``"buffer"`` (a tensor the module owns
        directly; ``args`` its shape and dtype name), ``"constant"`` (``args[0]`` an :class:`Array`).
      target: what is called or read.
      args: positional arguments.
      kwargs: keyword arguments, in call order.
      where: ``file:line`` and the source line in PyTorch's code, when known.
    """

    name: str
    kind: str
    target: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    where: str = ""


@dataclasses.dataclass(frozen=True)
class Body:
    """A traced forward: its inputs (name, default or ``NO_DEFAULT``), its ops, what it returns."""

    inputs: tuple[tuple[str, Any], ...]
    ops: tuple[Op, ...]
    output: Any
