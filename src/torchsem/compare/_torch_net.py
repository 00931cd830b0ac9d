"""The source document's PyTorch ``net``, shared by every PyTorch program that runs it.

Only PyTorch programs call this (torch is imported inside the functions), so the package
still imports without torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._document_net import DOCUMENT_SEED, DOCUMENT_X_SHAPE


def torch_net_class(*, detach: bool = False, seen: dict[str, Any] | None = None):
    """The document's ``class net`` (AvgPool1d(2) -> BatchNorm1d(3) -> reshape -> Linear(12, 4)).

    Args:
      detach: apply example two's ``x = x.detach()`` after the reshape.
      seen: if given, ``forward`` stores its intermediates there under the names
        ``torchsem.models.Net`` sows them: ``pool1_out``, ``bn1_out``, ``reshape_out``,
        ``detach_out`` (with ``detach``) and ``fc1_out``.
    """
    import torch.nn as nn

    record = seen if seen is not None else {}

    class net(nn.Module):
        def __init__(self, num_class: int = 10) -> None:
            super().__init__()
            self.pool1 = nn.AvgPool1d(2)
            self.bn1 = nn.BatchNorm1d(3)
            self.fc1 = nn.Linear(12, 4)

        def forward(self, x):
            x = self.pool1(x)
            record["pool1_out"] = x
            x = self.bn1(x)
            record["bn1_out"] = x
            x = x.reshape(x.size(0), -1)
            record["reshape_out"] = x
            if detach:
                x = x.detach()
                record["detach_out"] = x
            x = self.fc1(x)
            record["fc1_out"] = x
            return x

    return net


def torch_net(state: Mapping[str, Any] | None = None, *, detach: bool = False, seen: dict[str, Any] | None = None):
    """A new document ``net``, with ``state`` (numpy arrays by PyTorch key) loaded when given."""
    import torch

    model = torch_net_class(detach=detach, seen=seen)()
    if state is not None:
        model.load_state_dict({key: torch.from_numpy(np.array(value, copy=True)) for key, value in state.items()})
    return model


def torch_document_start(
    draws: Sequence[Sequence[int]] = (DOCUMENT_X_SHAPE,),
    *,
    seed: int = DOCUMENT_SEED,
    detach: bool = False,
    seen: dict[str, Any] | None = None,
):
    """``seed_torch(seed); model = net()`` and then one ``torch.randn(shape)`` per shape in ``draws``.

    Of ``seed_torch``'s calls only ``torch.manual_seed`` reaches PyTorch's CPU generator (the
    others seed Python's ``random``, numpy and CUDA), so it is the one made here. The JAX side
    of the same start is :func:`torchsem.compare.document_start`.

    Returns:
      ``(model, xs)``: the new ``net`` (``detach`` and ``seen`` as :func:`torch_net_class`) and
      the drawn tensors.
    """
    import torch

    torch.manual_seed(int(seed))
    model = torch_net(detach=detach, seen=seen)
    return model, tuple(torch.randn(tuple(shape)) for shape in draws)
