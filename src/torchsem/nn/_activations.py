"""Activations: ``torch.nn``'s non-linearities, with PyTorch's forward and PyTorch's gradients.

Every elementwise activation is a :func:`jax.custom_jvp` whose tangent rule is PyTorch's
backward formula, so the gradient agrees with PyTorch's at the kinks where a subgradient has
to be chosen (``ReLU'(0) = 0``, ``Hardtanh'`` at its bounds is 0, ``LeakyReLU'(0) =
negative_slope``, ``ELU'(0) = alpha``, ``Hardswish'(-3) = 0``, ``Hardswish'(3) = 1``) and for NaN inputs (the
gradient passes where PyTorch's comparisons are false), where autodiff of ``jnp.maximum`` would
split ties (0.5) and ``jnp.where`` rules would differ. The tangent rules are built from ``jnp``
operations, so second derivatives exist (PyTorch's double backward where it has one).

``inplace`` arguments are accepted for PyTorch's signatures and mean nothing: JAX arrays are
immutable, so the input is never modified (PyTorch's in-place variants return the same values).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.module import _unspecified_parent

from ..random import register_torch_init
from ._errors import InputError

Array = jax.Array


# ----------------------------------------------------------------------------- the pieces


def _pointwise(
    forward: Callable[[Array], Array], tangent: Callable[[Array, Array, Array], Array]
) -> Callable[[Array], Array]:
    """``forward`` with the JVP ``tangent(x, y, t)``: PyTorch's backward formula, applied to ``t``."""

    @jax.custom_jvp
    def f(x: Array) -> Array:
        return forward(x)

    @f.defjvp
    def f_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
        (x,), (t,) = primals, tangents
        y = f(x)
        return y, tangent(x, y, t)

    return f


def _floating(name: str, input: Any) -> Array:
    input = jnp.asarray(input)
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(f"{name}: input must be floating point, got {input.dtype}")
    return input


def _c(value: float, like: Array) -> Array:
    """A Python float as a constant of the input's dtype (PyTorch's opmath for float32)."""
    return jnp.asarray(value, like.dtype)


def _zero(like: Array) -> Array:
    return jnp.zeros((), like.dtype)


def _wrap_dim(dim: int, ndim: int) -> int:
    """``maybe_wrap_dim``: a 0-d tensor has dims ``[-1, 0]``; PyTorch's IndexError otherwise."""
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], but got {dim})")
    return dim % span


def _real(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")


# ------------------------------------------------------------------ the functions (pure math)


def relu(x: Array) -> Array:
    """``clamp_min(x, 0)`` (NaN stays NaN); gradient ``threshold_backward``: 0 where ``y <= 0``."""
    return _pointwise(lambda x: jnp.where(x < 0, _zero(x), x), lambda x, y, t: jnp.where(y <= 0, jnp.zeros_like(t), t))(
        x
    )


def hardtanh(x: Array, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    """``clamp(x, min, max)``; gradient only strictly inside ``(min_val, max_val)``: 0 at the bounds and for NaN."""

    def forward(x: Array) -> Array:
        low, high = _c(min_val, x), _c(max_val, x)
        return jnp.where(x < low, low, jnp.where(x > high, high, x))

    return _pointwise(forward, lambda x, y, t: jnp.where((x > min_val) & (x < max_val), t, jnp.zeros_like(t)))(x)


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """``x > 0 ? x : x * slope``; gradient ``slope`` at 0 and for NaN."""
    return _pointwise(
        lambda x: jnp.where(x > 0, x, x * _c(negative_slope, x)),
        lambda x, y, t: t * jnp.where(x > 0, _c(1.0, x), _c(negative_slope, x)),
    )(x)


def elu(x: Array, alpha: float = 1.0, scale: float = 1.0, input_scale: float = 1.0) -> Array:
    """PyTorch's ``elu`` kernel: ``x > 0 ? x * scale : expm1(x * input_scale) * alpha * scale``.

    Gradient (``elu_backward``, not from the result): ``x <= 0 ? input_scale * alpha * scale *
    exp(x * input_scale) : scale``, so the gradient at 0 is ``alpha * scale * input_scale``.
    """

    def coefficients(like: Array) -> tuple[Array, Array, Array]:
        # negcoef = alpha * scale is formed in float32 (the kernel's opmath), as are the others.
        return (_c(alpha, like) * _c(scale, like), _c(scale, like), _c(input_scale, like))

    def forward(x: Array) -> Array:
        negcoef, poscoef, negiptcoef = coefficients(x)
        return jnp.where(x > 0, x * poscoef, jnp.expm1(x * negiptcoef) * negcoef)

    def tangent(x: Array, y: Array, t: Array) -> Array:
        negcoef, poscoef, negiptcoef = coefficients(x)
        # NaN takes the exponential branch (NaN), as PyTorch's vectorised kernel gives.
        return t * jnp.where(x > 0, poscoef, negiptcoef * negcoef * jnp.exp(x * negiptcoef))

    return _pointwise(forward, tangent)(x)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))``; gradient ``(1 - y) * y``."""
    return _pointwise(lambda x: 1 / (1 + jnp.exp(-x)), lambda x, y, t: t * (1 - y) * y)(x)


def tanh(x: Array) -> Array:
    """``tanh(x)``; gradient ``1 - y * y``."""
    return _pointwise(jnp.tanh, lambda x, y, t: t * (1 - y * y))(x)


def gelu(x: Array, approximate: str = "none") -> Array:
    """PyTorch's GELU: exact (erf) by default, ``'tanh'`` for the tanh approximation.

    ``jax.nn.gelu`` defaults to the tanh approximation; PyTorch's default is the erf form.
    """
    if approximate == "none":

        def forward(x: Array) -> Array:
            y = x * 0.5 * (1 + jax.lax.erf(x * _c(math.sqrt(0.5), x)))
            # PyTorch's vectorised kernel gives NaN at +inf (its scalar tail gives inf): the former.
            return jnp.where(x == jnp.inf, jnp.nan, y)

        def tangent(x: Array, y: Array, t: Array) -> Array:
            cdf = 0.5 * (1 + jax.lax.erf(x * _c(math.sqrt(0.5), x)))
            pdf = jnp.exp(-0.5 * x * x) * _c(1 / math.sqrt(2 * math.pi), x)
            return t * (cdf + x * pdf)

        return _pointwise(forward, tangent)(x)
    if approximate == "tanh":
        beta, kappa = math.sqrt(2 / math.pi), 0.044715

        def forward(x: Array) -> Array:
            inner = _c(beta, x) * (x + _c(kappa, x) * x * x * x)
            return 0.5 * x * (1 + jnp.tanh(inner))

        def tangent(x: Array, y: Array, t: Array) -> Array:
            x_sq = x * x
            inner = _c(beta, x) * (x + _c(kappa, x) * x_sq * x)
            tanh_inner = jnp.tanh(inner)
            left = 0.5 * x
            right = 1 + tanh_inner
            left_derivative = 0.5 * right
            right_derivative = left * (1 - tanh_inner * tanh_inner) * _c(beta, x) * (1 + _c(3 * kappa, x) * x_sq)
            return t * (left_derivative + right_derivative)

        return _pointwise(forward, tangent)(x)
    raise InputError("approximate argument must be either none or tanh.")


def silu(x: Array) -> Array:
    """``x / (1 + exp(-x))``; gradient ``s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""

    def tangent(x: Array, y: Array, t: Array) -> Array:
        s = 1 / (1 + jnp.exp(-x))
        return t * s * (1 + x * (1 - s))

    return _pointwise(lambda x: x / (1 + jnp.exp(-x)), tangent)(x)


