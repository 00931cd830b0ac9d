"""Gradients of intermediates, PyTorch's ``retain_grad()``, built on Flax's ``perturb``.

PyTorch frees the gradients of non-leaf tensors after ``backward()`` unless ``retain_grad()``
was called on them. In Flax the same gradient comes from ``perturb``: ``x = self.perturb(name, x)``
adds a zero variable (collection ``'perturbations'``) to ``x``, so the gradient of the loss with
respect to that variable is the gradient with respect to ``x``.

The documented way:

1. Mark the values: ``x = self.perturb("hidden", x)`` inside the module, or, without touching
   the module, wrap the call in :class:`retain_module_grads` to perturb the outputs (or inputs)
   of named submodules.
2. Create the zero variables once: ``variables = init_perturbations(model, variables, x)``
   (``model.init`` creates them too when the module calls ``perturb``).
3. Differentiate with :func:`value_grad_and_retained`: it returns the parameter gradients
   (PyTorch's leaf ``.grad``, without the perturbations) and the retained intermediate gradients
   by name, with PyTorch's Nones: an intermediate that does not require grad (PyTorch refuses
   ``retain_grad()`` on it: ``can't retain_grad on Tensor that has requires_grad=False``), or
   that has no path to the loss, gets ``None``.

The perturbations are shaped like the intermediates (batch axis included): make them again for
a new batch size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..tree import path_name
from . import _grad, _reachability

RETAIN_REQUIRES_GRAD_MESSAGE = "can't retain_grad on Tensor that has requires_grad=False"


class retain_module_grads:
    """Perturb the outputs (or inputs) of named Flax submodules, so that their gradients can be retained.

    The functional ``out = model.fc1(h); h.retain_grad(); out.retain_grad()`` without changing
    the model: inside the context, a call of a submodule listed in ``outputs`` returns
    ``module.perturb(output_name, out)`` (the output plus the zero variable
    ``perturbations/<module path>/output``), and a submodule listed in ``inputs`` receives its
    first argument as ``module.perturb(input_name, x)`` (``perturbations/<module path>/input``):
    the value between two stages of a model that has no module of its own, such as the
    reshape before ``fc1``.

    Use it around ``model.init``/:func:`init_perturbations` (to create the variables) and around
    ``model.apply`` inside the differentiated function; it also wraps a function:
    ``retain_module_grads(outputs=["fc1"])(model.apply)``.

    Args:
      outputs: dotted module paths relative to the root module (``"fc1"``, ``"block.conv"``)
        whose outputs to retain.
      inputs: dotted module paths whose first positional argument to retain.
      output_name, input_name: the perturbations' names inside each submodule's scope.
      collection: the variable collection holding the perturbations.

    Raises:
      ValueError: on leaving the context, when modules were called but a listed path matched
        none of them (the message lists the paths that were called).
    """

    def __init__(
        self,
        *,
        outputs: Sequence[str] = (),
        inputs: Sequence[str] = (),
        output_name: str = "output",
        input_name: str = "input",
        collection: str = "perturbations",
    ) -> None:
        for argument, paths in (("outputs", outputs), ("inputs", inputs)):
            if isinstance(paths, str):
                raise TypeError(
                    f"retain_module_grads: {argument} must be a sequence of module paths, got the "
                    f"string {paths!r}; write {argument}=[{paths!r}]"
                )
            for path in paths:
                if not isinstance(path, str) or not path:
                    raise TypeError(f"retain_module_grads: {argument} must hold non-empty strings, got {path!r}")
        if not outputs and not inputs:
            raise ValueError("retain_module_grads needs at least one module path, e.g. outputs=['fc1']")
        self.outputs = tuple(outputs)
        self.inputs = tuple(inputs)
        self.output_name = output_name
        self.input_name = input_name
        self.collection = collection
        self._stack: list[tuple[contextlib.ExitStack, set[str], set[str]]] = []

    def _interceptor(self, seen: set[str], called: set[str]) -> Callable:
        def intercept(next_fun: Callable, args: tuple, kwargs: dict, context: Any) -> Any:
            if context.method_name != "__call__" or context.module.scope is None:
                return next_fun(*args, **kwargs)
            path = ".".join(str(p) for p in context.module.path)
            called.add(path)
            if path in self.inputs and args:
                seen.add(path)
                args = (context.module.perturb(self.input_name, args[0], collection=self.collection), *args[1:])
            out = next_fun(*args, **kwargs)
            if path in self.outputs:
                seen.add(path)
                out = context.module.perturb(self.output_name, out, collection=self.collection)
            return out

        return intercept

    def __enter__(self) -> retain_module_grads:
        import flax.linen as nn

        stack = contextlib.ExitStack()
        seen: set[str] = set()
        called: set[str] = set()
        stack.enter_context(nn.intercept_methods(self._interceptor(seen, called)))
        self._stack.append((stack, seen, called))
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        stack, seen, called = self._stack.pop()
        stack.close()
        # Nothing called: a cached jax.jit call skipped tracing, so there is nothing to check.
        if exc_type is None and called:
            missing = [p for p in (*self.outputs, *self.inputs) if p not in seen]
            if missing:
                available = ", ".join(sorted(p for p in called if p)) or "(none)"
                raise ValueError(
                    f"retain_module_grads: no submodule at {', '.join(map(repr, missing))}; "
                    f"the submodules called were: {available}"
                )

    def __call__(self, fun: Callable) -> Callable:
        @functools.wraps(fun)
        def with_retained(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fun(*args, **kwargs)

        return with_retained


def init_perturbations(
    model: Any, variables: Mapping[str, Any], *args: Any, collection: str = "perturbations", **kwargs: Any
) -> dict[str, Any]:
    """``variables`` plus zero perturbations for every ``perturb`` the model makes on these inputs.

    Runs ``model.apply`` abstractly (``jax.eval_shape``: nothing is computed) with every
    collection mutable, and returns a new dict with ``variables[collection]`` replaced by zeros
    of the shapes found. Call it inside :class:`retain_module_grads` when that is how the values
    are marked.

    Args:
      model: the Flax module.
      variables: its variables (``{'params': ..., 'batch_stats': ...}``).
      *args, **kwargs: the arguments of a forward pass (``x``, ``train=True``, ``rngs=...``).
      collection: the perturbations' collection.
    """
    if not isinstance(variables, Mapping):
        raise TypeError(
            f"init_perturbations: variables must be a mapping of collections, got {type(variables).__name__}"
        )
    base = {k: v for k, v in variables.items() if k != collection}

    def perturbation_shapes(current: Mapping[str, Any]) -> Any:
        _, state = model.apply(current, *args, mutable=True, **kwargs)
        return state.get(collection, {})

    shapes = jax.eval_shape(perturbation_shapes, base)
    if not jax.tree.leaves(shapes):
        raise ValueError(
            f"init_perturbations: the model made no perturbation in collection {collection!r}; call "
            "self.perturb(name, x) in the module or run this inside retain_module_grads(...)"
        )
    return {**base, collection: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)}


def _is_perturbation(path: Sequence[Any], collection: str) -> bool:
    return any(isinstance(k, jax.tree_util.DictKey) and k.key == collection for k in path)


def _retained_name(path: Sequence[Any], collection: str) -> str:
    keys = list(path)
    start = next(i for i, k in enumerate(keys) if isinstance(k, jax.tree_util.DictKey) and k.key == collection)
    return path_name(keys[start + 1 :])


def _without_collection(tree: Any, collection: str) -> Any:
    if isinstance(tree, Mapping):
        kept = {k: _without_collection(v, collection) for k, v in tree.items() if k != collection}
        # ignore: mypy sees Mapping's argument-less constructor; a concrete mapping (FrozenDict) takes a dict.
        return type(tree)(kept) if not isinstance(tree, dict) else kept  # type: ignore[call-arg]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_without_collection(v, collection) for v in tree)
    return tree


def value_grad_and_retained(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    requires_grad: Any = None,
    collection: str = "perturbations",
) -> Callable:
    """:func:`torchsem.autograd.value_and_grad` plus the retained gradients of perturbed intermediates.

    Reproduces ``h.retain_grad()`` on intermediates, ``loss.backward()``, then reading the
    parameters' ``.grad`` and every ``h.grad``.

    Args:
      fun, argnums, has_aux, requires_grad: as :func:`torchsem.autograd.value_and_grad`; the
        perturbation leaves always take part (their ``requires_grad`` entries are ignored) but
        never count as requiring grad for PyTorch's checks.
      collection: the collection holding the perturbations inside the differentiated variables.

    Returns:
      A function returning ``(value, grads, retained)``: ``grads`` is the differentiated
      arguments' gradient tree without the ``collection`` entries; ``retained`` maps each
      perturbation's dotted path inside the collection (``"hidden"``, ``"fc1.output"``) to the
      gradient of the loss with respect to that intermediate, or None where PyTorch's ``.grad``
      is None (the intermediate does not require grad, or has no path to the loss). On the
      eager fallback for Python control flow on values (see :func:`torchsem.autograd.grad`),
      only "no path" is detected.

    Raises:
      RuntimeError: as :func:`torchsem.autograd.value_and_grad`.
      ValueError: when the differentiated arguments hold no ``collection`` entry.
    """

    @functools.wraps(fun)
    def value_grad_and_retained_fun(*args: Any, **kwargs: Any) -> tuple[Any, Any, dict[str, Any]]:
        mask = _complete_mask(requires_grad, args, argnums, collection)
        diff = _grad.prepare(
            fun, args, kwargs, argnums, has_aux, mask, force_trainable=lambda path: _is_perturbation(path, collection)
        )
        with_paths = jax.tree_util.tree_flatten_with_path(diff.treedef.unflatten(diff.leaves))[0]
        is_pert = [_is_perturbation(path, collection) for path, _ in with_paths]
        if not any(is_pert):
            raise ValueError(
                f"value_grad_and_retained: the differentiated arguments hold no {collection!r} "
                "collection; create it with init_perturbations(model, variables, x)"
            )
        positions = diff.trainable_positions
        program = _grad.trace(diff)
        parameter_bits = 0
        for k, i in enumerate(positions):
            if not is_pert[i]:
                parameter_bits |= 1 << k
        # PyTorch's checks see only real parameters: retain_grad() makes nothing require grad.
        _grad.check_loss(_masked(program, parameter_bits))
        reached = list(_reachability.inputs_reaching(program.loss_bits, len(positions)))
        if program.closed is not None:
            sources = _reachability.source_bits([True] * len(positions))
            for k, i in enumerate(positions):
                if is_pert[i] and reached[k]:
                    own = _reachability.consumer_bits(program.closed.jaxpr, sources, k)
                    reached[k] = (own & parameter_bits) != 0
        value, grads = _grad.differentiate(diff, program, reached)
        retained = {
            _retained_name(with_paths[i][0], collection): grads.get(i) for i in range(len(with_paths)) if is_pert[i]
        }
        parameter_grads = {i: g for i, g in grads.items() if not is_pert[i]}
        tree = diff.unflatten_grads(parameter_grads)
        return value, _without_collection(tree, collection), retained

    return value_grad_and_retained_fun


def _complete_mask(requires_grad: Any, args: tuple, argnums: int | Sequence[int], collection: str) -> Any:
    """Let a requires_grad mask written for the variables without perturbations apply to them with."""
    if requires_grad is None:
        return None

    def complete(mask: Any, arg: Any) -> Any:
        if isinstance(mask, Mapping) and collection not in mask and isinstance(arg, Mapping) and collection in arg:
            return {**mask, collection: True}
        return mask

    if isinstance(argnums, int):
        return complete(requires_grad, args[argnums] if -len(args) <= argnums < len(args) else None)
    if isinstance(requires_grad, tuple) and len(requires_grad) == len(argnums):
        return tuple(
            complete(m, args[i] if -len(args) <= i < len(args) else None) for m, i in zip(requires_grad, argnums)
        )
    return requires_grad


def _masked(program: _grad.TracedProgram, bits: int) -> _grad.TracedProgram:
    return dataclasses.replace(program, loss_bits=program.loss_bits & bits)
