"""The Transformer layers: ``torch.nn.TransformerEncoderLayer`` / ``DecoderLayer``, their stacks and ``Transformer``.

Each layer is PyTorch's: self-attention (and, in the decoder, attention over the encoder's
``memory``) then a feed-forward block ``linear2(dropout(activation(linear1(x))))``, each
wrapped in a residual connection and a ``LayerNorm`` after it (``norm_first=False``, the
default, "post-norm") or before it (``norm_first=True``), with dropout on each branch. The
attention is :class:`~torchsem.nn.MultiheadAttention` with ``need_weights=False``, PyTorch's
``scaled_dot_product_attention`` path (its CPU flash kernel when no dropout is active).

The stacks apply ``num_layers`` copies of one layer (``copy.deepcopy`` in PyTorch: every copy
starts from the layer's own initial values) and then the optional final ``norm``.
``Transformer`` builds an encoder and a decoder stack, each with a final ``LayerNorm``, and
then (``_reset_parameters``) redraws every parameter of more than one dimension with
``xavier_uniform_``, in ``parameters()`` order: ``torch_init`` replays all of it bit for bit.

PyTorch's inference fast paths (``torch._transformer_encoder_layer_fwd`` and the nested-tensor
path of ``TransformerEncoder``, taken only without autograd, in eval, ``batch_first``) are not
reproduced: they compute the same function with other rounding, except that the nested-tensor
path returns 0 at the padded positions of ``src_key_padding_mask`` where the layers compute
values; torchsem returns what PyTorch computes with autograd on.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.module import _unspecified_parent

from ..convert import to_jax
from ..random import Generator, batchnorm_torch_init, linear_torch_init, register_torch_init, registered_torch_inits
from ._activations import gelu, relu
from ._attention import MultiheadAttention, canonical_mask, mha_torch_init, resolve_mode, xavier_uniform_draw
from ._containers import ModuleList
from ._dropout import Dropout, _check_probability, dropout_call
from ._errors import InputError
from ._layernorm import LayerNorm, RMSNorm
from ._linear import Linear

Array = jax.Array
Activation = str | Callable[[Array], Array]


def _activation_function(activation: Any) -> Callable[[Array], Array]:
    """PyTorch's ``_get_activation_fn``: ``"relu"``/``"gelu"`` by name, any callable as it is."""
    if isinstance(activation, str):
        if activation == "relu":
            return relu
        if activation == "gelu":
            return gelu
        raise InputError(f"activation should be relu/gelu, not {activation}")
    if not callable(activation):
        raise TypeError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


