"""``no_grad`` and ``detach``: results that carry no gradient.

PyTorch's ``with torch.no_grad():`` records no graph for anything computed inside, so every
result has ``requires_grad=False`` and ``grad_fn=None``; ``loss.backward()`` on such a loss
raises ``element 0 of tensors does not require grad and does not have a grad_fn``.

The functional form is a function whose outputs pass through ``jax.lax.stop_gradient``.
:func:`torchsem.autograd.grad` sees the ``stop_gradient`` in the traced program, so a loss
computed by a ``no_grad`` function raises PyTorch's error, and a parameter whose only path to
the loss goes through one gets ``None``.

Why there is no ``with no_grad():`` form: a JAX program is a function of its inputs, and a
``with`` block sees neither the values computed inside it nor where they go afterwards.
Giving it PyTorch's meaning would need every primitive bound inside the block intercepted
(a private JAX tracing API), and its effect would then hinge on whether a ``jax.jit``-ed
function called inside had already been traced elsewhere. The function form states exactly
which values carry no gradient: the outputs of the wrapped function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

import jax

F = TypeVar("F", bound=Callable[..., Any])

_NO_CONTEXT_MANAGER = (
    "torchsem.autograd.no_grad is not a context manager: JAX cannot see which values a `with` block "
    "computes. Wrap the computation in a function instead: `out = no_grad(model.apply)(variables, x)` "
    "or decorate it with `@no_grad`; to cut the graph at one value use `detach(x)` (jax.lax.stop_gradient)."
)


def detach(tree: Any) -> Any:
    """``tensor.detach()``: the same values with no gradient path (``jax.lax.stop_gradient`` on every array leaf).

    Leaves that are not JAX arrays (numpy arrays, Python objects) are returned unchanged:
    they are constants to JAX and never carry a gradient.
    """
    return jax.tree.map(lambda leaf: jax.lax.stop_gradient(leaf) if isinstance(leaf, jax.Array) else leaf, tree)


class _NoGradDecorator:
    """What ``no_grad()`` returns: a decorator, refusing use as a context manager."""

    def __call__(self, fun: F) -> F:
        return no_grad(fun)

    def __enter__(self) -> None:
        raise TypeError(_NO_CONTEXT_MANAGER)

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        return "torchsem.autograd.no_grad()"


@overload
def no_grad(fun: None = None) -> _NoGradDecorator: ...


@overload
def no_grad(fun: F) -> F: ...


def no_grad(fun: F | None = None) -> F | _NoGradDecorator:
    """The functional ``torch.no_grad()``: ``fun`` with outputs that carry no gradient.

    ``no_grad(fun)``, ``@no_grad`` and ``@no_grad()`` all work. The computation inside ``fun``
    is unchanged (BatchNorm and dropout behave as they would without it, as in PyTorch);
    only its outputs are detached.

    Args:
      fun: the function whose results should not require grad.

    Returns:
      A function with ``fun``'s signature whose array outputs are ``stop_gradient``-ed.
    """
    if fun is None:
        return _NoGradDecorator()
    if not callable(fun):
        raise TypeError(f"no_grad expects a function to wrap, got {type(fun).__name__}. {_NO_CONTEXT_MANAGER}")

    @functools.wraps(fun)
    def no_grad_fun(*args: Any, **kwargs: Any) -> Any:
        return detach(fun(*args, **kwargs))

    return no_grad_fun  # type: ignore[return-value]
