"""``torchsem.port``: a Flax module with PyTorch's semantics, built from a PyTorch module by ``torch.fx``.

``module, variables = torchsem.port.port(torch_model, example_inputs)``; the generated source
is ``port(...).source``. torch is imported only when :func:`port` runs.
"""

from . import torch_ops as torch_ops
from ._errors import PortError as PortError
from ._port import Ported as Ported
from ._port import load_source as load_source
from ._port import port as port
from ._port import supported as supported

__all__ = ["PortError", "Ported", "load_source", "port", "supported", "torch_ops"]
