"""InstanceNorm1d/2d/3d: ``torch.nn.InstanceNorm1d/2d/3d`` as Flax linen modules, channels-first.

PyTorch's ``instance_norm`` (``aten/src/ATen/native/Normalization.cpp``) is ``batch_norm`` on the
input viewed as ``(1, N * C, *spatial)``, with ``weight``, ``bias`` and the running statistics
repeated ``N`` times; afterwards each running statistic is the mean over the batch of its ``N``
updated copies. This module does exactly that with torchsem's BatchNorm kernels (the same
statistics, ``invstd`` and ``batch_norm_backward`` gradient as :class:`torchsem.nn.BatchNorm`):

- training, or eval without ``track_running_stats``: each ``(example, channel)`` is normalised
  with its own spatial mean and biased variance;
- training with ``track_running_stats``: ``running = mean_n((1 - m) * running + m * stat_n)``,
  with the unbiased (``/ (L - 1)``) per-instance variance for ``running_var``; ``momentum=None``
  is passed to the kernel as ``0.0`` by PyTorch, so the running statistics then never move, and
  ``num_batches_tracked`` exists but is never incremented (PyTorch's InstanceNorm, unlike its
  BatchNorm, does not count batches);
- eval with ``track_running_stats``: normalised with ``running_mean`` / ``running_var``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..random import batchnorm_torch_init, register_torch_init
from ._batchnorm import _batch_norm_eval_compiled, _batch_norm_train_compiled, _Layout, _torch_size
from ._errors import InputError
from ._mode import merge_mode
from ._norm_stats import compute_dtype

Array = jax.Array


class _InstanceNorm(nn.Module):
    """Instance normalisation with PyTorch's semantics (the shared body of ``InstanceNorm1d/2d/3d``).

    ``use_running_average=False`` is PyTorch's ``train()``, ``True`` its ``eval()`` (given once, to
    the constructor or the call). Without ``track_running_stats`` (the default) both modes
    normalise with the statistics of each instance; with it, training updates ``batch_stats``
    (apply with ``mutable=['batch_stats']``) and eval reads them.

    Variables, named as PyTorch's ``state_dict``: ``params``: ``weight`` (ones), ``bias`` (zeros),
    ``(C,)``, only with ``affine`` (``bias`` only with ``bias`` too); ``batch_stats``:
    ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked`` (0, never
    incremented, as PyTorch), only with ``track_running_stats``.

    Unbatched inputs (``(C, *spatial)``, one rank below the batched one) are normalised as a batch
    of one, as PyTorch. A channel count that differs from ``num_features`` raises PyTorch's
    ``ValueError`` with ``affine``; without it PyTorch's ``UserWarning`` is emitted and, without
    ``track_running_stats``, the input is normalised anyway (with it, PyTorch's
    ``running_mean should contain ...`` error follows).

    Differs from ``flax.linen.InstanceNorm`` in: ``eps=1e-5`` (Flax's ``epsilon`` defaults to
    ``1e-6``), ``affine=False`` by default (Flax learns ``scale`` and ``bias`` by default),
    running statistics (Flax has none), channels-first layout (Flax: channels-last).

    Attributes:
      num_features: ``C``.
      eps: added to the variance.
      momentum: running-average factor (weight of the new statistics); None: PyTorch passes 0.0.
      affine: whether to learn per-channel ``weight`` and ``bias``.
      track_running_stats: whether to keep running statistics (used in eval).
      use_running_average: True is PyTorch's eval mode, False its train mode.
      bias: with ``affine``, whether to learn ``bias`` (keyword-only, as in PyTorch).
      dtype: the output dtype (default: the input's); statistics are at least float32.
      param_dtype: dtype of ``weight``, ``bias`` and the running statistics.

    Reproduces ``torch.nn.InstanceNorm1d/2d/3d(num_features, eps=1e-5, momentum=0.1, affine=False,
    track_running_stats=False, *, bias=True)``.
    """

    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = False
    track_running_stats: bool = False
    use_running_average: bool | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    bias: bool = dataclasses.field(default=True, kw_only=True)  # keyword-only, as PyTorch's

    _no_batch_dim: ClassVar[int] = 0  # the rank of an unbatched input
    _rank_text: ClassVar[str] = ""

    def __post_init__(self) -> None:
        name = type(self).__name__
        if isinstance(self.num_features, bool) or not isinstance(self.num_features, numbers.Integral):
            raise TypeError(f"{name}: num_features must be an int, got {self.num_features!r}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real):
            raise TypeError(f"{name}: eps must be a float, got {self.eps!r}")
        if self.momentum is not None and (
            isinstance(self.momentum, bool) or not isinstance(self.momentum, numbers.Real)
        ):
            raise TypeError(f"{name}: momentum must be a float or None, got {self.momentum!r}")
        for flag in ("affine", "track_running_stats", "bias"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{name}: {flag} must be a bool, got {getattr(self, flag)!r}")
        if self.use_running_average is not None and not isinstance(self.use_running_average, bool):
            raise TypeError(f"{name}: use_running_average must be a bool or None, got {self.use_running_average!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, input: Array, use_running_average: bool | None = None) -> Array:
        """Normalise ``input``: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.

        Raises:
          ValueError: PyTorch's messages for a wrong rank, channels that differ from
            ``num_features`` with ``affine``, and one spatial element where instance statistics
            are used.
          InputError: (a ``RuntimeError``, as in PyTorch) channels that differ from
            ``num_features`` with ``track_running_stats``.
          TypeError: a non-floating-point input.
        """
        name = type(self).__name__
        x = jnp.asarray(input)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
        if x.ndim not in (self._no_batch_dim, self._no_batch_dim + 1):
            raise ValueError(f"expected {self._rank_text} input (got {x.ndim}D input)")
        training = not merge_mode(
            name,
            "use_running_average",
            self.use_running_average,
            use_running_average,
            "False: PyTorch's train(), True: eval()",
        )
        feature_dim = x.ndim - self._no_batch_dim
        channels = int(x.shape[feature_dim])
        if channels != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features"
                    f" ({self.num_features}), but got: {channels}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                "warning by not passing in num_features, which is not used because affine=False",
                UserWarning,
                stacklevel=2,
            )
        unbatched = x.ndim == self._no_batch_dim
        if unbatched:
            x = x[None]
        n = int(x.shape[0])
        spatial = x.shape[2:]
        instance_statistics = training or not self.track_running_stats
        if instance_statistics and math.prod(int(d) for d in spatial) == 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {_torch_size(x.shape)}"
            )
        if self.track_running_stats and channels != self.num_features:
            raise InputError(f"running_mean should contain {n * channels} elements not {n * self.num_features}")

        cdt = compute_dtype(x.dtype)
        feature_shape = (self.num_features,)
        if self.affine:
            weight = jnp.asarray(self.param("weight", nn.initializers.ones, feature_shape, self.param_dtype), cdt)
            if self.bias:
                bias = jnp.asarray(self.param("bias", nn.initializers.zeros, feature_shape, self.param_dtype), cdt)
            else:
                bias = jnp.zeros(feature_shape, cdt)  # PyTorch's kernel reads a missing bias as 0
        else:
            weight, bias = jnp.ones((channels,), cdt), jnp.zeros((channels,), cdt)

        running = None
        if self.track_running_stats:
            count_dtype = jax.dtypes.canonicalize_dtype(jnp.int64)
            running = (
                self.variable("batch_stats", "running_mean", jnp.zeros, feature_shape, self.param_dtype),
                self.variable("batch_stats", "running_var", jnp.ones, feature_shape, self.param_dtype),
                self.variable("batch_stats", "num_batches_tracked", jnp.zeros, (), count_dtype),
            )
        if running is not None and n == 0:
            # PyTorch's instance_norm reads the repeated (empty) running statistics and fails so.
            raise IndexError("select(): index 0 out of range for tensor of size [0] at dimension 0")

        # (N, C, *spatial) -> (1, N * C, *spatial): one "channel" per instance.
        shape = (1, n * channels, *spatial)
        folded = x.reshape(shape)
        weight_n, bias_n = jnp.tile(weight, n), jnp.tile(bias, n)
        if x.size == 0:
            # batch_norm's shortcut for inputs without elements: input * weight + bias, statistics untouched.
            per = (1, n * channels) + (1,) * len(spatial)
            y = (folded.astype(cdt) * weight_n.reshape(per) + bias_n.reshape(per)).astype(x.dtype)
        else:
            layout = _Layout(
                ndim=folded.ndim,
                channel_axis=1,
                reduce_axes=(0, *range(2, folded.ndim)),
                eps=float(self.eps),
                axis_names=(),
                axis_index_groups=None,
            )
            if not instance_statistics:
                assert running is not None
                running_mean = jnp.tile(jnp.asarray(running[0].value, cdt), n)
                running_var = jnp.tile(jnp.asarray(running[1].value, cdt), n)
                y = _batch_norm_eval_compiled(folded, weight_n, bias_n, running_mean, running_var, layout)
            else:
                y, mean, var_sum, count = _batch_norm_train_compiled(folded, weight_n, bias_n, None, layout)
                if training and running is not None and not self.is_initializing():
                    self._update(running, mean, var_sum, count, n, cdt)
        y = y.reshape(x.shape)
        if unbatched:
            y = y[0]
        return y.astype(self.dtype) if self.dtype is not None else y

    def _update(
        self, running: tuple[Any, Any, Any], mean: Array, var_sum: Array, count: Array, n: int, cdt: Any
    ) -> None:
        """PyTorch's running update of the ``N`` repeated copies, then their mean over the batch."""
        if not self.is_mutable_collection("batch_stats"):
            raise ValueError(
                f"{type(self).__name__} in training mode (use_running_average=False) with track_running_stats "
                "updates its running statistics: call apply(..., mutable=['batch_stats']) (or pass "
                "use_running_average=True for eval mode)"
            )
        running_mean, running_var, _ = running  # num_batches_tracked: PyTorch's InstanceNorm never counts
        factor = jnp.asarray(0.0 if self.momentum is None else self.momentum, cdt)
        old_mean = jnp.tile(jnp.asarray(running_mean.value, cdt), n)
        old_var = jnp.tile(jnp.asarray(running_var.value, cdt), n)
        new_mean = factor * mean + (1 - factor) * old_mean
        new_var = factor * (var_sum / (count - 1)) + (1 - factor) * old_var
        running_mean.value = jnp.mean(new_mean.reshape(n, -1), axis=0).astype(running_mean.value.dtype)
        running_var.value = jnp.mean(new_var.reshape(n, -1), axis=0).astype(running_var.value.dtype)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` or unbatched ``(C, L)`` inputs, as ``torch.nn.InstanceNorm1d``."""

    _no_batch_dim: ClassVar[int] = 2
    _rank_text: ClassVar[str] = "2D or 3D"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` or unbatched ``(C, H, W)`` inputs: ``torch.nn.InstanceNorm2d``."""

    _no_batch_dim: ClassVar[int] = 3
    _rank_text: ClassVar[str] = "3D or 4D"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``: ``torch.nn.InstanceNorm3d``."""

    _no_batch_dim: ClassVar[int] = 4
    _rank_text: ClassVar[str] = "4D or 5D"


__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]

# PyTorch's reset_parameters: weight ones, bias zeros, nothing drawn (subclasses inherit it).
register_torch_init(_InstanceNorm, batchnorm_torch_init)
