"""Trace one PyTorch module's ``forward`` with ``torch.fx`` into the port's :class:`Body`.

Every submodule call stays a call (the port maps or traces each submodule on its own), so a
body only holds what the module's own ``forward`` does. torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from ._errors import PortError
from ._graph import NO_DEFAULT, Array, Body, DType, Op, Ref

# Functions the generated code writes as Python operators.
OPERATORS: dict[Callable[..., Any], str] = {
    operator.add: "+",
    operator.sub: "-",
    operator.mul: "*",
    operator.truediv: "/",
    operator.floordiv: "//",
    operator.mod: "%",
    operator.pow: "**",
    operator.matmul: "@",
    operator.eq: "==",
    operator.ne: "!=",
    operator.lt: "<",
    operator.le: "<=",
    operator.gt: ">",
    operator.ge: ">=",
    operator.and_: "&",
    operator.or_: "|",
}
UNARY: dict[Callable[..., Any], str] = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}
# Tensor methods that are torch functions of the same name with the tensor first.
METHODS = frozenset(
    {
        "view", "reshape", "flatten", "size", "dim", "mean", "sum", "transpose", "permute", "unsqueeze",
        "squeeze", "contiguous", "detach", "clone", "matmul", "add", "sub", "mul", "div", "exp", "log",
        "sqrt", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "expand", "chunk", "t", "float",
        "double", "to", "pow", "abs", "neg", "masked_fill", "argmax", "amax", "amin", "max", "min", "type_as",
        "view_as", "reshape_as", "expand_as", "repeat", "numel", "var", "std",
    }
)  # fmt: skip
_TORCH_FUNCTIONS = (
    "flatten", "reshape", "cat", "concat", "stack", "mean", "sum", "transpose", "permute", "unsqueeze",
    "squeeze", "matmul", "add", "sub", "mul", "div", "exp", "log", "sqrt", "relu", "sigmoid", "tanh",
    "softmax", "log_softmax", "chunk", "t", "pow", "abs", "neg", "masked_fill", "argmax", "amax", "amin",
    "max", "min", "numel", "zeros_like", "ones_like", "bmm", "var", "std", "einsum", "clamp",
)  # fmt: skip
# torch.nn.functional calls made through a torchsem module of PyTorch's signature:
# F name -> (torchsem class, F's arguments after ``input`` in order).
MODULE_FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dropout": ("Dropout", ("p", "training", "inplace")),
    "adaptive_avg_pool1d": ("AdaptiveAvgPool1d", ("output_size",)),
    "adaptive_avg_pool2d": ("AdaptiveAvgPool2d", ("output_size",)),
    "adaptive_max_pool2d": ("AdaptiveMaxPool2d", ("output_size", "return_indices")),
    "avg_pool1d": ("AvgPool1d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "avg_pool2d": (
        "AvgPool2d",
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    ),
    "max_pool1d": ("MaxPool1d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
    "max_pool2d": ("MaxPool2d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
}
_F_FUNCTIONS = (
    "relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "leaky_relu", "elu", "hardtanh",
    "relu6", "softplus", "mish", "hardswish", "hardsigmoid", "logsigmoid", "glu",
)  # fmt: skip


@functools.cache
def function_table() -> dict[Any, str]:
    """Supported callables -> their key: ``"torch.cat"``, ``"F.relu"`` (a function of ``torchsem.port.torch_ops``)."""
    import torch
    import torch.nn.functional as F

    table: dict[Any, str] = {}
    for name in _TORCH_FUNCTIONS:
        table[getattr(torch, name)] = f"torch.{name}"
    for name in _F_FUNCTIONS:
        table[getattr(F, name)] = f"F.{name}"
    for name in MODULE_FUNCTIONS:
        table[getattr(F, name)] = f"F.{name}"
    table[getattr] = "getattr"
    return table


def supported_functions() -> list[str]:
    """Every function, operator and tensor method the port reproduces, for error messages and the docs."""
    names = [f"torch.{n}" for n in _TORCH_FUNCTIONS] + [f"F.{n}" for n in (*_F_FUNCTIONS, *MODULE_FUNCTIONS)]
    names += [f"Tensor.{n}" for n in sorted(METHODS)] + ["operators " + " ".join([*OPERATORS.values(), "[]"])]
    return names


def _torch_root() -> str:
    import os

    import torch

    return os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


def _where(node: Any) -> str:
    """``file:line: source`` of the PyTorch model code that made ``node`` (the innermost frame outside torch)."""
    import re

    stack = node.meta.get("stack_trace") or getattr(node, "stack_trace", None)
    if not stack:
        return ""
    lines = stack.splitlines()
    found = ""
    for index, line in enumerate(lines):
        match = re.match(r'\s*File "(.*)", line (\d+), in (.*)', line)
        if match is None or match.group(1).startswith(_torch_root()):
            continue
        code = lines[index + 1].strip() if index + 1 < len(lines) else ""
        found = f"{match.group(1)}:{match.group(2)}: {code}" if code else f"{match.group(1)}:{match.group(2)}"
    return found


def _without_defaults(target: Any, kwargs: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """Drop keyword arguments at the function's default (fx records every argument of an ``F`` wrapper)."""
    import inspect

    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return tuple((k, v) for k, v in kwargs if not k.startswith("_"))
    kept = []
    for key, value in kwargs:
        parameter = parameters.get(key)
        if key.startswith("_"):
            continue
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            default = parameter.default
            if type(default) is type(value) and default == value:
                continue
        kept.append((key, value))
    return tuple(kept)


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


