"""Convolution parity: ``Conv1d/2d/3d`` (family ``conv``) and ``ConvTranspose1d/2d/3d`` (``conv_transpose``).

Through the generic module runner: PyTorch's seeded initial weights bit for bit (``torch_init``),
the forward, the input and parameter gradients, eagerly and under ``jax.jit``. The grids cover
strides, dilations, groups (depthwise included), every ``padding_mode``, ``'same'`` with even
kernels (PyTorch puts the odd element on the right), unbatched inputs, ``bias=False``,
``output_padding`` and ``output_size``. Convolutions carry no mode-dependent state, so one
training forward per case. Error cases compare PyTorch's error type and message.

``output_size`` is an argument of the call, which :class:`ModuleCase` does not pass: the
``*AtSize`` classes below (built on first use, so declaring the cases imports neither torch nor
jax) are the PyTorch and torchsem transposed convolutions with ``forward(x)`` calling
``forward(x, output_size=call_output_size)``; everything else is the library's own class.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

from .._authoring import error_outputs
from .._module_case import ErrorCase, ModuleCase, register_module_cases
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.Conv1d/2d/3d and ConvTranspose1d/2d/3d (channels-first convolutions)"

_MODES = ("train",)  # no mode-dependent state
# A weight gradient sums input * cotangent over the batch and every output position (up to 160
# products of two N(0, 1) numbers here, more with reflect padding's repeated elements); oneDNN and
# XLA add them in different orders, ~1e-5 apart on values up to ~20 (measured: 1.1e-5 on 19.7).
_GRADIENTS = {
    "grad weight": Tolerance(
        1e-5, 2e-5, reason="float32 sums of up to ~160 products of size ~1, added in another order by oneDNN and XLA"
    )
}
_DIMS = {1: "1d", 2: "2d", 3: "3d"}


def _conv(n: int) -> tuple[str, str]:
    return f"torch.nn.Conv{n}d", f"torchsem.nn.Conv{n}d"


def _transpose(n: int) -> tuple[str, str]:
    return f"torch.nn.ConvTranspose{n}d", f"torchsem.nn.ConvTranspose{n}d"


def _at_size(n: int) -> tuple[str, str]:
    here = __name__
    return f"{here}.TorchConvTranspose{n}dAtSize", f"{here}.ConvTranspose{n}dAtSize"


_BUILT: dict[str, Any] = {}


def _build(name: str) -> Any:
    """The ``output_size`` wrappers, made on first use (torch only for the torch side)."""
    if name in _BUILT:
        return _BUILT[name]
    if name.startswith("TorchConvTranspose"):
        import torch

        base = getattr(torch.nn, name[len("Torch") : -len("AtSize")])

        class TorchAtSize(base):  # type: ignore[misc, valid-type]
            def __init__(
                self, *args: Any, call_output_size: Any = None, call_output_size_as_tuple: bool = False, **kwargs: Any
            ) -> None:
                super().__init__(*args, **kwargs)
                self.call_output_size = tuple(call_output_size) if call_output_size_as_tuple else call_output_size

            def forward(self, input: Any) -> Any:
                return super().forward(input, output_size=self.call_output_size)

        built: Any = TorchAtSize
    else:
        from ... import nn

        jax_base = getattr(nn, name[: -len("AtSize")])

        class AtSize(jax_base):  # type: ignore[misc, valid-type]
            call_output_size: Any = None
            call_output_size_as_tuple: bool = False  # Flax stores a list field as a tuple: say which was meant

            def __call__(self, input: Any) -> Any:
                size = self.call_output_size
                size = size if size is None else tuple(size) if self.call_output_size_as_tuple else list(size)
                return super().__call__(input, output_size=size)

        built = AtSize
    built.__name__ = built.__qualname__ = name
    _BUILT[name] = built
    return built


def __getattr__(name: str) -> Any:
    if name.endswith("AtSize") and name[: -len("AtSize")].removeprefix("Torch") in {
        f"ConvTranspose{n}d" for n in _DIMS
    }:
        return _build(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _conv_cases() -> list[ModuleCase]:
    # (n, args, kwargs, input shape)
    grid: list[tuple[int, tuple, dict[str, Any], tuple[int, ...]]] = [
        (1, (4, 6, 3), {}, (2, 4, 7)),
        (1, (4, 6, 3), dict(stride=2, padding=1), (2, 4, 7)),
        (1, (4, 4, 3), dict(dilation=2, padding=2, groups=2), (2, 4, 7)),
        (1, (4, 4, 3), dict(groups=4), (2, 4, 7)),  # depthwise
        (1, (4, 8, 3), dict(groups=4, stride=2), (2, 4, 7)),  # depthwise, channel multiplier 2
        (1, (3, 2, 4), dict(padding="same"), (2, 3, 7)),  # even kernel: 1 left, 2 right
        (1, (3, 2, 4), dict(padding="same", dilation=3), (2, 3, 7)),  # total 9: 4 left, 5 right
        (1, (3, 2, 2), dict(padding="valid", stride=3), (2, 3, 7)),
        (1, (3, 2, 3), dict(padding=2, padding_mode="reflect"), (2, 3, 7)),
        (1, (3, 2, 3), dict(padding=2, padding_mode="replicate"), (2, 3, 5)),
        (1, (3, 2, 3), dict(padding=3, padding_mode="circular"), (2, 3, 3)),  # wraps the whole axis
        (1, (3, 2, 4), dict(padding="same", padding_mode="reflect"), (2, 3, 6)),
        (1, (3, 2, 1), dict(padding=-1, padding_mode="replicate"), (2, 3, 6)),  # F.pad crops
        (1, (3, 2, 3), dict(padding=1), (3, 7)),  # unbatched
        (1, (3, 2, 3), dict(bias=False, stride=2), (2, 3, 7)),
        (2, (3, 4, 3), {}, (2, 3, 6, 7)),
        (2, (3, 4, (2, 3)), dict(stride=(2, 1), padding=(1, 0)), (2, 3, 6, 7)),
        (2, (4, 4, 3), dict(dilation=(2, 1), padding=(2, 1), groups=2), (2, 4, 6, 7)),
        (2, (4, 4, 3), dict(groups=4, padding=1, bias=False), (2, 4, 5, 6)),  # depthwise
        (2, (3, 2, (2, 4)), dict(padding="same"), (2, 3, 5, 6)),  # even kernels
        (2, (3, 2, (3, 2)), dict(padding="same", dilation=(1, 3), padding_mode="reflect"), (2, 3, 5, 6)),
        (2, (3, 2, 3), dict(padding=(1, 2), padding_mode="replicate"), (2, 3, 4, 5)),
        (2, (3, 2, 3), dict(padding=2, padding_mode="circular", stride=2), (2, 3, 5, 4)),
        (2, (3, 2, (2, 3)), dict(padding="same", padding_mode="circular"), (2, 3, 4, 5)),
        (2, (3, 2, 3), dict(padding=1), (3, 5, 6)),  # unbatched
        (2, (2, 3, 3), dict(stride=3), (2, 2, 7, 7)),  # the last partial window is dropped
        (2, (3, 2, 3), {}, (0, 3, 5, 5)),  # empty batch
        (3, (2, 3, 2), {}, (2, 2, 4, 5, 3)),
        (
            3,
            (2, 4, (1, 2, 3)),
            dict(stride=(1, 2, 1), padding=(0, 1, 1), dilation=(2, 1, 1), groups=2),
            (2, 2, 4, 5, 3),
        ),
        (3, (2, 2, 3), dict(padding="same", padding_mode="circular"), (2, 2, 3, 4, 5)),
        (3, (2, 2, 2), dict(padding="same"), (2, 3, 4, 4)),  # unbatched, even kernel
        (3, (2, 2, 2), dict(padding=1, padding_mode="reflect", bias=False), (2, 2, 3, 3, 4)),
        (3, (2, 2, (2, 1, 2)), dict(padding=(1, 2, 0), padding_mode="replicate"), (2, 2, 3, 2, 3)),
        # Zero input channels: PyTorch returns 0 channels (not out_channels) and a zero bias grad.
        (2, (0, 4, 3), {}, (2, 0, 5, 5)),
        (1, (0, 2, 3), dict(padding=1), (0, 5)),  # unbatched
    ]
    cases = [
        ModuleCase(*_conv(n), args, kwargs, inputs=(shape,), modes=_MODES, seed=seed, tolerances=_GRADIENTS)
        for seed, (n, args, kwargs, shape) in enumerate(grid, start=1301)
    ]
    # The opt-in conv_algorithm="matmul" (shifted matrix products) against the same PyTorch runs.
    matmul: list[tuple[int, tuple, dict[str, Any], tuple[int, ...]]] = [
        (1, (4, 4, 3), dict(dilation=2, padding=2, groups=2), (2, 4, 7)),
        (2, (3, 4, (2, 3)), dict(stride=(2, 1), padding=(1, 0)), (2, 3, 6, 7)),
        (2, (4, 4, 3), dict(groups=4, padding=1, bias=False), (2, 4, 5, 6)),
        (2, (3, 2, (3, 2)), dict(padding="same", dilation=(1, 3), padding_mode="reflect"), (2, 3, 5, 6)),
        (2, (3, 2, 3), dict(padding=1), (3, 5, 6)),
        (
            3,
            (2, 4, (1, 2, 3)),
            dict(stride=(1, 2, 1), padding=(0, 1, 1), dilation=(2, 1, 1), groups=2),
            (2, 2, 4, 5, 3),
        ),
    ]
    cases += [
        ModuleCase(
            *_conv(n),
            args,
            kwargs,
            inputs=(shape,),
            modes=("train",),
            seed=seed,
            tolerances=_GRADIENTS,
            jax_kwargs={"conv_algorithm": "matmul"},
        )
        for seed, (n, args, kwargs, shape) in enumerate(matmul, start=1391)
    ]
    return cases


def _conv_errors() -> list[ErrorCase]:
    cases: dict[str, tuple[int, tuple, dict[str, Any], tuple[tuple[int, ...], ...]]] = {
        "channels": (2, (3, 4, 3), {}, ((2, 4, 5, 5),)),
        "channels-unbatched": (1, (3, 4, 3), {}, ((4, 5),)),  # PyTorch prints the unsqueezed shape
        "channels-groups": (2, (4, 4, 3), dict(groups=2), ((2, 6, 5, 5),)),
        "channels-after-reflect": (1, (3, 4, 1), dict(padding=1, padding_mode="reflect"), ((2, 4, 5),)),
        "channels-3d": (3, (3, 4, 3), {}, ((2, 4, 5, 5, 5),)),
        "rank-low": (2, (3, 4, 3), {}, ((3, 5),)),
        "rank-high": (1, (3, 4, 3), {}, ((1, 2, 3, 5),)),
        "rank-3d": (3, (3, 4, 3), {}, ((3, 5, 5),)),
        "rank-reflect": (1, (3, 4, 1), dict(padding=1, padding_mode="reflect"), ((5,),)),  # F.pad's error
        "kernel-too-big": (2, (3, 4, 3), {}, ((2, 3, 2, 5),)),
        "kernel-too-big-dilated": (1, (3, 4, 3), dict(dilation=2), ((2, 3, 4),)),
        "kernel-too-big-padded": (2, (3, 4, 5), dict(padding=1), ((3, 2, 5),)),
        "kernel-too-big-circular": (1, (3, 4, 5), dict(padding=1, padding_mode="circular"), ((2, 3, 2),)),
        "kernel-too-big-3d": (3, (3, 4, 3), {}, ((2, 3, 2, 5, 5),)),
        "groups-in": (2, (3, 4, 3), dict(groups=2), ()),
        "groups-out": (2, (4, 3, 3), dict(groups=2), ()),
        "groups-zero": (2, (4, 4, 3), dict(groups=0), ()),
        "same-strided": (2, (4, 4, 3), dict(padding="same", stride=2), ()),
        "padding-negative": (2, (3, 4, 3), dict(padding=-1), ((2, 3, 5, 5),)),
        "stride-zero": (2, (3, 4, 3), dict(stride=0), ((2, 3, 5, 5),)),
        "dilation-zero": (2, (3, 4, 3), dict(dilation=0), ((2, 3, 5, 5),)),
        "no-output-channels": (2, (3, 0, 3), {}, ((2, 3, 5, 5),)),
        "reflect-too-wide": (2, (3, 4, 1), dict(padding=(1, 3), padding_mode="reflect"), ((2, 3, 5, 3),)),
        "reflect-too-wide-both": (2, (3, 4, 1), dict(padding=3, padding_mode="reflect"), ((2, 3, 3, 3),)),
        "reflect-too-tall": (2, (3, 4, 1), dict(padding=(3, 1), padding_mode="reflect"), ((2, 3, 3, 5),)),
        "reflect-too-deep": (3, (3, 4, 1), dict(padding=(3, 1, 1), padding_mode="reflect"), ((2, 3, 3, 5, 5),)),
        "reflect-unbatched": (1, (3, 4, 1), dict(padding=3, padding_mode="reflect"), ((3, 3),)),
        "circular-wraps-twice": (1, (3, 4, 3), dict(padding=4, padding_mode="circular"), ((2, 3, 3),)),
    }
    return [
        ErrorCase(*_conv(n), name, args, kwargs, inputs=shapes) for name, (n, args, kwargs, shapes) in cases.items()
    ]


def _transpose_cases() -> list[ModuleCase]:
    grid: list[tuple[int, tuple, dict[str, Any], tuple[int, ...]]] = [
        (1, (4, 6, 3), {}, (2, 4, 5)),
        (1, (4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5)),
        (1, (4, 4, 3), dict(stride=2, groups=2, dilation=2, output_padding=1), (2, 4, 5)),
        (1, (4, 4, 3), dict(groups=4, bias=False), (2, 4, 5)),  # depthwise
        (1, (3, 2, 3), dict(padding=3), (2, 3, 5)),  # padding beyond dilation*(k-1): crops the full output
        (1, (3, 2, 2), dict(stride=3, output_padding=2), (2, 3, 4)),
        (1, (3, 2, 3), dict(stride=2), (3, 5)),  # unbatched
        (1, (3, 2, 2), dict(padding=1), (2, 3, 1)),  # an empty output: (1-1)*1 - 2 + 1 + 1 = 0
        (2, (3, 4, 3), {}, (2, 3, 4, 5)),
        (2, (3, 4, (2, 3)), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0)), (2, 3, 4, 5)),
        (2, (4, 6, 3), dict(stride=2, padding=1, groups=2, dilation=(1, 2)), (2, 4, 3, 4)),
        (2, (4, 4, 3), dict(groups=4, stride=2, output_padding=1), (2, 4, 3, 4)),  # depthwise
        (2, (4, 8, 2), dict(groups=4, stride=2), (2, 4, 3, 3)),  # depthwise, channel multiplier 2
        (2, (3, 2, 3), dict(stride=3, dilation=2, output_padding=(2, 1)), (2, 3, 3, 2)),
        (2, (3, 2, 3), dict(stride=2, padding=1), (3, 4, 3)),  # unbatched
        (2, (3, 2, 3), dict(stride=2, bias=False), (2, 3, 3, 4)),
        (2, (2, 3, 3), dict(dilation=2, output_padding=1), (2, 2, 3, 3)),  # output_padding < dilation
        (2, (3, 2, 2), dict(stride=2), (0, 3, 3, 3)),  # empty batch
        (3, (2, 3, 2), {}, (2, 2, 3, 2, 3)),
        (
            3,
            (2, 4, (1, 2, 3)),
            dict(stride=(1, 2, 2), padding=(0, 1, 1), output_padding=(0, 1, 1), groups=2),
            (2, 2, 3, 2, 3),
        ),
        (3, (2, 2, 2), dict(dilation=(1, 2, 1), stride=2), (2, 2, 3, 2)),  # unbatched
        (3, (4, 2, 2), dict(groups=2, bias=False, padding=1), (2, 4, 2, 3, 3)),
    ]
    cases = [
        ModuleCase(*_transpose(n), args, kwargs, inputs=(shape,), modes=_MODES, seed=seed, tolerances=_GRADIENTS)
        for seed, (n, args, kwargs, shape) in enumerate(grid, start=1401)
    ]
    # output_size= at call time (PyTorch's forward(input, output_size)): it picks the output padding.
    sized: list[tuple[str, int, tuple, dict[str, Any], tuple[int, ...]]] = [
        ("output-size-2d", 2, (3, 2, 3), dict(stride=2, call_output_size=[10, 11]), (2, 3, 4, 5)),
        ("output-size-2d-full", 2, (3, 2, 3), dict(stride=2, call_output_size=[7, 2, 9, 12]), (2, 3, 4, 5)),
        ("output-size-1d", 1, (3, 2, 3), dict(stride=3, padding=1, call_output_size=(15,)), (2, 3, 5)),
        ("output-size-3d-unbatched", 3, (2, 2, 2), dict(stride=2, call_output_size=[7, 4, 6]), (2, 3, 2, 3)),
    ]
    cases += [
        ModuleCase(
            *_at_size(n),
            args,
            kwargs,
            inputs=(shape,),
            modes=_MODES,
            seed=seed,
            name=name,
            tolerances=_GRADIENTS,
            notes="forward(x, output_size=call_output_size) in both",
        )
        for seed, (name, n, args, kwargs, shape) in enumerate(sized, start=1401 + len(grid))
    ]
    return cases


def _transpose_errors() -> list[ErrorCase]:
    cases: dict[str, tuple[int, tuple, dict[str, Any], tuple[tuple[int, ...], ...]]] = {
        "padding-mode": (2, (3, 4, 3), dict(padding_mode="reflect"), ()),
        "padding-mode-checked-first": (2, (3, 4, 3), dict(padding_mode="mirror", groups=2), ()),
        "channels": (2, (3, 4, 3), {}, ((2, 4, 5, 5),)),
        "channels-groups": (2, (4, 6, 3), dict(groups=2), ((2, 6, 5, 5),)),
        "channels-unbatched": (1, (3, 4, 3), {}, ((4, 5),)),
        "output-padding": (2, (3, 4, 3), dict(output_padding=1), ((2, 3, 5, 5),)),
        "output-padding-1d": (1, (3, 4, 3), dict(output_padding=2, stride=2), ((2, 3, 5),)),  # named as 2-d
        "output-padding-3d": (3, (3, 4, 3), dict(output_padding=2, stride=2), ((2, 3, 3, 3, 3),)),
        "output-padding-negative": (2, (3, 4, 3), dict(stride=2, output_padding=-1), ((2, 3, 5, 5),)),
        "padding-negative": (2, (3, 4, 3), dict(padding=-1), ((2, 3, 5, 5),)),
        "stride-zero": (2, (3, 4, 3), dict(stride=0), ((2, 3, 5, 5),)),
        "rank": (2, (3, 4, 3), {}, ((3, 5),)),
        "groups-in": (2, (3, 4, 3), dict(groups=2), ()),
        "groups-out": (2, (4, 3, 3), dict(groups=2), ()),
        "no-input-channels": (1, (0, 4, 2), {}, ((2, 0, 3),)),
    }
    errors = [
        ErrorCase(*_transpose(n), name, args, kwargs, inputs=shapes)
        for name, (n, args, kwargs, shapes) in cases.items()
    ]
    sized: dict[str, tuple[int, tuple, dict[str, Any], tuple[tuple[int, ...], ...]]] = {
        "output-size-out-of-range": (2, (3, 4, 3), dict(stride=2, call_output_size=[13, 13]), ((2, 3, 5, 5),)),
        # PyTorch prints input.size()[2:], which for an unbatched input drops a spatial axis too.
        "output-size-unbatched": (2, (3, 4, 3), dict(stride=2, call_output_size=[14, 12]), ((3, 5, 5),)),
        "output-size-length": (2, (3, 4, 3), dict(stride=2, call_output_size=[12]), ((2, 3, 5, 5),)),
        "output-size-length-unbatched": (2, (3, 4, 3), dict(stride=2, call_output_size=[1, 2, 3, 4]), ((3, 5, 5),)),
        "output-size-tuple": (1, (3, 4, 3), dict(call_output_size=(8,), call_output_size_as_tuple=True), ((2, 3, 5),)),
    }
    errors += [
        ErrorCase(*_at_size(n), name, args, kwargs, inputs=shapes) for name, (n, args, kwargs, shapes) in sized.items()
    ]
    return errors


def _sorted_sets(message: str) -> str:
    """``{'b', 'a'}`` -> ``{'a', 'b'}``: PyTorch prints a Python set, whose order changes with PYTHONHASHSEED."""
    return re.sub(r"\{('[^{}]*')\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


def _constructor_error(inputs: Any, jit: bool = False, *, target: str, args: tuple, kwargs: dict) -> dict[str, str]:
    def attempt() -> None:
        module_name, _, cls = target.rpartition(".")
        getattr(importlib.import_module(module_name), cls)(*args, **kwargs)

    outputs = error_outputs(attempt)
    return {**outputs, "error message": _sorted_sets(outputs["error message"])}


def _set_message_errors() -> None:
    """Constructor errors whose PyTorch message prints a set: compared with the set's items sorted."""
    cases = {
        "padding-string": (2, (4, 4, 3), dict(padding="full")),
        "padding-mode": (2, (4, 4, 3), dict(padding_mode="mirror")),
        "padding-mode-1d": (1, (4, 4, 3), dict(padding_mode="zero")),
    }
    for name, (n, args, kwargs) in cases.items():
        torch_name, jax_name = _conv(n)
        register(
            Scenario(
                name=f"conv/error-{name}",
                section=_SECTION,
                mapping=f"{torch_name}{args}, {kwargs} raises -> {jax_name} raises the same error",
                torch_program=functools.partial(_constructor_error, target=torch_name, args=args, kwargs=kwargs),
                jax_program=functools.partial(_constructor_error, target=jax_name, args=args, kwargs=kwargs),
                tolerances={
                    "error message": Tolerance(
                        0.0,
                        0.0,
                        "the same words; the printed set's order is "
                        "PYTHONHASHSEED's, so its items are sorted on both sides",
                    )
                },
                notes="PyTorch's message prints a Python set, in an order that changes from process to process.",
            )
        )


_set_message_errors()
register_module_cases("conv", _SECTION, [*_conv_cases(), *_conv_errors()])
register_module_cases("conv_transpose", _SECTION, [*_transpose_cases(), *_transpose_errors()])
