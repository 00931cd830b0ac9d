"""PyTorch's CPU random numbers, bit for bit, without PyTorch.

- :class:`Generator`: ``torch.manual_seed(seed)`` + ``rand``/``randn``/``uniform_``/
  ``normal_``/``randint``/``randperm``/``bernoulli_`` as numpy arrays, bit-identical and in
  stream order.
- :func:`torch_init`: a Flax module's variables with PyTorch's default initial values, drawn
  from a :class:`Generator` in PyTorch's order; :func:`register_torch_init` adds module types.
"""

from ._generator import Generator
from ._platform import UnsupportedKernel, normal_kernel_build
from ._torch_init import (
    batchnorm_torch_init,
    kaiming_uniform_bound,
    linear_torch_init,
    register_torch_init,
    registered_torch_inits,
    torch_init,
)

__all__ = [
    "Generator",
    "UnsupportedKernel",
    "batchnorm_torch_init",
    "kaiming_uniform_bound",
    "linear_torch_init",
    "normal_kernel_build",
    "register_torch_init",
    "registered_torch_inits",
    "torch_init",
]
