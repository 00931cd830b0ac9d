"""Filling PyTorch-style None gradients with zeros, for code that needs an array at every leaf."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def none_to_zeros(grads: Any, like: Any) -> Any:
    """``grads`` with every None replaced by zeros shaped like the matching leaf of ``like``.

    What ``jax.grad`` would have returned: use it to feed plain optax, but note that optax then
    updates those leaves (weight decay, momentum), which PyTorch's ``optimizer.step()`` does not
    for a parameter whose ``.grad`` is None; torchsem.optim takes the Nones directly.

    Args:
      grads: gradients from :func:`torchsem.autograd.grad` (None where there is no gradient).
      like: the differentiated arguments (same structure, arrays at every leaf).
    """
    try:
        return jax.tree.map(
            lambda g, p: jnp.zeros_like(p) if g is None else g, grads, like, is_leaf=lambda g: g is None
        )
    except ValueError as error:
        raise ValueError(f"none_to_zeros: grads and like must have the same structure: {error}") from None
