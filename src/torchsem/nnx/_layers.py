"""Every torchsem linen layer as an NNX class, one line each: the linen class and the example its init runs."""

from __future__ import annotations

from .. import nn as _nn
from ._criteria import criterion_class
from ._examples import (
    attention_example,
    conv_example,
    conv_transpose_example,
    decoder_example,
    embedding_example,
    encoder_example,
    features_example,
    normalized_example,
    rnn_cell_example,
    rnn_example,
    transformer_example,
)
from ._twin import twin_class

# Layers with parameters or buffers: the example input their constructor arguments imply.
Linear = twin_class(_nn.Linear, features_example(0, "in_features"))
Conv1d = twin_class(_nn.Conv1d, conv_example(1))
Conv2d = twin_class(_nn.Conv2d, conv_example(2))
Conv3d = twin_class(_nn.Conv3d, conv_example(3))
ConvTranspose1d = twin_class(_nn.ConvTranspose1d, conv_transpose_example(1))
ConvTranspose2d = twin_class(_nn.ConvTranspose2d, conv_transpose_example(2))
ConvTranspose3d = twin_class(_nn.ConvTranspose3d, conv_transpose_example(3))
BatchNorm = twin_class(_nn.BatchNorm, features_example(0))  # (N, C) serves axis=1 and axis=-1 alike
BatchNorm1d = twin_class(_nn.BatchNorm1d, features_example(0))
BatchNorm2d = twin_class(_nn.BatchNorm2d, features_example(2))
BatchNorm3d = twin_class(_nn.BatchNorm3d, features_example(3))
# Statistics over the devices of axis_name: call it inside jax.shard_map (init skips the collective).
SyncBatchNorm = twin_class(_nn.SyncBatchNorm, features_example(0))
InstanceNorm1d = twin_class(_nn.InstanceNorm1d, features_example(1, size=2))
InstanceNorm2d = twin_class(_nn.InstanceNorm2d, features_example(2, size=2))
InstanceNorm3d = twin_class(_nn.InstanceNorm3d, features_example(3, size=2))
GroupNorm = twin_class(_nn.GroupNorm, features_example(0, "num_channels"))
LayerNorm = twin_class(_nn.LayerNorm, normalized_example)
RMSNorm = twin_class(_nn.RMSNorm, normalized_example)
PReLU = twin_class(_nn.PReLU, features_example(0, "num_parameters"))
Embedding = twin_class(_nn.Embedding, embedding_example)
RNN = twin_class(_nn.RNN, rnn_example)
LSTM = twin_class(_nn.LSTM, rnn_example)
GRU = twin_class(_nn.GRU, rnn_example)
RNNCell = twin_class(_nn.RNNCell, rnn_cell_example)
LSTMCell = twin_class(_nn.LSTMCell, rnn_cell_example)
GRUCell = twin_class(_nn.GRUCell, rnn_cell_example)
MultiheadAttention = twin_class(_nn.MultiheadAttention, attention_example)
TransformerEncoderLayer = twin_class(_nn.TransformerEncoderLayer, encoder_example)
TransformerDecoderLayer = twin_class(_nn.TransformerDecoderLayer, decoder_example)
TransformerEncoder = twin_class(_nn.TransformerEncoder, encoder_example)
TransformerDecoder = twin_class(_nn.TransformerDecoder, decoder_example)
Transformer = twin_class(_nn.Transformer, transformer_example)

