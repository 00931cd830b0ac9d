"""MultiheadAttention: ``torch.nn.MultiheadAttention`` with PyTorch's parameters, masks and numerics.

The forward follows ``torch.nn.functional.multi_head_attention_forward`` (PyTorch 2.13) step by
step: the mask canonicalisation (a bool mask becomes ``-inf`` where True, a float mask is
added), the shape checks and their messages, the packed or separate in-projection, ``bias_k``
/ ``bias_v`` and ``add_zero_attn`` (each pads the masks with an attendable column), the merge
of ``key_padding_mask`` into ``attn_mask``, and the two ways PyTorch computes the attention:

- ``need_weights=True``: the explicit math path, ``softmax((q * sqrt(1/d)) k^T + mask) v``;
  a query row whose keys are all masked gives NaN, as in PyTorch;
- ``need_weights=False``: ``scaled_dot_product_attention``, which on CPU runs the flash
  kernel when no dropout is active: ``s = (q k^T) * (1/sqrt(d)) + mask``, ``p = exp(s -
  max s)``, ``out = (p v) * (1 / sum p)``; a fully masked row gives 0, not NaN (PyTorch's
  flash kernel and its ``_safe_softmax``). With active dropout PyTorch's math SDPA scales q and
  k by ``d**-1/4`` each before the product; both are reproduced in that order.

``is_causal`` is PyTorch's hint: with ``need_weights=False`` and no ``key_padding_mask`` the
given ``attn_mask`` is replaced by the causal (lower-triangular, top-left aligned) mask, as
PyTorch's SDPA call does; otherwise the ``attn_mask`` itself is used. PyTorch's inference
fast path (``torch._native_multi_head_attention``, taken only without autograd, in eval, with
``batch_first`` self-attention) is not a different function, only another rounding; torchsem
computes the paths above in every mode.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..convert import to_jax
from ..random import Generator, linear_torch_init, register_torch_init
from . import init as _init
from ._dropout import Dropout, _check_probability
from ._errors import InputError
from ._linear import Linear
from ._mode import merge_mode

Array = jax.Array

# PyTorch's names for dtypes in its messages: ScalarType names ("got Double and Float") and the
# C++ type names some kernels print ("input c10::Half, batch1: float").
_CPP_NAMES = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double"}
_SCALAR_NAMES = {"float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double"}


def _torch_size(shape: Sequence[int]) -> str:
    """``torch.Size([2, 3])``, as PyTorch's Python messages print a shape."""
    return "torch.Size([" + ", ".join(str(int(d)) for d in shape) + "])"


def resolve_mode(module: str, field: bool | None, call: bool | None, required: bool) -> bool:
    """The eval flag of a layer with dropout: ``deterministic`` given once, required when it matters.

    With ``required`` (a dropout probability above 0) the flag must be given to the constructor
    or to the call (:func:`~torchsem.nn._mode.merge_mode`); without, PyTorch's train and eval
    compute the same thing, so it may be left out (True is returned), but giving it twice is
    still an error.

    Args:
      module: the module's class name, for the message.
      field, call: the constructor's and the call's ``deterministic``, or None.
      required: whether the flag must be given (the module has active dropout).

    Returns:
      True for eval mode, False for training.

    Raises:
      ValueError: the flag given twice, or not at all where dropout is active.
    """
    meaning = "True: PyTorch's eval(), False: train()"
    if required or (field is not None and call is not None):
        return merge_mode(module, "deterministic", field, call, meaning)
    given = field if field is not None else call
    return True if given is None else bool(given)


def _dtype_of(value: Any) -> Any:
    return jnp.dtype(value.dtype) if hasattr(value, "dtype") else jnp.result_type(value)


