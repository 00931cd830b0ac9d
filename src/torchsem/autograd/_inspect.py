"""The leaf / ``grad_fn`` inspector: PyTorch's ``requires_grad``, ``is_leaf`` and ``grad_fn`` for JAX values.

PyTorch's rules (the document's section on leaf and non-leaf tensors):

- an input is a leaf; it requires grad when marked (every ``nn.Parameter``);
- a result requires grad when a differentiable path from an input that requires grad reaches
  it (integer results never do; ``detach``/``no_grad`` cut the path);
- a result that does not require grad is a leaf with ``grad_fn=None``; one that does is a
  non-leaf whose ``grad_fn`` is the backward node of the operation that made it.

:func:`inspect_graph` traces a function once (``jax.make_jaxpr``), runs the same reachability
analysis that :func:`torchsem.autograd.grad` uses, and reports every input and every output
leaf. Intermediates are reported by returning them: a Flax module ``sow``-s them and the
function returns the ``intermediates`` collection.
"""

from __future__ import annotations

import dataclasses
import inspect as _pyinspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from ..tree import path_name
from . import _grad_fn_names, _reachability
from ._grad import _ARRAY_LIKE, leaf_requires_grad

_MODULE_MARK = "torchsem.grad_fn="


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """What PyTorch would report for one value.

    Attributes:
      name: the value's name (argument path, or output path).
      requires_grad: ``tensor.requires_grad``.
      is_leaf: ``tensor.is_leaf``.
      grad_fn: ``type(tensor.grad_fn).__name__``: PyTorch's backward-node name for the operation
        that made the value when it has one (``"AddmmBackward0"``), else ``"jax.<primitive>"``;
        None for leaves.
      jax_op: the JAX operation (or Flax module) that produced the value, also for leaves made
        by an operation; None for inputs and constants.
      shape: the value's shape.
      dtype: the value's dtype name.
    """

    name: str
    requires_grad: bool
    is_leaf: bool
    grad_fn: str | None
    jax_op: str | None
    shape: tuple[int, ...]
    dtype: str

    def __str__(self) -> str:
        grad_fn = f"<{self.grad_fn}>" if self.grad_fn else "None"
        return (
            f"{self.name}: requires_grad={self.requires_grad}, is_leaf={self.is_leaf}, grad_fn={grad_fn}"
            f"  [{self.dtype}{list(self.shape)}{', ' + self.jax_op if self.jax_op else ''}]"
        )


@dataclasses.dataclass(frozen=True)
class AutogradGraph:
    """The inspector's report: every input and every output leaf, by name."""

    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]

    def __getitem__(self, name: str) -> TensorInfo:
        if name in self.outputs:
            return self.outputs[name]
        if name in self.inputs:
            return self.inputs[name]
        raise KeyError(
            f"no input or output named {name!r}; inputs: {', '.join(self.inputs)}; outputs: {', '.join(self.outputs)}"
        )

    def __str__(self) -> str:
        lines = ["inputs:"] + [f"  {info}" for info in self.inputs.values()]
        lines += ["outputs:"] + [f"  {info}" for info in self.outputs.values()]
        return "\n".join(lines)


def output_names(paths: Sequence[Sequence[Any]]) -> list[str]:
    """Dotted names for output leaves; ``sow``'s one-element tuples do not add a ``.0``."""
    siblings: dict[tuple, int] = {}
    for path in paths:
        if path:
            siblings[tuple(path[:-1])] = siblings.get(tuple(path[:-1]), 0) + 1
    names = []
    for path in paths:
        trimmed = list(path)
        if (
            trimmed
            and isinstance(trimmed[-1], jax.tree_util.SequenceKey)
            and trimmed[-1].idx == 0
            and siblings[tuple(path[:-1])] == 1
            and len(trimmed) > 1
        ):
            trimmed = trimmed[:-1]
        names.append(path_name(trimmed) or "output")
    return names


