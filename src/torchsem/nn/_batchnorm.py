"""BatchNorm: ``torch.nn.BatchNorm1d/2d/3d`` (and ``SyncBatchNorm`` via ``axis_name``) as a Flax linen module.

The arithmetic follows PyTorch's CPU kernels (``aten/src/ATen/native/Normalization.cpp`` and
``native/cpu/batch_norm_kernel.cpp``) step by step, so that results agree to the last bits
wherever float32 allows:

- training statistics: the mean is correctly rounded (PyTorch sums in double; here a rough
  float32 mean is refined by the float32 sum of the deviations from it), and the variance sum
  is the two-pass ``sum((x - mean)^2)`` around that rounded mean, never ``E[x^2] - E[x]^2``;
- ``invstd = 1 / sqrt(var_sum / n + eps)``, and in eval ``1 / sqrt(running_var + eps)``;
- the output is ``x * alpha + beta`` with ``alpha = invstd * weight`` and
  ``beta = bias - mean * alpha`` (PyTorch's kernel; both contract to fused multiply-adds);
- the gradient is PyTorch's ``batch_norm_backward`` formula (a ``jax.custom_vjp``), not the
  autodiff of the forward, which would cancel catastrophically for inputs with a large mean.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..random import batchnorm_torch_init, register_torch_init
from ._errors import InputError
from ._mode import merge_mode
from ._sync import is_axis_bound, sync_batchnorm_axis_name

Array = jax.Array
AxisName = Hashable


class _Layout(NamedTuple):
    """The static facts one call is compiled for."""

    ndim: int
    channel_axis: int
    reduce_axes: tuple[int, ...]
    eps: float
    axis_names: tuple[AxisName, ...]  # () when the statistics are not synchronised
    axis_index_groups: tuple[tuple[int, ...], ...] | None


def _per_channel(values: Array, layout: _Layout) -> Array:
    """Reshape ``(C,)`` so that it broadcasts against the input along the channel axis."""
    shape = [1] * layout.ndim
    shape[layout.channel_axis] = -1
    return values.reshape(shape)


def _per_example(mask: Array, layout: _Layout) -> Array:
    """Reshape a ``(N,)`` mask so that it broadcasts against the input along the batch axis."""
    return mask.reshape((-1,) + (1,) * (layout.ndim - 1))


def _compute_dtype(dtype: Any) -> Any:
    # Statistics in at least float32 (float16/bfloat16 inputs), float64 stays float64.
    return jnp.promote_types(dtype, jnp.float32)


def _manual_axes(value: Array) -> frozenset:
    """The shard_map axes along which ``value`` varies (empty outside shard_map or unchecked)."""
    aval = jax.typeof(value)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.9
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", ()))


def _sum_over_extra_axes(
    grads: tuple[Array, ...], x: Array, param: Array, already_summed: tuple[AxisName, ...]
) -> tuple[Array, ...]:
    """Make parameter cotangents as invariant as the parameter (shard_map with checked vma).

    Inside ``shard_map`` a replicated parameter used with a per-device input needs the sum of
    every device's contribution as its cotangent; ``already_summed`` are the axes whose sums
    the caller already formed.
    """
    extra = tuple(sorted(_manual_axes(x) - _manual_axes(param) - set(already_summed), key=str))
    if not extra:
        return grads
    return tuple(jax.lax.psum(g, extra) for g in grads)


def _reciprocal_sqrt(value: Array) -> Array:
    """``1 / sqrt(value)`` rounded twice, as C++ ``1 / std::sqrt(v)``.

    The barrier stops XLA from rewriting the pair into its own ``rsqrt``, which rounds differently.
    """
    return 1 / jax.lax.optimization_barrier(jnp.sqrt(value))


def _split_high(value: Array) -> tuple[Array, Array]:
    """``value = high + low`` exactly, ``high`` keeping the top 12 of float32's 24 significand bits.

    Products of two such halves are exact in float32 (Dekker's splitting, done with a bit mask so
    that no fused multiply-add can disturb it).
    """
    bits = jax.lax.bitcast_convert_type(value, jnp.uint32) & jnp.uint32(0xFFFFF000)
    high = jax.lax.bitcast_convert_type(bits, jnp.float32)
    return high, value - high


def _float32_invstd_as_double(var: Array, eps: float) -> Array:
    """``float(1 / sqrt(double(var) + eps))`` computed in float32 only.

    PyTorch's CPU training kernel forms ``invstd`` in double and rounds it once (``InvStd`` in
    ``Normalization.cpp``); a plain float32 ``1 / sqrt(var + eps)`` differs from it in the last
    bit for about a third of the inputs. Here ``var + eps`` is kept exactly as ``s + s_low``
    (TwoSum, plus the part of ``eps`` float32 cannot hold), and one Newton step
    ``r + r (1 - (s + s_low) r^2) / 2`` is taken with the residual computed from exact partial
    products, which rounds correctly except within about 2^-33 of a tie.
    """
    eps_high = np.float32(eps)
    eps_low = np.float32(eps - float(eps_high))
    total = var + eps_high
    recovered = total - var
    total_low = ((var - (total - recovered)) + (eps_high - recovered)) + eps_low
    estimate = _reciprocal_sqrt(total)
    est_high, est_low = _split_high(estimate)
    square_high, square_low = _split_high(est_high * est_high)  # est_high^2 is exact
    square_rest = 2 * est_high * est_low + est_low * est_low
    total_high, total_rest = _split_high(total)
    residual = 1 - total_high * square_high  # exact: the product is within an ulp of 1
    residual = residual - total_high * square_low
    residual = residual - total_rest * square_high
    residual = residual - total_rest * square_low
    residual = residual - total * square_rest
    residual = residual - total_low * (estimate * estimate)
    return estimate + estimate * (residual * 0.5)


def _train_invstd(var: Array, eps: float, input_dtype: Any) -> Array:
    """PyTorch's training ``invstd``: ``1 / sqrt(var + eps)`` (``eps > 0`` is checked by the caller).

    The CPU kernel computes it in ``acc_type``: double for float32 and float64 inputs (emulated
    for float32), float for float16/bfloat16 inputs.
    """
    if var.dtype == jnp.float32 and jnp.dtype(input_dtype) == jnp.float32:
        return _float32_invstd_as_double(var, eps)
    return _reciprocal_sqrt(var + jnp.asarray(eps, var.dtype))


# ----------------------------------------------------------------------------------------------
# Training statistics
# ----------------------------------------------------------------------------------------------


def _local_moments(x: Array, mask: Array | None, layout: _Layout) -> tuple[Array, Array, Array, Array]:
    """Count, correctly rounded mean, residual sum and centred sum of squares of this shard.

    Three reads of ``x``, each a single reduction XLA fuses with its elementwise producer:
    ``c = sum(x) / n``; ``mean = c + sum(x - c) / n`` (the deviations are small, so their
    float32 sum is accurate and ``mean`` is the rounding of the exact mean, as PyTorch's
    double accumulation gives); ``var_sum = sum((x - mean)^2)`` (PyTorch's second pass).

    Returns:
      ``(count, mean, residual, var_sum)``; ``residual = sum(x - mean)`` (nearly 0) is what a
      cross-device combination needs to stay exact.
    """
    cdt = _compute_dtype(x.dtype)
    axes = layout.reduce_axes
    xc = x.astype(cdt)
    if mask is None:
        count = jnp.asarray(x.size // x.shape[layout.channel_axis], cdt)

        def keep(values: Array) -> Array:
            return values
    else:
        rows = _per_example(mask, layout)
        per_row = math.prod(x.shape[i] for i in axes if i != 0)
        count = jnp.sum(mask, dtype=cdt) * per_row

        def keep(values: Array) -> Array:
            # where, not multiply: a NaN in a padded row must not reach the statistics
            return jnp.where(rows, values, jnp.zeros((), cdt))

    total = jnp.sum(keep(xc), axes)
    rough = total / count if mask is None else jnp.where(count > 0, total / jnp.maximum(count, 1), 0)
    deviation_sum = jnp.sum(keep(xc - _per_channel(rough, layout)), axes)
    refined = rough + deviation_sum / (count if mask is None else jnp.maximum(count, 1))
    # An infinite element makes PyTorch's mean +-inf (its double sum is inf); x - inf is NaN here.
    mean = jnp.where(jnp.isfinite(rough), refined, rough)
    var_sum = jnp.sum(keep(jnp.square(xc - _per_channel(mean, layout))), axes)
    # sum(x - mean) from the first two passes: deviation_sum - count * (mean - rough), exact enough
    residual = deviation_sum - count * (mean - rough)
    return count, mean, residual, var_sum


def _global_moments(x: Array, mask: Array | None, layout: _Layout) -> tuple[Array, Array, Array]:
    """``(count, mean, var_sum)`` over the whole (possibly device-sharded) batch.

    With ``axis_names`` set, one ``all_gather`` exchanges every device's ``(count, mean,
    residual, var_sum)`` and each device combines them the same way (Chan et al.'s parallel
    update, kept exact by the residual sums): ``mean = ref + sum_k(n_k (m_k - ref) + r_k) / n``
    and ``var_sum = sum_k(q_k + 2 (m_k - mean) r_k + n_k (m_k - mean)^2)``.
    """
    count, mean, residual, var_sum = _local_moments(x, mask, layout)
    if not layout.axis_names:
        return count, mean, var_sum
    local = jnp.stack([jnp.broadcast_to(count, mean.shape), mean, residual, var_sum])
    if layout.axis_index_groups is None:
        # 'invarying': every device holds the same statistics afterwards, so the updated running
        # statistics are replicated (shard_map can return them with out_specs P()).
        gathered = jax.lax.all_gather(local, layout.axis_names, to="invarying")
    else:
        gathered = jax.lax.all_gather(local, layout.axis_names, axis_index_groups=layout.axis_index_groups)
    gathered = gathered.reshape((-1, *local.shape))
    counts, means, residuals, var_sums = gathered[:, 0], gathered[:, 1], gathered[:, 2], gathered[:, 3]
    total = jnp.sum(counts, axis=0)
    safe_total = jnp.maximum(total, 1)
    reference = jnp.sum(counts * means, axis=0) / safe_total
    correction = jnp.sum(counts * (means - reference) + residuals, axis=0) / safe_total
    global_mean = jnp.where(jnp.isfinite(reference), reference + correction, reference)
    offsets = means - global_mean
    global_var_sum = jnp.sum(var_sums + 2 * offsets * residuals + counts * jnp.square(offsets), axis=0)
    return total[0], global_mean, global_var_sum


# ----------------------------------------------------------------------------------------------
# Normalisation with batch statistics (training, or eval without running statistics)
# ----------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _batch_norm_train(
    x: Array, weight: Array, bias: Array, mask: Array | None, layout: _Layout
) -> tuple[Array, Array, Array, Array]:
    """Normalise with the batch statistics; also return ``(mean, var_sum, count)`` for the running update."""
    outputs, _ = _batch_norm_train_fwd(x, weight, bias, mask, layout)
    return outputs


def _batch_norm_train_fwd(x, weight, bias, mask, layout):
    count, mean, var_sum = _global_moments(x, mask, layout)
    invstd = _train_invstd(var_sum / count, layout.eps, x.dtype)
    alpha = invstd * weight
    beta = bias - mean * alpha
    cdt = alpha.dtype
    y = x.astype(cdt) * _per_channel(alpha, layout) + _per_channel(beta, layout)
    stats = tuple(jax.lax.stop_gradient(s) for s in (mean, var_sum, count))
    return (y.astype(x.dtype), *stats), (x, weight, mask, mean, invstd, count)


def _batch_norm_train_bwd(layout, residuals, cotangents):
    x, weight, mask, mean, invstd, count = residuals
    grad_out = cotangents[0]  # the statistics feed only the (non-differentiable) running update
    cdt = invstd.dtype
    axes = layout.reduce_axes
    dy = grad_out.astype(cdt)
    xc = x.astype(cdt)
    # The same mean under three names: XLA would otherwise merge every x - mean (here and in the
    # forward pass) into one array written to memory, where each pass can compute it on the fly.
    mean_for_dot, mean_for_dx = jax.lax.optimization_barrier((mean, mean))
    # Every output row depends on the statistics, padded rows included, so the sums run over all rows.
    products = (xc - _per_channel(mean_for_dot, layout)) * dy
    if mask is not None:
        # A padded row the loss ignores (dy == 0) adds nothing, even if its x is NaN/inf padding.
        products = jnp.where(_per_example(mask, layout) | (dy != 0), products, jnp.zeros((), cdt))
    local_sum = jnp.sum(dy, axes)
    local_dot = jnp.sum(products, axes)
    grad_sum, grad_dot = local_sum, local_dot
    if layout.axis_names:
        # One fused collective for both sums (the statistics were global, so are their cotangents).
        both = jnp.stack([local_sum, local_dot])
        if layout.axis_index_groups is None:
            grad_sum, grad_dot = jax.lax.psum(both, layout.axis_names)
        else:
            # shard_map implements grouped all_gather but not grouped psum
            gathered = jax.lax.all_gather(both, layout.axis_names, axis_index_groups=layout.axis_index_groups)
            grad_sum, grad_dot = jnp.sum(gathered.reshape((-1, *both.shape)), axis=0)
    k = grad_dot * invstd * invstd / count
    grad_mean = grad_sum / count
    # PyTorch: dx = (dy - grad_mean - (x - mean) * k) * invstd * w
    centred = xc - _per_channel(mean_for_dx, layout)
    adjusted = dy - _per_channel(grad_mean, layout) - centred * _per_channel(k, layout)
    if mask is not None:
        adjusted = jnp.where(_per_example(mask, layout), adjusted, dy)  # padded rows: dx = dy * invstd * w
    grad_x = (adjusted * _per_channel(invstd, layout) * _per_channel(weight, layout)).astype(x.dtype)

    summed_axes: tuple[AxisName, ...] = ()
    if (
        layout.axis_names
        and layout.axis_index_groups is None
        and set(layout.axis_names) <= (_manual_axes(x) - _manual_axes(weight))
    ):
        # A replicated parameter's cotangent is the sum over devices, which the psum above formed.
        weight_dot, weight_sum, summed_axes = grad_dot, grad_sum, layout.axis_names
    else:
        weight_dot, weight_sum = local_dot, local_sum
    grad_weight, grad_bias = _sum_over_extra_axes(
        ((weight_dot * invstd).astype(weight.dtype), weight_sum.astype(weight.dtype)), x, weight, summed_axes
    )
    return grad_x, grad_weight, grad_bias, None


_batch_norm_train.defvjp(_batch_norm_train_fwd, _batch_norm_train_bwd)


# ----------------------------------------------------------------------------------------------
# Normalisation with running statistics (eval)
# ----------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _batch_norm_eval(
    x: Array, weight: Array, bias: Array, running_mean: Array, running_var: Array, layout: _Layout
) -> Array:
    """Normalise with the running statistics (PyTorch's eval mode)."""
    return _batch_norm_eval_fwd(x, weight, bias, running_mean, running_var, layout)[0]


def _batch_norm_eval_fwd(x, weight, bias, running_mean, running_var, layout):
    # PyTorch's eval kernel computes 1 / sqrt(var + eps) in the parameters' precision.
    invstd = _reciprocal_sqrt(running_var + jnp.asarray(layout.eps, running_var.dtype))
    alpha = invstd * weight
    beta = bias - running_mean * alpha
    y = x.astype(alpha.dtype) * _per_channel(alpha, layout) + _per_channel(beta, layout)
    return y.astype(x.dtype), (x, weight, running_mean, invstd)


def _batch_norm_eval_bwd(layout, residuals, grad_out):
    x, weight, running_mean, invstd = residuals
    cdt = invstd.dtype
    dy = grad_out.astype(cdt)
    grad_x = (dy * _per_channel(invstd, layout) * _per_channel(weight, layout)).astype(x.dtype)
    grad_sum = jnp.sum(dy, layout.reduce_axes)
    grad_dot = jnp.sum((x.astype(cdt) - _per_channel(running_mean, layout)) * dy, layout.reduce_axes)
    grad_weight, grad_bias = _sum_over_extra_axes(
        ((grad_dot * invstd).astype(weight.dtype), grad_sum.astype(weight.dtype)), x, weight, ()
    )
    return grad_x, grad_weight, grad_bias, None, None


_batch_norm_eval.defvjp(_batch_norm_eval_fwd, _batch_norm_eval_bwd)

# Compiled even when called eagerly, so that eager and jitted results agree to the bit (XLA fuses
# x * alpha + beta into one multiply-add, as PyTorch's kernel does; op-by-op it would round twice).
_batch_norm_train_compiled = jax.jit(_batch_norm_train, static_argnums=(4,))
_batch_norm_eval_compiled = jax.jit(_batch_norm_eval, static_argnums=(5,))


# ----------------------------------------------------------------------------------------------
# The module
# ----------------------------------------------------------------------------------------------


def _torch_size(shape: Sequence[int]) -> str:
    return f"torch.Size([{', '.join(str(int(d)) for d in shape)}])"


def _normalise_axis_names(axis_name: Any) -> tuple[AxisName, ...]:
    if axis_name is None:
        return ()
    if isinstance(axis_name, (tuple, list)):
        return tuple(axis_name)
    return (axis_name,)


def _axis_size(axis_names: tuple[AxisName, ...], groups: tuple[tuple[int, ...], ...] | None) -> int | None:
    """How many devices share the statistics, when it is known while tracing."""
    if groups is not None:
        return len(groups[0])
    try:
        return math.prod(int(jax.lax.axis_size(name)) for name in axis_names)
    except Exception:  # not inside a mapped context that knows the axis: skip the static check
        return None


class BatchNorm(nn.Module):
    """Batch normalisation with PyTorch's semantics, channels-first by default.

    .. math::

        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\cdot \\mathrm{weight} + \\mathrm{bias}

    with per-channel statistics over every axis but ``axis``. ``use_running_average=False`` is
    PyTorch's ``train()``, ``True`` is ``eval()``:

    ==============  ======  =================================  =====================================
    use_running_    track_  normalises with                    running statistics
    average         stats
    ==============  ======  =================================  =====================================
    False (train)   True    batch mean, biased var (/ n)       ``r = (1 - m) r + m batch`` with the
                                                               unbiased var (/ (n - 1));
                                                               ``num_batches_tracked += 1``
    False (train)   False   batch mean, biased var             none exist
    True (eval)     True    ``running_mean``, ``running_var``  unchanged
    True (eval)     False   batch mean, biased var             none exist
    ==============  ======  =================================  =====================================

    ``momentum=None`` uses the cumulative average factor ``m = 1 / num_batches_tracked``.

    Variables, named so that joining the path with ``'.'`` gives PyTorch's ``state_dict`` keys:

    - ``params``: ``weight`` (ones) and ``bias`` (zeros), ``(C,)``, only when ``affine`` (``bias``
      only when ``bias`` too: PyTorch's ``bias=False`` learns a weight without a bias);
    - ``batch_stats``: ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked``
      (integer 0; int32 unless ``jax_enable_x64``), only when ``track_running_stats``.

    Training updates ``batch_stats``, so apply with ``mutable=['batch_stats']``; ``init`` never
    updates them. A batch with no elements (``(0, C, ...)``, or a zero spatial extent) gives an
    empty output, as PyTorch: in training it still counts in ``num_batches_tracked`` while the
    running statistics stay as they are, and ``weight``/``bias`` get zero gradients (its channel
    count is still checked, where PyTorch's shortcut for empty inputs skips that check).
    Gradients are PyTorch's ``batch_norm_backward`` (reverse mode, including
    reverse-over-reverse; forward mode (``jax.jvp``) is not supported).

    SyncBatchNorm: with ``axis_name`` (inside ``jax.shard_map`` or ``pmap``), the statistics are
    those of the global batch across that axis, weighted by each device's element count, with the
    unbiased correction from the global count, as ``torch.nn.SyncBatchNorm``; the forward pass
    uses one ``all_gather`` of ``(count, mean, residual, var_sum)`` and the backward pass one
    ``psum`` of ``(sum(dy), sum(dy * (x - mean)))``. The ``mask`` call argument excludes padded
    examples from the statistics (uneven per-device batches): the result then equals PyTorch on the
    concatenation of the real examples, and padded rows are still normalised. Under
    ``shard_map`` (checked) a replicated ``weight``/``bias`` receives the sum of every device's
    gradient; under ``pmap`` each device gets its own, to be averaged as usual. A layer whose
    ``axis_name`` is None synchronises over the axis of an active
    :func:`torchsem.nn.sync_batchnorm` context (:func:`torchsem.nn.convert_sync_batchnorm`).
    As ``flax.linen.BatchNorm``, ``init`` skips the collective (it normalises with the statistics
    of the batch it is given and updates nothing), so a synchronised model is initialised outside
    the mapped function and applied inside it; applying with batch statistics where ``axis_name``
    is not bound raises a ``NameError`` that names the axis.

    Attributes:
      num_features: ``C``; checked against the input when given (None: taken from the input).
      eps: added to the variance.
      momentum: running-average factor (PyTorch's convention: weight of the new batch);
        None: cumulative average.
      affine: whether to learn ``weight`` and ``bias``.
      bias: with ``affine``, whether to learn ``bias`` (keyword-only, as in PyTorch); without
        ``affine`` there is neither.
      track_running_stats: whether to keep running statistics (else batch statistics always).
      use_running_average: True is PyTorch's eval mode, False its train mode; give it here or
        to ``__call__``, not both (Flax's ``nn.merge_param``).
      axis: the channel axis (PyTorch's 1; -1 for channels-last inputs).
      axis_name: mapped axis name (or tuple of names) to synchronise statistics over.
      axis_index_groups: optional device groups within ``axis_name`` that share statistics.
      dtype: the output dtype (default: the input's); statistics are at least float32.
      param_dtype: dtype of ``weight``, ``bias`` and the running statistics.

    Reproduces ``torch.nn.BatchNorm1d/2d/3d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True)`` and ``torch.nn.SyncBatchNorm``.
    """

    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    use_running_average: bool | None = None
    axis: int = 1
    axis_name: Any = None
    axis_index_groups: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    bias: bool = dataclasses.field(default=True, kw_only=True)  # keyword-only, as PyTorch's

    _allowed_ranks: ClassVar[tuple[int, ...] | None] = None  # None: any rank >= 2
    _rank_text: ClassVar[str] = ""

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.num_features is not None and (
            isinstance(self.num_features, bool)
            or not isinstance(self.num_features, numbers.Integral)
            or self.num_features < 1
        ):
            raise ValueError(f"{name}: num_features must be a positive int or None, got {self.num_features!r}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real):
            raise TypeError(f"{name}: eps must be a float, got {self.eps!r}")
        if not self.eps >= 0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {self.eps}")
        if self.momentum is not None and (
            isinstance(self.momentum, bool) or not isinstance(self.momentum, numbers.Real)
        ):
            raise TypeError(f"{name}: momentum must be a float or None, got {self.momentum!r}")
        for flag in ("affine", "track_running_stats", "bias"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{name}: {flag} must be a bool, got {getattr(self, flag)!r}")
        if self.use_running_average is not None and not isinstance(self.use_running_average, bool):
            raise TypeError(f"{name}: use_running_average must be a bool or None, got {self.use_running_average!r}")
        if isinstance(self.axis, bool) or not isinstance(self.axis, numbers.Integral):
            raise TypeError(f"{name}: axis must be an int, got {self.axis!r}")
        if self.axis_index_groups is not None and self.axis_name is None:
            raise ValueError(f"{name}: axis_index_groups needs axis_name")
        super().__post_init__()

    def _check_rank(self, ndim: int) -> None:
        if self._allowed_ranks is not None:
            if ndim not in self._allowed_ranks:
                raise ValueError(f"expected {self._rank_text} input (got {ndim}D input)")
        elif ndim < 2:
            raise ValueError(f"expected at least 2D input (batch, channels, ...) (got {ndim}D input)")

    def _channel_axis(self, ndim: int) -> int:
        axis = int(self.axis)
        if not -ndim <= axis < ndim:
            raise ValueError(f"{type(self).__name__}: axis={axis} is out of range for a {ndim}D input")
        axis %= ndim
        if axis == 0:
            raise ValueError(
                f"{type(self).__name__}: axis={self.axis} is the batch axis; the channel axis "
                "must be another one (PyTorch's is 1)"
            )
        return axis

    def _check_channels(self, channels: int) -> None:
        """Raise PyTorch's message when the input's channels differ from the layer's."""
        expected = self.num_features
        for collection, name in (("batch_stats", "running_mean"), ("params", "weight")):
            if self.has_variable(collection, name):
                existing = int(self.get_variable(collection, name).shape[0])
                expected = existing if expected is None else expected
                if existing != channels:
                    raise InputError(f"{name} should contain {channels} elements not {existing}")
        if expected is not None and expected != channels:
            if self.track_running_stats:
                raise InputError(f"running_mean should contain {channels} elements not {expected}")
            if self.affine:
                raise InputError(f"weight should contain {channels} elements not {expected}")
            raise InputError(
                f"{type(self).__name__}: num_features={expected} but the input has {channels} "
                f"channels along axis {self.axis}"
            )

    @nn.compact
    def __call__(self, input: Array, use_running_average: bool | None = None, *, mask: Array | None = None) -> Array:
        """Normalise ``input``.

        Args:
          input: ``(N, C, *)`` (or channels at ``axis``), floating point.
          use_running_average: True for PyTorch's eval mode, False for train mode; exactly one
            of this and the attribute must be given.
          mask: optional ``(N,)`` bool: which examples count towards the batch statistics
            (padding rows are False). Their outputs are still normalised with the statistics of the
            real examples. Only read where batch statistics are used. Under ``jit`` a batch
            whose real examples give fewer than 2 values per channel cannot raise; its statistics
            are then NaN/inf.

        Returns:
          Same shape as ``input``, of ``dtype`` (default: the input's dtype).

        Raises:
          ValueError: PyTorch's messages for one value per channel in training and a wrong
            rank for ``BatchNorm1d/2d/3d``; a mask of the wrong shape.
          InputError: (a ``RuntimeError`` as in PyTorch, and a ``ValueError``) a channel count
            that differs from ``num_features`` (or the existing variables).
          TypeError: for a non-floating-point input or a non-bool mask.
        """
        x = jnp.asarray(input)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{type(self).__name__}: expected a floating-point input, got dtype {x.dtype}")
        self._check_rank(x.ndim)
        channel_axis = self._channel_axis(x.ndim)
        channels = int(x.shape[channel_axis])

        training = not merge_mode(
            type(self).__name__,
            "use_running_average",
            self.use_running_average,
            use_running_average,
            "False: PyTorch's train(), True: eval()",
        )
        # A layer without its own axis takes the one of an active torchsem.nn.sync_batchnorm(...),
        # read here, at trace time.
        axis_name = self.axis_name if self.axis_name is not None else sync_batchnorm_axis_name()
        axis_names = _normalise_axis_names(axis_name)
        groups = None
        if self.axis_index_groups is not None:
            groups = tuple(tuple(int(i) for i in group) for group in self.axis_index_groups)

        # PyTorch's order of checks: torch.nn.functional.batch_norm's own (batch statistics only),
        # then the kernel's channel counts.
        batch_statistics = training or not self.track_running_stats
        initializing = self.is_initializing()
        if batch_statistics and axis_names and not initializing:
            self._check_bound(axis_names)
        if batch_statistics:
            # PyTorch refuses exactly one value per channel (N * prod(spatial) == 1); an empty batch has none.
            values_per_channel = math.prod(int(d) for i, d in enumerate(x.shape) if i != channel_axis)
            if (
                mask is None
                and values_per_channel == 1
                and (not axis_names or (_axis_size(axis_names, groups) or 2) <= 1)
            ):
                raise ValueError(
                    f"Expected more than 1 value per channel when training, got input size {_torch_size(x.shape)}"
                )
            if self.eps <= 0:
                raise ValueError(f"batch_norm eps must be positive during training, but got {self.eps}")
        self._check_channels(channels)

        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.dtype != jnp.bool_:
                raise TypeError(f"{type(self).__name__}: mask must be a bool array, got dtype {mask.dtype}")
            if mask.shape != (x.shape[0],):
                raise ValueError(
                    f"{type(self).__name__}: mask must have shape (N,) = ({x.shape[0]},), got {tuple(mask.shape)}"
                )

        cdt = _compute_dtype(x.dtype)
        feature_shape = (channels,)
        if self.affine:
            weight = jnp.asarray(self.param("weight", nn.initializers.ones, feature_shape, self.param_dtype), cdt)
            if self.bias:
                bias = jnp.asarray(self.param("bias", nn.initializers.zeros, feature_shape, self.param_dtype), cdt)
            else:
                # PyTorch's kernel reads a missing bias as 0: beta = 0 - mean * alpha, as here.
                bias = jnp.zeros(feature_shape, cdt)
        else:
            weight, bias = jnp.ones(feature_shape, cdt), jnp.zeros(feature_shape, cdt)

        running = None
        if self.track_running_stats:
            count_dtype = jax.dtypes.canonicalize_dtype(jnp.int64)
            running = (
                self.variable("batch_stats", "running_mean", jnp.zeros, feature_shape, self.param_dtype),
                self.variable("batch_stats", "running_var", jnp.ones, feature_shape, self.param_dtype),
                self.variable("batch_stats", "num_batches_tracked", jnp.zeros, (), count_dtype),
            )
        updates_running = training and running is not None and not initializing

        if x.size == 0:
            # PyTorch's batch_norm returns input * weight + bias for an input without elements and
            # skips its kernel: an empty output, zero gradients for weight and bias (they are on the
            # graph: zeros, not None), no statistics (the running ones stay, rather than turn NaN),
            # nothing gathered; in training the batch still counts. A trace-time branch: shapes are static.
            shape = [1] * x.ndim
            shape[channel_axis] = channels
            y = (x.astype(cdt) * weight.reshape(shape) + bias.reshape(shape)).astype(x.dtype)
            if updates_running and running is not None:
                self._require_mutable_batch_stats()
                num_batches_tracked = running[2]
                num_batches_tracked.value = num_batches_tracked.value + 1
            return y.astype(self.dtype) if self.dtype is not None else y

        if initializing:
            # As flax.linen.BatchNorm: init normalises with the statistics of the batch it is given,
            # so a synchronised model can be initialised outside shard_map/pmap (init updates nothing).
            axis_names, groups = (), None

        layout = _Layout(
            ndim=x.ndim,
            channel_axis=channel_axis,
            reduce_axes=tuple(i for i in range(x.ndim) if i != channel_axis),
            eps=float(self.eps),
            axis_names=axis_names,
            axis_index_groups=groups,
        )

        if not batch_statistics:
            assert running is not None  # not batch_statistics means track_running_stats: made above
            running_mean, running_var, _ = running
            y = _batch_norm_eval_compiled(
                x, weight, bias, jnp.asarray(running_mean.value, cdt), jnp.asarray(running_var.value, cdt), layout
            )
            return y.astype(self.dtype) if self.dtype is not None else y

        # Batch statistics: training, or eval without running statistics (PyTorch does the same).
        y, mean, var_sum, count = _batch_norm_train_compiled(x, weight, bias, mask, layout)

        if updates_running and running is not None:
            self._require_mutable_batch_stats()
            running_mean, running_var, num_batches_tracked = running
            num_batches_tracked.value = num_batches_tracked.value + 1
            if self.momentum is None:
                factor = 1 / num_batches_tracked.value.astype(cdt)
            else:
                factor = jnp.asarray(self.momentum, cdt)
            unbiased_var = var_sum / (count - 1)
            old_mean = jnp.asarray(running_mean.value, cdt)
            old_var = jnp.asarray(running_var.value, cdt)
            running_mean.value = (factor * mean + (1 - factor) * old_mean).astype(running_mean.value.dtype)
            running_var.value = (factor * unbiased_var + (1 - factor) * old_var).astype(running_var.value.dtype)
        return y.astype(self.dtype) if self.dtype is not None else y

    def _require_mutable_batch_stats(self) -> None:
        if not self.is_mutable_collection("batch_stats"):
            raise ValueError(
                f"{type(self).__name__} in training mode (use_running_average=False) updates its running "
                "statistics: call apply(..., mutable=['batch_stats']) (or pass use_running_average=True "
                "for eval mode)"
            )

    def _check_bound(self, axis_names: tuple[AxisName, ...]) -> None:
        """Raise, naming them, where the axes the statistics would be gathered over are not bound."""
        unbound = [name for name in axis_names if not is_axis_bound(name)]
        if unbound:
            names = ", ".join(repr(name) for name in unbound)
            raise NameError(
                f"{type(self).__name__}: axis_name {names} is not bound here, and batch statistics are "
                "synchronised over it: apply the layer inside jax.shard_map(..., mesh=mesh) over a mesh with "
                f"that axis (or jax.pmap(..., axis_name={unbound[0]!r})), or use axis_name=None for statistics "
                "of the batch the layer sees. init may run outside (it skips the collective, as "
                "flax.linen.BatchNorm); eval with running statistics needs no axis."
            )


class BatchNorm1d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C)`` or ``(N, C, L)`` inputs, as ``torch.nn.BatchNorm1d``.

    Raises ``ValueError('expected 2D or 3D input (got 4D input)')`` for other ranks, like PyTorch.
    """

    _allowed_ranks: ClassVar[tuple[int, ...] | None] = (2, 3)
    _rank_text: ClassVar[str] = "2D or 3D"


class BatchNorm2d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C, H, W)`` inputs, as ``torch.nn.BatchNorm2d``."""

    _allowed_ranks: ClassVar[tuple[int, ...] | None] = (4,)
    _rank_text: ClassVar[str] = "4D"


class BatchNorm3d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C, D, H, W)`` inputs, as ``torch.nn.BatchNorm3d``."""

    _allowed_ranks: ClassVar[tuple[int, ...] | None] = (5,)
    _rank_text: ClassVar[str] = "5D"


class SyncBatchNorm(BatchNorm):
    """:class:`BatchNorm` whose statistics span the devices of ``axis_name`` (required), as ``torch.nn.SyncBatchNorm``.

    Apply it inside ``jax.shard_map`` (or ``pmap``) over the data-parallel axis; ``init`` works
    anywhere (it skips the collective). PyTorch's ``process_group`` is ``axis_name`` (with
    ``axis_index_groups`` for sub-groups).
    """

    def __post_init__(self) -> None:
        if self.axis_name is None:
            raise ValueError(
                "SyncBatchNorm: axis_name is required (the mapped data-parallel axis, PyTorch's process_group)"
            )
        super().__post_init__()


__all__ = ["BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"]


# PyTorch's reset_parameters: weight ones, bias zeros, nothing drawn (subclasses inherit it).
register_torch_init(BatchNorm, batchnorm_torch_init)