def canonical_mask(
    mask: Any, mask_name: str, other: Any, other_name: str, target_dtype: Any, check_other: bool = True
) -> Array | None:
    """PyTorch's ``F._canonical_mask``: a bool mask as ``0``/``-inf`` of ``target_dtype``; a float mask as it is.

    Args:
      mask: None, a bool array (True: masked) or a float array (added to the scores).
      mask_name: the argument's name, for the messages.
      other: the mask it is merged with, for PyTorch's deprecation warning on mismatched dtypes.
      other_name: that mask's name.
      target_dtype: the query's dtype.
      check_other: whether to compare the dtypes with ``other``'s.

    Returns:
      None, or a float array of the mask's shape.

    Raises:
      AssertionError: a mask neither bool nor floating point (PyTorch's type and message).
    """
    if mask is None:
        return None
    mask = to_jax(mask)
    is_float = jnp.issubdtype(mask.dtype, jnp.floating)
    if mask.dtype != jnp.bool_ and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other is not None and _dtype_of(other) != mask.dtype:
        warnings.warn(
            f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both instead.",
            UserWarning,
            stacklevel=3,
        )
    if is_float:
        return mask
    return jnp.where(mask, jnp.asarray(-jnp.inf, target_dtype), jnp.zeros((), target_dtype))


def _shape_check(query: Array, key: Array, value: Array, kpm: Array | None, mask: Array | None, heads: int) -> bool:
    """PyTorch's ``_mha_shape_check``: its AssertionErrors, verbatim; whether the input is batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D"
                f" but found {key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if kpm is not None and kpm.ndim != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D"
                f" but found {kpm.ndim}-D tensor instead"
            )
        if mask is not None and mask.ndim not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                f" but found {mask.ndim}-D tensor instead"
            )
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D"
                f" but found {key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if kpm is not None and kpm.ndim != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D"
                f" but found {kpm.ndim}-D tensor instead"
            )
        if mask is not None:
            if mask.ndim not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                    f" but found {mask.ndim}-D tensor instead"
                )
            expected = (heads, int(query.shape[0]), int(key.shape[0]))
            if mask.ndim == 3 and tuple(mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {_torch_size(mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")


def _check_linear(x: Array, weight: Array) -> None:
    """``F.linear``'s errors: PyTorch's messages for a feature count or a dtype that does not fit."""
    if x.shape[-1] != weight.shape[1]:
        rows = math.prod(int(d) for d in x.shape[:-1])
        raise InputError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1]} and {weight.shape[1]}x{weight.shape[0]})"
        )
    if x.dtype != weight.dtype:
        names = (_CPP_NAMES.get(d.name, d.name) for d in (x.dtype, weight.dtype))
        raise InputError("mat1 and mat2 must have the same dtype, but got {} and {}".format(*names))


def _linear(x: Array, weight: Array, bias: Array | None, precision: Any) -> Array:
    """``F.linear`` over the last axis: ``x W^T + b``."""
    y = jnp.matmul(x, weight.T, precision=precision)
    return y if bias is None else y + bias


def _pad_column(mask: Array | None) -> Array | None:
    """``F.pad(mask, (0, 1))``: one more key, attendable (0 added to its scores)."""
    return None if mask is None else jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, 1)])


def _causal_bias(tgt_len: int, src_len: int, dtype: Any) -> Array:
    """SDPA's ``is_causal``: query ``i`` attends keys ``j <= i`` (top-left aligned), ``-inf`` elsewhere."""
    allowed = jnp.tril(jnp.ones((tgt_len, src_len), dtype=bool))
    return jnp.where(allowed, jnp.zeros((), dtype), jnp.asarray(-jnp.inf, dtype))


