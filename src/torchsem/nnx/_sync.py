"""``convert_sync_batchnorm`` for NNX models: every BatchNorm twin synchronised over a mapped axis, in place."""

from __future__ import annotations

from typing import Any

from flax import nnx

from .. import nn as _nn
from ._twin import Twin


def convert_sync_batchnorm(module: nnx.Module, axis_name: Any = "data") -> nnx.Module:
    """Make every torchsem BatchNorm in an NNX model synchronise its statistics over ``axis_name``.

    The NNX form of ``torch.nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group)``:
    the model is changed in place and returned, its state (keys, values) untouched. Each
    BatchNorm twin whose linen layer has no ``axis_name`` of its own gets ``axis_name``; called
    inside ``jax.shard_map`` over that axis, it normalises with the statistics of the whole
    batch across the devices (count-weighted mean, biased variance for normalising, the global
    unbiased correction for the running variance), as ``torch.nn.SyncBatchNorm`` does. (A linen
    model, immutable, gets :class:`torchsem.nn.SyncBatchNormWrapper` instead; an NNX model is
    mutable, as PyTorch's is, so no wrapper is needed.)

    Args:
      module: an NNX model built from ``torchsem.nnx`` layers.
      axis_name: the mapped data-parallel axis (PyTorch's process group), or a tuple of axes.

    Returns:
      ``module`` itself.

    Raises:
      TypeError: ``module`` is not an NNX module; ValueError: a bad ``axis_name``.
    """
    if not isinstance(module, nnx.Module):
        raise TypeError(f"convert_sync_batchnorm: module must be an nnx.Module, got {type(module).__name__}")
    with _nn.sync_batchnorm(axis_name):  # the linen switch checks the axis name as it would for linen
        pass
    for _, sub in nnx.iter_graph(module):
        linen = sub.linen_module if isinstance(sub, Twin) else None
        if isinstance(linen, _nn.BatchNorm) and linen.axis_name is None:
            sub.linen_module = linen.clone(axis_name=axis_name)
    return module