def _check_layer(owner: str, layer: Any) -> None:
    for name in ("d_model", "nhead", "dim_feedforward"):
        value = getattr(layer, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    for name in ("batch_first", "norm_first", "bias"):
        if not isinstance(getattr(layer, name), bool):
            raise TypeError(f"{owner}: {name} must be a bool, got {getattr(layer, name)!r}")
    if layer.d_model <= 0 or layer.nhead <= 0:
        raise ValueError(
            "embed_dim and num_heads must be greater than 0,"
            f" got embed_dim={layer.d_model} and num_heads={layer.nhead} instead"
        )
    if (layer.d_model // layer.nhead) * layer.nhead != layer.d_model:
        raise AssertionError("embed_dim must be divisible by num_heads")  # MultiheadAttention's, at construction
    _check_probability(layer.dropout)
    _activation_function(layer.activation)


def _layer_norm_keys(prefix: str, bias: bool) -> list[str]:
    return [f"{prefix}.weight"] + ([f"{prefix}.bias"] if bias else [])


def _linear_keys(prefix: str, bias: bool) -> list[str]:
    return [f"{prefix}.weight"] + ([f"{prefix}.bias"] if bias else [])


def _attention_keys(prefix: str, bias: bool) -> list[str]:
    return (
        [f"{prefix}.in_proj_weight"]
        + ([f"{prefix}.in_proj_bias"] if bias else [])
        + _linear_keys(f"{prefix}.out_proj", bias)
    )


def _module_keys(module: Any) -> list[str]:
    """A submodule's ``state_dict`` keys in PyTorch's order: its own statement, or a norm's known layout."""
    keys = getattr(module, "torch_state_dict_keys", None)
    if keys is not None:
        return list(keys())
    if isinstance(module, (LayerNorm, RMSNorm)):
        if not module.elementwise_affine:
            return []
        return ["weight"] + (["bias"] if isinstance(module, LayerNorm) and module.bias else [])
    raise NotImplementedError(
        f"{type(module).__name__} has no torch_state_dict_keys(): PyTorch's state_dict order of a "
        "Transformer stack's norm or custom encoder/decoder must be stated by the module"
    )


class _Layer(nn.Module):
    """What the encoder and decoder layers share: the constructor, the feed-forward block, the mode."""

    d_model: int
    nhead: int
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: Activation = relu
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        _check_layer(type(self).__name__, self)
        super().__post_init__()

    @nn.nowrap
    def _mode(self, deterministic: bool | None) -> bool:
        return resolve_mode(type(self).__name__, self.deterministic, deterministic, self.dropout > 0)

    @nn.nowrap
    def _attention(self, name: str) -> MultiheadAttention:
        return MultiheadAttention(
            self.d_model, self.nhead, dropout=self.dropout, bias=self.bias, batch_first=self.batch_first, name=name
        )

    @nn.nowrap
    def _norm(self, name: str) -> LayerNorm:
        return LayerNorm(self.d_model, eps=self.layer_norm_eps, bias=self.bias, name=name)

    @nn.nowrap
    def _feed_forward(self, x: Array, eval_mode: bool, last_dropout: str) -> Array:
        """``dropoutN(linear2(dropout(activation(linear1(x)))))``."""
        hidden = Linear(self.d_model, self.dim_feedforward, bias=self.bias, name="linear1")(x)
        hidden = Dropout(self.dropout, name="dropout")(_activation_function(self.activation)(hidden), eval_mode)
        out = Linear(self.dim_feedforward, self.d_model, bias=self.bias, name="linear2")(hidden)
        return Dropout(self.dropout, name=last_dropout)(out, eval_mode)


class _TimeMajorDropout(Dropout):
    """``Dropout`` after a batch-first attention block, its PyTorch mask drawn time-major.

    With ``batch_first`` PyTorch's ``MultiheadAttention`` returns ``(N, L, E)`` as a transposed
    view of an ``(L, N, E)`` result, and ``bernoulli_`` fills a tensor in memory order: under
    ``torch_dropout`` the mask is drawn ``(L, N, E)`` and transposed (for Flax's rng stream the
    order makes no difference). Input and output are ``(N, L, E)`` as ``Dropout``'s.
    """

    def __call__(self, input: Array, deterministic: bool | None = None, rng: Array | None = None) -> Array:
        input = jnp.asarray(input)
        order = (1, 0, 2) if input.ndim == 3 else None
        return dropout_call(self, input, deterministic, rng, input.shape, draw_order=order)


def _attention_dropout(p: float, name: str, y: Array, eval_mode: Any, batch_first: bool) -> Array:
    """The dropout after an attention block (see :class:`_TimeMajorDropout`)."""
    layer = _TimeMajorDropout(p, name=name) if batch_first else Dropout(p, name=name)
    return layer(y, eval_mode)


class TransformerEncoderLayer(_Layer):
    """Self-attention and a feed-forward block, with residuals and LayerNorms: ``torch.nn.TransformerEncoderLayer``.

    Post-norm (``norm_first=False``, PyTorch's default)::

        x = norm1(x + dropout1(self_attn(x, x, x)))
        x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

    pre-norm (``norm_first=True``)::

        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

    Variables (``params``), as PyTorch's ``state_dict``: ``self_attn.in_proj_weight``,
    ``self_attn.in_proj_bias``, ``self_attn.out_proj.{weight,bias}``, ``linear1.{weight,bias}``,
    ``linear2.{weight,bias}``, ``norm1.{weight,bias}``, ``norm2.{weight,bias}`` (no biases with
    ``bias=False``). ``torch_init`` draws them as PyTorch's constructor does.

    Differs from a plain Flax composition in the post-norm default, ``LayerNorm``'s ``eps=1e-5``
    (Flax's ``epsilon`` is 1e-6), PyTorch's attention parameters and mask conventions (see
    :class:`~torchsem.nn.MultiheadAttention`) and the ``(S, N, E)`` layout unless ``batch_first``.

    Attributes:
      d_model: the model's width ``E``.
      nhead: attention heads; must divide ``d_model``.
      dim_feedforward: the feed-forward block's hidden width.
      dropout: the probability of every dropout (attention weights and the three branches).
      activation: ``"relu"``, ``"gelu"`` (exact, erf) or a callable (a torchsem activation module).
      layer_norm_eps: the LayerNorms' ``eps``.
      batch_first: ``(N, S, E)`` inputs and output.
      norm_first: pre-norm instead of post-norm.
      bias: biases in the projections, the feed-forward block and the LayerNorms.
      deterministic: eval mode when True; given here or to the call, not both; required when
        ``dropout > 0``.

    Reproduces ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048,
    dropout=0.1, activation=relu, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
    bias=True)``.
    """

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return tuple(
            _attention_keys("self_attn", self.bias)
            + _linear_keys("linear1", self.bias)
            + _linear_keys("linear2", self.bias)
            + _layer_norm_keys("norm1", self.bias)
            + _layer_norm_keys("norm2", self.bias)
        )

    @nn.compact
    def __call__(
        self,
        src: Array,
        src_mask: Array | None = None,
        src_key_padding_mask: Array | None = None,
        is_causal: bool = False,
        deterministic: bool | None = None,
    ) -> Array:
        """Encode ``src``.

        Args:
          src: ``(S, N, E)`` (``(N, S, E)`` with ``batch_first``) or unbatched ``(S, E)``.
          src_mask: ``(S, S)`` or ``(N * nhead, S, S)``; bool: True forbids attending; float: added.
          src_key_padding_mask: ``(N, S)`` (``(S,)`` unbatched); bool: True ignores that position.
          is_causal: PyTorch's hint that ``src_mask`` is the causal mask (without a padding
            mask, the causal mask is used in its place).
          deterministic: eval mode when True.

        Returns:
          An array of ``src``'s shape.

        Raises:
          AssertionError, InputError: MultiheadAttention's checks of the input and the masks,
            with PyTorch's messages.
        """
        eval_mode = self._mode(deterministic)
        src = to_jax(src)
        padding = canonical_mask(src_key_padding_mask, "src_key_padding_mask", src_mask, "src_mask", src.dtype)
        mask = canonical_mask(src_mask, "src_mask", None, "", src.dtype, check_other=False)
        attention = self._attention("self_attn")

        def self_attention_block(x: Array) -> Array:
            y = attention(
                x,
                x,
                x,
                attn_mask=mask,
                key_padding_mask=padding,
                need_weights=False,
                is_causal=is_causal,
                deterministic=eval_mode,
            )[0]
            return _attention_dropout(self.dropout, "dropout1", y, eval_mode, self.batch_first)

        x = src
        if self.norm_first:
            norm1, norm2 = self._norm("norm1"), self._norm("norm2")
            x = x + self_attention_block(norm1(x))
            x = x + self._feed_forward(norm2(x), eval_mode, "dropout2")
        else:
            x = self._norm("norm1")(x + self_attention_block(x))
            x = self._norm("norm2")(x + self._feed_forward(x, eval_mode, "dropout2"))
        return x


class TransformerDecoderLayer(_Layer):
    """Self-attention, attention over ``memory`` and a feed-forward block: ``torch.nn.TransformerDecoderLayer``.

    Post-norm (``norm_first=False``)::

        x = norm1(x + dropout1(self_attn(x, x, x, tgt_mask)))
        x = norm2(x + dropout2(multihead_attn(x, memory, memory, memory_mask)))
        x = norm3(x + dropout3(linear2(dropout(activation(linear1(x))))))

    pre-norm (``norm_first=True``): ``x = x + block(normK(x))`` for each of the three blocks.

    Variables, as PyTorch's ``state_dict``: ``self_attn.*``, ``multihead_attn.*``, ``linear1.*``,
    ``linear2.*``, ``norm1.*``, ``norm2.*``, ``norm3.*``.

    Attributes: those of :class:`TransformerEncoderLayer`.

    Reproduces ``torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward=2048,
    dropout=0.1, activation=relu, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
    bias=True)``.
    """

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        return tuple(
            _attention_keys("self_attn", self.bias)
            + _attention_keys("multihead_attn", self.bias)
            + _linear_keys("linear1", self.bias)
            + _linear_keys("linear2", self.bias)
            + _layer_norm_keys("norm1", self.bias)
            + _layer_norm_keys("norm2", self.bias)
            + _layer_norm_keys("norm3", self.bias)
        )

    @nn.compact
    def __call__(
        self,
        tgt: Array,
        memory: Array,
        tgt_mask: Array | None = None,
        memory_mask: Array | None = None,
        tgt_key_padding_mask: Array | None = None,
        memory_key_padding_mask: Array | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
        deterministic: bool | None = None,
    ) -> Array:
        """Decode ``tgt`` attending to ``memory``.

        Args:
          tgt: ``(T, N, E)`` (``(N, T, E)`` with ``batch_first``) or unbatched ``(T, E)``.
          memory: the encoder's output, ``(S, N, E)`` (``(N, S, E)``) or ``(S, E)``.
          tgt_mask: ``(T, T)`` or ``(N * nhead, T, T)``, for the self-attention.
          memory_mask: ``(T, S)`` or ``(N * nhead, T, S)``, for the attention over ``memory``.
          tgt_key_padding_mask: ``(N, T)``; memory_key_padding_mask: ``(N, S)``.
          tgt_is_causal, memory_is_causal: PyTorch's hints that ``tgt_mask`` / ``memory_mask``
            are causal.
          deterministic: eval mode when True.

        Returns:
          An array of ``tgt``'s shape.
        """
        eval_mode = self._mode(deterministic)
        tgt, memory = to_jax(tgt), to_jax(memory)
        self_attn, cross_attn = self._attention("self_attn"), self._attention("multihead_attn")

        def self_attention_block(x: Array) -> Array:
            y = self_attn(
                x,
                x,
                x,
                attn_mask=tgt_mask,
                key_padding_mask=tgt_key_padding_mask,
                is_causal=tgt_is_causal,
                need_weights=False,
                deterministic=eval_mode,
            )[0]
            return _attention_dropout(self.dropout, "dropout1", y, eval_mode, self.batch_first)

        def memory_block(x: Array) -> Array:
            y = cross_attn(
                x,
                memory,
                memory,
                attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask,
                is_causal=memory_is_causal,
                need_weights=False,
                deterministic=eval_mode,
            )[0]
            return _attention_dropout(self.dropout, "dropout2", y, eval_mode, self.batch_first)

        x = tgt
        if self.norm_first:
            norm1, norm2, norm3 = self._norm("norm1"), self._norm("norm2"), self._norm("norm3")
            x = x + self_attention_block(norm1(x))
            x = x + memory_block(norm2(x))
            x = x + self._feed_forward(norm3(x), eval_mode, "dropout3")
        else:
            x = self._norm("norm1")(x + self_attention_block(x))
            x = self._norm("norm2")(x + memory_block(x))
            x = self._norm("norm3")(x + self._feed_forward(x, eval_mode, "dropout3"))
        return x


def _merge_optional(owner: str, field: bool | None, call: bool | None) -> bool | None:
    """A container's flag, passed on to its layers: given once or not at all (the layers decide)."""
    if field is not None and call is not None:
        resolve_mode(owner, field, call, required=True)  # raises: given twice
    return field if field is not None else call


def _check_stack(owner: str, layer: Any, num_layers: Any, norm: Any) -> None:
    if not isinstance(layer, nn.Module):
        raise TypeError(f"{owner}: the layer must be a Flax module (a torchsem Transformer layer), got {layer!r}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, numbers.Integral) or num_layers < 0:
        raise TypeError(f"{owner}: num_layers must be an int >= 0, got {num_layers!r}")
    if norm is not None and not callable(norm):
        raise TypeError(f"{owner}: norm must be None or a module, got {norm!r}")


def _layers(prototype: nn.Module, num_layers: int) -> ModuleList:
    """PyTorch's ``_get_clones``: ``num_layers`` copies of the layer, named ``layers.0``, ``layers.1``, ..."""
    return ModuleList([prototype.clone(parent=None) for _ in range(num_layers)], name="layers")


def _is_causal(hint: bool | None) -> bool:
    """PyTorch's ``_detect_is_causal_mask`` as far as it changes the result.

    ``None`` with a mask makes PyTorch compare the mask with the causal mask and, if equal, use
    the causal mask in its place: the same numbers. So only an explicit ``True`` (which
    replaces any mask by the causal one where no padding mask is given) changes anything.
    """
    return hint is True


class TransformerEncoder(nn.Module):
    """``num_layers`` copies of an encoder layer, then an optional norm: ``torch.nn.TransformerEncoder``.

    ``output = norm(layer_{n-1}(... layer_0(src)))``. Every copy starts from the values of the
    one layer given (PyTorch deep-copies it): ``torch_init`` draws that layer once and gives
    each copy its values, as ``torch.manual_seed(s); nn.TransformerEncoder(nn.TransformerEncoderLayer(...), n)``.
    Variables: ``layers.{i}.<the layer's names>`` and ``norm.*``.

    Attributes:
      encoder_layer: the layer to copy (a :class:`TransformerEncoderLayer`).
      num_layers: the number of copies.
      norm: applied to the last layer's output (a ``LayerNorm``), or None.
      enable_nested_tensor, mask_check: accepted for PyTorch's signature; they steer only
        PyTorch's inference fast path (see the module docstring).
      deterministic: eval mode when True, handed to every layer; here or to the call.

    Reproduces ``torch.nn.TransformerEncoder(encoder_layer, num_layers, norm=None,
    enable_nested_tensor=True, mask_check=True)``.
    """

    encoder_layer: nn.Module
    num_layers: int
    norm: Any = None
    enable_nested_tensor: bool = True
    mask_check: bool = True
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        _check_stack("TransformerEncoder", self.encoder_layer, self.num_layers, self.norm)
        super().__post_init__()

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        layer = _module_keys(self.encoder_layer)
        keys = [f"layers.{i}.{key}" for i in range(self.num_layers) for key in layer]
        if self.norm is not None:
            keys += [f"norm.{key}" for key in _module_keys(self.norm)]
        return tuple(keys)

    @nn.compact
    def __call__(
        self,
        src: Array,
        mask: Array | None = None,
        src_key_padding_mask: Array | None = None,
        is_causal: bool | None = None,
        deterministic: bool | None = None,
    ) -> Array:
        """Encode ``src`` through every layer, then the norm.

        Args:
          src: ``(S, N, E)`` (``(N, S, E)`` with ``batch_first``) or unbatched ``(S, E)``.
          mask: the layers' ``src_mask``; src_key_padding_mask: theirs.
          is_causal: True: ``mask`` is the causal mask (see the layer); None or False: the
            mask as given.
          deterministic: eval mode when True.

        Returns:
          An array of ``src``'s shape.
        """
        mode = _merge_optional("TransformerEncoder", self.deterministic, deterministic)
        src = to_jax(src)
        padding = canonical_mask(src_key_padding_mask, "src_key_padding_mask", mask, "mask", src.dtype)
        mask = canonical_mask(mask, "mask", None, "", src.dtype, check_other=False)
        output = src
        for layer in _layers(self.encoder_layer, self.num_layers):
            output = layer(
                output,
                src_mask=mask,
                src_key_padding_mask=padding,
                is_causal=_is_causal(is_causal),
                deterministic=mode,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nn.Module):
    """``num_layers`` copies of a decoder layer, then an optional norm: ``torch.nn.TransformerDecoder``.

    As :class:`TransformerEncoder`, with ``memory`` and its masks handed to every layer.

    Attributes:
      decoder_layer: the layer to copy (a :class:`TransformerDecoderLayer`).
      num_layers: the number of copies.
      norm: applied to the last layer's output, or None.
      deterministic: eval mode when True, handed to every layer; here or to the call.

    Reproduces ``torch.nn.TransformerDecoder(decoder_layer, num_layers, norm=None)``.
    """

    decoder_layer: nn.Module
    num_layers: int
    norm: Any = None
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        _check_stack("TransformerDecoder", self.decoder_layer, self.num_layers, self.norm)
        super().__post_init__()

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        layer = _module_keys(self.decoder_layer)
        keys = [f"layers.{i}.{key}" for i in range(self.num_layers) for key in layer]
        if self.norm is not None:
            keys += [f"norm.{key}" for key in _module_keys(self.norm)]
        return tuple(keys)

    @nn.compact
    def __call__(
        self,
        tgt: Array,
        memory: Array,
        tgt_mask: Array | None = None,
        memory_mask: Array | None = None,
        tgt_key_padding_mask: Array | None = None,
        memory_key_padding_mask: Array | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
        deterministic: bool | None = None,
    ) -> Array:
        """Decode ``tgt`` through every layer, then the norm (arguments as the layer's)."""
        mode = _merge_optional("TransformerDecoder", self.deterministic, deterministic)
        output = to_jax(tgt)
        for layer in _layers(self.decoder_layer, self.num_layers):
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=_is_causal(tgt_is_causal),
                memory_is_causal=memory_is_causal,
                deterministic=mode,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Array:
    """The causal mask of ``sz`` positions: 0 on and below the diagonal, ``-inf`` above.

    Args:
      sz: the sequence length.
      device: a JAX device to place the mask on (None: the default device).
      dtype: a floating dtype (None: float32, PyTorch's default dtype).

    Returns:
      A ``(sz, sz)`` float array, ``mask[i, j] = -inf`` for ``j > i``.

    Reproduces ``torch.nn.Transformer.generate_square_subsequent_mask(sz, device=None, dtype=None)``.
    """
    if isinstance(sz, bool) or not isinstance(sz, numbers.Integral) or sz < 0:
        raise TypeError(f"generate_square_subsequent_mask: sz must be an int >= 0, got {sz!r}")
    dtype = jnp.float32 if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"generate_square_subsequent_mask: dtype must be floating point (it holds -inf), got {dtype}")
    above = np.triu(np.ones((int(sz), int(sz)), dtype=bool), k=1)
    mask = jnp.asarray(np.where(above, -np.inf, 0.0).astype(dtype))
    return mask if device is None else jax.device_put(mask, device)


class Transformer(nn.Module):
    """An encoder-decoder Transformer: ``torch.nn.Transformer``.

    ``memory = encoder(src)``, ``output = decoder(tgt, memory)``, where the encoder is
    ``TransformerEncoder(TransformerEncoderLayer(...), num_encoder_layers, LayerNorm(d_model))``
    and the decoder the same with decoder layers (or ``custom_encoder`` / ``custom_decoder``).
    Variables: ``encoder.layers.{i}.*``, ``encoder.norm.*``, ``decoder.layers.{i}.*``,
    ``decoder.norm.*``. PyTorch's constructor builds the stacks (each layer drawn once, copied)
    and then redraws every parameter of more than one dimension with ``xavier_uniform_``, in
    ``parameters()`` order, so the copies end up different; ``torch_init`` replays both steps.

    Attributes:
      d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
        norm_first, bias: as :class:`TransformerEncoderLayer`, for every layer.
      num_encoder_layers, num_decoder_layers: the stacks' depths.
      custom_encoder, custom_decoder: modules used in place of the stacks (called as
        :class:`TransformerEncoder` / :class:`TransformerDecoder` are).
      deterministic: eval mode when True; here or to the call.

    Reproduces ``torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6,
    num_decoder_layers=6, dim_feedforward=2048, dropout=0.1, activation=relu,
    custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5, batch_first=False,
    norm_first=False, bias=True)``.
    """

    d_model: int = 512
    nhead: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: Activation = relu
    custom_encoder: Any = None
    custom_decoder: Any = None
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True
    deterministic: bool | None = None

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def __post_init__(self) -> None:
        _check_layer("Transformer", self)
        for name in ("num_encoder_layers", "num_decoder_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise TypeError(f"Transformer: {name} must be an int >= 0, got {value!r}")
        super().__post_init__()

    @nn.nowrap
    def _layer_kwargs(self) -> dict[str, Any]:
        return {
            "dim_feedforward": self.dim_feedforward,
            "dropout": self.dropout,
            "activation": self.activation,
            "layer_norm_eps": self.layer_norm_eps,
            "batch_first": self.batch_first,
            "norm_first": self.norm_first,
            "bias": self.bias,
        }

    @nn.nowrap
    def _stack(self, which: str, parent: Any = None) -> nn.Module:
        """The encoder or decoder: the custom one (renamed) or PyTorch's default stack.

        ``parent``: None for a detached module (its keys, its replay), ``_unspecified_parent``
        for a child of the module whose compact method is running.
        """
        custom = self.custom_encoder if which == "encoder" else self.custom_decoder
        if custom is not None:
            return custom.clone(parent=parent, name=which)
        norm = LayerNorm(self.d_model, eps=self.layer_norm_eps, bias=self.bias, parent=None)
        if which == "encoder":
            layer: nn.Module = TransformerEncoderLayer(self.d_model, self.nhead, **self._layer_kwargs(), parent=None)
            return TransformerEncoder(layer, self.num_encoder_layers, norm, parent=parent, name="encoder")
        layer = TransformerDecoderLayer(self.d_model, self.nhead, **self._layer_kwargs(), parent=None)
        return TransformerDecoder(layer, self.num_decoder_layers, norm, parent=parent, name="decoder")

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        keys = [f"encoder.{key}" for key in _module_keys(self._stack("encoder"))]
        return tuple(keys + [f"decoder.{key}" for key in _module_keys(self._stack("decoder"))])

    @nn.compact
    def __call__(
        self,
        src: Array,
        tgt: Array,
        src_mask: Array | None = None,
        tgt_mask: Array | None = None,
        memory_mask: Array | None = None,
        src_key_padding_mask: Array | None = None,
        tgt_key_padding_mask: Array | None = None,
        memory_key_padding_mask: Array | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
        deterministic: bool | None = None,
    ) -> Array:
        """Encode ``src`` and decode ``tgt`` against it.

        Args:
          src: ``(S, N, E)`` (``(N, S, E)`` with ``batch_first``) or unbatched ``(S, E)``.
          tgt: ``(T, N, E)`` (``(N, T, E)``) or ``(T, E)``.
          src_mask, tgt_mask, memory_mask: ``(S, S)``, ``(T, T)``, ``(T, S)`` (or per head).
          src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask: ``(N, S)``,
            ``(N, T)``, ``(N, S)``.
          src_is_causal, tgt_is_causal, memory_is_causal: PyTorch's causal hints.
          deterministic: eval mode when True.

        Returns:
          The decoder's output, of ``tgt``'s shape.

        Raises:
          InputError: (a ``RuntimeError``) PyTorch's messages for batch sizes that differ or a
            feature count other than ``d_model``.
        """
        mode = _merge_optional("Transformer", self.deterministic, deterministic)
        src, tgt = to_jax(src), to_jax(tgt)
        batched = src.ndim == 3
        batch_axis = 0 if self.batch_first else 1
        if batched and (tgt.ndim <= batch_axis or src.shape[batch_axis] != tgt.shape[batch_axis]):
            raise InputError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise InputError("the feature number of src and tgt must be equal to d_model")
        memory = self._stack("encoder", _unspecified_parent)(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal, deterministic=mode
        )
        return self._stack("decoder", _unspecified_parent)(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
            deterministic=mode,
        )


# ------------------------------------------------------------------ PyTorch's initialisation


def _encoder_layer_torch_init(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """``nn.TransformerEncoderLayer.__init__``: self_attn, linear1, linear2 draw; the LayerNorms are ones/zeros."""
    new = dict(params)
    new["self_attn"] = mha_torch_init(module, params["self_attn"], generator)
    for name in ("linear1", "linear2"):
        new[name] = linear_torch_init(module, dict(params[name]), generator)
    for name in ("norm1", "norm2"):
        new[name] = batchnorm_torch_init(module, dict(params[name]), generator)
    return new


def _decoder_layer_torch_init(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """``nn.TransformerDecoderLayer.__init__``: self_attn, multihead_attn, linear1, linear2 draw, in that order."""
    new = dict(params)
    for name in ("self_attn", "multihead_attn"):
        new[name] = mha_torch_init(module, params[name], generator)
    for name in ("linear1", "linear2"):
        new[name] = linear_torch_init(module, dict(params[name]), generator)
    for name in ("norm1", "norm2", "norm3"):
        new[name] = batchnorm_torch_init(module, dict(params[name]), generator)
    return new


def _replay(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """A submodule's PyTorch initialisation: the replays here, or the one registered for a norm."""
    for kind, replay in _SUBTREE_REPLAYS.items():
        if isinstance(module, kind):
            return replay(module, params, generator)
    if any(isinstance(value, dict) for value in params.values()):
        raise NotImplementedError(
            f"torch_init cannot replay {type(module).__name__} inside a Transformer stack: only torchsem's "
            "Transformer layers and stacks and norms without submodules are known"
        )
    for klass in type(module).__mro__:
        registered = registered_torch_inits().get(klass)
        if registered is not None:
            return registered(module, params, generator)
    raise NotImplementedError(f"torch_init has no PyTorch initialisation registered for {type(module).__name__}")


def _stack_torch_init(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """``nn.TransformerEncoder/Decoder(layer, n, norm)``: the layer drawn once and copied, then the norm's draws."""
    layer = module.encoder_layer if isinstance(module, TransformerEncoder) else module.decoder_layer
    new = dict(params)
    if "layers" in params:
        first = _replay(layer, params["layers"]["0"], generator)
        new["layers"] = {name: copy.deepcopy(first) for name in params["layers"]}
    if "norm" in params:
        new["norm"] = _replay(module.norm, dict(params["norm"]), generator)
    return new


def _get(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _put(tree: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    return {**tree, head: _put(tree[head], rest, value) if rest else value}


def _transformer_torch_init(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """``nn.Transformer.__init__``: the encoder's draws, the decoder's, then ``_reset_parameters``.

    ``_reset_parameters`` is ``xavier_uniform_(p)`` for every ``p`` of ``parameters()`` with
    more than one dimension, in order (the state_dict order without the buffers).
    """
    new = dict(params)
    for which in ("encoder", "decoder"):
        if which in params:
            new[which] = _replay(module._stack(which), params[which], generator)
    for key in module.torch_state_dict_keys():
        value = _get(new, key)
        if value is not None and np.ndim(value) > 1:
            new = _put(new, key, xavier_uniform_draw(generator, np.asarray(value)))
    return new


_SUBTREE_REPLAYS: dict[type, Callable[[Any, dict[str, Any], Generator], dict[str, Any]]] = {
    TransformerEncoderLayer: _encoder_layer_torch_init,
    TransformerDecoderLayer: _decoder_layer_torch_init,
    TransformerEncoder: _stack_torch_init,
    TransformerDecoder: _stack_torch_init,
    Transformer: _transformer_torch_init,
    MultiheadAttention: mha_torch_init,
}
for _kind in (TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder, TransformerDecoder, Transformer):
    register_torch_init(_kind, _SUBTREE_REPLAYS[_kind], subtree=True)

__all__ = [
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "generate_square_subsequent_mask",
]
