"""Embedding: ``torch.nn.Embedding``'s lookup, gradient rules and in-place ``max_norm`` renormalisation."""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..convert import to_jax
from ..random import register_torch_init
from ._errors import InputError

__all__ = ["Embedding"]

# PyTorch's legacy tensor-type names, as its scalar-type check prints them.
_TORCH_TYPE_NAMES = {
    "float32": "torch.FloatTensor",
    "float64": "torch.DoubleTensor",
    "float16": "torch.HalfTensor",
    "bfloat16": "torch.BFloat16Tensor",
    "int8": "torch.CharTensor",
    "uint8": "torch.ByteTensor",
    "int16": "torch.ShortTensor",
    "bool": "CPUBoolType",
    "complex64": "torch.ComplexFloatTensor",
    "complex128": "torch.ComplexDoubleTensor",
}
_INDEX_DTYPES = (jnp.dtype(jnp.int32), jnp.dtype(jnp.int64))
# embedding_renorm_'s guard against a division by a zero norm: scale = max_norm / (norm + 1e-7).
_RENORM_EPS = 1e-7


class _PaddingIndexError(AssertionError, ValueError):
    """``padding_idx`` outside ``[-num_embeddings, num_embeddings)``: PyTorch's AssertionError, also a ValueError."""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _float32_below_or_at(value: float) -> np.float32:
    """The largest float32 ``t <= value``: for a float32 ``n``, ``n > value`` exactly when ``n > t``.

    PyTorch compares the float32 norm, widened to double, with the double ``max_norm``; this
    threshold makes the float32 comparison give the same answer for every norm.
    """
    rounded = np.float32(value)
    if float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return rounded


def _row_norms(weight: jax.Array, norm_type: float) -> jax.Array:
    """``weight[k].norm(p)`` for every row: the p-norm PyTorch's ``Tensor.norm`` computes."""
    magnitude = jnp.abs(weight)
    if norm_type == math.inf:
        return jnp.max(magnitude, axis=1, initial=0.0)
    if norm_type == -math.inf:
        return jnp.min(magnitude, axis=1, initial=math.inf)
    if norm_type == 0:
        return jnp.sum(magnitude != 0, axis=1).astype(weight.dtype)
    if norm_type == 1:
        return jnp.sum(magnitude, axis=1)
    if norm_type == 2:
        return jnp.sqrt(jnp.sum(weight * weight, axis=1))
    return jnp.sum(magnitude**norm_type, axis=1) ** (1.0 / norm_type)


def _no_wrap(indices: jax.Array, num_embeddings: int) -> jax.Array:
    """Negative indices moved past the end: JAX's indexing would wrap them, PyTorch refuses them."""
    return jnp.where(indices < 0, num_embeddings, indices)


@jax.custom_vjp
def _in_place(weight: jax.Array, row_scale: jax.Array) -> jax.Array:
    """``weight * row_scale[:, None]`` whose gradient reaches ``weight`` unscaled.

    PyTorch renormalises the weight in place under ``no_grad``: later operations read the
    new values, but the gradient is the leaf's, as if the weight had always held them.
    """
    return weight * row_scale[:, None]


def _in_place_fwd(weight: jax.Array, row_scale: jax.Array) -> tuple[jax.Array, None]:
    return _in_place(weight, row_scale), None


def _in_place_bwd(_: None, cotangent: jax.Array) -> tuple[jax.Array, None]:
    return cotangent, None


