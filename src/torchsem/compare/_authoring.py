"""Scenario authoring helpers: jit handling and error outcomes, in one place for every scenario."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._outputs import NO_ERROR

F = TypeVar("F", bound=Callable[..., Any])


def jitted(fun: F, jit: bool, **jit_kwargs: Any) -> F:
    """``jax.jit(fun, **jit_kwargs)`` when the scenario runs under jit, else ``fun`` itself.

    Every JAX program takes ``(inputs, jit)``; this is the one place that turns the flag into a
    transformation, so the eager and the jitted run execute the same function.
    """
    if not jit:
        return fun
    import jax

    return jax.jit(fun, **jit_kwargs)  # type: ignore[return-value]


def builtin_type_name(error: BaseException) -> str:
    """The first built-in exception type the error is an instance of.

    torchsem's ``InputError`` is both a ``RuntimeError`` (PyTorch's type) and a ``ValueError``;
    its first built-in base, ``RuntimeError``, is what a PyTorch program would see.
    """
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(error).__name__


def error_outputs(attempt: Callable[[], Any]) -> dict[str, str]:
    """Run ``attempt`` and return ``{"error type", "error message"}`` (both ``NO_ERROR`` when it returns).

    The same function serves the PyTorch and the JAX program of an error scenario, so the two
    sides are recorded and compared in one shape; any exception is the compared output.
    """
    try:
        attempt()
    except Exception as error:  # the error itself is what is compared
        return {"error type": builtin_type_name(error), "error message": str(error)}
    return {"error type": NO_ERROR, "error message": NO_ERROR}
