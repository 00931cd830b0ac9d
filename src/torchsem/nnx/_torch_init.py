"""``torch_init`` for NNX models: ``torch.manual_seed(s); Model()``'s initial state, bit for bit."""

from __future__ import annotations

from typing import Any

from ..random import Generator
from ..random import torch_init as _linen_torch_init
from ._twin import Twin
from ._walk import walk

__all__ = ["torch_init"]


def torch_init(model: Any, generator: Generator) -> Any:
    """Give every twin in ``model`` PyTorch's initial parameters and buffers, drawn from ``generator``.

    The twins are visited in the model's construction order (attribute assignment order, as
    PyTorch's ``__init__`` registers and initialises its submodules), and each runs
    :func:`torchsem.random.torch_init` on its linen module and example input, advancing
    ``generator`` exactly as building the PyTorch module advances PyTorch's global generator.
    Buffers are reset to a fresh module's (running mean 0, variance 1, no batches tracked).

    Args:
      model: an NNX model of torchsem twins (changed in place).
      generator: a :class:`torchsem.random.Generator` (``torch.manual_seed(s)`` is ``Generator(s)``).

    Returns:
      ``model``.

    Raises:
      NotImplementedError: an NNX Param outside a twin, whose PyTorch initialisation is unknown.

    PyTorch counterpart: ``torch.manual_seed(s); model = Model(...)``.
    """
    for path, node in walk(model):
        if not isinstance(node, Twin):
            raise NotImplementedError(
                f"torch_init: {'.'.join(path)} is an NNX {type(node).__name__} outside a torchsem twin; its "
                "PyTorch initialisation is unknown"
            )
        if node._example is None:
            continue
        args, kwargs = node._example_call()
        variables = _linen_torch_init(node.linen_module, generator, *args, **kwargs, **node._linen_mode(False))
        node.set_linen_variables(variables)
    return model
