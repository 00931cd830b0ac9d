"""Constructor checks with PyTorch's messages, one argument at a time in PyTorch's order."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ._common import check_number


def check_nonnegative(name: str, value: Any, label: str) -> float:
    """``value`` as a number, or PyTorch's ``ValueError("Invalid {label} value: {value}")`` unless ``0 <= value``.

    NaN fails, as PyTorch's ``not 0.0 <= value`` does. A non-number is a TypeError naming ``name``.
    """
    value = check_number(name, value)
    if not value >= 0.0:
        raise ValueError(f"Invalid {label} value: {value}")
    return value


def check_betas(betas: Any) -> tuple[float, float]:
    """``(beta1, beta2)``, each in ``[0, 1)``, with PyTorch's ``Invalid beta parameter at index i: ...``."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of floats (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        check_number(f"betas[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
    return betas[0], betas[1]


def check_float_leaves(leaves: Any) -> None:
    """A TypeError for a parameter that is not floating point (PyTorch's optimizers step float tensors)."""
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(f"torchsem.optim steps floating-point parameters, got a {jnp.result_type(leaf)} leaf")
