"""Write generated classes as Python source: readable, ruff-clean, and the code the port runs.

The in-memory module :func:`torchsem.port.port` returns is this source executed, so the
printed source and the module cannot disagree.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any

from ._build import ClassSpec, Container, Custom, Expr, Generated
from ._errors import PortError
from ._graph import NO_DEFAULT, Array, Body, DType, Op, Ref
from ._leaves import Leaf, same_value
from ._modes import FLAG_VALUES, leaf_flags
from ._trace import MODULE_FUNCTIONS, OPERATORS, UNARY

# operator.add -> "+", operator.neg -> "-": the Python syntax of each operator the trace keeps.
_SYMBOLS = {f.__name__: symbol for f, symbol in (*OPERATORS.items(), *UNARY.items())}
_IMPORTED = frozenset({"nn", "tnn", "T", "F", "jnp", "self", "train"})
_INDENT = "    "


def flags_of(expr: Expr) -> tuple[str, ...]:
    """The mode keywords a call of ``expr`` takes, in a fixed order."""
    if isinstance(expr, Leaf):
        return leaf_flags(expr.cls)
    if isinstance(expr, Generated):
        return ("train",)
    if isinstance(expr, Custom):
        return expr.flags
    found = {flag for _, member in expr.members for flag in flags_of(member)}
    return tuple(flag for flag in FLAG_VALUES if flag in found)


def _string(value: str) -> str:
    """A string literal in double quotes (ruff's style), escaped as ``repr`` escapes."""
    text = repr(value)
    if text.startswith("'") and '"' not in value:
        return '"' + text[1:-1].replace("\\'", "'") + '"'
    return text


def _float(value: float) -> str:
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


class _Names:
    """Python names of one class's values and submodules, clear of each other and of the imports."""

    def __init__(self, spec: ClassSpec, extra: frozenset[str]) -> None:
        self.taken = set(_IMPORTED) | set(extra)
        self.children: dict[str, str] = {}
        for attr, _ in spec.children:
            self.children[attr] = self._fresh(attr if attr.isidentifier() else "m_" + re.sub(r"\W", "_", attr))
        self.values: dict[str, str] = {}

    def _fresh(self, base: str) -> str:
        name = base + "_" if keyword.iskeyword(base) else base
        while name in self.taken:
            name = name + "_out" if not name.endswith("_out") else name + "_"
        self.taken.add(name)
        return name

    def value(self, fx_name: str) -> str:
        if fx_name not in self.values:
            self.values[fx_name] = self._fresh(fx_name)
        return self.values[fx_name]


def literal(value: Any, names: _Names | None = None) -> str:
    """``value`` as a Python expression of the generated code."""
    if isinstance(value, Ref):
        if names is None:
            raise PortError(f"internal: a reference to {value.name} outside a body")
        return names.value(value.name)
    if isinstance(value, DType):
        return f"jnp.{value.name}"
    if isinstance(value, Array):
        return f"jnp.asarray({value.values!r}, dtype=jnp.{value.dtype})"
    if isinstance(value, Leaf):
        return _leaf(value, None)
    if value is Ellipsis:
        return "..."
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, slice):
        return f"slice({literal(value.start, names)}, {literal(value.stop, names)}, {literal(value.step, names)})"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v, names) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, names) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)}: {literal(v, names)}" for k, v in value.items()) + "}"
    raise PortError(f"internal: no literal form for {value!r}")


def _index(value: Any, names: _Names) -> str:
    """A subscript: ``x[:, 0]``, ``x[1:]``, ``x[..., None]``."""

    def one(v: Any) -> str:
        if isinstance(v, slice):
            parts = ["" if p is None else literal(p, names) for p in (v.start, v.stop)]
            text = ":".join(parts)
            return text + (":" + literal(v.step, names) if v.step is not None else "")
        return literal(v, names)

    if isinstance(value, tuple):
        return ", ".join(one(v) for v in value) if value else "()"
    return one(value)


def _arguments(args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...], names: _Names | None) -> list[str]:
    return [literal(a, names) for a in args] + [f"{k}={literal(v, names)}" for k, v in kwargs]


