"""How a port's variable names and layouts relate to PyTorch's ``state_dict``: the naming half of check_port.

A torchsem port needs no mapping: its variables carry PyTorch's names and layouts. A port in
plain Flax does: ``flax.linen.Dense`` stores ``kernel`` as ``(in, out)`` where PyTorch's
``Linear`` stores ``weight`` as ``(out, in)``; ``flax.linen.Conv`` stores ``kernel`` as
``(*spatial, in, out)`` where PyTorch's ``ConvNd`` stores ``(out, in, *spatial)``; Flax's norms
call the affine scale ``scale`` and BatchNorm's running statistics ``mean`` and ``var``.
:class:`PortNames` knows those conventions, applies the user's module renames on top, and
translates in both directions: PyTorch's state_dict into the port's names and layouts (to load
it), and the port's values into PyTorch's names and layouts (to compare them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["FLAX_LEAF_NAMES", "PortNames"]

FLAX_LEAF_NAMES: Mapping[tuple[str, str], str] = {
    ("params", "kernel"): "weight",
    ("params", "scale"): "weight",
    ("params", "embedding"): "weight",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}
"""Flax's own leaf names (collection, leaf) and the PyTorch name each stands for."""

Layout = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
"""``(torch_to_port, port_to_torch)``: how one variable's array is laid out in the port."""


def _kernel_axes(rank: int) -> tuple[int, ...]:
    """The transpose that turns a Flax kernel into PyTorch's weight.

    Rank 2 (``Dense``): ``(in, out) -> (out, in)``. Rank 3+ (``Conv``): ``(*spatial, in, out)
    -> (out, in, *spatial)``.
    """
    if rank == 2:
        return (1, 0)
    return (rank - 1, rank - 2, *range(rank - 2))


def _kernel_layout(rank: int) -> Layout:
    axes = _kernel_axes(rank)
    inverse = tuple(int(i) for i in np.argsort(axes))
    return (lambda a: np.transpose(a, inverse)), (lambda a: np.transpose(a, axes))


def _identity_layout() -> Layout:
    return (lambda a: a), (lambda a: a)


@dataclasses.dataclass(frozen=True)
class _Variable:
    collection: str
    port_name: str
    torch_name: str
    layout: Layout


class PortNames:
    """The correspondence between a port's variables and PyTorch's ``state_dict`` keys.

    Names are dotted paths (``layer1.0.conv1.weight``). A port name becomes a PyTorch name in
    two steps: the longest entry of ``modules`` that is a prefix of the module path (whole
    path components) is replaced by its value; then, with ``flax_conventions``, Flax's leaf
    names become PyTorch's (``kernel``/``scale``/``embedding`` -> ``weight``, ``mean`` ->
    ``running_mean``, ``var`` -> ``running_var``) and a ``kernel`` is transposed to PyTorch's
    layout (Dense ``(in, out)`` -> ``(out, in)``; Conv ``(*spatial, in, out)`` -> ``(out, in,
    *spatial)``). ``layouts`` overrides the layout of any variable by its PyTorch name.

    Args:
      variables: the port's variables (``{'params': ..., 'batch_stats': ...}``).
      modules: port module path -> PyTorch module path (``{"Dense_0": "fc1"}``), or a function
        of a port module path returning PyTorch's.
      flax_conventions: translate Flax's own leaf names and kernel layouts.
      layouts: PyTorch variable name -> ``(torch_to_port, port_to_torch)`` array functions.

    Raises:
      ValueError: two port variables map to the same PyTorch name.
    """

    def __init__(
        self,
        variables: Mapping[str, Any],
        modules: Mapping[str, str] | Callable[[str], str] | None = None,
        flax_conventions: bool = True,
        layouts: Mapping[str, Layout] | None = None,
    ) -> None:
        from ..tree import flatten_mapping

        self._modules = modules
        self._flax = flax_conventions
        layouts = dict(layouts or {})
        self._variables: dict[str, _Variable] = {}
        by_port: dict[str, str] = {}
        for collection in ("params", "batch_stats"):
            tree = variables.get(collection)
            if tree is None:
                continue
            for port_name, value in flatten_mapping(tree).items():
                torch_name, layout = self._translate(collection, port_name, np.ndim(value))
                layout = layouts.pop(torch_name, layout)
                if torch_name in self._variables:
                    raise ValueError(
                        f"the port's variables {self._variables[torch_name].port_name!r} and {port_name!r} both "
                        f"map to PyTorch's {torch_name!r}: give `names` a mapping that tells them apart"
                    )
                self._variables[torch_name] = _Variable(collection, port_name, torch_name, layout)
                by_port[port_name] = torch_name
        if layouts:
            raise ValueError(f"layouts names variables the port does not have: {sorted(layouts)}")
        self._by_port = by_port

    def module(self, port_path: str) -> str:
        """PyTorch's module path for a port module path (dotted; ``""`` is the root)."""
        modules = self._modules
        if modules is None:
            return port_path
        if callable(modules):
            return modules(port_path)
        parts = port_path.split(".") if port_path else []
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in modules:
                rest = parts[cut:]
                return ".".join(p for p in (modules[prefix], *rest) if p)
        return port_path

    def _translate(self, collection: str, port_name: str, rank: int) -> tuple[str, Layout]:
        module, _, leaf = port_name.rpartition(".")
        layout = _identity_layout()
        if self._flax and (collection, leaf) in FLAX_LEAF_NAMES:
            if leaf == "kernel" and rank >= 2:
                layout = _kernel_layout(rank)
            leaf = FLAX_LEAF_NAMES[(collection, leaf)]
        torch_module = self.module(module)
        return (f"{torch_module}.{leaf}" if torch_module else leaf), layout

    def torch_name(self, port_name: str) -> str:
        """PyTorch's name for a port variable (dotted, without the collection)."""
        return self._by_port.get(port_name, port_name)

    def port_name(self, torch_name: str) -> str | None:
        """The port variable that holds PyTorch's ``torch_name``, or None."""
        variable = self._variables.get(torch_name)
        return None if variable is None else variable.port_name

    def to_port_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
        """PyTorch's ``state_dict`` in the port's names and layouts, and the keys the port has no place for.

        A PyTorch key the port has no variable for passes through under its own name (so
        loading reports it as unexpected), except ``num_batches_tracked`` of a module that the
        port implements without the counter (Flax's BatchNorm): those are returned separately,
        as unmatched.
        """
        translated: dict[str, np.ndarray] = {}
        unmatched: list[str] = []
        port_modules = {name.rpartition(".")[0] for name in self._variables}
        for key, value in state_dict.items():
            variable = self._variables.get(key)
            if variable is not None:
                translated[variable.port_name] = variable.layout[0](np.asarray(value))
                continue
            module, _, leaf = key.rpartition(".")
            if leaf == "num_batches_tracked" and module in port_modules:
                unmatched.append(key)
                continue
            translated[key] = value
        return translated, unmatched

    def to_torch(self, flat_port_values: Mapping[str, Any]) -> dict[str, Any]:
        """Port values (dotted port names) as PyTorch's names and layouts; None stays None."""
        result: dict[str, Any] = {}
        for port_name, value in flat_port_values.items():
            torch_name = self.torch_name(port_name)
            variable = self._variables.get(torch_name)
            if value is not None and variable is not None:
                value = variable.layout[1](np.asarray(value))
            result[torch_name] = value
        return result