def _argument_names(fun: Callable, n_args: int, arg_names: Sequence[str] | None) -> list[str]:
    if arg_names is not None:
        if len(arg_names) != n_args:
            raise ValueError(f"arg_names has {len(arg_names)} names for {n_args} arguments")
        return list(arg_names)
    try:
        params = [
            p
            for p in _pyinspect.signature(fun).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i].name if i < len(params) else f"arg{i}" for i in range(n_args)]


def _marking_interceptor(next_fun: Callable, args: tuple, kwargs: dict, context: Any) -> Any:
    """Tag a recognised Flax module's output with its PyTorch backward node (inspection only)."""
    out = next_fun(*args, **kwargs)
    if context.method_name != "__call__":
        return out
    name = _grad_fn_names.module_grad_fn(context.module, args, kwargs)
    if name is None:
        return out
    inputs = {id(leaf) for leaf in jax.tree.leaves((args, kwargs))}
    path = ".".join(str(p) for p in context.module.path) or type(context.module).__name__
    mark = f"{_MODULE_MARK}{name}|{type(context.module).__name__}({path})"

    def tag(leaf: Any) -> Any:
        # A module that returns its input (dropout in eval mode) made nothing: PyTorch returns the same tensor.
        if not isinstance(leaf, jax.Array) or id(leaf) in inputs:
            return leaf
        with jax.named_scope(mark):
            return jnp.array(leaf, copy=True)

    return jax.tree.map(tag, out)


class _Resolver:
    """Find the operation that made a value, looking through calls (``jit``, ``remat``...)."""

    def __init__(self, jaxpr: Any) -> None:
        self.jaxpr = jaxpr

    def describe(self, jaxpr: Any, var: Any) -> tuple[str | None, str | None]:
        """``(PyTorch name or None, JAX operation)`` for ``var`` defined in ``jaxpr``; (None, None) for inputs."""
        producer = None
        for eqn in jaxpr.eqns:
            if any(out is var for out in eqn.outvars):
                producer = eqn
                break
        if producer is None:
            return None, None
        mark = _module_mark(producer)
        if mark is not None:
            return mark
        name = producer.primitive.name
        call_name = producer.params.get("name")
        torch_name = _grad_fn_names.named_call_grad_fn(call_name if isinstance(call_name, str) else None)
        if torch_name is not None:
            return torch_name, f"{name}({call_name})"
        sub = producer.params.get("call_jaxpr") if name.startswith("custom_") else None
        sub = sub if sub is not None else _reachability._call_like_subprogram(producer)
        if sub is not None:
            inner = sub.jaxpr if isinstance(sub, jcore.ClosedJaxpr) else sub
            index = next(i for i, out in enumerate(producer.outvars) if out is var)
            inner_var = inner.outvars[index]
            if not isinstance(inner_var, jcore.Literal) and any(inner_var is v for v in inner.invars):
                position = next(i for i, v in enumerate(inner.invars) if v is inner_var)
                outer = producer.invars[position]
                return self.describe(jaxpr, outer) if not isinstance(outer, jcore.Literal) else (None, None)
            if not isinstance(inner_var, jcore.Literal):
                torch_name, op = self.describe(inner, inner_var)
                if op is not None:
                    label = f"{name}({call_name})" if isinstance(call_name, str) else name
                    return torch_name, f"{label}/{op}"
        return _grad_fn_names.primitive_grad_fn(producer), name


def _module_mark(eqn: Any) -> tuple[str, str] | None:
    if eqn.primitive.name not in ("copy", "copy_p"):
        return None
    stack = str(eqn.source_info.name_stack)
    for part in reversed(stack.split("/")):
        if part.startswith(_MODULE_MARK):
            torch_name, _, module = part[len(_MODULE_MARK) :].partition("|")
            return torch_name, module
    return None


