"""The ``reduction`` of ``torch.nn.functional``'s losses, and the deprecated ``size_average``/``reduce`` refused."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def check_reduction(reduction: Any, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise PyTorch's ``ValueError`` (``_Reduction.get_enum``) for a reduction it does not know.

    PyTorch still takes ``'elementwise_mean'`` (with a deprecation warning) as ``'mean'``;
    torchsem refuses the old spelling instead of converting it.
    """
    if reduction == "elementwise_mean":
        raise ValueError(
            "reduction='elementwise_mean' is PyTorch's deprecated spelling of 'mean'; torchsem takes only "
            f"{', '.join(repr(r) for r in allowed)}"
        )
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def legacy_reduction(size_average: Any, reduce: Any) -> str:
    """The reduction PyTorch's ``_Reduction.legacy_get_string`` makes of the deprecated flags (None means True)."""
    average = True if size_average is None else bool(size_average)
    keep = True if reduce is None else bool(reduce)
    if average and keep:
        return "mean"
    return "sum" if keep else "none"


def reject_legacy(owner: str, size_average: Any, reduce: Any) -> None:
    """Refuse PyTorch's deprecated ``size_average``/``reduce``, naming the ``reduction`` they stand for.

    PyTorch warns and lets them override ``reduction``; torchsem keeps their positions in the
    signatures (so positional calls line up with PyTorch's) but accepts only None there.

    Raises:
      ValueError: either flag is not None.
    """
    if size_average is None and reduce is None:
        return
    equivalent = legacy_reduction(size_average, reduce)
    raise ValueError(
        f"{owner}: size_average and reduce are deprecated in PyTorch (size_average={size_average!r}, "
        f"reduce={reduce!r} means reduction={equivalent!r}) and not accepted by torchsem: "
        f"pass reduction={equivalent!r} instead"
    )


def apply_reduction(loss: jax.Array, reduction: str) -> jax.Array:
    """``loss.mean()``, ``loss.sum()`` or ``loss`` itself, as ATen's ``apply_loss_reduction``.

    The mean of an empty loss is NaN (0 / 0) and its sum 0, as in PyTorch.
    """
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss
