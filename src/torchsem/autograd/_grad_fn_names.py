"""PyTorch's backward-node names (``tensor.grad_fn``) for the JAX operations that correspond.

Every name here was read off PyTorch 2.13 (``type(t.grad_fn).__name__`` for the equivalent
PyTorch expression) and is checked against live PyTorch by ``tests/test_autograd_inspect.py``.
An operation without an entry is reported by its JAX name (``jax.<primitive>``).

Two kinds of entries:

- primitives: ``reshape`` -> ``ViewBackward0``, ``mul`` -> ``MulBackward0``... (some depend on
  the operands' ranks, e.g. ``dot_general`` of two matrices is ``MmBackward0``);
- PyTorch modules that run one fused kernel with its own backward node, recognised from the
  Flax module that produced the value: ``BatchNorm*`` -> ``NativeBatchNormBackward0``,
  ``Linear``/``Dense`` on a batch of vectors -> ``AddmmBackward0``, ``AvgPool1d`` ->
  ``SqueezeBackward1`` (PyTorch pools in 2-D and squeezes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SIMPLE: dict[str, str] = {
    "reshape": "ViewBackward0",
    "mul": "MulBackward0",
    "add": "AddBackward0",
    "add_any": "AddBackward0",
    "sub": "SubBackward0",
    "div": "DivBackward0",
    "neg": "NegBackward0",
    "exp": "ExpBackward0",
    "log": "LogBackward0",
    "sin": "SinBackward0",
    "cos": "CosBackward0",
    "tanh": "TanhBackward0",
    "logistic": "SigmoidBackward0",
    "sqrt": "SqrtBackward0",
    "rsqrt": "RsqrtBackward0",
    "abs": "AbsBackward0",
    "floor": "FloorBackward0",
    "ceil": "CeilBackward0",
    "round": "RoundBackward0",
    "sign": "SignBackward0",
    "max": "MaximumBackward0",
    "min": "MinimumBackward0",
    "integer_pow": "PowBackward0",
    "square": "PowBackward0",
    "pow": "PowBackward1",
    "erf": "ErfBackward0",
    "log1p": "Log1PBackward0",
    "cumsum": "CumsumBackward0",
    "select_n": "WhereBackward0",
    "concatenate": "CatBackward0",
    "copy": "CloneBackward0",
    "copy_p": "CloneBackward0",
    "convert_element_type": "ToCopyBackward0",
    "transpose": "PermuteBackward0",
    "slice": "SliceBackward0",
}

# Named JAX functions (``jit``/``custom_jvp`` wrappers) that are one PyTorch operation.
_NAMED_CALLS: dict[str, str] = {
    "relu": "ReluBackward0",
    "log_softmax": "LogSoftmaxBackward0",
    "clip": "ClampBackward1",
}


def _reduce_name(all_axes: str, some_axes: str) -> Callable[[Any], str]:
    def name(eqn: Any) -> str:
        rank = len(eqn.invars[0].aval.shape)
        return all_axes if len(eqn.params["axes"]) == rank else some_axes

    return name


def _dot_general_name(eqn: Any) -> str | None:
    (contract_l, _contract_r), (batch_l, _batch_r) = eqn.params["dimension_numbers"]
    rank_l, rank_r = (len(v.aval.shape) for v in eqn.invars)
    if len(contract_l) != 1:
        return None
    if not batch_l and (rank_l, rank_r) == (2, 2):
        return "MmBackward0"
    if not batch_l and (rank_l, rank_r) == (2, 1):
        return "MvBackward0"
    if not batch_l and (rank_l, rank_r) == (1, 1):
        return "DotBackward0"
    if len(batch_l) == 1 and (rank_l, rank_r) == (3, 3):
        return "BmmBackward0"
    return None


def _broadcast_name(eqn: Any) -> str:
    in_shape = eqn.invars[0].aval.shape
    out_shape = eqn.params["shape"]
    in_size = 1
    for d in in_shape:
        in_size *= d
    out_size = 1
    for d in out_shape:
        out_size *= d
    # Only inserting size-1 axes is PyTorch's unsqueeze; anything else is expand.
    if in_size == out_size and len(out_shape) == len(in_shape) + 1:
        return "UnsqueezeBackward0"
    return "ExpandBackward0"


def _squeeze_name(eqn: Any) -> str:
    return "SqueezeBackward1" if len(eqn.params["dimensions"]) == 1 else "SqueezeBackward2"


_BY_EQUATION: dict[str, Callable[[Any], str | None]] = {
    "reduce_sum": _reduce_name("SumBackward0", "SumBackward1"),
    "reduce_max": _reduce_name("MaxBackward1", "AmaxBackward0"),
    "reduce_min": _reduce_name("MinBackward1", "AminBackward0"),
    "dot_general": _dot_general_name,
    "broadcast_in_dim": _broadcast_name,
    "squeeze": _squeeze_name,
}


def primitive_grad_fn(eqn: Any) -> str | None:
    """PyTorch's backward-node name for a JAX equation, or None when none corresponds."""
    name = eqn.primitive.name
    if name in _SIMPLE:
        return _SIMPLE[name]
    rule = _BY_EQUATION.get(name)
    return rule(eqn) if rule is not None else None


def named_call_grad_fn(name: str | None) -> str | None:
    """PyTorch's backward-node name for a named JAX function (``jax.nn.relu``...), if it is one PyTorch op."""
    return _NAMED_CALLS.get(name) if name else None


_BATCHNORM = frozenset({"BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"})
_LINEAR = frozenset({"Linear", "Dense"})
_MODULE_PACKAGES = ("torchsem.nn", "flax.linen")


def module_grad_fn(module: Any, args: tuple, kwargs: dict) -> str | None:
    """PyTorch's backward-node name for the output of a call of a Flax module, or None.

    Only modules of torchsem.nn and flax.linen are recognised; any other module's output is
    named after the JAX operation that produced it.
    """
    cls = type(module)
    if not cls.__module__.startswith(_MODULE_PACKAGES):
        return None
    name = cls.__name__
    if name in _BATCHNORM:
        return "NativeBatchNormBackward0"
    if name == "AvgPool1d":
        return "SqueezeBackward1"
    if name == "Dropout":
        return "MulBackward0"
    if name in _LINEAR:
        x = args[0] if args else kwargs.get("input", kwargs.get("inputs", kwargs.get("x")))
        rank = len(getattr(x, "shape", ()))
        has_bias = bool(getattr(module, "bias", getattr(module, "use_bias", True)))
        if rank == 2:
            return "AddmmBackward0" if has_bias else "MmBackward0"
        if rank == 1:
            return "ViewBackward0" if has_bias else "SqueezeBackward4"
        return "ViewBackward0" if has_bias else "UnsafeViewBackward0"
    return None
