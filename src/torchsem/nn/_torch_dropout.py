"""PyTorch's own dropout masks: every dropout draws from a ``torchsem.random.Generator`` in PyTorch's order.

By default torchsem's dropout modules draw their masks from Flax's ``'dropout'`` rng stream:
fast, PyTorch's distribution, different bits. Inside :func:`torch_dropout` they instead draw
exactly the masks PyTorch's CPU generator draws: ``F.dropout`` on CPU makes its mask with
``bernoulli_(1 - p)`` on a tensor of the mask's shape (the input's shape for ``Dropout``,
``(N, C, 1, ...)`` for ``Dropout1d/2d/3d``), one float64 uniform per element, in the order
the forward calls its dropouts. :class:`torchsem.random.Generator` replays those draws bit for
bit, so ``g = Generator(s); variables = torch_init(model, g, x)`` followed by training steps
under ``torch_dropout(g)`` reproduces ``torch.manual_seed(s); model = Model()`` and the same
training steps, masks included.

The draws run on the host through ``jax.experimental.io_callback(ordered=True)``, so they
happen in program order under ``jax.jit`` too, and the generator advances as PyTorch's does.
The choice is made when a function is traced: a function jitted inside the context keeps
drawing from that generator on every later call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["active_generator", "torch_dropout", "torch_dropout_mask"]

_state = threading.local()


def _stack() -> list[Any]:
    if not hasattr(_state, "generators"):
        _state.generators = []
    return _state.generators


@contextlib.contextmanager
def torch_dropout(generator: Any) -> Iterator[Any]:
    """Draw every dropout mask traced inside this block from ``generator``, as PyTorch's CPU generator does.

    Args:
      generator: a :class:`torchsem.random.Generator` (``torch.manual_seed(s)`` is
        ``Generator(s)``), shared with ``torch_init`` and data sampling as PyTorch shares its
        default generator.

    Yields:
      ``generator``.

    Raises:
      TypeError: ``generator`` is not a ``torchsem.random.Generator``.
    """
    from ..random import Generator

    if not isinstance(generator, Generator):
        raise TypeError(f"torch_dropout: generator must be a torchsem.random.Generator, got {type(generator).__name__}")
    stack = _stack()
    stack.append(generator)
    try:
        yield generator
    finally:
        stack.pop()


def active_generator() -> Any | None:
    """The generator of the innermost :func:`torch_dropout` block, or None (Flax's rng streams)."""
    stack = _stack()
    return stack[-1] if stack else None


def torch_dropout_mask(generator: Any, shape: tuple[int, ...], p: float) -> jax.Array:
    """The keep-mask PyTorch draws for dropout probability ``p``: ``empty(shape).bernoulli_(1 - p)``, as bools.

    Drawn on the host at run time (an ordered ``io_callback``), so successive masks follow the
    program's order under ``jax.jit``.
    """
    from jax.experimental import io_callback

    keep_probability = 1.0 - p

    def draw() -> np.ndarray:
        return generator.bernoulli(shape, keep_probability, dtype=np.bool_)

    return io_callback(draw, jax.ShapeDtypeStruct(shape, jnp.bool_), ordered=True)
