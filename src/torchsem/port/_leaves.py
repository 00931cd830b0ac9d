"""Which ``torch.nn`` layers the port maps to a torchsem layer, and with which constructor arguments.

A supported layer is a ``torch.nn`` class whose name torchsem.nn also exports (torchsem's
layers take PyTorch's constructor signature). Its arguments are read back from the PyTorch
module's attributes, which PyTorch keeps under the constructor's names, except where a
module keeps something else (a ``bias`` Parameter for ``bias=True``, a copied
``encoder_layer``): those readers are written out below.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ._errors import PortError

# Layers PyTorch declares with ``*args, **kwargs``: their constructor names, in order.
_VARARG_SIGNATURES: dict[str, tuple[str, ...]] = {
    "RNN": (
        "input_size",
        "hidden_size",
        "num_layers",
        "nonlinearity",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
    ),
    "LSTM": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "proj_size"),
    "GRU": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"),
    "Identity": (),
}
_NOT_ARGUMENTS = frozenset({"self", "device", "dtype", "args", "kwargs", "_weight", "_freeze"})
CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A torchsem layer as it is constructed: ``tnn.<cls>(*args, **kwargs)``.

    Attributes:
      cls: the class name in ``torchsem.nn``.
      args: the required arguments, in order (values, or nested :class:`Leaf`\\ s).
      kwargs: the arguments that differ from torchsem's defaults, in signature order.
    """

    cls: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


def _torchsem_class(name: str) -> Any:
    import torchsem.nn as tnn

    return getattr(tnn, name, None) if name in tnn.__all__ else None


def is_supported_leaf(module: Any) -> bool:
    """Whether ``module`` is a ``torch.nn`` layer (not a container) that torchsem.nn reproduces."""
    cls = type(module)
    if not cls.__module__.startswith("torch.nn.") or cls.__name__ in CONTAINERS:
        return False
    return _torchsem_class(cls.__name__) is not None


def supported_layers() -> list[str]:
    """The ``torch.nn`` layer names the port maps to torchsem layers, sorted."""
    import torchsem.nn as tnn

    return sorted(
        name
        for name in tnn.__all__
        if isinstance(getattr(tnn, name), type) and name not in CONTAINERS and name[0].isupper()
    )


def _present(parameter: Any) -> bool:
    return parameter is not None


def _activation(value: Any) -> Any:
    import torch.nn.functional as F

    if value is F.relu or type(value).__name__ == "ReLU":
        return "relu"
    if value is F.gelu or (type(value).__name__ == "GELU" and getattr(value, "approximate", "none") == "none"):
        return "gelu"
    raise PortError(f"activation {value!r}: only relu and gelu (exact) are ported for Transformer layers")


def _encoder_layer_arguments(m: Any) -> dict[str, Any]:
    return {
        "d_model": m.self_attn.embed_dim,
        "nhead": m.self_attn.num_heads,
        "dim_feedforward": m.linear1.out_features,
        "dropout": m.dropout.p,
        "activation": _activation(m.activation),
        "layer_norm_eps": m.norm1.eps,
        "batch_first": m.self_attn.batch_first,
        "norm_first": m.norm_first,
        "bias": m.linear1.bias is not None,
    }


def _stack_arguments(layer_key: str) -> Callable[[Any], dict[str, Any]]:
    def read(m: Any) -> dict[str, Any]:
        out = {
            layer_key: leaf_of(m.layers[0], "layers.0"),
            "num_layers": len(m.layers),
            "norm": None if m.norm is None else leaf_of(m.norm, "norm"),
        }
        if layer_key == "encoder_layer":
            out["enable_nested_tensor"] = m.enable_nested_tensor
            out["mask_check"] = m.mask_check
        return out

    return read


def _attention_arguments(m: Any) -> dict[str, Any]:
    return {
        "embed_dim": m.embed_dim,
        "num_heads": m.num_heads,
        "dropout": m.dropout,
        "bias": m.in_proj_bias is not None,
        "add_bias_kv": m.bias_k is not None,
        "add_zero_attn": m.add_zero_attn,
        "kdim": m.kdim,
        "vdim": m.vdim,
        "batch_first": m.batch_first,
    }


_READERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "TransformerEncoderLayer": _encoder_layer_arguments,
    "TransformerDecoderLayer": _encoder_layer_arguments,
    "TransformerEncoder": _stack_arguments("encoder_layer"),
    "TransformerDecoder": _stack_arguments("decoder_layer"),
    "MultiheadAttention": _attention_arguments,
}


def _torch_signature(module: Any) -> dict[str, Any]:
    """PyTorch's constructor arguments in order, each with its default (``inspect.Parameter.empty``: required).

    A layer PyTorch declares with ``*args, **kwargs`` has the names of ``_VARARG_SIGNATURES``: the
    first two required, the others with no default known (``dataclasses.MISSING``).
    """
    name = type(module).__name__
    if name in _VARARG_SIGNATURES:
        names = _VARARG_SIGNATURES[name]
        return {n: inspect.Parameter.empty if i < 2 else dataclasses.MISSING for i, n in enumerate(names)}
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(type(module).__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.name not in _NOT_ARGUMENTS and p.kind not in variadic}


def _read_arguments(module: Any, path: str, names: Iterable[str]) -> dict[str, Any]:
    name = type(module).__name__
    if name in _READERS:
        return _READERS[name](module)
    values: dict[str, Any] = {}
    for argument in names:
        if not hasattr(module, argument):
            raise PortError(f"{path} ({name}): cannot read its constructor argument {argument!r} back from the module")
        value = getattr(module, argument)
        if argument == "bias" and not isinstance(value, bool):
            value = _present(value)  # Linear/Conv/LayerNorm keep the Parameter (or None) under the flag's name
        values[argument] = value
    return values


def _plain(value: Any, path: str, argument: str) -> Any:
    """A constructor value the generated source can write as a literal."""
    if value is None or isinstance(value, (bool, int, float, str, Leaf)):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v, path, argument) for v in value)
    raise PortError(f"{path}: constructor argument {argument}={value!r} has no literal form in generated source")


def leaf_of(module: Any, path: str) -> Leaf:
    """The torchsem layer that reproduces the ``torch.nn`` layer ``module`` (at ``path`` in the model).

    Raises:
      PortError: the layer has no torchsem counterpart, or an argument cannot be read back.
    """
    name = type(module).__name__
    target = _torchsem_class(name)
    if target is None or not is_supported_leaf(module):
        raise PortError(f"{path}: torch.nn.{name} has no torchsem layer; supported: {', '.join(supported_layers())}")
    signature = _torch_signature(module)
    values = _read_arguments(module, path, signature)
    positional = [argument for argument, default in signature.items() if default is inspect.Parameter.empty]
    fields = {f.name: f for f in dataclasses.fields(target)}
    args: list[Any] = []
    kwargs: list[tuple[str, Any]] = []
    for argument, value in values.items():
        field = fields.get(argument)
        if field is None:
            if argument == "inplace" or same_value(value, signature.get(argument, dataclasses.MISSING)):
                continue  # at PyTorch's default (or in-place, which the trace turned into data flow)
            raise PortError(f"{path}: torchsem.nn.{name} has no argument {argument!r} (PyTorch's value: {value!r})")
        value = _plain(value, path, argument)
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if argument in positional and len(args) == positional.index(argument):
            args.append(value)
        elif required or not same_value(value, field.default):
            kwargs.append((argument, value))
    return Leaf(name, tuple(args), tuple(kwargs))


def same_value(value: Any, default: Any) -> bool:
    """Whether ``value`` is the torchsem default (``(1, 1)`` for a default of ``1`` included)."""
    if isinstance(value, tuple) and isinstance(default, int) and not isinstance(default, bool):
        return bool(value) and all(type(v) is int and v == default for v in value)
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # an array default compares elementwise
        return False
