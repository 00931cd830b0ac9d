"""``jit_step``: a jitted training step over NNX objects split once, at ``jax.jit``'s per-call cost.

``nnx.jit(step)(model, optimizer, x, y)`` walks the model and the optimizer's graph on every
call (to find their Variables and check their structure): on a small model that walk costs more
than the step itself (the document's net: several times the linen step). ``jit_step(step, model,
optimizer)`` does the walk once: it keeps the Variables in a flat list, and each call reads their
arrays, runs one ``jax.jit`` function of those arrays and writes the new arrays back into the
same Variables, so ``model`` and ``optimizer`` are up to date after every call, as with
``nnx.jit``. The structure is fixed when the step is built; the mode is watched: after
``model.eval()`` / ``model.train()`` the next call uses the new mode (one more compilation per
mode, as ``nnx.jit`` retraces).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.errors
import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["JitStep", "jit_step"]

_MODE_ATTRIBUTES = ("use_running_average", "deterministic")
_raw_value = nnx.Variable.get_raw_value
_set_attribute = object.__setattr__


class JitStep:
    """``fn(*nodes, *args, **kwargs)`` under ``jax.jit``, with ``nodes`` (NNX objects) split once.

    Attributes:
      fn: the step function; its first arguments are the NNX objects.
      nodes: the NNX objects (a model, an ``nnx.Optimizer``, metrics), updated in place by each call.

    PyTorch counterpart: a training step that updates ``model`` and ``optimizer`` in place
    (``loss.backward(); optimizer.step()``), compiled.
    """

    def __init__(self, fn: Callable[..., Any], *nodes: Any, donate: bool = False) -> None:
        """Split ``nodes`` and note which attributes hold their mode.

        Args:
          fn: ``fn(*nodes, *args, **kwargs)``; it may change Variables' values, not the graph's
            structure (no new or removed Variables or modules).
          *nodes: the NNX objects ``fn`` takes first.
          donate: donate the Variables' old arrays to the computation (they are replaced by
            the new ones after each call), as ``nnx.jit(donate_argnums=...)``: less memory and,
            on a small model, a faster step; an array read from a Variable before the call
            (``w = model.fc1.weight.get_value()``) is deleted by it (copy it to keep it).
        """
        self.fn = fn
        self.nodes = nodes
        self._donate = donate
        self._moded = [
            (node, name)
            for _, node in nnx.iter_graph(nodes)
            if isinstance(node, nnx.Module)
            for name in _MODE_ATTRIBUTES
            if name in vars(node)
        ]
        self._compiled: dict[tuple[Any, ...], tuple[list[nnx.Variable[Any]], Any]] = {}

    def _mode(self) -> tuple[Any, ...]:
        return tuple([getattr(node, name) for node, name in self._moded])

    def _build(self) -> tuple[list[nnx.Variable[Any]], Any]:
        graphdef, state = nnx.split(self.nodes)
        variables = [variable for _, variable in nnx.to_flat_state(state)]
        treedef: Any = jax.tree.structure(state)
        fn = self.fn

        def pure(values: list[Any], *args: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
            nodes = nnx.merge(graphdef, jax.tree.unflatten(treedef, values))
            output = fn(*nodes, *args, **kwargs)
            _, new_state = nnx.split(nodes)
            if jax.tree.structure(new_state) != treedef:
                raise ValueError(
                    "torchsem.nnx.jit_step: the step changed the structure of its NNX objects (a Variable or "
                    "module added or removed); use nnx.jit for such a step"
                )
            return output, jax.tree.leaves(new_state)

        return variables, jax.jit(pure, donate_argnums=(0,) if self._donate else ())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the step on the NNX objects' current values and write their new values back.

        Args:
          *args: the step's further arguments (arrays or pytrees of arrays).
          **kwargs: its keyword arguments (arrays or pytrees of arrays).

        Returns:
          ``fn``'s output (arrays; NNX objects cannot be returned).

        Raises:
          flax.errors.TraceContextError: called inside a JAX transform (``jax.jit``, ``jax.grad``).
          ValueError: ``fn`` adds or removes Variables or modules (at its first call in a mode).
        """
        mode = self._mode()
        compiled = self._compiled.get(mode)
        if compiled is None:
            compiled = self._compiled[mode] = self._build()
        variables, jitted = compiled
        current = list(map(_raw_value, variables))
        if self._donate:
            _unshared(current)
        output, values = jitted(current, *args, **kwargs)
        if values and isinstance(values[0], jax.core.Tracer):
            # Called inside another trace (jax.jit, jax.grad): its tracers must not leak into the Variables.
            raise flax.errors.TraceContextError(
                "torchsem.nnx.jit_step: called inside a JAX transform; the step updates its NNX objects in place, "
                "so call it outside (or use nnx.jit)"
            )
        # Written as nnx.jit_partial writes its updates back: Variable.set_raw_value's own trace
        # check costs about 2 us per Variable, a tenth of a small model's step.
        for variable, value in zip(variables, values):
            _set_attribute(variable, "_raw_value", value)
        return output


def _unshared(values: list[Any]) -> None:
    """Copy any array held by two Variables: XLA refuses to take a donated buffer twice."""
    seen: set[int] = set()
    for index, value in enumerate(values):
        if id(value) in seen:
            values[index] = jnp.array(value, copy=True)
        seen.add(id(value))


def jit_step(fn: Callable[..., Any], *nodes: Any, donate: bool = False) -> JitStep:
    """A jitted step over NNX objects that are walked once, not on every call (see :class:`JitStep`).

    ``step = jit_step(train_step, model, optimizer); loss = step(x, y)`` does what
    ``nnx.jit(train_step)(model, optimizer, x, y)`` does (the model and the optimizer are updated
    in place, ``model.train()``/``model.eval()`` take effect), without NNX's per-call graph
    traversal: within a few percent of the same step written on linen variables under
    ``jax.jit`` (``benchmarks/bench_nnx.py``).

    Args:
      fn: ``fn(*nodes, *args, **kwargs)``, changing Variables' values but not the graph's
        structure.
      *nodes: the NNX objects ``fn`` takes first (a model, an ``nnx.Optimizer``).
      donate: donate the Variables' old arrays to the computation (see :class:`JitStep`).

    Returns:
      The step: call it with the remaining arguments.

    Raises:
      ValueError: (at the first call) ``fn`` adds or removes Variables or modules.

    PyTorch counterpart: a compiled ``loss.backward(); optimizer.step()`` step on a module
    updated in place.
    """
    return JitStep(fn, *nodes, donate=donate)
