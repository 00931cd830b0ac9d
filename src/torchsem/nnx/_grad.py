"""PyTorch's ``requires_grad`` and None gradients for NNX models: a trainable filter and ``value_and_grad``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
from flax import nnx

from .. import autograd

__all__ = ["trainable", "value_and_grad"]


def _names(selector: str | Iterable[str] | None) -> tuple[str, ...]:
    if selector is None:
        return ()
    return (selector,) if isinstance(selector, str) else tuple(selector)


def _selected(dotted: str, names: tuple[str, ...]) -> bool:
    # A name selects itself and, as a prefix at a dot, every parameter below it ("bn1": bn1.weight, bn1.bias).
    return any(dotted == name or dotted.startswith(name + ".") for name in names)


def trainable(frozen: str | Iterable[str] | None = None) -> Callable[[tuple[Any, ...], Any], bool]:
    """An NNX filter of the parameters that require grad: every ``nnx.Param`` but the ``frozen`` ones.

    Give it to ``nnx.grad(..., argnums=nnx.DiffState(0, filter))``, to
    ``nnx.Optimizer(model, tx, wrt=filter)`` and to :func:`value_and_grad`: a frozen parameter
    then gets no gradient and is never stepped, as after ``p.requires_grad = False``.

    Args:
      frozen: dotted ``state_dict`` names (``"fc1.weight"``) or module prefixes (``"bn1"``).

    Returns:
      A filter ``(path, value) -> bool``.

    PyTorch counterpart: ``model.fc1.weight.requires_grad = False``.
    """
    names = _names(frozen)

    def requires_grad(path: tuple[Any, ...], value: Any) -> bool:
        return isinstance(value, nnx.Param) and not _selected(".".join(str(p) for p in path), names)

    return requires_grad


def value_and_grad(
    fn: Callable[..., Any], *, wrt: Any = nnx.Param, has_aux: bool = False
) -> Callable[..., tuple[Any, Any]]:
    """``nnx.value_and_grad`` of ``fn(model, *args)`` with PyTorch's gradients: None where ``.grad`` is None.

    The gradient is :func:`torchsem.autograd.value_and_grad`'s: None for a parameter the loss
    does not reach (cut by ``detach``, unused) and for one outside ``wrt`` (frozen), zeros only
    where PyTorch has zeros. State that ``fn`` changes on its model (running statistics, rng
    counters) is written back to ``model``, as ``nnx.value_and_grad`` does. Works inside
    ``nnx.jit``.

    Args:
      fn: ``fn(model, *args, **kwargs) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      wrt: the filter of the parameters that require grad (:func:`trainable`).
      has_aux: whether ``fn`` returns ``(loss, aux)``.

    Returns:
      ``f(model, *args, **kwargs) -> (value, grads)``: ``grads`` a nested dict at the NNX paths
      of every ``nnx.Param``, an array or None each.

    Raises:
      RuntimeError: PyTorch's ``element 0 of tensors does not require grad`` when nothing the
        loss depends on requires grad.

    PyTorch counterpart: ``loss.backward()`` then ``p.grad`` for ``model.named_parameters()``.
    """

    def run(model: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        graphdef, params, rest = nnx.split(model, wrt, ...)  # type: ignore[misc]  # flax's overloads: 3 parts here
        pure = nnx.to_pure_dict(params)

        def inner(pure: Any) -> Any:
            fresh = jax.tree.map(lambda leaf: leaf, params)  # new Variables for this trace
            nnx.replace_by_pure_dict(fresh, pure)
            module = nnx.merge(graphdef, fresh, jax.tree.map(lambda leaf: leaf, rest))
            out = fn(module, *args, **kwargs)
            value, aux = out if has_aux else (out, None)
            return value, (aux, nnx.state(module, nnx.Not(wrt)))

        (value, (aux, changed)), grads = autograd.value_and_grad(inner, has_aux=True)(pure)
        nnx.update(model, changed)
        every = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        return ((value, aux) if has_aux else value), _with_nones(every, grads)

    return run


def _with_nones(every: Any, grads: Any) -> Any:
    """``grads`` extended to every parameter's path, None where it has no entry (a frozen parameter)."""
    if not isinstance(every, dict):
        return grads
    given = grads if isinstance(grads, dict) else {}
    return {name: _with_nones(value, given.get(name)) for name, value in every.items()}
