"""``torchsem.nnx.Sequential``: ``torch.nn.Sequential`` as an NNX module, children named ``"0"``, ``"1"``, ..."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flax import nnx

__all__ = ["Sequential"]


class Sequential(nnx.Module):
    """Apply the layers in order, as ``torch.nn.Sequential(*layers)`` / ``Sequential(OrderedDict)``.

    The children are attributes named ``"0"``, ``"1"``, ... (or by the mapping's keys), so the
    NNX paths and the ``state_dict`` keys are PyTorch's (``('0', 'weight')``, ``0.weight``). The
    mode needs no handing on: ``model.train()`` / ``model.eval()`` / ``nnx.view`` set it on every
    layer inside, as PyTorch's ``train()`` recurses. Layers are NNX modules or plain callables
    (``jax.nn.relu``).

    PyTorch counterpart: ``torch.nn.Sequential``.
    """

    def __init__(self, *layers: Any) -> None:
        """Hold ``layers`` (positionally, or one mapping of names to layers) in order."""
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            items = [(str(key), value) for key, value in layers[0].items()]
        else:
            items = [(str(index), value) for index, value in enumerate(layers)]
        for key, layer in items:
            if not callable(layer):
                raise TypeError(f"Sequential: {type(layer).__name__} is not a Module subclass (nor a callable)")
            setattr(self, key, layer)
        self._names = tuple(key for key, _ in items)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return (getattr(self, name) for name in self._names)

    def __getitem__(self, index: int) -> Any:
        """``seq[i]``: the i-th layer (negative indices count from the end)."""
        return getattr(self, self._names[index])

    def __call__(self, input: Any) -> Any:
        """Run the layers in order, each on the previous one's output."""
        output = input
        for layer in self:
            output = layer(output)
        return output