class _Converter:
    """fx arguments -> plain data, with names for the port's values."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.aliases: dict[str, str] = {}

    def value(self, arg: Any, node: Any) -> Any:
        import torch
        import torch.fx as fx

        if isinstance(arg, fx.Node):
            return Ref(self.aliases.get(arg.name, arg.name))
        if isinstance(arg, torch.Size):
            return tuple(int(v) for v in arg)
        if isinstance(arg, tuple):
            return tuple(self.value(a, node) for a in arg)
        if isinstance(arg, list):
            return [self.value(a, node) for a in arg]
        if isinstance(arg, dict):
            return {k: self.value(v, node) for k, v in arg.items()}
        if isinstance(arg, slice):
            return slice(self.value(arg.start, node), self.value(arg.stop, node), self.value(arg.step, node))
        if isinstance(arg, torch.dtype):
            return DType(_dtype_name(arg))
        if arg is None or arg is Ellipsis or isinstance(arg, (bool, int, float, str)):
            return arg
        raise PortError(
            f"{self.owner}: node {node.name} ({node.op} {_target_text(node)}) takes {arg!r} "
            f"({type(arg).__name__}), which the port cannot write as JAX code{_at(_where(node))}"
        )


def _target_text(node: Any) -> str:
    target = node.target
    if callable(target):
        module = getattr(target, "__module__", None) or ""
        return f"{module + '.' if module else ''}{getattr(target, '__name__', repr(target))}"
    return str(target)


def _at(where: str) -> str:
    return f", called at {where}" if where else ""


def _unsupported(owner: str, node: Any, what: str) -> PortError:
    return PortError(
        f"{owner}: node {node.name}: {node.op} {_target_text(node)} is not supported{_at(_where(node))}. "
        f"{what}Supported: {', '.join(supported_functions())}"
    )


def _source_frame(error: BaseException, module: Any) -> str:
    """The innermost frame of the failed trace that is in the module's own source file."""
    import inspect

    try:
        source = inspect.getsourcefile(type(module))
    except TypeError:
        source = None
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if source is not None and frame.filename == source:
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    if frames:
        frame = frames[-1]
        return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return ""


@contextlib.contextmanager
def torch_mode(module: Any, train: bool) -> Iterator[None]:
    """``module.train(train)`` for the duration, then every submodule's ``training`` flag as it was."""
    saved = [(m, m.training) for m in module.modules()]
    module.train(train)
    try:
        yield
    finally:
        for m, mode in saved:
            m.training = mode


def trace_forward(module: Any, path: str, train: bool) -> Body:
    """``module.forward`` in train or eval mode as a :class:`Body`.

    Args:
      module: the PyTorch module (its own and its submodules' ``training`` flags are restored).
      path: its dotted path in the model, for messages (``""``: the model itself).
      train: trace as after ``module.train()`` (True) or ``module.eval()`` (False).

    Raises:
      PortError: fx cannot trace the forward (Python control flow on a tensor, ...), or the
        forward calls something the port does not reproduce.
    """
    import torch.fx as fx

    owner = path or type(module).__name__

    class _EverySubmoduleIsALeaf(fx.Tracer):
        def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
            return True

    tracer = _EverySubmoduleIsALeaf()
    tracer.record_stack_traces = True
    try:
        with torch_mode(module, train):
            graph = tracer.trace(module)
    except PortError:
        raise
    except Exception as error:
        frame = _source_frame(error, module)
        raise PortError(
            f"{owner} ({type(module).__module__}.{type(module).__qualname__}): torch.fx cannot trace its forward"
            f"{_at(frame)}: {type(error).__name__}: {error}. torch.fx records tensor operations symbolically, so "
            "Python control flow on a tensor's value (if/while on a tensor, a data-dependent loop) cannot be "
            "traced. Ways around it: make the branch depend on a Python value (a constructor argument, "
            "self.training), or port that submodule by hand and pass it in "
            "(torchsem.port(model, inputs, leaves={'" + (path or type(module).__name__) + "': factory}))."
        ) from None
    return _body(graph, module, owner)


