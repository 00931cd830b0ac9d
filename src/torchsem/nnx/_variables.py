"""The NNX Variable types of PyTorch's state: parameters, running statistics and ``num_batches_tracked``."""

from __future__ import annotations

from typing import Any

from flax import nnx

__all__ = ["NumBatchesTracked", "variable_type"]


class NumBatchesTracked(nnx.BatchStat):
    """BatchNorm's ``num_batches_tracked`` counter, an integer buffer of its own type.

    It subclasses :class:`flax.nnx.BatchStat` because PyTorch counts it among the buffers
    (``named_buffers()``, the ``state_dict``) and torchsem's linen modules keep it in the
    ``batch_stats`` collection with the running statistics: ``nnx.state(model, nnx.BatchStat)``
    is every buffer, as ``model.buffers()`` is. Its own type lets a filter single it out where
    an integer does not belong (``nnx.All(nnx.BatchStat, nnx.Not(NumBatchesTracked))`` for an
    EMA of the float statistics), and ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` never sees it.

    Counterpart of PyTorch's ``BatchNorm*d.num_batches_tracked`` buffer (an int64 0-d tensor).
    """


def variable_type(collection: str, name: str) -> type[nnx.Variable[Any]]:
    """The NNX Variable type of a linen variable: ``params`` -> Param, ``batch_stats`` -> BatchStat.

    Args:
      collection: the linen collection (``params`` or ``batch_stats``).
      name: the variable's own name (``num_batches_tracked`` gets :class:`NumBatchesTracked`).

    Returns:
      The Variable subclass to hold it.

    Raises:
      ValueError: a collection that holds no PyTorch state.

    PyTorch counterpart: ``nn.Parameter`` versus ``register_buffer``.
    """
    if collection == "params":
        return nnx.Param
    if collection == "batch_stats":
        return NumBatchesTracked if name == "num_batches_tracked" else nnx.BatchStat
    raise ValueError(f"torchsem.nnx: the linen collection {collection!r} holds no PyTorch state (params, batch_stats)")
