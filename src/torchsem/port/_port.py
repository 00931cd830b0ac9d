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
    check: Any = None

    def __iter__(self) -> Any:
        return iter((self.module, self.variables))


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
    frozen = tuple(name for name, p in torch_module.named_parameters() if not p.requires_grad)
    report = None
    if check:
        from ..compare import check_port

        options = {"mode_kwargs": lambda train: {"train": train}, **dict(check_kwargs or {})}
        report = check_port(torch_module, module, example_inputs, **options)
    return Ported(module, variables, frozen, source, root.cls, report)


def supported() -> dict[str, Sequence[str]]:
    """What the port reproduces: ``{"layers": [...], "functions": [...]}`` (torch.nn names, torch/F/Tensor names)."""
    from ._leaves import supported_layers
    from ._trace import supported_functions

    return {"layers": supported_layers(), "functions": supported_functions()}
