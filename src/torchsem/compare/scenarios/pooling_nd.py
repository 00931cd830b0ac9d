"""MaxPool, AvgPool2d/3d and adaptive pooling parity: families ``maxpool``, ``avgpool``, ``adaptive_pool``.

Through the generic module runner: each case pools a small channels-first input and
backpropagates a random cotangent, so window geometry (strides, dilations, padding, ceil mode
where the last window would start in the right padding), divisors, PyTorch's argmax choice
(ties planted with ``Input(fixed=...)``: the first maximum; NaN: the last NaN; all ``-inf``:
the first element inside the input) and the returned int indices (compared exactly) are all
checked. Error cases compare PyTorch's error type and message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases

_NAN, _INF = float("nan"), float("inf")


def _pair(name: str) -> tuple[str, str]:
    return f"torch.nn.{name}", f"torchsem.nn.{name}"


def _cases(family: str, rows: list[tuple[str, dict[str, Any], Input | tuple[int, ...]]], seed: int) -> list[ModuleCase]:
    cases = []
    for s, (cls, kwargs, shape) in enumerate(rows, start=seed):
        case = ModuleCase(*_pair(cls), kwargs=kwargs, inputs=(shape,), modes=("train",), seed=s)
        if isinstance(shape, Input) and shape.fixed:  # planted values: name them (ties, nan, -inf)
            kinds = sorted({"nan" if v != v else "inf" if abs(v) == _INF else "ties" for v in shape.fixed})
            case = dataclasses.replace(case, name=f"{case.case_id(family)}-fixed-{'-'.join(kinds)}")
        cases.append(case)
    return cases


def _errors(rows: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]]) -> list[ErrorCase]:
    return [ErrorCase(*_pair(cls), name, kwargs=kwargs, inputs=(shape,)) for name, (cls, kwargs, shape) in rows.items()]


_TIES = (1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 0.5, 2.0)  # equal maxima in one window: PyTorch keeps the first
_NANS = (1.0, _NAN, 3.0, _NAN, 5.0, -_INF, -_INF, -_INF)  # NaN wins (the last one); a -inf window

_MAX = _cases(
    "maxpool",
    [
        ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 7)),
        ("MaxPool1d", dict(kernel_size=2, return_indices=True), (2, 3, 8)),
        ("MaxPool1d", dict(kernel_size=3, dilation=2, padding=1, return_indices=True), (2, 2, 9)),
        ("MaxPool1d", dict(kernel_size=2, stride=1), (3, 8)),  # unbatched
        ("MaxPool1d", dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, return_indices=True), (1, 2, 3)),
        ("MaxPool1d", dict(kernel_size=3, stride=1, padding=1, return_indices=True), Input((1, 1, 8), fixed=_TIES)),
        ("MaxPool1d", dict(kernel_size=3, stride=1, padding=1, return_indices=True), Input((1, 1, 8), fixed=_NANS)),
        (
            "MaxPool1d",
            dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, return_indices=True),
            Input((1, 1, 4), fixed=(-_INF,) * 4),
        ),
        ("MaxPool2d", dict(kernel_size=2, return_indices=True), (2, 3, 6, 6)),
        (
            "MaxPool2d",
            dict(
                kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True, return_indices=True
            ),
            (2, 2, 7, 8),
        ),
        ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 2, 5, 5)),
        ("MaxPool2d", dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, return_indices=True), (1, 1, 3, 3)),
        ("MaxPool2d", dict(kernel_size=2, stride=1, return_indices=True), (3, 5, 5)),  # unbatched
        ("MaxPool2d", dict(kernel_size=2), (0, 2, 4, 4)),  # empty batch
        (
            "MaxPool2d",
            dict(kernel_size=3, stride=1, padding=1, return_indices=True),
            Input((1, 1, 4, 4), fixed=(1.0,) * 16),
        ),
        (
            "MaxPool2d",
            dict(kernel_size=2, stride=1, return_indices=True),
            Input((1, 1, 3, 3), fixed=(_NAN, 2.0, _NAN, 2.0, -_INF, 2.0, _NAN, 1.0, 0.0)),
        ),
        ("MaxPool2d", dict(kernel_size=2, return_indices=True), Input((1, 2, 4, 4), "int64", low=-3, high=3)),
        ("MaxPool3d", dict(kernel_size=2, return_indices=True), (1, 2, 4, 4, 4)),
        (
            "MaxPool3d",
            dict(
                kernel_size=(2, 3, 2),
                stride=(1, 2, 2),
                padding=(1, 1, 0),
                dilation=(2, 1, 1),
                ceil_mode=True,
                return_indices=True,
            ),
            (1, 1, 5, 6, 4),
        ),
        ("MaxPool3d", dict(kernel_size=2, stride=1, ceil_mode=True), (2, 3, 4, 5)),  # unbatched
        ("MaxPool3d", dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, return_indices=True), (1, 1, 3, 3, 3)),
        # Without indices or dilation the pooling is lax.reduce_window and its gradient: ties at 0 (as
        # after a ReLU) in overlapping windows; a NaN or a -inf in the input takes the gather instead.
        ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), Input((2, 2, 6, 6), fixed=(0.0,) * 40)),
        ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), Input((1, 2, 9), fixed=(0.0,) * 10)),
        ("MaxPool3d", dict(kernel_size=2, stride=1, padding=1), Input((1, 1, 3, 4, 4), fixed=(0.0,) * 30)),
        (
            "MaxPool2d",
            dict(kernel_size=2, stride=1),
            Input((1, 1, 3, 3), fixed=(_NAN, 2.0, _NAN, 2.0, -_INF, 2.0, _NAN, 1.0, 0.0)),
        ),
        ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), Input((1, 1, 4), fixed=(-_INF,) * 4)),
        (
            "MaxPool2d",
            dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
            Input((1, 1, 2, 2), fixed=(-_INF,) * 4),
        ),
    ],
    seed=601,
)

_MAX_ERRORS = _errors(
    {
        "maxpool2d-pad-more-than-half": ("MaxPool2d", dict(kernel_size=2, padding=2), (1, 1, 5, 5)),
        "maxpool2d-pad-more-than-half-of-kernel": (
            "MaxPool2d",
            dict(kernel_size=3, padding=2, dilation=2),
            (1, 1, 5, 5),
        ),
        "maxpool2d-kernel-zero": ("MaxPool2d", dict(kernel_size=0, stride=1), (1, 1, 5, 5)),
        "maxpool2d-kernel-zero-default-stride": ("MaxPool2d", dict(kernel_size=0), (1, 1, 5, 5)),
        "maxpool2d-stride-negative": ("MaxPool2d", dict(kernel_size=2, stride=-1), (1, 1, 5, 5)),
        "maxpool2d-dilation-zero": ("MaxPool2d", dict(kernel_size=2, dilation=0), (1, 1, 5, 5)),
        "maxpool2d-output-too-small": ("MaxPool2d", dict(kernel_size=6), (1, 1, 5, 5)),
        "maxpool2d-rank": ("MaxPool2d", dict(kernel_size=2), (5, 5)),
        "maxpool2d-empty-channels": ("MaxPool2d", dict(kernel_size=2), (1, 0, 5, 5)),
        "maxpool2d-kernel-three-ints": ("MaxPool2d", dict(kernel_size=(2, 2, 2)), (1, 1, 5, 5)),
        "maxpool3d-rank": ("MaxPool3d", dict(kernel_size=2), (5, 5, 5)),
        "maxpool3d-empty-depth": ("MaxPool3d", dict(kernel_size=2), (1, 1, 0, 5, 5)),
        "maxpool3d-pad-more-than-half-of-kernel": (
            "MaxPool3d",
            dict(kernel_size=3, padding=2, dilation=2),
            (1, 1, 5, 5, 5),
        ),
        "maxpool3d-output-too-small": ("MaxPool3d", dict(kernel_size=6), (1, 1, 5, 5, 5)),
        "maxpool3d-stride-two-ints": ("MaxPool3d", dict(kernel_size=2, stride=(1, 1)), (1, 1, 5, 5, 5)),
        "maxpool1d-output-too-small": ("MaxPool1d", dict(kernel_size=6), (1, 1, 5)),
        "maxpool1d-output-too-small-indices": ("MaxPool1d", dict(kernel_size=6, return_indices=True), (1, 1, 5)),
        "maxpool1d-rank": ("MaxPool1d", dict(kernel_size=2), (5,)),
        "maxpool1d-pad-more-than-half": ("MaxPool1d", dict(kernel_size=3, padding=2, dilation=2), (1, 1, 5)),
        "maxpool1d-kernel-zero": ("MaxPool1d", dict(kernel_size=0), (1, 1, 5)),
        "maxpool1d-kernel-two-ints": ("MaxPool1d", dict(kernel_size=(2, 2)), (1, 1, 5)),
        "maxpool1d-dilation-zero": ("MaxPool1d", dict(kernel_size=2, dilation=0), (1, 1, 5)),
    }
)

_AVG = _cases(
    "avgpool",
    [
        ("AvgPool2d", dict(kernel_size=2), (2, 3, 6, 6)),
        ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 7, 6)),
        ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 7, 6)),
        (
            "AvgPool2d",
            dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False),
            (1, 2, 5, 6),
        ),
        ("AvgPool2d", dict(kernel_size=2, padding=1, divisor_override=3), (1, 2, 5, 5)),
        ("AvgPool2d", dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), (1, 1, 3, 3)),  # last window dropped
        ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (3, 5, 5)),  # unbatched
        ("AvgPool2d", dict(kernel_size=2), (0, 2, 4, 4)),  # empty batch
        (
            "AvgPool2d",
            dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
            Input((1, 2, 5, 5), "int64", low=-20, high=20),
        ),  # truncating integer division
        ("AvgPool3d", dict(kernel_size=2), (1, 2, 4, 4, 4)),
        (
            "AvgPool3d",
            dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            (1, 1, 5, 6, 4),
        ),
        ("AvgPool3d", dict(kernel_size=2, stride=1, padding=1, divisor_override=5), (1, 1, 4, 4, 4)),
        (
            "AvgPool3d",
            dict(kernel_size=(2, 2, 3), stride=1, padding=(1, 0, 1), ceil_mode=True),
            (2, 4, 3, 5),
        ),  # unbatched
    ],
    seed=651,
)

_AVG_ERRORS = _errors(
    {
        "avgpool2d-pad-more-than-half": ("AvgPool2d", dict(kernel_size=2, padding=2), (1, 1, 5, 5)),
        "avgpool2d-pad-negative": ("AvgPool2d", dict(kernel_size=3, padding=-1), (1, 1, 5, 5)),
        "avgpool2d-kernel-zero": ("AvgPool2d", dict(kernel_size=0, stride=1), (1, 1, 5, 5)),
        "avgpool2d-stride-zero": ("AvgPool2d", dict(kernel_size=2, stride=0), (1, 1, 5, 5)),
        "avgpool2d-stride-negative": ("AvgPool2d", dict(kernel_size=2, stride=-1), (1, 1, 5, 5)),
        "avgpool2d-output-too-small": ("AvgPool2d", dict(kernel_size=6), (1, 1, 5, 5)),
        "avgpool2d-rank-2": ("AvgPool2d", dict(kernel_size=2), (5, 5)),  # PyTorch: IndexError
        "avgpool2d-rank-5": ("AvgPool2d", dict(kernel_size=2), (1, 1, 1, 5, 5)),
        "avgpool2d-empty-channels": ("AvgPool2d", dict(kernel_size=2), (1, 0, 5, 5)),
        "avgpool2d-divisor-zero": ("AvgPool2d", dict(kernel_size=2, divisor_override=0), (1, 1, 5, 5)),
        "avgpool2d-kernel-three-ints": ("AvgPool2d", dict(kernel_size=(2, 2, 2)), (1, 1, 5, 5)),
        "avgpool3d-input-smaller-than-kernel": ("AvgPool3d", dict(kernel_size=6), (1, 1, 5, 5, 5)),
        "avgpool3d-padding-does-not-help": ("AvgPool3d", dict(kernel_size=4, padding=2), (1, 1, 3, 3, 3)),
        "avgpool3d-rank": ("AvgPool3d", dict(kernel_size=2), (5, 5)),
        "avgpool3d-empty-channels": ("AvgPool3d", dict(kernel_size=2), (1, 0, 5, 5, 5)),
        "avgpool3d-kernel-two-ints": ("AvgPool3d", dict(kernel_size=(2, 2)), (1, 1, 5, 5, 5)),
        "avgpool3d-padding-two-ints": ("AvgPool3d", dict(kernel_size=2, padding=(1, 1)), (1, 1, 5, 5, 5)),
    }
)

_ADAPTIVE = _cases(
    "adaptive_pool",
    [
        ("AdaptiveAvgPool1d", dict(output_size=3), (2, 3, 7)),
        ("AdaptiveAvgPool1d", dict(output_size=(3,)), (3, 8)),  # unbatched
        ("AdaptiveAvgPool1d", dict(output_size=5), (1, 2, 3)),  # more bins than positions
        ("AdaptiveAvgPool2d", dict(output_size=(3, 4)), (2, 2, 7, 6)),
        ("AdaptiveAvgPool2d", dict(output_size=(None, 2)), (1, 2, 5, 5)),
        ("AdaptiveAvgPool2d", dict(output_size=1), (2, 3, 4, 4)),
        ("AdaptiveAvgPool2d", dict(output_size=(7, 1)), (1, 1, 4, 5)),
        ("AdaptiveAvgPool3d", dict(output_size=(2, None, 3)), (1, 2, 5, 4, 7)),
        ("AdaptiveAvgPool3d", dict(output_size=2), (2, 3, 3, 5)),  # unbatched
        ("AdaptiveMaxPool1d", dict(output_size=3, return_indices=True), (2, 3, 7)),
        ("AdaptiveMaxPool1d", dict(output_size=3, return_indices=True), Input((1, 1, 8), fixed=_TIES)),
        ("AdaptiveMaxPool1d", dict(output_size=3, return_indices=True), Input((1, 1, 8), fixed=_NANS)),
        ("AdaptiveMaxPool2d", dict(output_size=(3, 4), return_indices=True), (2, 2, 7, 6)),
        ("AdaptiveMaxPool2d", dict(output_size=(None, 2)), (1, 2, 5, 5)),
        ("AdaptiveMaxPool2d", dict(output_size=(2, 3), return_indices=True), Input((1, 1, 3, 5), fixed=(1.0,) * 15)),
        ("AdaptiveMaxPool2d", dict(output_size=(5, 1), return_indices=True), (3, 4, 3)),  # unbatched
        ("AdaptiveMaxPool3d", dict(output_size=(2, 3, 2), return_indices=True), (1, 1, 5, 4, 7)),
        ("AdaptiveMaxPool3d", dict(output_size=(2, None, 2), return_indices=True), (2, 5, 4, 3)),  # unbatched
    ],
    seed=681,
)

_ADAPTIVE_ERRORS = _errors(
    {
        "adaptiveavgpool1d-rank": ("AdaptiveAvgPool1d", dict(output_size=2), (5,)),
        "adaptiveavgpool1d-negative": ("AdaptiveAvgPool1d", dict(output_size=-1), (1, 1, 5)),
        "adaptiveavgpool1d-empty-length": ("AdaptiveAvgPool1d", dict(output_size=2), (1, 1, 0)),
        "adaptiveavgpool1d-two-ints": ("AdaptiveAvgPool1d", dict(output_size=(2, 2)), (1, 1, 5)),
        "adaptiveavgpool1d-none": ("AdaptiveAvgPool1d", dict(output_size=None), (1, 1, 5)),
        "adaptiveavgpool2d-rank": ("AdaptiveAvgPool2d", dict(output_size=2), (1, 1, 1, 5, 5)),
        "adaptiveavgpool2d-negative": ("AdaptiveAvgPool2d", dict(output_size=-1), (1, 1, 5, 5)),
        "adaptiveavgpool2d-three-ints": ("AdaptiveAvgPool2d", dict(output_size=(2, 2, 2)), (1, 1, 5, 5)),
        "adaptiveavgpool2d-empty-height": ("AdaptiveAvgPool2d", dict(output_size=2), (1, 1, 0, 5)),
        "adaptiveavgpool2d-none": ("AdaptiveAvgPool2d", dict(output_size=None), (1, 1, 5, 5)),
        "adaptiveavgpool3d-rank": ("AdaptiveAvgPool3d", dict(output_size=2), (5, 5)),
        "adaptiveavgpool3d-negative": ("AdaptiveAvgPool3d", dict(output_size=-1), (1, 1, 5, 4, 3)),
        "adaptiveavgpool3d-two-ints": ("AdaptiveAvgPool3d", dict(output_size=(2, 2)), (1, 1, 5, 5, 5)),
        "adaptiveavgpool3d-empty-channels": ("AdaptiveAvgPool3d", dict(output_size=2), (1, 0, 5, 5, 5)),
        "adaptivemaxpool1d-rank": ("AdaptiveMaxPool1d", dict(output_size=2), (1, 1, 1, 5)),
        "adaptivemaxpool1d-negative": ("AdaptiveMaxPool1d", dict(output_size=-1), (1, 1, 5)),
        "adaptivemaxpool1d-empty-length": ("AdaptiveMaxPool1d", dict(output_size=2), (1, 1, 0)),
        "adaptivemaxpool1d-two-ints": ("AdaptiveMaxPool1d", dict(output_size=(2, 2)), (1, 1, 5)),
        "adaptivemaxpool2d-rank": ("AdaptiveMaxPool2d", dict(output_size=2), (5,)),
        "adaptivemaxpool2d-negative": ("AdaptiveMaxPool2d", dict(output_size=-1), (1, 1, 5, 5)),
        "adaptivemaxpool2d-empty-channels": ("AdaptiveMaxPool2d", dict(output_size=2), (1, 0, 5, 5)),
        "adaptivemaxpool2d-three-ints": ("AdaptiveMaxPool2d", dict(output_size=(2, 2, 2)), (1, 1, 5, 5)),
        "adaptivemaxpool3d-rank": ("AdaptiveMaxPool3d", dict(output_size=2), (5, 5)),
        "adaptivemaxpool3d-two-ints": ("AdaptiveMaxPool3d", dict(output_size=(2, 2)), (1, 1, 5, 5, 5)),
    }
)

register_module_cases("maxpool", "torchsem.nn.MaxPool1d/2d/3d", [*_MAX, *_MAX_ERRORS])
register_module_cases("avgpool", "torchsem.nn.AvgPool2d/3d", [*_AVG, *_AVG_ERRORS])
register_module_cases(
    "adaptive_pool", "torchsem.nn.AdaptiveAvgPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d", [*_ADAPTIVE, *_ADAPTIVE_ERRORS]
)