def mish(x: Array) -> Array:
    """``x * tanh(log1p(exp(x)))``; gradient ``tsp + x * sigmoid(x) * (1 - tsp**2)``."""

    def tangent(x: Array, y: Array, t: Array) -> Array:
        s = 1 / (1 + jnp.exp(-x))
        tsp = jnp.tanh(jnp.log1p(jnp.exp(x)))
        return t * (tsp + x * s * (1 - tsp * tsp))

    return _pointwise(lambda x: x * jnp.tanh(jnp.log1p(jnp.exp(x))), tangent)(x)


def _relu6_of_shift(x: Array) -> Array:
    # min(max(x + 3, 0), 6) with NaN propagated, as PyTorch's vectorised maximum/minimum.
    return jnp.minimum(jnp.maximum(x + 3, _zero(x)), _c(6.0, x))


def hardswish(x: Array) -> Array:
    """``x * min(max(x + 3, 0), 6) / 6``; gradient 0 up to -3, ``x / 3 + 0.5`` on (-3, 3), 1 from 3 (and for NaN)."""

    def tangent(x: Array, y: Array, t: Array) -> Array:
        # NaN takes the middle branch (NaN), as PyTorch's vectorised kernel gives.
        factor = jnp.where(x <= -3, _zero(x), jnp.where(x >= 3, _c(1.0, x), x / 3 + 0.5))
        return jnp.where(x <= -3, jnp.zeros_like(t), t * factor)

    return _pointwise(lambda x: x * _relu6_of_shift(x) / 6, tangent)(x)


def hardsigmoid(x: Array) -> Array:
    """``min(max(x + 3, 0), 6) / 6``; gradient ``1/6`` strictly inside (-3, 3), else 0."""

    def tangent(x: Array, y: Array, t: Array) -> Array:
        return jnp.where((x > -3) & (x < 3), t / 6, jnp.zeros_like(t))

    return _pointwise(lambda x: _relu6_of_shift(x) / 6, tangent)(x)


def _shrink_tangent(lambd: float) -> Callable[[Array, Array, Array], Array]:
    """The shrinks' gradient: passed only outside ``[-lambd, lambd]`` (NaN gets 0, as PyTorch's vectorised kernel)."""
    return lambda x, y, t: jnp.where((x < -lambd) | (x > lambd), t, jnp.zeros_like(t))


def hardshrink(x: Array, lambd: float = 0.5) -> Array:
    """``-lambd <= x <= lambd ? 0 : x`` (NaN stays NaN); the gradient is 0 on the same closed interval and for NaN."""
    return _pointwise(lambda x: jnp.where((x >= -lambd) & (x <= lambd), _zero(x), x), _shrink_tangent(lambd))(x)


def softshrink(x: Array, lambd: float = 0.5) -> Array:
    """``x > l ? x - l : (x < -l ? x + l : x * 0)`` (NaN stays NaN); gradient 0 on ``[-l, l]`` and for NaN."""
    if not 0 <= lambd <= float(jnp.finfo(jnp.float32).max):
        raise InputError(f"lambda must be in range [0, 3.40282e+38] for input dtype Float, but found {lambd:g}")

    def forward(x: Array) -> Array:
        low = _c(lambd, x)
        return jnp.where(x > low, x - low, jnp.where(x < -low, x + low, x * 0))

    return _pointwise(forward, _shrink_tangent(lambd))(x)


def threshold(x: Array, threshold: float, value: float) -> Array:
    """``x <= threshold ? value : x`` (so NaN stays NaN); gradient 0 where ``x <= threshold``."""
    return _pointwise(
        lambda x: jnp.where(x <= threshold, _c(value, x), x),
        lambda x, y, t: jnp.where(x <= threshold, jnp.zeros_like(t), t),
    )(x)


