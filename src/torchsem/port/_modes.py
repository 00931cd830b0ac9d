"""How a Flax module is told PyTorch's train/eval mode: which of its call's keywords to pass."""

from __future__ import annotations

import functools
import inspect
from typing import Any

# keyword -> the expression in the generated code (``train`` is the generated call's flag).
FLAG_VALUES = {"train": "train", "use_running_average": "not train", "deterministic": "not train"}


@functools.cache
def mode_flags(cls: type) -> tuple[str, ...]:
    """The mode keywords ``cls.__call__`` accepts, in :data:`FLAG_VALUES` order (none for a stateless layer)."""
    try:
        parameters = inspect.signature(cls.__call__).parameters
    except (TypeError, ValueError):
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return ()  # a container: the port works out its members' flags itself
    return tuple(flag for flag in FLAG_VALUES if flag in parameters)


def leaf_flags(cls_name: str) -> tuple[str, ...]:
    """The mode keywords of ``torchsem.nn.<cls_name>``."""
    import torchsem.nn as tnn

    target: Any = getattr(tnn, cls_name)
    return mode_flags(target)
