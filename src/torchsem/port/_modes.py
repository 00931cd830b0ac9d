"""How a Flax module is told PyTorch's train/eval mode: which of its call's keywords to pass."""

from __future__ import annotations

from typing import Any

# keyword -> the expression in the generated code (``train`` is the generated call's flag).
FLAG_VALUES = {"train": "train", "use_running_average": "not train", "deterministic": "not train"}


def mode_flags(cls: type) -> tuple[str, ...]:
    """The mode keyword ``cls.__call__`` takes (``torchsem.nn.mode_argument``), none for a stateless layer.

    A container's (``**kwargs``) is none too: the port works out its members' flags itself.
    """
    from ..nn import mode_argument

    argument = mode_argument(cls)
    return () if argument in (None, "**") else (argument,)


def leaf_flags(cls_name: str) -> tuple[str, ...]:
    """The mode keywords of ``torchsem.nn.<cls_name>``."""
    import torchsem.nn as tnn

    target: Any = getattr(tnn, cls_name)
    return mode_flags(target)
