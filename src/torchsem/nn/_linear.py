"""Linear: ``torch.nn.Linear`` with PyTorch's (out, in) weight layout and initialisation."""

from __future__ import annotations

import math
import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..random import linear_torch_init, register_torch_init
from . import init as _init
from ._errors import InputError


def _default_weight_init() -> _init.Initializer:
    # nn.Linear.reset_parameters: kaiming_uniform_(weight, a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)).
    return _init.kaiming_uniform(a=math.sqrt(5))


def _default_bias_init(in_features: int) -> _init.Initializer:
    # The bias bound is the weight's fan-in bound, 0 when the layer has no inputs.
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    return _init.uniform(-bound, bound)


class Linear(nn.Module):
    """An affine map ``y = x W^T + b`` over the last axis, as ``torch.nn.Linear``.

    Variables (collection ``params``), with PyTorch's names and shapes:

    - ``weight``: ``(out_features, in_features)``, default ``U(-k, k)`` with ``k = 1/sqrt(in_features)``
      (PyTorch's ``kaiming_uniform_(a=sqrt(5))``);
    - ``bias``: ``(out_features,)``, default ``U(-k, k)`` with the same ``k`` (absent when ``bias=False``).

    The product runs at ``precision`` (full float32 by default, so results agree with PyTorch's
    CPU ``addmm`` to rounding on every backend, TPU/GPU included).

    Attributes:
      in_features: size of the input's last axis.
      out_features: size of the output's last axis.
      bias: whether to add a learnable bias (PyTorch's ``bias=True``).
      weight_init: initialiser for ``weight``, ``(key, shape, dtype)``; None is PyTorch's default.
      bias_init: initialiser for ``bias``; None is PyTorch's default.
      param_dtype: the parameters' dtype (PyTorch's ``dtype=`` factory argument).
      precision: the matmul precision.

    Reproduces ``torch.nn.Linear(in_features, out_features, bias=True)``.
    """

    in_features: int
    out_features: int
    bias: bool = True
    weight_init: _init.Initializer | None = None
    bias_init: _init.Initializer | None = None
    param_dtype: Any = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def __post_init__(self) -> None:
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"Linear: {name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"Linear: {name} must be >= 0, got {value}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"Linear: bias must be a bool (whether to learn a bias), got {self.bias!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        """Apply the layer.

        Args:
          input: ``(*, in_features)``, floating point of ``param_dtype``.

        Returns:
          ``(*, out_features)``.
        """
        input = jnp.asarray(input)
        weight_init = self.weight_init if self.weight_init is not None else _default_weight_init()
        weight = self.param("weight", weight_init, (self.out_features, self.in_features), self.param_dtype)
        if input.ndim == 0:
            raise InputError(
                "Linear: input must have at least one axis (the features), got a 0-d array; "
                "PyTorch: both arguments to linear need to be at least 1D, but they are 0D and 2D"
            )
        features = input.shape[-1]
        if features != self.in_features:
            rows = math.prod(input.shape[:-1])
            raise InputError(
                f"Linear: the input's last axis has {features} features but in_features={self.in_features} "
                f"(input shape {tuple(input.shape)}); PyTorch: mat1 and mat2 shapes cannot be multiplied "
                f"({rows}x{features} and {self.in_features}x{self.out_features})"
            )
        if not jnp.issubdtype(input.dtype, jnp.floating):
            raise TypeError(f"Linear: input must be floating point, got {input.dtype}")
        if input.dtype != weight.dtype:
            raise TypeError(
                f"Linear: input dtype {input.dtype} differs from the parameters' dtype {weight.dtype} "
                "(PyTorch: mat1 and mat2 must have the same dtype); cast the input or set param_dtype"
            )
        output = jnp.matmul(input, weight.T, precision=self.precision)
        if self.bias:
            bias_init = self.bias_init if self.bias_init is not None else _default_bias_init(self.in_features)
            output = output + self.param("bias", bias_init, (self.out_features,), self.param_dtype)
        return output


# torch.manual_seed(s); torch.nn.Linear(...) draws weight then bias: torch_init replays that.
register_torch_init(Linear, linear_torch_init)