def inspect_graph(
    fun: Callable, *args: Any, requires_grad: Any = None, arg_names: Sequence[str] | None = None
) -> AutogradGraph:
    """Report PyTorch's ``requires_grad``, ``is_leaf`` and ``grad_fn`` for ``fun(*args)``'s inputs and outputs.

    Reproduces printing ``t.requires_grad``, ``t.is_leaf`` and ``t.grad_fn`` for the parameters,
    the input and every intermediate of a PyTorch forward pass.

    Args:
      fun: the function to inspect. Return the intermediates to report: e.g. for a Flax module
        that ``sow``-s them, ``lambda params, x: (lambda out, state: {"output": out,
        **state["intermediates"]})(*model.apply({"params": params}, x, mutable=["intermediates"]))``.
        Flax modules from torchsem.nn and flax.linen are recognised, so a BatchNorm output reports
        ``NativeBatchNormBackward0`` and a Linear one ``AddmmBackward0``, as in PyTorch.
      *args: the arguments (arrays or pytrees of arrays; other leaves are passed through).
      requires_grad: a pytree of bools, a prefix of ``args`` (as a tuple), marking the inputs that
        require grad; default every floating leaf (PyTorch's default for parameters; pass False for
        data such as ``x``).
      arg_names: names for the arguments in the report (default: ``fun``'s parameter names).

    Returns:
      An :class:`AutogradGraph`: ``inputs`` and ``outputs`` map dotted names (``params.fc1.weight``;
      ``bn1_out`` for an intermediate ``sow``-n as ``bn1_out``) to :class:`TensorInfo`.
    """
    import flax.linen as nn

    names = _argument_names(fun, len(args), arg_names)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tuple(args))
    flags = leaf_requires_grad(requires_grad, tuple(args))
    array_positions = [i for i, (_, leaf) in enumerate(with_paths) if isinstance(leaf, _ARRAY_LIKE)]
    leaves = [leaf for _, leaf in with_paths]

    def traced(*array_values):
        full = list(leaves)
        for i, value in zip(array_positions, array_values):
            full[i] = value
        with nn.intercept_methods(_marking_interceptor):
            return fun(*treedef.unflatten(full))

    closed, out_shape = jax.make_jaxpr(traced, return_shape=True)(*[leaves[i] for i in array_positions])
    jaxpr = closed.jaxpr
    sources = [flags[i] for i in array_positions]
    bits = _reachability.value_bits(jaxpr, _reachability.source_bits(sources))

    inputs: dict[str, TensorInfo] = {}
    input_info_by_var: dict[Any, TensorInfo] = {}
    for k, i in enumerate(array_positions):
        path, _leaf = with_paths[i]
        name = ".".join(filter(None, [names[path[0].idx], path_name(path[1:])]))
        aval = jaxpr.invars[k].aval
        info = TensorInfo(name, bool(flags[i]), True, None, None, tuple(aval.shape), str(aval.dtype))
        inputs[name] = info
        input_info_by_var[jaxpr.invars[k]] = info

    resolver = _Resolver(jaxpr)
    out_with_paths = jax.tree_util.tree_flatten_with_path(out_shape)[0]
    out_names = output_names([p for p, _ in out_with_paths])
    outputs: dict[str, TensorInfo] = {}
    for name, var, (_, shape) in zip(out_names, jaxpr.outvars, out_with_paths):
        meta = (tuple(shape.shape), str(shape.dtype))
        if isinstance(var, jcore.Literal) or any(var is c for c in jaxpr.constvars):
            outputs[name] = TensorInfo(name, False, True, None, None, *meta)
            continue
        if var in input_info_by_var:
            source = input_info_by_var[var]
            outputs[name] = TensorInfo(name, source.requires_grad, True, None, None, *meta)
            continue
        requires = bits.get(var, 0) != 0
        torch_name, op = resolver.describe(jaxpr, var)
        if op is None:
            outputs[name] = TensorInfo(name, requires, True, None, None, *meta)
            continue
        grad_fn = (torch_name or f"jax.{op.rsplit('/', 1)[-1]}") if requires else None
        outputs[name] = TensorInfo(name, requires, not requires, grad_fn, op, *meta)
    return AutogradGraph(inputs, outputs)
