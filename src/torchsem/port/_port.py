"""``torchsem.port``: a Flax linen module with PyTorch's semantics, built from a PyTorch module."""

from __future__ import annotations

import dataclasses
import itertools
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

from ._build import Builder, Custom, Generated
from ._errors import PortError
from ._source import render_class, render_module
from ._trace import torch_mode

_COUNTER = itertools.count()


@dataclasses.dataclass(frozen=True)
class Ported:
    """What :func:`port` returns; unpacks as ``flax_module, variables = port(...)``.

    Attributes:
      module: the generated linen module (an instance of the root class of ``source``).
      variables: ``{"params": ..., "batch_stats": ...}`` holding the PyTorch module's
        ``state_dict`` (copied: later changes to the PyTorch tensors do not reach them).
      frozen: the dotted names of the parameters with ``requires_grad=False``, for
        ``torchsem.optim.freeze(tx, ported.frozen)`` and ``torchsem.autograd``'s masks.
      source: the generated Python source (``print(ported.source)``); importing it and
        instantiating ``class_name`` gives an equal module.
      class_name: the root class's name in ``source``.
      check: the :class:`~torchsem.compare.PortCheck` when ``check=True`` was asked, else None.
    """

    module: Any
    variables: Any
    frozen: tuple[str, ...]
    source: str
    class_name: str
    example: tuple[Any, ...] = ()
    check: Any = None

    def __iter__(self) -> Any:
        return iter((self.module, self.variables))

    def nnx(self, rngs: Any = None) -> Any:
        """The port as a Flax NNX module (a :class:`torchsem.nnx.Twin`) holding the PyTorch weights.

        ``model.train()``/``model.eval()`` switch it as PyTorch's do; its NNX state paths are
        the ``state_dict`` keys (``torchsem.nnx.state_dict(model)``).

        Args:
          rngs: ``flax.nnx.Rngs`` (``dropout`` draws the masks in training); default ``Rngs(0)``.
        """
        from flax import nnx as flax_nnx

        from .. import nnx

        twin = nnx.wrap(self.module, *self.example, rngs=rngs if rngs is not None else flax_nnx.Rngs(0))
        twin.set_linen_variables(self.variables)
        return twin


def _as_tuple(example_inputs: Any) -> tuple[Any, ...]:
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    return (example_inputs,)


def _imports(builder: Builder) -> list[str]:
    found: list[str] = []

    def visit(expr: Any) -> None:
        if isinstance(expr, Custom):
            found.append(expr.module)
        for _, member in getattr(expr, "members", ()):
            visit(member)

    for spec in builder.classes:
        for _, expr in spec.children:
            visit(expr)
    return found


# A gross-error net, not a parity check: float32 rounding through a deep model stays far below it.
VERIFY_RTOL = 1e-3


def _verify(torch_module: Any, example_inputs: Any, module: Any, variables: Any, inputs: tuple[Any, ...]) -> None:
    """Refuse a port whose eval-mode output on the example inputs is not PyTorch's."""
    import jax
    import numpy as np
    import torch

    with torch_mode(torch_module, False), torch.no_grad():
        expected = torch_module(*_as_tuple(example_inputs))
    got = jax.jit(lambda v, *xs: module.apply(v, *xs, train=False))(variables, *inputs)
    theirs = [t.detach().cpu().numpy() for t in jax.tree_util.tree_leaves(expected, is_leaf=torch.is_tensor)]
    ours = [np.asarray(a) for a in jax.tree_util.tree_leaves(got)]
    if len(theirs) != len(ours):
        raise PortError(f"port: PyTorch's forward returns {len(theirs)} tensors, the port's {len(ours)}")
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a.shape != b.shape:
            raise PortError(f"port: output {index} has shape {a.shape}, PyTorch's {b.shape}")
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        error = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
        if not error <= VERIFY_RTOL * max(scale, 1e-30):
            raise PortError(
                f"port: on the example inputs in eval mode, the port's output {index} differs from PyTorch's by "
                f"{error:.3g} (scale {scale:.3g}). The module does something torch.fx does not record, e.g. an "
                "in-place `x += y` on a tensor that has another name (fx traces it as `x = x + y`): write it out "
                "of place, or port that submodule by hand (leaves=). Pass verify=False to get the port anyway."
            )