def _flash_attention(q: Array, k: Array, v: Array, bias: Array | None, precision: Any) -> Array:
    """PyTorch's CPU flash SDPA (no dropout): ``(exp(s - max s) v) * (1 / sum exp(s - max s))``.

    ``s = (q k^T) * d**-1/2 + bias``. A row whose scores are all ``-inf`` is 0 (the kernel
    skips it), as is its gradient.
    """
    scale = jnp.asarray(1.0 / math.sqrt(q.shape[-1]), q.dtype)
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2), precision=precision) * scale
    if bias is not None:
        scores = scores + bias
    row_max = jnp.max(scores, axis=-1, keepdims=True)
    dead = row_max == -jnp.inf
    # The max only stabilises exp; the result does not depend on it, so no gradient flows through it.
    shift = jax.lax.stop_gradient(jnp.where(dead, jnp.zeros_like(row_max), row_max))
    unnormalised = jnp.exp(scores - shift)
    total = jnp.sum(unnormalised, axis=-1, keepdims=True)
    empty = total == 0
    inverse = jnp.where(empty, jnp.zeros_like(total), 1.0 / jnp.where(empty, jnp.ones_like(total), total))
    return jnp.matmul(unnormalised, v, precision=precision) * inverse


def _safe_softmax(scores: Array) -> Array:
    """``torch._safe_softmax``: softmax over the last axis, 0 (not NaN) for a row that is all ``-inf``."""
    dead = jnp.all(scores == -jnp.inf, axis=-1, keepdims=True)
    weights = jax.nn.softmax(jnp.where(dead, jnp.zeros_like(scores), scores), axis=-1)
    return jnp.where(dead, jnp.zeros_like(weights), weights)


class MultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention with input and output projections: ``torch.nn.MultiheadAttention``.

    For heads ``h = 1..H`` of size ``d = E / H``:

        head_h = softmax((Q W_q^h) (K W_k^h)^T / sqrt(d) + mask) (V W_v^h)
        output = concat(head_1, ..., head_H) W_o^T + b_o

    Variables (collection ``params``), with PyTorch's ``state_dict`` names, shapes and order:

    - ``in_proj_weight`` ``(3E, E)`` (q, k, v stacked), or, when ``kdim``/``vdim`` differ from
      ``embed_dim``, ``q_proj_weight`` ``(E, E)``, ``k_proj_weight`` ``(E, kdim)``,
      ``v_proj_weight`` ``(E, vdim)``: ``xavier_uniform_``;
    - ``in_proj_bias`` ``(3E,)``: zeros (``bias=True``);
    - ``bias_k``, ``bias_v`` ``(1, 1, E)``: ``xavier_normal_`` (``add_bias_kv=True``);
    - ``out_proj.weight`` ``(E, E)``: ``Linear``'s default; ``out_proj.bias`` ``(E,)``: zeros.

    ``torch_init`` replays PyTorch's draws in PyTorch's order (``out_proj`` as a ``Linear``
    first, then the in-projection's ``xavier_uniform_``, then ``bias_k``/``bias_v``), so it
    reproduces ``torch.manual_seed(s); nn.MultiheadAttention(...)`` bit for bit. The masks, the
    paths and their rounding are described in the module docstring of ``torchsem.nn._attention``.

    Differs from ``flax.linen.MultiHeadDotProductAttention``: PyTorch's packed
    ``in_proj_weight`` ``(3E, E)`` against Flax's per-projection ``DenseGeneral`` kernels
    ``(E, H, d)``; a bool mask means *masked* where True (Flax: *attend* where True); a float
    mask is added; the layout is ``(L, N, E)`` unless ``batch_first``; the weights averaged over
    heads are returned.

    Attributes:
      embed_dim: ``E``, the model's width (the query's features and the output's).
      num_heads: ``H``; must divide ``embed_dim``.
      dropout: the dropout probability on the attention weights in training.
      bias: whether the in- and out-projections have biases.
      add_bias_kv: whether to append the learnt ``bias_k``/``bias_v`` as one more key and value.
      add_zero_attn: whether to append a zero key and value (after ``bias_k``/``bias_v``).
      kdim, vdim: the key's and value's features (None: ``embed_dim``).
      batch_first: inputs and output are ``(N, L, E)`` instead of ``(L, N, E)``.
      deterministic: eval mode when True, training when False; given here or to the call, not
        both; required only when ``dropout > 0``.
      param_dtype: the parameters' dtype.
      precision: the matmuls' precision (full float32 by default, as PyTorch's CPU kernels).

    Reproduces ``torch.nn.MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True,
    add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=False)``.
    """

    embed_dim: int
    num_heads: int
    dropout: float = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = False
    deterministic: bool | None = None
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"MultiheadAttention: {name} must be an int, got {value!r}")
        for name in ("kdim", "vdim"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise TypeError(f"MultiheadAttention: {name} must be an int or None, got {value!r}")
        for name in ("bias", "add_bias_kv", "add_zero_attn", "batch_first"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MultiheadAttention: {name} must be a bool, got {getattr(self, name)!r}")
        if self.embed_dim <= 0 or self.num_heads <= 0:
            raise ValueError(
                "embed_dim and num_heads must be greater than 0,"
                f" got embed_dim={self.embed_dim} and num_heads={self.num_heads} instead"
            )
        if (self.embed_dim // self.num_heads) * self.num_heads != self.embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        _check_probability(self.dropout)
        super().__post_init__()

    @property
    def head_dim(self) -> int:
        """``embed_dim // num_heads``."""
        return self.embed_dim // self.num_heads

    @property
    def qkv_same_embed_dim(self) -> bool:
        """PyTorch's ``_qkv_same_embed_dim``: one packed ``in_proj_weight`` when True."""
        return self._kdim == self.embed_dim and self._vdim == self.embed_dim

    @property
    def _kdim(self) -> int:
        return self.embed_dim if self.kdim is None else int(self.kdim)

    @property
    def _vdim(self) -> int:
        return self.embed_dim if self.vdim is None else int(self.vdim)

    @nn.nowrap
    def torch_state_dict_keys(self) -> tuple[str, ...]:
        """PyTorch's ``state_dict`` keys in PyTorch's order (``key_order`` for ``to_torch_state_dict``)."""
        keys = ["in_proj_weight"] if self.qkv_same_embed_dim else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
        if self.bias:
            keys.append("in_proj_bias")
        if self.add_bias_kv:
            keys += ["bias_k", "bias_v"]
        keys.append("out_proj.weight")
        if self.bias:
            keys.append("out_proj.bias")
        return tuple(keys)

    @nn.compact
    def __call__(
        self,
        query: Array,
        key: Array,
        value: Array,
        key_padding_mask: Array | None = None,
        need_weights: bool = True,
        attn_mask: Array | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        deterministic: bool | None = None,
    ) -> tuple[Array, Array | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
          query: ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``.
          key: ``(S, N, kdim)`` (``(N, S, kdim)``) or ``(S, kdim)``.
          value: ``(S, N, vdim)`` (``(N, S, vdim)``) or ``(S, vdim)``.
          key_padding_mask: ``(N, S)`` (``(S,)`` unbatched); bool: True ignores that key; float: added.
          need_weights: also return the attention weights (PyTorch's math path); False: PyTorch's
            ``scaled_dot_product_attention`` path, and None in their place.
          attn_mask: ``(L, S)`` or ``(N * H, L, S)``; bool: True forbids attending; float: added.
          average_attn_weights: average the returned weights over heads.
          is_causal: PyTorch's hint that ``attn_mask`` is causal (see the module docstring).
          deterministic: eval mode when True; see the attribute.

        Returns:
          ``(attn_output, attn_weights)``: ``attn_output`` of the query's layout with ``E``
          features; ``attn_weights`` ``(N, L, S)`` averaged (``(N, H, L, S)`` per head;
          without ``N`` unbatched), or None when ``need_weights=False``. ``S`` counts the
          ``bias_k`` and zero keys.

        Raises:
          AssertionError: PyTorch's assertions (dims of the inputs and masks, embedding size,
            key/value shapes, mask dtypes, key_padding_mask shape), with PyTorch's messages.
          InputError: (a ``RuntimeError``) PyTorch's RuntimeErrors: an ``attn_mask`` of the
            wrong shape, ``is_causal`` without ``attn_mask``, a projection whose features do not
            fit, dtypes that differ.
          ValueError: ``deterministic`` missing (with ``dropout > 0``) or given twice.
        """
        eval_mode = resolve_mode(type(self).__name__, self.deterministic, deterministic, self.dropout > 0)
        # PyTorch picks the in-projection by identity (self-attention, key is value): so does this.
        same_kv = key is value
        self_attention = same_kv and query is key
        query, key, value = (to_jax(x) for x in (query, key, value))
        dtype = self.param_dtype
        E = self.embed_dim
        if self.qkv_same_embed_dim:
            in_weights: tuple[Array, ...] = (self.param("in_proj_weight", _init.xavier_uniform(), (3 * E, E), dtype),)
        else:
            in_weights = (
                self.param("q_proj_weight", _init.xavier_uniform(), (E, E), dtype),
                self.param("k_proj_weight", _init.xavier_uniform(), (E, self._kdim), dtype),
                self.param("v_proj_weight", _init.xavier_uniform(), (E, self._vdim), dtype),
            )
        in_bias = self.param("in_proj_bias", _init.zeros(), (3 * E,), dtype) if self.bias else None
        bias_k = bias_v = None
        if self.add_bias_kv:
            bias_k = self.param("bias_k", _init.xavier_normal(), (1, 1, E), dtype)
            bias_v = self.param("bias_v", _init.xavier_normal(), (1, 1, E), dtype)
        out_proj = Linear(E, E, bias=self.bias, bias_init=_init.zeros(), param_dtype=dtype, name="out_proj")
        for name, x in (("query", query), ("key", key), ("value", value)):
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise TypeError(f"MultiheadAttention: {name} must be floating point, got {x.dtype}")

        # nn.MultiheadAttention.forward: the masks are made float before anything else.
        kpm = canonical_mask(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", query.dtype)
        mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if self.batch_first and query.ndim == 3:
            query, key, value = (jnp.swapaxes(x, 0, 1) for x in (query, key, value))

        # F.multi_head_attention_forward
        is_batched = _shape_check(query, key, value, kpm, mask, self.num_heads)
        if not is_batched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            if kpm is not None:
                kpm = kpm[None]
        tgt_len, bsz, embed_dim = (int(d) for d in query.shape)
        if is_causal and mask is None:
            raise InputError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                "`generate_square_subsequent_mask` to create this mask."
            )
        causal = bool(is_causal) and kpm is None and not need_weights
        if causal:
            mask = None  # SDPA's own causal mask replaces it, as PyTorch hands is_causal to SDPA
        if embed_dim != E:
            raise AssertionError(f"was expecting embedding dimension of {E}, but got {embed_dim}")
        if self.qkv_same_embed_dim:
            if key.shape != value.shape:
                raise AssertionError(
                    f"key shape {_torch_size(key.shape)} does not match value shape {_torch_size(value.shape)}"
                )
        elif key.shape[:2] != value.shape[:2]:
            raise AssertionError(
                f"key's sequence and batch dims {_torch_size(key.shape[:2])} do not match value's "
                f"{_torch_size(value.shape[:2])}"
            )
        self._check_in_projection(query, key, value, in_weights, self_attention, same_kv)

        heads = self.num_heads
        src_len = int(key.shape[0])
        if mask is not None:
            if mask.ndim == 2 and tuple(mask.shape) != (tgt_len, src_len):
                raise InputError(
                    f"The shape of the 2D attn_mask is {_torch_size(mask.shape)}, but should be {(tgt_len, src_len)}."
                )
            if mask.ndim == 3 and tuple(mask.shape) != (bsz * heads, tgt_len, src_len):
                raise InputError(
                    f"The shape of the 3D attn_mask is {_torch_size(mask.shape)}, but should be "
                    f"{(bsz * heads, tgt_len, src_len)}."
                )
        # bias_k / bias_v and the zero key each add a key, and a column to both masks.
        extra = int(self.add_bias_kv) + int(self.add_zero_attn)
        if kpm is not None:
            if kpm.shape[0] != bsz:
                raise AssertionError(f"Expected key_padded_mask.shape[0] to be {bsz}, but got {kpm.shape[0]}")
            if kpm.shape[1] + extra != src_len + extra:
                raise AssertionError(
                    f"Expected key_padded_mask.shape[1] to be {src_len + extra}, but got {kpm.shape[1] + extra}"
                )
        merged = [m.dtype for m in (mask, kpm) if m is not None]
        merged_dtype = jnp.result_type(*merged) if merged else query.dtype
        if merged_dtype != query.dtype:
            mask_name, query_name = (_SCALAR_NAMES.get(d.name, d.name) for d in (merged_dtype, query.dtype))
            if need_weights:
                raise InputError(
                    f"Input dtypes must be the same, got: input {mask_name}, batch1: {query_name}, batch2: {query_name}"
                )
            raise InputError(
                "Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: "
                f"{mask_name} and  query.dtype: {query_name} instead."
            )

        config = _Config(
            heads=heads,
            self_attention=self_attention,
            same_kv=same_kv,
            zero_attn=self.add_zero_attn,
            need_weights=bool(need_weights),
            causal=causal,
            precision=self.precision,
        )
        tensors = (query, key, value, in_weights, in_bias, bias_k, bias_v, mask, kpm)
        if not eval_mode and self.dropout > 0:
            drop = Dropout(self.dropout, name="attention_dropout")
            attended, weights = _attend(*tensors, config, lambda w: drop(w, deterministic=False))
        else:
            attended, weights = _attend_compiled(*tensors, config)

        output = out_proj(attended).reshape(tgt_len, bsz, E)
        if weights is not None and average_attn_weights:
            weights = jnp.mean(weights, axis=1)
        if not is_batched:
            output = output[:, 0]
            if weights is not None:
                weights = weights[0]
        elif self.batch_first:
            output = jnp.swapaxes(output, 0, 1)
        return output, weights

    @nn.nowrap
    def _check_in_projection(
        self,
        query: Array,
        key: Array,
        value: Array,
        weights: tuple[Array, ...],
        self_attention: bool,
        same_kv: bool,
    ) -> None:
        """PyTorch's errors of ``_in_projection_packed`` / ``_in_projection``, for the path PyTorch takes.

        The packed weight is applied whole to a self-attention input, as ``[W_q; W_kv]`` when key
        is value, and as three chunks otherwise: the error for a key of the wrong width names the
        matrix of that path.
        """
        E = self.embed_dim
        if len(weights) == 1:
            (w,) = weights
            if self_attention:
                _check_linear(query, w)
            elif same_kv:
                _check_linear(query, w[:E])
                _check_linear(key, w[E:])
            else:
                for x, chunk in ((query, w[:E]), (key, w[E : 2 * E]), (value, w[2 * E :])):
                    _check_linear(x, chunk)
            return
        e_q = int(query.shape[-1])
        for name, w, x in (("query", weights[0], query), ("key", weights[1], key), ("value", weights[2], value)):
            if tuple(w.shape) != (e_q, int(x.shape[-1])):
                raise AssertionError(
                    f"expecting {name} weights shape of {(e_q, int(x.shape[-1]))}, but got {_torch_size(w.shape)}"
                )
        for x, w in zip((query, key, value), weights):
            _check_linear(x, w)


@dataclasses.dataclass(frozen=True)
class _Config:
    """The static choices of one attention computation (hashable: a ``jax.jit`` static argument)."""

    heads: int
    self_attention: bool
    same_kv: bool
    zero_attn: bool
    need_weights: bool
    causal: bool
    precision: Any


def _in_projection(
    query: Array, key: Array, value: Array, weights: tuple[Array, ...], bias: Array | None, config: _Config
) -> tuple[Array, Array, Array]:
    """PyTorch's ``_in_projection_packed`` / ``_in_projection``: q, k, v of ``embed_dim`` features each."""
    precision = config.precision
    E = int(query.shape[-1])
    b_q, b_k, b_v = (None, None, None) if bias is None else (bias[:E], bias[E : 2 * E], bias[2 * E :])
    if len(weights) == 1:
        (w,) = weights
        if config.self_attention:  # one product with the packed weight, then split, as PyTorch
            packed = _linear(query, w, bias, precision)
            return packed[..., :E], packed[..., E : 2 * E], packed[..., 2 * E :]
        if config.same_kv:
            kv = _linear(key, w[E:], None if bias is None else bias[E:], precision)
            return _linear(query, w[:E], b_q, precision), kv[..., :E], kv[..., E:]
        w_q, w_k, w_v = w[:E], w[E : 2 * E], w[2 * E :]
    else:
        w_q, w_k, w_v = weights
    return _linear(query, w_q, b_q, precision), _linear(key, w_k, b_k, precision), _linear(value, w_v, b_v, precision)


def _attend(
    query: Array,
    key: Array,
    value: Array,
    in_weights: tuple[Array, ...],
    in_bias: Array | None,
    bias_k: Array | None,
    bias_v: Array | None,
    mask: Array | None,
    kpm: Array | None,
    config: _Config,
    drop: Callable[[Array], Array] | None = None,
) -> tuple[Array, Array | None]:
    """``multi_head_attention_forward`` from the in-projection to the input of ``out_proj``.

    Args:
      query, key, value: batched, sequence-first ``(L, N, E)``, ``(S, N, kdim)``, ``(S, N, vdim)``.
      in_weights, in_bias, bias_k, bias_v: the parameters.
      mask: the float ``attn_mask``, ``(L, S)`` or ``(N * H, L, S)``, or None.
      kpm: the float ``key_padding_mask`` ``(N, S)``, or None.
      config: the static choices.
      drop: dropout on the attention weights (training), or None.

    Returns:
      ``(attended, weights)``: ``(L * N, E)``, the heads side by side per position, and the
      weights ``(N, H, L, S')`` (``S'`` with the added keys) or None.
    """
    tgt_len, bsz, E = (int(d) for d in query.shape)
    heads = config.heads
    head_dim = E // heads
    precision = config.precision
    q, k, v = _in_projection(query, key, value, in_weights, in_bias, config)
    if mask is not None and mask.ndim == 2:
        mask = mask[None]
    if bias_k is not None and bias_v is not None:
        k = jnp.concatenate([k, jnp.tile(bias_k, (1, bsz, 1))])
        v = jnp.concatenate([v, jnp.tile(bias_v, (1, bsz, 1))])
        mask, kpm = _pad_column(mask), _pad_column(kpm)
    # (L, N, E) -> (N * H, L, d): batch-major, heads inner, as PyTorch's view + transpose.
    q = jnp.swapaxes(q.reshape(tgt_len, bsz * heads, head_dim), 0, 1)
    k = jnp.swapaxes(k.reshape(k.shape[0], bsz * heads, head_dim), 0, 1)
    v = jnp.swapaxes(v.reshape(v.shape[0], bsz * heads, head_dim), 0, 1)
    if config.zero_attn:
        k = jnp.concatenate([k, jnp.zeros((bsz * heads, 1, head_dim), k.dtype)], axis=1)
        v = jnp.concatenate([v, jnp.zeros((bsz * heads, 1, head_dim), v.dtype)], axis=1)
        mask, kpm = _pad_column(mask), _pad_column(kpm)
    src_len = int(k.shape[1])
    if kpm is not None:
        expanded = jnp.broadcast_to(kpm[:, None, None, :], (bsz, heads, 1, src_len)).reshape(bsz * heads, 1, src_len)
        mask = expanded if mask is None else mask + expanded

    weights: Array | None = None
    if config.need_weights:
        scaled = q * jnp.asarray(math.sqrt(1.0 / float(head_dim)), q.dtype)
        scores = jnp.matmul(scaled, jnp.swapaxes(k, -1, -2), precision=precision)
        if mask is not None:
            scores = mask + scores  # torch.baddbmm(attn_mask, q_scaled, k^T)
        weights = jax.nn.softmax(scores, axis=-1)
        if drop is not None:
            weights = drop(weights)
        attended = jnp.matmul(weights, v, precision=precision)
        weights = weights.reshape(bsz, heads, tgt_len, src_len)
    elif drop is not None:
        # PyTorch's math SDPA (taken when dropout is active): q and k each scaled by d**-1/4.
        root = jnp.asarray(math.sqrt(1.0 / math.sqrt(head_dim)), q.dtype)
        scores = jnp.matmul(q * root, jnp.swapaxes(k, -1, -2) * root, precision=precision)
        if config.causal:
            scores = scores + _causal_bias(tgt_len, src_len, scores.dtype)
        elif mask is not None:
            scores = scores + mask
        attended = jnp.matmul(drop(_safe_softmax(scores)), v, precision=precision)
    else:
        bias = _causal_bias(tgt_len, src_len, q.dtype) if config.causal else mask
        attended = _flash_attention(q, k, v, bias, precision)
    return jnp.swapaxes(attended, 0, 1).reshape(tgt_len * bsz, E), weights


# Compiled even when called eagerly (as LayerNorm's kernel): one XLA computation instead of a
# hundred dispatched operations, and eager results equal to jitted ones.
_attend_compiled = jax.jit(_attend, static_argnums=(9,))


# ------------------------------------------------------------------ PyTorch's initialisation


def xavier_uniform_draw(generator: Generator, value: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """``torch.nn.init.xavier_uniform_(w, gain)`` from ``generator``: ``U(-a, a)``, ``a = gain sqrt(6 / (in + out))``.

    The bound is computed as PyTorch computes it (``sqrt(3) * gain * sqrt(2 / (fan_in +
    fan_out))`` in float64), so the draws agree bit for bit.

    Args:
      generator: the generator to draw from (advanced as PyTorch's global generator is).
      value: the parameter being replaced (its shape and dtype).
      gain: the scaling factor.

    Returns:
      The new values, of ``value``'s shape and dtype.
    """
    fan_in, fan_out = _init.calculate_fan_in_and_fan_out(value.shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return generator.uniform(value.shape, -bound, bound, dtype=value.dtype)


def _xavier_normal_draw(generator: Generator, value: np.ndarray) -> np.ndarray:
    """``torch.nn.init.xavier_normal_(w)``: ``N(0, 2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _init.calculate_fan_in_and_fan_out(value.shape)
    std = math.sqrt(2.0 / float(fan_in + fan_out))
    return generator.normal(value.shape, 0.0, std, dtype=value.dtype)


def mha_torch_init(module: Any, params: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """``nn.MultiheadAttention.__init__``'s draws: ``out_proj`` (a ``Linear``), then ``_reset_parameters``.

    ``out_proj`` draws its weight and bias as ``Linear`` does; then the in-projection weight(s)
    get ``xavier_uniform_`` (``q``, ``k``, ``v`` in turn when separate), the biases (``in_proj_bias``
    and ``out_proj.bias``, whose draw is overwritten) become 0 and ``bias_k``, ``bias_v`` get
    ``xavier_normal_``. ``params`` is the module's nested parameter dict (``out_proj`` inside);
    the configuration is read from the names present.
    """
    new = dict(params)
    out_proj = linear_torch_init(module, dict(params["out_proj"]), generator)
    names = ["in_proj_weight"] if "in_proj_weight" in params else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
    for name in names:
        new[name] = xavier_uniform_draw(generator, np.asarray(params[name]))
    if "in_proj_bias" in params:
        new["in_proj_bias"] = np.zeros_like(params["in_proj_bias"])
        if "bias" in out_proj:
            out_proj["bias"] = np.zeros_like(out_proj["bias"])
    for name in ("bias_k", "bias_v"):
        if name in params:
            new[name] = _xavier_normal_draw(generator, np.asarray(params[name]))
    new["out_proj"] = out_proj
    return new


register_torch_init(MultiheadAttention, mha_torch_init, subtree=True)

__all__ = ["MultiheadAttention"]
