"""The train/eval switch of a module: a field or a call argument, merged the Flax way; which argument a call takes."""

from __future__ import annotations

import inspect

import flax.linen as nn


def merge_mode(module: str, name: str, field: bool | None, call: bool | None, meaning: str) -> bool:
    """``nn.merge_param(name, field, call)`` with an error that says what the flag means.

    Flax's convention: the mode is given once, to the constructor or to the call; giving both
    is an error (a call that silently overrides the field hides which mode a layer runs in),
    and so is giving neither (PyTorch modules start in train mode, but a Flax layer that
    silently trains where the caller meant eval is the bug this library exists to prevent).

    Args:
      module: the module's class name, for the message.
      name: the flag (``use_running_average``, ``deterministic``).
      field: the constructor's value, or None.
      call: the call's value, or None.
      meaning: what True and False mean, for the message.

    Raises:
      ValueError: both or neither given.
    """
    try:
        return bool(nn.merge_param(name, field, call))
    except ValueError as error:
        raise ValueError(f"{module}: {error} ({meaning})") from None


def mode_argument(linen_class: type) -> str | None:
    """The train/eval argument of a linen module's call: ``use_running_average``, ``deterministic``, ``train``, ``**``.

    Args:
      linen_class: a Flax linen module class.

    Returns:
      The argument's name, ``"**"`` for a call that hands keyword arguments on (a
      container), or None for a module without a mode.

    PyTorch counterpart: the modules whose ``forward`` reads ``self.training``.
    """
    try:
        parameters = inspect.signature(linen_class.__call__).parameters
    except (TypeError, ValueError):
        return None
    for name in ("use_running_average", "deterministic", "train"):
        if name in parameters:
            return name
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return "**"
    return None