_in_place.defvjp(_in_place_fwd, _in_place_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _lookup(
    weight: jax.Array, indices: jax.Array, num_embeddings: int, padding_idx: int | None, scale_grad_by_freq: bool
) -> jax.Array:
    """``weight[indices]``; an out-of-range index (only reachable under tracing) reads a row of NaN."""
    if indices.size == 0:
        # An empty output made from the weight (not a constant), so it is reached from the weight,
        # as PyTorch's empty lookup has a grad_fn and gives the weight a zero gradient.
        return jnp.reshape(weight[:0], (*indices.shape, weight.shape[1]))
    return jnp.take(weight, _no_wrap(indices, num_embeddings), axis=0, mode="fill", fill_value=jnp.nan)


def _lookup_fwd(
    weight: jax.Array, indices: jax.Array, num_embeddings: int, padding_idx: int | None, scale_grad_by_freq: bool
) -> tuple[jax.Array, jax.Array]:
    return _lookup(weight, indices, num_embeddings, padding_idx, scale_grad_by_freq), indices


def _lookup_bwd(
    num_embeddings: int, padding_idx: int | None, scale_grad_by_freq: bool, indices: jax.Array, cotangent: jax.Array
) -> tuple[jax.Array, None]:
    """PyTorch's ``embedding_dense_backward``: each output row's cotangent added into its weight row.

    Rows looked up at ``padding_idx`` add nothing; with ``scale_grad_by_freq`` each addition
    is divided by how often its index occurs in the whole input.
    """
    flat = _no_wrap(indices.reshape(-1), num_embeddings)
    rows = cotangent.reshape(flat.shape[0], cotangent.shape[-1])
    if scale_grad_by_freq:
        counts = jnp.zeros((num_embeddings,), jnp.int32).at[flat].add(1, mode="drop")
        scale = 1.0 / jnp.take(counts, flat, mode="fill", fill_value=1).astype(rows.dtype)
        rows = rows * scale[:, None]
    if padding_idx is not None:
        rows = jnp.where((flat == padding_idx)[:, None], jnp.zeros((), rows.dtype), rows)
    grad = jnp.zeros((num_embeddings, cotangent.shape[-1]), cotangent.dtype).at[flat].add(rows, mode="drop")
    return grad, None


_lookup.defvjp(_lookup_fwd, _lookup_bwd)


def _renormalised(weight: jax.Array, input: jax.Array, max_norm: float, norm_type: float) -> jax.Array:
    """The weight after PyTorch's ``embedding_renorm_(weight, input, max_norm, norm_type)``."""
    num_embeddings = weight.shape[0]
    rows = _no_wrap(input.reshape(-1), num_embeddings)
    looked_up = jnp.zeros((num_embeddings,), bool).at[rows].set(True, mode="drop")
    norms = jax.lax.stop_gradient(_row_norms(weight, norm_type))
    threshold = jnp.asarray(_float32_below_or_at(max_norm), norms.dtype)
    # PyTorch: scale = max_norm / (norm + 1e-7) in double, then row *= float(scale).
    scale = jnp.asarray(max_norm, norms.dtype) / (norms + jnp.asarray(_RENORM_EPS, norms.dtype))
    row_scale = jnp.where(looked_up & (norms > threshold), scale, jnp.ones((), norms.dtype))
    return _in_place(weight, row_scale)


@functools.partial(jax.jit, static_argnames=("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq"))
def _embedding(
    weight: jax.Array,
    indices: jax.Array,
    *,
    padding_idx: int | None,
    max_norm: float | None,
    norm_type: float,
    scale_grad_by_freq: bool,
) -> tuple[jax.Array, jax.Array]:
    """``(weight[indices], the weight after the lookup)``: renormalised first when ``max_norm`` is set.

    One compiled program per configuration, so an eager call (and its gradient) runs a few
    compiled programs instead of dispatching each operation; inlined under an outer ``jax.jit``.
    """
    if max_norm is not None:
        weight = _renormalised(weight, indices, max_norm, norm_type)
    return _lookup(weight, indices, weight.shape[0], padding_idx, scale_grad_by_freq), weight


class Embedding(nn.Module):
    """A lookup table ``y[..., :] = weight[input[...], :]``, as ``torch.nn.Embedding``.

    Variables (collection ``params``): ``weight``, ``(num_embeddings, embedding_dim)``, drawn
    from ``N(0, 1)`` with the ``padding_idx`` row zeroed (``torch_init`` replays PyTorch's
    draw bit for bit).

    Gradients are PyTorch's: the cotangent of each output row is added into its weight row,
    except for rows looked up at ``padding_idx`` (that row's gradient stays 0, so it keeps
    its value in training); with ``scale_grad_by_freq`` each addition is divided by the
    number of times its index occurs in the input.

    ``max_norm``: before the lookup, every row ``k`` that the input looks up and whose
    ``norm_type``-norm exceeds ``max_norm`` is rescaled, ``w_k <- w_k * max_norm / (||w_k|| + 1e-7)``.
    PyTorch does this to the weight *in place* (under ``no_grad``), so the next forward, the
    optimizer step and the ``state_dict`` all see the renormalised rows. Here the new weight
    is written back to the ``params`` collection: apply with ``mutable=['params']`` and carry
    the returned ``params`` on (before the optimizer update, which PyTorch applies to the
    renormalised rows)::

        y, updated = model.apply(variables, idx, mutable=["params"])
        variables = {**variables, "params": updated["params"]}

    Applying with ``params`` immutable raises instead of silently dropping the change. The
    gradient is unchanged by the renormalisation (PyTorch's is that of the leaf). ``init``
    does not renormalise the initial weight (PyTorch's constructor does not).

    Indices are checked eagerly: one outside ``[0, num_embeddings)`` raises PyTorch's
    ``IndexError``. Under ``jax.jit`` they are abstract and cannot be checked; there an
    out-of-range index reads a row of NaN (and adds no gradient) instead of another row.

    Attributes:
      num_embeddings: the number of rows.
      embedding_dim: the size of each row.
      padding_idx: the row that receives no gradient (and starts at zero); negative values
        count from the end and are stored normalised, as PyTorch stores them.
      max_norm: renormalise looked-up rows whose norm exceeds this (None: never).
      norm_type: the ``p`` of the p-norm for ``max_norm``.
      scale_grad_by_freq: divide each row's gradient by its index's frequency in the input.
      sparse: must be False: JAX has no sparse gradients (PyTorch's ``sparse=True`` gives
        the same values as a sparse tensor).
      param_dtype: the weight's dtype (PyTorch's ``dtype=`` factory argument).

    Reproduces ``torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=None,
    max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False)``.
    """

    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    scale_grad_by_freq: bool = False
    sparse: bool = False
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        for position, name in enumerate(("num_embeddings", "embedding_dim")):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(
                    f"Embedding: {name} must be an int, got {value!r} (PyTorch: empty(): argument 'size' "
                    f"(position 1) must be tuple of ints, but found element of type {type(value).__name__} "
                    f"at pos {position})"
                )
        for value in (self.num_embeddings, self.embedding_dim):
            if value < 0:
                raise InputError(
                    f"Trying to create tensor with negative dimension {value}: "
                    f"[{self.num_embeddings}, {self.embedding_dim}]"
                )
        if self.padding_idx is not None:
            if not _is_int(self.padding_idx):
                raise TypeError(f"Embedding: padding_idx must be an int or None, got {self.padding_idx!r}")
            if not -self.num_embeddings <= self.padding_idx < self.num_embeddings:
                raise _PaddingIndexError("Padding_idx must be within num_embeddings")
            if self.padding_idx < 0:
                # PyTorch stores the normalised index (Embedding(10, 3, padding_idx=-1).padding_idx == 9).
                object.__setattr__(self, "padding_idx", self.num_embeddings + self.padding_idx)
        if self.max_norm is not None and (
            not isinstance(self.max_norm, numbers.Real) or isinstance(self.max_norm, bool)
        ):
            raise TypeError(f"Embedding: max_norm must be a real number or None, got {self.max_norm!r}")
        if not isinstance(self.norm_type, numbers.Real) or isinstance(self.norm_type, bool):
            raise TypeError(f"Embedding: norm_type must be a real number, got {self.norm_type!r}")
        for name in ("scale_grad_by_freq", "sparse"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Embedding: {name} must be a bool, got {getattr(self, name)!r}")
        if self.sparse:
            raise NotImplementedError(
                "Embedding(sparse=True): JAX has no sparse gradients; sparse=False gives the same gradient "
                "values as a dense array"
            )
        super().__post_init__()

    def _weight_init(self, key: jax.Array, shape: tuple[int, int], dtype: Any) -> jax.Array:
        weight = jax.random.normal(key, shape, dtype)
        if self.padding_idx is not None:
            weight = weight.at[self.padding_idx].set(0)
        return weight

    def _check_indices(self, input: jax.Array) -> None:
        if input.dtype not in _INDEX_DTYPES:
            name = _TORCH_TYPE_NAMES.get(input.dtype.name, str(input.dtype))
            argument, function = ("#2", "embedding_renorm_") if self.max_norm is not None else ("#1", "embedding")
            raise InputError(
                f"Expected tensor for argument {argument} 'indices' to have one of the following scalar types: "
                f"Long, Int; but got {name} instead (while checking arguments for {function})"
            )
        if _is_traced(input):
            return
        values = np.asarray(input)
        if self.max_norm is not None:
            # embedding_renorm_ visits the sorted distinct indices first, through select(), which
            # wraps negative indices and refuses only those beyond the table.
            for index in np.unique(values):
                if not -self.num_embeddings <= index < self.num_embeddings:
                    raise IndexError(
                        f"select(): index {index} out of range for tensor of size "
                        f"[{self.num_embeddings}, {self.embedding_dim}] at dimension 0"
                    )
        if values.size and ((values < 0) | (values >= self.num_embeddings)).any():
            raise IndexError("index out of range in self")

    @nn.compact
    def __call__(self, input: Any) -> jax.Array:
        """Look the indices up.

        Args:
          input: integer indices (int32 or int64, PyTorch's Int and Long), any shape.

        Returns:
          ``(*input.shape, embedding_dim)`` of ``param_dtype``.

        Raises:
          InputError: indices of another dtype (PyTorch's RuntimeError and message).
          IndexError: an index outside the table (eagerly; PyTorch's message).
          ValueError: ``max_norm`` set and the ``params`` collection not mutable.
        """
        input = to_jax(input)
        self._check_indices(input)
        weight = self.param("weight", self._weight_init, (self.num_embeddings, self.embedding_dim), self.param_dtype)
        writes = self.max_norm is not None and not self.is_initializing()
        if writes and not self.is_mutable_collection("params"):
            raise ValueError(
                f"Embedding(max_norm={self.max_norm}) renormalises the looked-up rows of its weight in "
                "place, as PyTorch does: apply with mutable=['params'] and carry the returned params on "
                "(or set max_norm=None)"
            )
        output, weight = _embedding(
            weight,
            input,
            padding_idx=self.padding_idx,
            max_norm=None if self.max_norm is None else float(self.max_norm),
            norm_type=float(self.norm_type),
            scale_grad_by_freq=self.scale_grad_by_freq,
        )
        if writes:
            self.put_variable("params", "weight", weight)
        return output


def _embedding_torch_init(module: Any, params: dict[str, np.ndarray], generator: Any) -> dict[str, np.ndarray]:
    """``torch.nn.Embedding.reset_parameters``: ``normal_(weight)``, then the padding row set to 0."""
    weight = params["weight"]
    drawn = generator.normal(weight.shape, 0.0, 1.0, dtype=weight.dtype)
    if module.padding_idx is not None:
        drawn[module.padding_idx] = 0
    return {"weight": drawn}


register_torch_init(Embedding, _embedding_torch_init)
