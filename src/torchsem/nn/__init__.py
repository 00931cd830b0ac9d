"""Flax linen modules with PyTorch's semantics, in PyTorch's channels-first layout."""

from . import init as init
from ._batchnorm import BatchNorm as BatchNorm
from ._batchnorm import BatchNorm1d as BatchNorm1d
from ._batchnorm import BatchNorm2d as BatchNorm2d
from ._batchnorm import BatchNorm3d as BatchNorm3d
from ._batchnorm import SyncBatchNorm as SyncBatchNorm
from ._dropout import Dropout as Dropout
from ._linear import Linear as Linear
from ._pooling import AvgPool1d as AvgPool1d
from ._sync import SyncBatchNormWrapper as SyncBatchNormWrapper
from ._sync import convert_sync_batchnorm as convert_sync_batchnorm
from ._sync import sync_batchnorm as sync_batchnorm

__all__ = ["AvgPool1d", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Dropout", "Linear", "SyncBatchNorm", "SyncBatchNormWrapper",
           "convert_sync_batchnorm", "init", "sync_batchnorm"]
