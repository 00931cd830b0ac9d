"""Example inputs implied by constructor arguments: the call a twin's eager ``init`` runs.

Flax linen creates variables on the first call, PyTorch in ``__init__``. A twin initialises at
construction, so each class with state states here the smallest input its constructor
arguments imply (``Linear(12, 4)``: ``(1, 12)``; ``Conv2d(3, 8, 5)``: ``(1, 3, 5, 5)``).
Only shapes matter: the variables' shapes follow from the constructor, never from the input,
and ``init`` runs in eval mode, so batch statistics are never computed from these zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._twin import Example

__all__ = [
    "attention_example",
    "conv_example",
    "conv_transpose_example",
    "decoder_example",
    "embedding_example",
    "encoder_example",
    "features_example",
    "model_example",
    "normalized_example",
    "rnn_cell_example",
    "rnn_example",
    "transformer_example",
]


def _dtype(module: Any) -> Any:
    return getattr(module, "param_dtype", None) or jnp.float32


def _spec(shape: Sequence[int], dtype: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(int(n) for n in shape), jnp.dtype(dtype))


def _ntuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def features_example(spatial: int, attribute: str = "num_features", size: int = 1) -> Any:
    """``(2, C, size, ...)`` with ``spatial`` trailing axes (BatchNorm2d: 2), C read from ``attribute``.

    Args:
      spatial: the number of axes after the channels.
      attribute: the constructor argument that names the channels.
      size: the length of each trailing axis (InstanceNorm needs more than one element).

    Returns:
      ``example(module) -> (shapes, {})``.
    """

    def example(module: Any) -> Example:
        # Batch 2: a BatchNorm without running statistics normalises with batch statistics even in eval.
        return (_spec((2, getattr(module, attribute), *(size,) * spatial), _dtype(module)),), {}

    return example


def conv_example(spatial: int) -> Any:
    """``(1, in_channels, *window)`` where each window is one dilated kernel (and more than the padding): valid.

    Args:
      spatial: 1, 2 or 3 (Conv1d/2d/3d).

    Returns:
      ``example(module) -> (shapes, {})``.
    """

    def example(module: Any) -> Example:
        kernel = _ntuple(module.kernel_size, spatial)
        dilation = _ntuple(module.dilation, spatial)
        # Negative padding crops the input (PyTorch allows it for non-zero padding modes): add it back.
        padding = (0,) * spatial if isinstance(module.padding, str) else _ntuple(module.padding, spatial)
        window = [d * (k - 1) + 1 + 2 * max(0, -p) for k, d, p in zip(kernel, dilation, padding)]
        if getattr(module, "padding_mode", "zeros") != "zeros":
            # Reflect padding needs more input than the padding (circular and replicate no less).
            window = [max(w, p + 1) for w, p in zip(window, padding)]
        return (_spec((1, module.in_channels, *window), _dtype(module)),), {}

    return example


def conv_transpose_example(spatial: int) -> Any:
    """``(1, in_channels, *size)`` with ``size = 2 * padding + 2``: a positive output length whatever the stride.

    Args:
      spatial: 1, 2 or 3 (ConvTranspose1d/2d/3d).

    Returns:
      ``example(module) -> (shapes, {})``.
    """

    def example(module: Any) -> Example:
        padding = _ntuple(module.padding, spatial)
        return (_spec((1, module.in_channels, *(2 * p + 2 for p in padding)), _dtype(module)),), {}

    return example


def normalized_example(module: Any) -> Example:
    """LayerNorm / RMSNorm: ``(1, *normalized_shape)``."""
    shape = _ntuple(module.normalized_shape, 1)
    return (_spec((1, *shape), _dtype(module)),), {}


def embedding_example(module: Any) -> Example:
    """Embedding: one index, ``(1,)`` int32 (JAX's default integer)."""
    return (_spec((1,), jnp.int32),), {}


def rnn_example(module: Any) -> Example:
    """RNN / LSTM / GRU: one step of one sequence, ``(1, 1, input_size)`` (time- or batch-major alike)."""
    return (_spec((1, 1, module.input_size), _dtype(module)),), {}


def rnn_cell_example(module: Any) -> Example:
    """RNNCell / LSTMCell / GRUCell: ``(1, input_size)``."""
    return (_spec((1, module.input_size), _dtype(module)),), {}


def attention_example(module: Any) -> Example:
    """MultiheadAttention: query, key and value of one token, ``(1, 1, E)`` / ``kdim`` / ``vdim``."""
    dtype = _dtype(module)
    kdim = module.kdim or module.embed_dim
    vdim = module.vdim or module.embed_dim
    return (_spec((1, 1, module.embed_dim), dtype), _spec((1, 1, kdim), dtype), _spec((1, 1, vdim), dtype)), {}


def _d_model(layer: Any) -> int:
    return int(layer.d_model)


def encoder_example(module: Any) -> Example:
    """TransformerEncoderLayer (``d_model``) or TransformerEncoder (its layer's): ``(1, 1, d_model)``."""
    d_model = _d_model(getattr(module, "encoder_layer", module))
    return (_spec((1, 1, d_model), jnp.float32),), {}


def decoder_example(module: Any) -> Example:
    """TransformerDecoderLayer / TransformerDecoder: tgt and memory, ``(1, 1, d_model)`` each."""
    d_model = _d_model(getattr(module, "decoder_layer", module))
    return (_spec((1, 1, d_model), jnp.float32), _spec((1, 1, d_model), jnp.float32)), {}


def transformer_example(module: Any) -> Example:
    """Transformer: src and tgt, ``(1, 1, d_model)`` each."""
    return (_spec((1, 1, module.d_model), jnp.float32), _spec((1, 1, module.d_model), jnp.float32)), {}


def model_example(shape: Sequence[int]) -> Any:
    """A model's fixed example input (the document's Net: ``(1, 3, 8)``; a ResNet: ``(1, 3, 32, 32)``)."""

    def example(module: Any) -> Example:
        return (_spec(shape, jnp.float32),), {}

    return example
