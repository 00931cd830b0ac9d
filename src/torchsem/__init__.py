"""torchsem: PyTorch semantics, reproduced exactly in JAX.

Subpackages load on first use, so ``import torchsem`` stays cheap and never imports torch:

- ``torchsem.nn``: Flax linen modules with PyTorch's semantics (BatchNorm, AvgPool1d, Linear, Dropout, init).
- ``torchsem.losses``: ``torch.nn.functional``'s losses (cross_entropy, nll_loss, mse/l1/smooth_l1/huber_loss,
  binary_cross_entropy(_with_logits), kl_div).
- ``torchsem.models``: ``Net`` (the source document's network) and torchvision's ResNets.
- ``torchsem.autograd``: gradients with PyTorch's None semantics, ``no_grad``, the leaf/grad_fn inspector.
- ``torchsem.optim``: optax transformations that step like ``torch.optim``; parameter groups, freezing,
  clipping and ``lr_scheduler``.
- ``torchsem.train``: jitted train steps and scanned loops.
- ``torchsem.parallel``: data-parallel training with synchronised BatchNorm.
- ``torchsem.convert``: PyTorch ``state_dict`` <-> Flax variables.
- ``torchsem.tree``: PyTorch-style dotted names of pytree leaves (``"fc1.weight"``), and leaf selectors.
- ``torchsem.random``: PyTorch's CPU generator, bit for bit.
- ``torchsem.compare``: the PyTorch-vs-JAX catalogue, oracle and report.
- ``torchsem.port``: a Flax module with PyTorch's semantics built from a PyTorch module
  (``module, variables = torchsem.port(torch_model, x)``; needs torch, imported only then).
"""

import importlib
from typing import Any

from ._version import __version__ as __version__

_SUBMODULES = (
    "nn",
    "losses",
    "models",
    "autograd",
    "optim",
    "train",
    "parallel",
    "convert",
    "tree",
    "random",
    "compare",
    "port",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'torchsem' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