def logsigmoid(x: Array) -> Array:
    """``min(x, 0) - log1p(exp(-|x|))``; PyTorch's ``log_sigmoid_backward``."""

    def forward(x: Array) -> Array:
        return jnp.minimum(x, _zero(x)) - jnp.log1p(jnp.exp(-jnp.abs(x)))

    def tangent(x: Array, y: Array, t: Array) -> Array:
        negative = x < 0
        z = jnp.exp(-jnp.abs(x))
        max_derivative = jnp.where(negative, _c(1.0, x), _zero(x))
        sign = jnp.where(negative, _c(1.0, x), _c(-1.0, x))
        return t * (max_derivative - sign * (z / (1 + z)))

    return _pointwise(forward, tangent)(x)


def softplus(x: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``x * beta > threshold ? x : log1p(exp(x * beta)) / beta``; gradient 1 in the linear region."""

    def forward(x: Array) -> Array:
        xb = x * _c(beta, x)
        return jnp.where(xb > threshold, x, jnp.log1p(jnp.exp(xb)) / _c(beta, x))

    def tangent(x: Array, y: Array, t: Array) -> Array:
        xb = x * _c(beta, x)
        z = jnp.exp(xb)
        return t * jnp.where(xb > threshold, _c(1.0, x), z / (z + 1))

    return _pointwise(forward, tangent)(x)


def softsign(x: Array) -> Array:
    """``x / (|x| + 1)`` (PyTorch composes it; ``d|x|/dx`` at 0 is ``sign(0) = 0`` in both)."""
    return x / (jnp.abs(x) + 1)


def tanhshrink(x: Array) -> Array:
    """``x - tanh(x)``, PyTorch's composition (its gradient is ``1 - (1 - tanh(x)**2)``)."""
    return x - tanh(x)


def glu(x: Array, dim: int = -1) -> Array:
    """``a * sigmoid(b)`` for the two halves ``a, b`` of ``x`` along ``dim``."""
    if x.ndim == 0:
        raise InputError("glu does not support scalars because halving size must be even")
    axis = _wrap_dim(dim, x.ndim)
    if x.shape[axis] % 2:
        raise InputError(f"Halving dimension must be even, but dimension {axis} is size {x.shape[axis]}")
    a, b = jnp.split(x, 2, axis=axis)
    return a * sigmoid(b)


def softmax_dim(ndim: int) -> int:
    """PyTorch's legacy implicit dimension (``F._get_softmax_dim``): 0 for 0-, 1- and 3-d inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


def softmax(x: Array, dim: int) -> Array:
    """``exp(x - max) / sum(exp(x - max))`` along ``dim``; a 0-d input is its own dimension."""
    if x.ndim == 0:
        _wrap_dim(dim, 0)
        return softmax(x[None], 0)[0]
    return jax.nn.softmax(x, axis=_wrap_dim(dim, x.ndim))


def log_softmax(x: Array, dim: int) -> Array:
    """``x - max - log(sum(exp(x - max)))`` along ``dim``."""
    if x.ndim == 0:
        _wrap_dim(dim, 0)
        return log_softmax(x[None], 0)[0]
    return jax.nn.log_softmax(x, axis=_wrap_dim(dim, x.ndim))


# ------------------------------------------------------------------------------ the modules


class _Elementwise(nn.Module):
    """An elementwise activation: ``__call__`` applies :meth:`function` to a floating input of any shape."""

    def function(self, x: Array) -> Array:
        raise NotImplementedError

    def __call__(self, input: Array) -> Array:
        """Apply the activation elementwise; any shape (unbatched included), the input's dtype."""
        return self.function(_floating(type(self).__name__, input))


class ReLU(_Elementwise):
    """``max(x, 0)``, as ``torch.nn.ReLU(inplace=False)``; ``ReLU'(0) = 0``, NaN propagates."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return relu(x)


class ReLU6(_Elementwise):
    """``min(max(x, 0), 6)``, as ``torch.nn.ReLU6(inplace=False)`` (Hardtanh(0, 6): gradient 0 at 0 and 6)."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return hardtanh(x, 0.0, 6.0)


class LeakyReLU(_Elementwise):
    """``x > 0 ? x : negative_slope * x``, as ``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)``."""

    negative_slope: float = 0.01
    inplace: bool = False

    def __post_init__(self) -> None:
        _real("LeakyReLU", "negative_slope", self.negative_slope)
        super().__post_init__()

    def function(self, x: Array) -> Array:
        return leaky_relu(x, self.negative_slope)


class ELU(_Elementwise):
    """``x > 0 ? x : alpha * (exp(x) - 1)``, as ``torch.nn.ELU(alpha=1.0, inplace=False)``; ``ELU'(0) = alpha``."""

    alpha: float = 1.0
    inplace: bool = False

    def function(self, x: Array) -> Array:
        return elu(x, self.alpha)


class CELU(_Elementwise):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``, as ``torch.nn.CELU(alpha=1.0, inplace=False)``."""

    alpha: float = 1.0
    inplace: bool = False

    def function(self, x: Array) -> Array:
        if self.alpha == 0:
            raise InputError("ZeroDivisionError: alpha cannot be 0 for CELU")
        return elu(x, self.alpha, 1.0, 1.0 / self.alpha)  # PyTorch: elu(x, alpha, 1, 1/alpha), 1/alpha in double


class SELU(_Elementwise):
    """``scale * ELU(x, alpha)`` with PyTorch's constants, as ``torch.nn.SELU(inplace=False)``."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return elu(x, _SELU_ALPHA, _SELU_SCALE)


class GELU(_Elementwise):
    """``x * Phi(x)``, as ``torch.nn.GELU(approximate='none')``: the exact erf form by default.

    ``approximate='tanh'`` is the tanh approximation (``jax.nn.gelu``'s default). Another value
    raises PyTorch's RuntimeError at the call, as PyTorch does.
    """

    approximate: str = "none"

    def function(self, x: Array) -> Array:
        return gelu(x, self.approximate)


class SiLU(_Elementwise):
    """``x * sigmoid(x)``, as ``torch.nn.SiLU(inplace=False)``."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return silu(x)


class Mish(_Elementwise):
    """``x * tanh(softplus(x))``, as ``torch.nn.Mish(inplace=False)``."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return mish(x)


class Hardswish(_Elementwise):
    """``x * ReLU6(x + 3) / 6``, as ``torch.nn.Hardswish(inplace=False)`` (gradient 0 at -3, 1 at 3: PyTorch's)."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return hardswish(x)


class Hardsigmoid(_Elementwise):
    """``ReLU6(x + 3) / 6``, as ``torch.nn.Hardsigmoid(inplace=False)`` (gradient 0 at -3 and 3)."""

    inplace: bool = False

    def function(self, x: Array) -> Array:
        return hardsigmoid(x)


class Hardtanh(_Elementwise):
    """``clamp(x, min_val, max_val)``, as ``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False)``.

    The gradient is 0 at the bounds. PyTorch's deprecated ``min_value``/``max_value`` override
    ``min_val``/``max_val`` when given.
    """

    min_val: float = -1.0
    max_val: float = 1.0
    inplace: bool = False
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        if self.max_bound <= self.min_bound:
            raise AssertionError(f"max_val ({self.max_bound}) must be greater than min_val ({self.min_bound})")
        super().__post_init__()

    @property
    def min_bound(self) -> float:
        return self.min_val if self.min_value is None else self.min_value

    @property
    def max_bound(self) -> float:
        return self.max_val if self.max_value is None else self.max_value

    def function(self, x: Array) -> Array:
        return hardtanh(x, self.min_bound, self.max_bound)


class Hardshrink(_Elementwise):
    """``|x| <= lambd ? 0 : x``, as ``torch.nn.Hardshrink(lambd=0.5)``."""

    lambd: float = 0.5

    def function(self, x: Array) -> Array:
        return hardshrink(x, self.lambd)


class Softshrink(_Elementwise):
    """``x - lambd``, ``x + lambd`` or 0, as ``torch.nn.Softshrink(lambd=0.5)`` (negative lambd: raises when called)."""

    lambd: float = 0.5

    def function(self, x: Array) -> Array:
        return softshrink(x, self.lambd)


class Tanhshrink(_Elementwise):
    """``x - tanh(x)``, as ``torch.nn.Tanhshrink()``."""

    def function(self, x: Array) -> Array:
        return tanhshrink(x)


class Threshold(_Elementwise):
    """``x > threshold ? x : value``, as ``torch.nn.Threshold(threshold, value, inplace=False)``.

    The comparison is strict: ``x == threshold`` becomes ``value`` with gradient 0; NaN stays NaN.
    """

    threshold: float
    value: float
    inplace: bool = False

    def function(self, x: Array) -> Array:
        return threshold(x, self.threshold, self.value)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid()``."""

    def function(self, x: Array) -> Array:
        return sigmoid(x)