_VIEW_OPS = frozenset({"view", "reshape", "transpose", "permute", "t", "expand", "squeeze", "unsqueeze", "flatten"})


def _body(graph: Any, module: Any, owner: str) -> Body:
    convert = _Converter(owner)
    table = function_table()
    inputs: list[tuple[str, Any]] = []
    ops: list[Op] = []
    output: Any = None
    views: set[str] = set()
    for node in graph.nodes:
        where = _where(node)
        if node.op == "placeholder":
            if str(node.target).startswith("*"):
                raise PortError(f"{owner}: forward takes {node.target}; the port needs named inputs")
            default = convert.value(node.args[0], node) if node.args else NO_DEFAULT
            inputs.append((node.name, default))
            continue
        if node.op == "output":
            output = convert.value(node.args[0], node)
            continue
        args = tuple(convert.value(a, node) for a in node.args)
        kwargs = tuple((k, convert.value(v, node)) for k, v in node.kwargs.items())
        if node.op == "call_module":
            if getattr(module.get_submodule(str(node.target)), "inplace", False) is True:
                _in_place(convert, node, args, views, owner, where)  # nn.ReLU(inplace=True)
            ops.append(Op(node.name, "module", str(node.target), args, kwargs, where))
        elif node.op == "get_attr":
            ops.append(_attribute(module, node, owner, where))
        elif node.op == "call_function":
            target = node.target
            if target in OPERATORS or target in UNARY or target is operator.getitem:
                key = "operator." + target.__name__
            elif target in (operator.iadd, operator.isub, operator.imul, operator.itruediv):
                key = "operator." + target.__name__[1:]
                _in_place(convert, node, args, views, owner, where)
            else:
                try:
                    key = table.get(target)
                except TypeError:  # an unhashable callable
                    key = None
                if key is None:
                    raise _unsupported(owner, node, "")
            if key == "getattr" and args[1] not in ("shape", "ndim", "dtype", "T", "mT"):
                raise _unsupported(owner, node, f"Reading .{args[1]} is not. ")
            if any(k == "inplace" and v is True for k, v in kwargs):
                _in_place(convert, node, args, views, owner, where)
            ops.append(Op(node.name, "function", key, args, _without_defaults(target, kwargs), where))
        elif node.op == "call_method":
            method = str(node.target)
            if method.endswith("_") and not method.startswith("_") and method[:-1] in METHODS:
                _in_place(convert, node, args, views, owner, where)
                method = method[:-1]
            elif method not in METHODS:
                raise _unsupported(owner, node, f"The tensor method .{method}() is not. ")
            if method in _VIEW_OPS:
                views.add(node.name)
            ops.append(Op(node.name, "method", method, args, kwargs, where))
        else:  # pragma: no cover - fx has no other node kinds
            raise _unsupported(owner, node, "")
    return Body(tuple(inputs), tuple(ops), output)


def _in_place(convert: _Converter, node: Any, args: tuple[Any, ...], views: set[str], owner: str, where: str) -> None:
    """An in-place op: later uses of its input read its result, as PyTorch's would see the mutation."""
    target = args[0] if args else None
    if not isinstance(target, Ref):
        return
    if target.name in views:
        raise PortError(
            f"{owner}: node {node.name} changes {target.name} in place, and {target.name} is a view of another "
            f"tensor{_at(where)}: the port does not reproduce writes through views; use the out-of-place op"
        )
    for name, alias in list(convert.aliases.items()):
        if alias == target.name:
            convert.aliases[name] = node.name
    convert.aliases[target.name] = node.name


def _attribute(module: Any, node: Any, owner: str, where: str) -> Op:
    import torch

    target = str(node.target)
    value: Any = module
    for part in target.split("."):
        value = getattr(value, part)
    if "." not in target:
        if isinstance(value, torch.nn.Parameter):
            return Op(node.name, "param", target, (tuple(value.shape), _dtype_name(value.dtype)), (), where)
        if target in dict(module.named_buffers(recurse=False)):
            if target in module._non_persistent_buffers_set:
                return _constant(node, value, owner, where)
            return Op(node.name, "buffer", target, (tuple(value.shape), _dtype_name(value.dtype)), (), where)
    if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and "." not in target:
        return _constant(node, value, owner, where)
    raise PortError(
        f"{owner}: node {node.name} reads self.{target}{_at(where)}: the port reads tensors a module owns "
        "directly; a submodule's tensor is read by that submodule (call it instead)"
    )


def _constant(node: Any, value: Any, owner: str, where: str) -> Op:
    if value.numel() > 4096:
        raise PortError(
            f"{owner}: node {node.name} uses a constant tensor of {value.numel()} elements{_at(where)}; "
            "register it as a buffer so that it is loaded as a variable"
        )
    array = value.detach().cpu().numpy().copy()
    return Op(node.name, "constant", str(node.target), (Array(array.tolist(), str(array.dtype)),), (), where)
