"""Transformer parity (family ``transformer``): the layers, a stack and ``nn.Transformer``, through the runner.

``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder`` (a stack),
and ``Transformer`` at ``d_model`` 8, 2 heads, ``dim_feedforward`` 16, sequences of 5 (source)
and 4 (target), batch 2: PyTorch's seeded initial parameters bit for bit (the layer's draws;
the stack's copies of one layer; ``Transformer``'s ``xavier_uniform_`` re-draw of every matrix),
``state_dict`` names and order, the output and the gradients of the inputs and of every
parameter, eagerly and under ``jax.jit``. The grid covers post-norm and pre-norm, ``relu`` and
``gelu``, ``batch_first``, ``bias=False``, ``layer_norm_eps``, unbatched inputs, bool and float
``src_mask``/``tgt_mask``/``memory_mask`` and padding masks, the ``is_causal`` hints and the
stacks' final norm. Every attention runs PyTorch's ``scaled_dot_product_attention`` path (the
layers ask for no weights), on CPU its flash kernel; the runner differentiates, so PyTorch's
inference fast paths (``_transformer_encoder_layer_fwd``, nested tensors) are never taken.

Dropout masks come from JAX's generator: training runs with ``dropout=0.0`` and the default
``dropout=0.1`` is compared in eval, where it must vanish.

The stacks take a layer object, which cannot be given to both constructors: the
``*EncoderStack`` factories below build ``TransformerEncoder(TransformerEncoderLayer(d_model,
nhead, ...), num_layers, LayerNorm(d_model) or None)`` on each side, the PyTorch one exactly as
a user writes it after ``torch.manual_seed``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Tolerance

_SECTION = "torchsem.nn.Transformer and its layers (TransformerEncoderLayer, TransformerDecoderLayer, stacks)"
D, HEADS, FF, S, T, N = 8, 2, 16, 5, 4, 2
_HERE = __name__


@dataclasses.dataclass(frozen=True)
class _BoolMask(Input):
    """A fair-coin bool mask (True: masked) whose first key is never masked, so no row is empty."""

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        mask = rng.integers(0, 2, self.shape).astype(bool)
        mask[..., 0] = False
        return mask


@dataclasses.dataclass(frozen=True)
class _FloatMask(Input):
    """An additive float mask: ``N(0, 1)`` values, a quarter ``-inf``, never the first key."""

    requires_grad: bool = False

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        values = rng.standard_normal(self.shape).astype(np.float32)
        blocked = rng.random(self.shape) < 0.25
        blocked[..., 0] = False
        return np.where(blocked, np.float32(-np.inf), values).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Causal(Input):
    """The float causal mask, as ``Transformer.generate_square_subsequent_mask`` makes it."""

    requires_grad: bool = False

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        rows, cols = self.shape
        return np.where(np.triu(np.ones((rows, cols), bool), 1), np.float32(-np.inf), np.float32(0)).astype(np.float32)


def _seq(length: int, batch_first: bool = False, batched: bool = True) -> Input:
    if not batched:
        return Input((length, D))
    return Input((N, length, D) if batch_first else (length, N, D))


def TorchEncoderStack(d_model: int, nhead: int, num_layers: int, final_norm: bool = True, **layer: Any) -> Any:
    """``torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(d_model, nhead, **layer), num_layers, norm)``."""
    import torch

    encoder_layer = torch.nn.TransformerEncoderLayer(d_model, nhead, **layer)
    norm = torch.nn.LayerNorm(d_model) if final_norm else None
    with warnings.catch_warnings():
        # PyTorch's note that its nested-tensor fast path is off, attributed to this (torchsem) frame.
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        return torch.nn.TransformerEncoder(encoder_layer, num_layers, norm)


def EncoderStack(d_model: int, nhead: int, num_layers: int, final_norm: bool = True, **layer: Any) -> Any:
    """The same stack in torchsem: ``TransformerEncoder(TransformerEncoderLayer(...), num_layers, norm)``."""
    from ... import nn

    norm = nn.LayerNorm(d_model) if final_norm else None
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead, **layer), num_layers, norm)


# Each layer chains two attention/feed-forward blocks through LayerNorms whose 1/std (up to ~3
# here) amplifies the rounding of sums over 8-16 features: oneDNN's gemms, PyTorch's flash
# attention and XLA order those float32 sums differently. Measured (torch 2.13, AVX2): up to
# 4.8e-7 on outputs of size ~2 and 1.9e-6 on parameter gradients summed over 2 x 5 positions.
_CHAINED = Tolerance(1e-5, 5e-6, reason="float32 rounding of attention and feed-forward sums, through LayerNorms")


def _tolerances(module: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Tolerance]:
    """``_CHAINED`` for the output, the float inputs' and every parameter's gradient."""
    import importlib

    path, _, name = module.rpartition(".")
    keys = getattr(importlib.import_module(path), name)(*args, **kwargs).torch_state_dict_keys()
    return (
        {"output0": _CHAINED} | {f"grad input{i}": _CHAINED for i in range(2)} | {f"grad {k}": _CHAINED for k in keys}
    )


def _case(
    kind: str,
    name: str,
    seed: int,
    args: tuple,
    inputs: tuple[Input, ...],
    modes: tuple[str, ...] = ("train",),
    call: dict[str, Any] | None = None,
    **kwargs: Any,
) -> ModuleCase:
    torch_module, module = {
        "encoder-layer": ("torch.nn.TransformerEncoderLayer", "torchsem.nn.TransformerEncoderLayer"),
        "decoder-layer": ("torch.nn.TransformerDecoderLayer", "torchsem.nn.TransformerDecoderLayer"),
        "encoder": (f"{_HERE}.TorchEncoderStack", f"{_HERE}.EncoderStack"),
        "transformer": ("torch.nn.Transformer", "torchsem.nn.Transformer"),
    }[kind]
    return ModuleCase(
        torch_module,
        module,
        args,
        kwargs,
        inputs=inputs,
        call_kwargs=call or {},
        modes=modes,
        seed=seed,
        name=f"{kind}-{name}",
        tolerances=_tolerances(module, args, kwargs),
    )


def _cases() -> list[ModuleCase]:
    layer = (D, HEADS, FF)
    return [
        _case(
            "encoder-layer",
            "pre-norm-gelu-batch-first-no-bias-float-masks",
            402,
            layer,
            (
                _seq(S, batch_first=True),
                _FloatMask((N * HEADS, S, S), keyword="src_mask"),
                _FloatMask((N, S), keyword="src_key_padding_mask"),
            ),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
            bias=False,
            layer_norm_eps=1e-3,
        ),
        # tgt_is_causal without a tgt padding mask: SDPA's causal mask in place of tgt_mask.
        _case(
            "decoder-layer",
            "post-norm-causal-memory-padding",
            403,
            layer,
            (
                _seq(T),
                _seq(S),
                _Causal((T, T), keyword="tgt_mask"),
                _BoolMask((N, S), "bool", keyword="memory_key_padding_mask"),
            ),
            call={"tgt_is_causal": True},
            dropout=0.0,
        ),
        _case(
            "encoder",
            "two-layers-final-norm-unbatched-dropout-eval",
            404,
            (D, HEADS, 2),
            (
                _seq(S, batched=False),
                _BoolMask((S, S), "bool", keyword="mask"),
                _BoolMask((S,), "bool", keyword="src_key_padding_mask"),
            ),
            modes=("eval",),
            dim_feedforward=FF,
        ),
        _case(
            "transformer",
            "pre-norm-gelu-batch-first-masks-dropout-eval",
            405,
            (D, HEADS, 1, 1, FF),
            (
                _seq(S, batch_first=True),
                _seq(T, batch_first=True),
                _BoolMask((S, S), "bool", keyword="src_mask"),
                _BoolMask((T, T), "bool", keyword="tgt_mask"),
                _BoolMask((T, S), "bool", keyword="memory_mask"),
                _BoolMask((N, S), "bool", keyword="memory_key_padding_mask"),
            ),
            modes=("eval",),
            activation="gelu",
            batch_first=True,
            norm_first=True,
        ),
    ]


def _errors() -> list[ErrorCase]:
    return [
        ErrorCase(
            "torch.nn.TransformerEncoderLayer",
            "torchsem.nn.TransformerEncoderLayer",
            "activation",
            (D, HEADS),
            {"activation": "tanh"},
        ),
        ErrorCase("torch.nn.TransformerEncoderLayer", "torchsem.nn.TransformerEncoderLayer", "nhead", (D, 3)),
        ErrorCase(
            "torch.nn.TransformerEncoderLayer",
            "torchsem.nn.TransformerEncoderLayer",
            "is-causal-without-mask",
            (D, HEADS, FF),
            {"dropout": 0.0},
            inputs=(_seq(S),),
            call_kwargs={"is_causal": True},
        ),
        ErrorCase(
            "torch.nn.TransformerEncoderLayer",
            "torchsem.nn.TransformerEncoderLayer",
            "src-mask-shape",
            (D, HEADS, FF),
            {"dropout": 0.0},
            inputs=(_seq(S), _BoolMask((S, T), "bool", keyword="src_mask")),
        ),
        ErrorCase(
            "torch.nn.Transformer",
            "torchsem.nn.Transformer",
            "batch",
            (D, HEADS, 1, 1, FF),
            {"dropout": 0.0},
            inputs=(_seq(S), Input((T, 3, D))),
        ),
        ErrorCase(
            "torch.nn.Transformer",
            "torchsem.nn.Transformer",
            "features",
            (D, HEADS, 1, 1, FF),
            {"dropout": 0.0},
            inputs=(_seq(S), Input((T, N, 6))),
        ),
    ]


register_module_cases("transformer", _SECTION, [*_cases(), *_errors()])
