"""Flax linen modules with PyTorch's semantics, in PyTorch's channels-first layout."""

from . import functional as functional
from . import init as init
from ._activations import CELU as CELU
from ._activations import ELU as ELU
from ._activations import GELU as GELU
from ._activations import GLU as GLU
from ._activations import SELU as SELU
from ._activations import Hardshrink as Hardshrink
from ._activations import Hardsigmoid as Hardsigmoid
from ._activations import Hardswish as Hardswish
from ._activations import Hardtanh as Hardtanh
from ._activations import LeakyReLU as LeakyReLU
from ._activations import LogSigmoid as LogSigmoid
from ._activations import LogSoftmax as LogSoftmax
from ._activations import Mish as Mish
from ._activations import PReLU as PReLU
from ._activations import ReLU as ReLU
from ._activations import ReLU6 as ReLU6
from ._activations import Sigmoid as Sigmoid
from ._activations import SiLU as SiLU
from ._activations import Softmax as Softmax
from ._activations import Softmax2d as Softmax2d
from ._activations import Softmin as Softmin
from ._activations import Softplus as Softplus
from ._activations import Softshrink as Softshrink
from ._activations import Softsign as Softsign
from ._activations import Tanh as Tanh
from ._activations import Tanhshrink as Tanhshrink
from ._activations import Threshold as Threshold
from ._adaptive_pooling import AdaptiveAvgPool1d as AdaptiveAvgPool1d
from ._adaptive_pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from ._adaptive_pooling import AdaptiveAvgPool3d as AdaptiveAvgPool3d
from ._adaptive_pooling import AdaptiveMaxPool1d as AdaptiveMaxPool1d
from ._adaptive_pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from ._adaptive_pooling import AdaptiveMaxPool3d as AdaptiveMaxPool3d
from ._attention import MultiheadAttention as MultiheadAttention
from ._batchnorm import BatchNorm as BatchNorm
from ._batchnorm import BatchNorm1d as BatchNorm1d
from ._batchnorm import BatchNorm2d as BatchNorm2d
from ._batchnorm import BatchNorm3d as BatchNorm3d
from ._batchnorm import SyncBatchNorm as SyncBatchNorm
from ._containers import Identity as Identity
from ._containers import ModuleDict as ModuleDict
from ._containers import ModuleList as ModuleList
from ._containers import Sequential as Sequential
from ._conv import Conv1d as Conv1d
from ._conv import Conv2d as Conv2d
from ._conv import Conv3d as Conv3d
from ._conv import ConvTranspose1d as ConvTranspose1d
from ._conv import ConvTranspose2d as ConvTranspose2d
from ._conv import ConvTranspose3d as ConvTranspose3d
from ._dropout import Dropout as Dropout
from ._embedding import Embedding as Embedding
from ._groupnorm import GroupNorm as GroupNorm
from ._instancenorm import InstanceNorm1d as InstanceNorm1d
from ._instancenorm import InstanceNorm2d as InstanceNorm2d
from ._instancenorm import InstanceNorm3d as InstanceNorm3d
from ._layernorm import LayerNorm as LayerNorm
from ._layernorm import RMSNorm as RMSNorm
from ._linear import Linear as Linear
from ._loss import BCELoss as BCELoss
from ._loss import BCEWithLogitsLoss as BCEWithLogitsLoss
from ._loss import CrossEntropyLoss as CrossEntropyLoss
from ._loss import HuberLoss as HuberLoss
from ._loss import KLDivLoss as KLDivLoss
from ._loss import L1Loss as L1Loss
from ._loss import MSELoss as MSELoss
from ._loss import NLLLoss as NLLLoss
from ._loss import SmoothL1Loss as SmoothL1Loss
from ._max_pooling import MaxPool1d as MaxPool1d
from ._max_pooling import MaxPool2d as MaxPool2d
from ._max_pooling import MaxPool3d as MaxPool3d
from ._mode import mode_argument as mode_argument
from ._padding import CircularPad1d as CircularPad1d
from ._padding import CircularPad2d as CircularPad2d
from ._padding import CircularPad3d as CircularPad3d
from ._padding import ConstantPad1d as ConstantPad1d
from ._padding import ConstantPad2d as ConstantPad2d
from ._padding import ConstantPad3d as ConstantPad3d
from ._padding import ReflectionPad1d as ReflectionPad1d
from ._padding import ReflectionPad2d as ReflectionPad2d
from ._padding import ReflectionPad3d as ReflectionPad3d
from ._padding import ReplicationPad1d as ReplicationPad1d
from ._padding import ReplicationPad2d as ReplicationPad2d
from ._padding import ReplicationPad3d as ReplicationPad3d
from ._padding import ZeroPad1d as ZeroPad1d
from ._padding import ZeroPad2d as ZeroPad2d
from ._padding import ZeroPad3d as ZeroPad3d
from ._pooling import AvgPool1d as AvgPool1d
from ._pooling import AvgPool2d as AvgPool2d
from ._pooling import AvgPool3d as AvgPool3d
from ._rnn import GRU as GRU
from ._rnn import LSTM as LSTM
from ._rnn import RNN as RNN
from ._rnn_cell import GRUCell as GRUCell
from ._rnn_cell import LSTMCell as LSTMCell
from ._rnn_cell import RNNCell as RNNCell
from ._shape import Dropout1d as Dropout1d
from ._shape import Dropout2d as Dropout2d
from ._shape import Dropout3d as Dropout3d
from ._shape import Flatten as Flatten
from ._shape import Unflatten as Unflatten
from ._sync import SyncBatchNormWrapper as SyncBatchNormWrapper
from ._sync import convert_sync_batchnorm as convert_sync_batchnorm
from ._sync import sync_batchnorm as sync_batchnorm
from ._torch_dropout import torch_dropout as torch_dropout
from ._transformer import Transformer as Transformer
from ._transformer import TransformerDecoder as TransformerDecoder
from ._transformer import TransformerDecoderLayer as TransformerDecoderLayer
from ._transformer import TransformerEncoder as TransformerEncoder
from ._transformer import TransformerEncoderLayer as TransformerEncoderLayer

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "AvgPool1d",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "Flatten",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "ModuleDict",
    "ModuleList",
    "PReLU",
    "ReLU",
    "ReLU6",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "SyncBatchNorm",
    "SyncBatchNormWrapper",
    "Tanh",
    "Tanhshrink",
    "Threshold",
    "Unflatten",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "convert_sync_batchnorm",
    "functional",
    "init",
    "mode_argument",
    "sync_batchnorm",
    "torch_dropout",
]
__all__ += ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm", "RMSNorm"]
__all__ += [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool2d",
    "AvgPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
]
__all__ += ["GRU", "LSTM", "RNN", "Embedding", "GRUCell", "LSTMCell", "RNNCell"]
__all__ += [
    "MultiheadAttention",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]
__all__ += [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
]
