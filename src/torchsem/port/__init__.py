"""``torchsem.port``: a Flax module with PyTorch's semantics, built from a PyTorch module by ``torch.fx``.

``module, variables = torchsem.port(torch_model, example_inputs)`` (the package is callable:
it is :func:`port`); the generated source is ``torchsem.port(...).source``. torch is imported
only when :func:`port` runs.
"""

import sys
import types
from typing import Any

from . import torch_ops as torch_ops
from ._errors import PortError as PortError
from ._port import Ported as Ported
from ._port import load_source as load_source
from ._port import port as port
from ._port import supported as supported

__all__ = ["PortError", "Ported", "load_source", "port", "supported", "torch_ops"]


class _CallablePackage(types.ModuleType):
    """``torchsem.port(...)`` is ``torchsem.port.port(...)``, as the issue of the API spells it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Ported:
        return port(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
