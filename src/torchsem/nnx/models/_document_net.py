"""The source document's network, ``net``, as an NNX module that reads like the PyTorch original."""

from __future__ import annotations

import jax
from flax import nnx

from .._layers import AvgPool1d, BatchNorm1d, Linear

__all__ = ["Net"]


class Net(nnx.Module):
    """AvgPool1d(2) -> BatchNorm1d(3) -> reshape(N, -1) -> Linear(12, 4), the document's ``net``.

    Written as the document writes it: the layers in ``__init__`` (in PyTorch's order, so
    :func:`torchsem.nnx.torch_init` draws as ``torch.manual_seed(s); net()`` does) and a
    ``__call__`` that is the document's ``forward``. ``model.train()`` / ``model.eval()`` switch
    ``bn1`` as PyTorch's do; in training ``bn1``'s running statistics are updated in place.
    The state paths are PyTorch's ``state_dict`` names: ``('bn1', 'weight')``,
    ``('bn1', 'running_mean')``, ``('fc1', 'weight')``.

    Attributes:
      detach: cut the graph after the reshape (``x = x.detach()``, the document's example two):
        nothing upstream (bn1) gets a gradient.

    Reproduces the document's ``class net(nn.Module)``; the linen form is ``torchsem.models.Net``.
    """

    def __init__(self, detach: bool = False, *, rngs: nnx.Rngs) -> None:
        """Build pool1, bn1 and fc1, as the document's ``__init__``."""
        self.pool1 = AvgPool1d(2)
        self.bn1 = BatchNorm1d(3, rngs=rngs)
        self.fc1 = Linear(12, 4, rngs=rngs)
        self.detach = detach

    def __call__(self, x: jax.Array) -> jax.Array:
        """The document's ``forward``: ``(N, 3, 8)`` -> logits ``(N, 4)``."""
        x = self.pool1(x)
        x = self.bn1(x)
        x = x.reshape(x.shape[0], -1)
        if self.detach:
            x = jax.lax.stop_gradient(x)
        x = self.fc1(x)
        return x