def _leaf(leaf: Leaf, name: str | None) -> str:
    parts = _arguments(leaf.args, leaf.kwargs, None)
    if name is not None:
        parts.append(f"name={_string(name)}")
    return f"tnn.{leaf.cls}({', '.join(parts)})"


def construction(expr: Expr, name: str | None) -> str:
    """The expression that builds ``expr`` (named ``name`` in its parent, or adopted by a container)."""
    suffix = [] if name is None else [f"name={_string(name)}"]
    if isinstance(expr, Leaf):
        return _leaf(expr, name)
    if isinstance(expr, Generated):
        return f"{expr.cls}({', '.join(suffix)})"
    if isinstance(expr, Custom):
        parts = [f"{k}={literal(v)}" for k, v in expr.fields] + suffix
        return f"{expr.module}.{expr.qualname}({', '.join(parts)})"
    keys = [key for key, _ in expr.members]
    members = [construction(member, None) for _, member in expr.members]
    if expr.kind == "Sequential" and keys == [str(i) for i in range(len(keys))]:
        inner = members
    elif expr.kind == "ModuleList":
        inner = ["[" + ", ".join(members) + "]"]
    else:
        inner = ["{" + ", ".join(f"{_string(k)}: {m}" for k, m in zip(keys, members)) + "}"]
    return f"tnn.{expr.kind}({', '.join(inner + suffix)})"


def _callee(op: Op, spec: ClassSpec, names: _Names) -> tuple[str, Expr]:
    first, *rest = op.target.split(".")
    expr: Expr = dict(spec.children)[first]
    text = names.children[first]
    for part in rest:
        if not isinstance(expr, Container):
            raise PortError(
                f"{spec.paths[0]}: its forward calls self.{op.target} directly{_at(op.where)}, a submodule of a "
                f"submodule; the port follows such calls only into Sequential, ModuleList and ModuleDict"
            )
        text += f"[{_string(part)}]" if expr.kind == "ModuleDict" else f"[{part}]"
        expr = dict(expr.members)[part]
    return text, expr


def _at(where: str) -> str:
    return f" (called at {where})" if where else ""


def _module_function(op: Op, names: _Names) -> str:
    cls, order = MODULE_FUNCTIONS[op.target.removeprefix("F.")]
    values = dict(zip(order, op.args[1:]))
    values.update(op.kwargs)
    x = literal(op.args[0], names)
    training = values.pop("training", True)
    values.pop("inplace", None)
    import dataclasses

    import torchsem.nn as tnn

    defaults = {f.name: f.default for f in dataclasses.fields(getattr(tnn, cls))}
    shown = {k: v for k, v in values.items() if not (k in defaults and same_value(v, defaults[k]))}
    built = f"tnn.{cls}({', '.join(f'{k}={literal(v, names)}' for k, v in shown.items())})"
    if cls == "Dropout":
        if training is False:
            return x  # F.dropout(x, training=False) is the identity
        if training is True:
            return f"{built}({x}, deterministic=False)"
        return f"{built}({x}, deterministic=not {literal(training, names)})"
    return f"{built}({x})"


def _expression(op: Op, spec: ClassSpec, names: _Names) -> str:
    if op.kind == "module":
        callee, expr = _callee(op, spec, names)
        parts = _arguments(op.args, op.kwargs, names)
        parts += [f"{flag}={FLAG_VALUES[flag]}" for flag in flags_of(expr)]
        return f"{callee}({', '.join(parts)})"
    if op.kind == "method":
        return f"T.{op.target}({', '.join(_arguments(op.args, op.kwargs, names))})"
    if op.kind == "param":
        shape, dtype = op.args
        return f"self.param({_string(op.target)}, nn.initializers.zeros_init(), {literal(shape)}, jnp.{dtype})"
    if op.kind == "buffer":
        shape, dtype = op.args
        return f'self.variable("batch_stats", {_string(op.target)}, jnp.zeros, {literal(shape)}, jnp.{dtype}).value'
    if op.kind == "constant":
        return literal(op.args[0])
    key = op.target
    if key == "operator.getitem":
        return f"{literal(op.args[0], names)}[{_index(op.args[1], names)}]"
    if key == "operator.matmul":
        return f"T.matmul({literal(op.args[0], names)}, {literal(op.args[1], names)})"
    if key.startswith("operator."):
        symbol = _SYMBOLS[key.removeprefix("operator.")]
        if len(op.args) == 1:
            return f"{symbol}{literal(op.args[0], names)}"
        return f"{literal(op.args[0], names)} {symbol} {literal(op.args[1], names)}"
    if key == "getattr":
        attribute = op.args[1]
        if attribute == "mT":
            return f"T.transpose({literal(op.args[0], names)}, -2, -1)"
        return f"{literal(op.args[0], names)}.{attribute}"
    if key.startswith("torch."):
        return f"T.{key.removeprefix('torch.')}({', '.join(_arguments(op.args, op.kwargs, names))})"
    if key.removeprefix("F.") in MODULE_FUNCTIONS:
        return _module_function(op, names)
    return f"{key}({', '.join(_arguments(op.args, op.kwargs, names))})"