# Layers without state: nothing to initialise (Dropout keeps a 'dropout' stream, so it takes rngs).
CELU = twin_class(_nn.CELU, None)
ELU = twin_class(_nn.ELU, None)
GELU = twin_class(_nn.GELU, None)
GLU = twin_class(_nn.GLU, None)
SELU = twin_class(_nn.SELU, None)
Hardshrink = twin_class(_nn.Hardshrink, None)
Hardsigmoid = twin_class(_nn.Hardsigmoid, None)
Hardswish = twin_class(_nn.Hardswish, None)
Hardtanh = twin_class(_nn.Hardtanh, None)
LeakyReLU = twin_class(_nn.LeakyReLU, None)
LogSigmoid = twin_class(_nn.LogSigmoid, None)
LogSoftmax = twin_class(_nn.LogSoftmax, None)
Mish = twin_class(_nn.Mish, None)
ReLU = twin_class(_nn.ReLU, None)
ReLU6 = twin_class(_nn.ReLU6, None)
Sigmoid = twin_class(_nn.Sigmoid, None)
SiLU = twin_class(_nn.SiLU, None)
Softmax = twin_class(_nn.Softmax, None)
Softmax2d = twin_class(_nn.Softmax2d, None)
Softmin = twin_class(_nn.Softmin, None)
Softplus = twin_class(_nn.Softplus, None)
Softshrink = twin_class(_nn.Softshrink, None)
Softsign = twin_class(_nn.Softsign, None)
Tanh = twin_class(_nn.Tanh, None)
Tanhshrink = twin_class(_nn.Tanhshrink, None)
Threshold = twin_class(_nn.Threshold, None)
AdaptiveAvgPool1d = twin_class(_nn.AdaptiveAvgPool1d, None)
AdaptiveAvgPool2d = twin_class(_nn.AdaptiveAvgPool2d, None)
AdaptiveAvgPool3d = twin_class(_nn.AdaptiveAvgPool3d, None)
AdaptiveMaxPool1d = twin_class(_nn.AdaptiveMaxPool1d, None)
AdaptiveMaxPool2d = twin_class(_nn.AdaptiveMaxPool2d, None)
AdaptiveMaxPool3d = twin_class(_nn.AdaptiveMaxPool3d, None)
AvgPool1d = twin_class(_nn.AvgPool1d, None)
AvgPool2d = twin_class(_nn.AvgPool2d, None)
AvgPool3d = twin_class(_nn.AvgPool3d, None)
MaxPool1d = twin_class(_nn.MaxPool1d, None)
MaxPool2d = twin_class(_nn.MaxPool2d, None)
MaxPool3d = twin_class(_nn.MaxPool3d, None)
CircularPad1d = twin_class(_nn.CircularPad1d, None)
CircularPad2d = twin_class(_nn.CircularPad2d, None)
CircularPad3d = twin_class(_nn.CircularPad3d, None)
ConstantPad1d = twin_class(_nn.ConstantPad1d, None)
ConstantPad2d = twin_class(_nn.ConstantPad2d, None)
ConstantPad3d = twin_class(_nn.ConstantPad3d, None)
ReflectionPad1d = twin_class(_nn.ReflectionPad1d, None)
ReflectionPad2d = twin_class(_nn.ReflectionPad2d, None)
ReflectionPad3d = twin_class(_nn.ReflectionPad3d, None)
ReplicationPad1d = twin_class(_nn.ReplicationPad1d, None)
ReplicationPad2d = twin_class(_nn.ReplicationPad2d, None)
ReplicationPad3d = twin_class(_nn.ReplicationPad3d, None)
ZeroPad1d = twin_class(_nn.ZeroPad1d, None)
ZeroPad2d = twin_class(_nn.ZeroPad2d, None)
ZeroPad3d = twin_class(_nn.ZeroPad3d, None)
Dropout = twin_class(_nn.Dropout, None)
Dropout1d = twin_class(_nn.Dropout1d, None)
Dropout2d = twin_class(_nn.Dropout2d, None)
Dropout3d = twin_class(_nn.Dropout3d, None)
Flatten = twin_class(_nn.Flatten, None)
Unflatten = twin_class(_nn.Unflatten, None)
Identity = twin_class(_nn.Identity, None)
L1Loss = twin_class(_nn.L1Loss, None)
MSELoss = twin_class(_nn.MSELoss, None)
HuberLoss = twin_class(_nn.HuberLoss, None)
SmoothL1Loss = twin_class(_nn.SmoothL1Loss, None)
KLDivLoss = twin_class(_nn.KLDivLoss, None)

# Losses whose constructor may take buffers (weight=, pos_weight=): held as BatchStat Variables.
CrossEntropyLoss = criterion_class(_nn.CrossEntropyLoss)
NLLLoss = criterion_class(_nn.NLLLoss)
BCELoss = criterion_class(_nn.BCELoss)
BCEWithLogitsLoss = criterion_class(_nn.BCEWithLogitsLoss)

_CRITERIA = ("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss")

_STATELESS = (
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "ReLU",
    "ReLU6",
    "Sigmoid",
    "SiLU",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "Flatten",
    "Unflatten",
    "Identity",
    "L1Loss",
    "MSELoss",
    "HuberLoss",
    "SmoothL1Loss",
    "KLDivLoss",
)

_STATEFUL = [
    "Linear",
    "BatchNorm",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "GroupNorm",
    "LayerNorm",
    "RMSNorm",
    "PReLU",
    "Embedding",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
]
"""The NNX classes of layers with parameters or buffers, in the order above."""

LAYERS: tuple[str, ...] = (*_STATEFUL, *_STATELESS, *_CRITERIA)
"""Every NNX layer class this module defines, by name (``torchsem.nnx.<name>``)."""
