"""The source document's network, ``net``, as a Flax module with PyTorch's layout and names."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..nn import AvgPool1d, BatchNorm1d, Linear

__all__ = ["Net"]


class Net(nn.Module):
    """AvgPool1d(2) -> BatchNorm1d(3) -> reshape(N, -1) -> Linear(12, 4), the document's ``net``.

    Channels-first like the document: ``x`` is ``(N, 3, 8)``; pooling gives ``(N, 3, 4)``,
    which is flattened C-major to ``(N, 12)`` (``x.reshape(x.size(0), -1)``) before ``fc1``.
    The submodules are named ``pool1``, ``bn1`` and ``fc1`` as in the document, so the
    variables are ``params/bn1/{weight,bias}``, ``batch_stats/bn1/{running_mean,running_var,
    num_batches_tracked}`` and ``params/fc1/{weight,bias}``: PyTorch's ``state_dict`` keys
    joined with ``/`` (see :mod:`torchsem.convert`).

    Each stage's output is sown into the ``intermediates`` collection as ``pool1_out``,
    ``bn1_out``, ``reshape_out``, ``detach_out`` (only with ``detach=True``) and ``fc1_out``
    (a submodule's own name is taken by its scope), for inspection with
    ``apply(..., mutable=['intermediates'])``; when that collection is not mutable sowing is
    skipped at trace time and costs nothing.

    Attributes:
      detach: cut the graph after the reshape with ``jax.lax.stop_gradient``, as the document's
        example two does with ``x = x.detach()``: nothing upstream (bn1) gets a gradient from
        the loss.

    Reproduces the document's ``class net(nn.Module)`` (``forward(x)``; ``train`` stands for
    ``model.train()``/``model.eval()``).
    """

    detach: bool = False

    def setup(self) -> None:
        self.pool1 = AvgPool1d(2)
        self.bn1 = BatchNorm1d(3)
        self.fc1 = Linear(12, 4)

    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """The forward pass.

        Args:
          x: ``(N, 3, 8)``, floating point.
          train: PyTorch's training mode: bn1 normalises with batch statistics and updates its
            running statistics (call ``apply`` with ``mutable=['batch_stats']``); False is eval
            mode (running statistics, nothing updated).

        Returns:
          The logits, ``(N, 4)``.
        """
        x = self.pool1(jnp.asarray(x))
        self.sow("intermediates", "pool1_out", x)
        x = self.bn1(x, use_running_average=not train)
        self.sow("intermediates", "bn1_out", x)
        x = x.reshape(x.shape[0], -1)
        self.sow("intermediates", "reshape_out", x)
        if self.detach:
            x = jax.lax.stop_gradient(x)
            self.sow("intermediates", "detach_out", x)
        x = self.fc1(x)
        self.sow("intermediates", "fc1_out", x)
        return x