def _body_lines(body: Body, spec: ClassSpec, names: _Names, depth: int) -> list[str]:
    pad = _INDENT * depth
    lines = [f"{pad}{names.value(op.name)} = {_expression(op, spec, names)}" for op in body.ops]
    lines.append(f"{pad}return {literal(body.output, names)}")
    return lines


def _signature(body: Body, names: _Names) -> str:
    parts = ["self"]
    for name, default in body.inputs:
        parts.append(names.value(name) + ("" if default is NO_DEFAULT else f"={literal(default)}"))
    parts += ["*", "train: bool = True"]
    return ", ".join(parts)


def render_class(spec: ClassSpec, extra_names: frozenset[str] = frozenset()) -> str:
    """The class's source (its name may be empty: the builder compares bodies by this text)."""
    names = _Names(spec, extra_names)
    if spec.eval is not None and [n for n, _ in spec.eval.inputs] != [n for n, _ in spec.train.inputs]:
        raise PortError(f"{spec.paths[0]}: forward's inputs differ between train and eval tracing")
    at = f" (at {', '.join(spec.paths)})" if spec.paths else ""
    lines = [
        f"class {spec.name}(nn.Module):",
        f'{_INDENT}"""Port of ``{spec.origin}``{at}."""',
        "",
        f"{_INDENT}@nn.compact",
        f"{_INDENT}def __call__({_signature(spec.train, names)}):",
    ]
    body = _INDENT * 2
    for attr, expr in spec.children:
        lines.append(f"{body}{names.children[attr]} = {construction(expr, attr)}")
    if spec.eval is None:
        lines += _body_lines(spec.train, spec, names, 2)
    else:
        lines.append(f"{body}if train:")
        lines += _body_lines(spec.train, spec, names, 3)
        lines += _body_lines(spec.eval, spec, names, 2)
    return "\n".join(lines) + "\n"


def render_module(classes: list[ClassSpec], root: str, origin: str, imports: list[str]) -> str:
    """The whole generated file: header, imports, the classes (dependencies first)."""
    code = "\n".join(render_class(spec) for spec in classes)
    uses = {name: re.search(rf"(?<![\w.]){name}\.", code) is not None for name in ("jnp", "F", "T", "tnn")}
    header = [
        f'"""Flax linen port of ``{origin}``, generated by ``torchsem.port``.',
        "",
        "Each class is one PyTorch module; the layers are torchsem's, named as PyTorch's, so the",
        "variables carry the PyTorch state_dict keys. ``train=True`` is ``model.train()``; apply",
        f"with ``mutable=['batch_stats']`` then. The model is ``{root}``.",
        '"""',
        "",
        "import flax.linen as nn",
        *(["import jax.numpy as jnp"] if uses["jnp"] else []),
        *[f"import {name}" for name in sorted(set(imports))],
        "",
        *(["import torchsem.nn as tnn"] if uses["tnn"] else []),
        *(["from torchsem.nn import functional as F"] if uses["F"] else []),
        *(["from torchsem.port import torch_ops as T"] if uses["T"] else []),
    ]
    parts = ["\n".join(header)]
    parts += [render_class(spec).rstrip("\n") for spec in classes]
    return "\n\n\n".join(parts) + "\n"
