"""A hand-written Flax module standing in for a PyTorch submodule the port cannot trace (tests/test_port.py)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class Gate(nn.Module):
    """``_port_models.Gate``: double the input when its sum is positive, as ``jnp.where`` (traceable)."""

    factor: float = 2.0

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return jnp.where(jnp.sum(x) > 0, x * self.factor, x)