class LogSigmoid(_Elementwise):
    """``log(sigmoid(x))`` computed stably, as ``torch.nn.LogSigmoid()``."""

    def function(self, x: Array) -> Array:
        return logsigmoid(x)


class Tanh(_Elementwise):
    """``tanh(x)``, as ``torch.nn.Tanh()``."""

    def function(self, x: Array) -> Array:
        return tanh(x)


class Softplus(_Elementwise):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``.

    As ``torch.nn.Softplus(beta=1.0, threshold=20.0)``.
    """

    beta: float = 1.0
    threshold: float = 20.0

    def function(self, x: Array) -> Array:
        return softplus(x, self.beta, self.threshold)


class Softsign(_Elementwise):
    """``x / (1 + |x|)``, as ``torch.nn.Softsign()``."""

    def function(self, x: Array) -> Array:
        return softsign(x)


class PReLU(nn.Module):
    """``x > 0 ? x : weight * x`` with a learnt slope, as ``torch.nn.PReLU(num_parameters=1, init=0.25)``.

    Variables (collection ``params``): ``weight``, ``(num_parameters,)``, filled with ``init``
    (PyTorch's ``reset_parameters`` draws nothing). With ``num_parameters > 1`` the slopes run
    along axis 1 (the channels), which must have ``num_parameters`` entries; a 0- or 1-d input
    has one channel, as in PyTorch.

    ``init`` is PyTorch's argument name, but ``Module.init`` is Flax's initialisation method, so
    the value is kept in the field ``init_value``: ``PReLU(3, init=0.1)`` and
    ``PReLU(3, init_value=0.1)`` build the same module.

    Attributes:
      num_parameters: the number of slopes (1, or the number of channels).
      init_value: the initial slope (PyTorch's ``init``).
      param_dtype: the weight's dtype (PyTorch's ``dtype=`` factory argument).
    """

    num_parameters: int = 1
    init_value: float = 0.25
    param_dtype: Any = jnp.float32

    def __init__(
        self,
        num_parameters: int = 1,
        init: float | None = None,
        param_dtype: Any = jnp.float32,
        *,
        init_value: float | None = None,
        parent: Any = _unspecified_parent,
        name: str | None = None,
    ) -> None:
        if init is not None and init_value is not None:
            raise TypeError("PReLU: give init (PyTorch's name) or init_value, not both")
        value = init if init is not None else (init_value if init_value is not None else 0.25)
        object.__setattr__(self, "num_parameters", num_parameters)
        object.__setattr__(self, "init_value", value)
        object.__setattr__(self, "param_dtype", param_dtype)
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "name", name)
        self.__post_init__()

    def __post_init__(self) -> None:
        if isinstance(self.num_parameters, bool) or not isinstance(self.num_parameters, numbers.Integral):
            raise TypeError(f"PReLU: num_parameters must be an int, got {self.num_parameters!r}")
        if self.num_parameters < 0:
            raise ValueError(f"PReLU: num_parameters must be >= 0, got {self.num_parameters}")
        _real("PReLU", "init", self.init_value)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: Array) -> Array:
        """Apply the activation; ``(*)`` with one slope, ``(N, C, *)`` with ``C = num_parameters``."""
        input = _floating("PReLU", input)
        weight = self.param(
            "weight",
            lambda key, shape, dtype: jnp.full(shape, self.init_value, dtype),
            (self.num_parameters,),
            self.param_dtype,
        )
        if self.num_parameters != 1:
            if input.ndim == 0:
                raise InputError("Not allow zero-dim input tensor.")
            channels = input.shape[1] if input.ndim >= 2 else 1
            if channels != self.num_parameters:
                raise InputError(
                    "Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                    f"{self.num_parameters} and channel size = {channels}."
                )
        if self.num_parameters == 1 or input.ndim < 2:
            slope = weight.reshape(())
        else:
            slope = weight.reshape((-1,) + (1,) * (input.ndim - 2))
        slope = slope.astype(input.dtype)
        # The slope's gradient is x * grad where x <= 0 and exactly 0 elsewhere (PyTorch's backward):
        # the masked product keeps an infinite positive x from turning 0 * inf into NaN.
        negative = jnp.where(input > 0, jnp.zeros((), input.dtype), input)
        return jnp.where(input > 0, input, slope * negative)


def _prelu_torch_init(module: Any, params: dict, generator: Any) -> dict:
    """``torch.nn.PReLU.reset_parameters``: ``weight.fill_(init)``; draws nothing."""
    import numpy as np

    return {**params, "weight": np.full_like(params["weight"], module.init_value)}


register_torch_init(PReLU, _prelu_torch_init)


class GLU(nn.Module):
    """``a * sigmoid(b)`` over the halves of axis ``dim``, as ``torch.nn.GLU(dim=-1)``."""

    dim: int = -1

    def __call__(self, input: Array) -> Array:
        """Apply the gated linear unit; the halved axis must have an even length."""
        return glu(_floating("GLU", input), self.dim)


class _SoftmaxFamily(nn.Module):
    """Softmax-like along ``dim``; ``dim=None``: PyTorch's legacy implicit choice (0 for 0-, 1-, 3-d inputs, else 1)."""

    dim: int | None = None

    def __post_init__(self) -> None:
        if self.dim is not None and (isinstance(self.dim, bool) or not isinstance(self.dim, numbers.Integral)):
            raise TypeError(f"{type(self).__name__}: dim must be an int or None, got {self.dim!r}")
        super().__post_init__()

    def function(self, x: Array, dim: int) -> Array:
        raise NotImplementedError

    def __call__(self, input: Array) -> Array:
        """Apply along ``dim`` (PyTorch's implicit dimension when None; PyTorch warns there, torchsem does not)."""
        input = _floating(type(self).__name__, input)
        dim = softmax_dim(input.ndim) if self.dim is None else self.dim
        return self.function(input, dim)


class Softmax(_SoftmaxFamily):
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.Softmax(dim=None)``."""

    def function(self, x: Array, dim: int) -> Array:
        return softmax(x, dim)


class LogSoftmax(_SoftmaxFamily):
    """``log(softmax(x))`` along ``dim``, as ``torch.nn.LogSoftmax(dim=None)``."""

    def function(self, x: Array, dim: int) -> Array:
        return log_softmax(x, dim)


class Softmin(_SoftmaxFamily):
    """``softmax(-x)`` along ``dim``, as ``torch.nn.Softmin(dim=None)``."""

    def function(self, x: Array, dim: int) -> Array:
        return softmax(-x, dim)


class Softmax2d(nn.Module):
    """Softmax over the channels of ``(N, C, H, W)`` or ``(C, H, W)``, as ``torch.nn.Softmax2d()``."""

    def __call__(self, input: Array) -> Array:
        """Softmax along axis -3; a 3-d or 4-d input (PyTorch's ValueError otherwise)."""
        input = _floating("Softmax2d", input)
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead")
        return softmax(input, -3)