def _in_order(variables: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Each collection's nested dicts rebuilt in ``state_dict`` order (``eval_shape`` hands them back sorted)."""
    from ..tree import flatten_mapping

    rank = {key: index for index, key in enumerate(keys)}
    ordered: dict[str, Any] = {}
    for collection, tree in variables.items():
        flat = flatten_mapping(tree)
        rebuilt: dict[str, Any] = {}
        for name in sorted(flat, key=lambda n: rank.get(n, len(rank))):
            node = rebuilt
            *parents, leaf = name.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = flat[name]
        ordered[collection] = rebuilt
    return ordered


def load_source(source: str, class_name: str) -> Any:
    """Execute generated ``source`` as a fresh module and return its class ``class_name``."""
    name = f"torchsem_port_{next(_COUNTER)}"
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module  # flax and pickling look classes up by module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return getattr(module, class_name)


def port(
    torch_module: Any,
    example_inputs: Any,
    *,
    leaves: Mapping[Any, Any] | None = None,
    check: bool = False,
    check_kwargs: Mapping[str, Any] | None = None,
    verify: bool = True,
) -> Ported:
    """A Flax linen module that computes and trains as ``torch_module``, and its variables.

    The PyTorch module is traced with ``torch.fx`` one module at a time (in train and in eval
    mode, so that ``self.training`` branches become ``train`` branches): each ``torch.nn`` layer
    torchsem reproduces becomes that torchsem layer with the same constructor arguments,
    ``Sequential``/``ModuleList``/``ModuleDict`` become torchsem's, and every other module a
    generated class named as the PyTorch class whose ``__call__`` is its ``forward``, with
    ``torch`` functions, tensor methods and operators written as their
    :mod:`torchsem.port.torch_ops` / :mod:`torchsem.nn.functional` counterparts. Variables
    are named as the PyTorch module's ``state_dict`` and hold its values.

    Args:
      torch_module: the ``torch.nn.Module`` to port (its training flags are left as they were).
      example_inputs: a tensor or a tuple of the positional inputs of ``forward``; used only
        for the variables' shapes.
      leaves: hand-written Flax modules for submodules the port cannot trace or map: a dotted
        path (``"encoder.block"``) or a PyTorch class to a function ``torch_submodule ->
        flax module``. The Flax module's class must be importable (the generated source
        imports it) and its variables named as the PyTorch submodule's ``state_dict``.
      check: run :func:`torchsem.compare.check_port` on the result (one train step; set
        ``check_kwargs`` for more) and keep its report in ``Ported.check``.
      check_kwargs: keyword arguments for ``check_port``.
      verify: run both models once in eval mode on ``example_inputs`` and refuse a port whose
        output differs by more than ``VERIFY_RTOL`` of its scale: the net under what fx does
        not record (an in-place ``+=`` on a tensor that has another name is traced as ``+``).

    Returns:
      A :class:`Ported`: ``module, variables = port(...)``, plus ``frozen``, ``source`` and
      ``check``. Call ``module.apply(variables, *inputs, train=True, mutable=["batch_stats"],
      rngs={"dropout": key})`` for ``model.train()``, ``train=False`` for ``model.eval()``.

    Raises:
      PortError: an unsupported layer, function or method (naming the graph node, the op and
        the PyTorch source line, and listing what is supported), or a forward that fx cannot
        trace (with the ways around it).

    PyTorch counterpart: the module itself; ``model.train()``/``model.eval()`` is ``train=``,
    ``param.requires_grad=False`` is ``Ported.frozen``.
    """
    import jax
    import numpy as np

    from ..convert import load_torch_state_dict, to_jax

    import_torch_nn = sys.modules.get("torch.nn")
    if import_torch_nn is None or not isinstance(torch_module, import_torch_nn.Module):
        raise TypeError(f"port: torch_module must be a torch.nn.Module, got {type(torch_module).__name__}")
    builder = Builder(leaves, render_class)
    root = builder.expression(torch_module, "")
    if not isinstance(root, Generated):
        raise PortError(
            f"port: the model itself is a {type(torch_module).__name__} layer; port a module whose forward uses it"
        )
    origin = f"{type(torch_module).__module__}.{type(torch_module).__qualname__}"
    source = render_module(builder.classes, root.cls, origin, _imports(builder))
    module = load_source(source, root.cls)()
    inputs = tuple(to_jax(x) for x in _as_tuple(example_inputs))
    key = jax.random.PRNGKey(0)
    shapes = jax.eval_shape(lambda: module.init({"params": key, "dropout": key}, *inputs, train=False))
    skeleton = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    try:
        variables = load_torch_state_dict(skeleton, torch_module.state_dict())
    except (KeyError, ValueError, RuntimeError) as error:
        raise PortError(f"port: the generated module's variables do not take the state_dict: {error}") from error
    variables = _in_order(variables, list(torch_module.state_dict()))
    if verify:
        _verify(torch_module, example_inputs, module, variables, inputs)
    frozen = tuple(name for name, p in torch_module.named_parameters() if not p.requires_grad)
    report = None
    if check:
        from ..compare import check_port

        options = {"mode_kwargs": lambda train: {"train": train}, **dict(check_kwargs or {})}
        report = check_port(torch_module, module, example_inputs, **options)
    example = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in inputs)
    return Ported(module, variables, frozen, source, root.cls, example, report)


def supported() -> dict[str, Sequence[str]]:
    """What the port reproduces: ``{"layers": [...], "functions": [...]}`` (torch.nn names, torch/F/Tensor names)."""
    from ._leaves import supported_layers
    from ._trace import supported_functions

    return {"layers": supported_layers(), "functions": supported_functions()}
