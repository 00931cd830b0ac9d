"""AvgPool1d parity grid: every kernel/stride/padding/ceil_mode/count_include_pad, forward and gradient.

Family ``avgpool1d``, through the generic module runner. Each case pools a channels-first
input and backpropagates a random cotangent, so both the window sums and the divisors (the
part PyTorch's ceil mode and ``count_include_pad`` change) are checked; integer inputs check
PyTorch's truncating division. Error cases compare PyTorch's error type and message.
"""

from __future__ import annotations

import itertools
from typing import Any

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases

_SECTION = "torchsem.nn.AvgPool1d (the document's pool1)"


_AVGPOOL = ("torch.nn.AvgPool1d", "torchsem.nn.AvgPool1d")


def _grid() -> list[ModuleCase]:
    cases = []
    for kernel, stride, padding, ceil_mode, include in itertools.product(
        (1, 2, 3, 4), (None, 1, 2, 3), (0, 1, 2), (False, True), (True, False)
    ):
        if padding > kernel // 2:
            continue
        if padding == 0 and not include:
            continue  # without padding the divisor cannot depend on count_include_pad
        cases.append(
            dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=include)
        )
    extra: list[tuple[dict[str, Any], Input | tuple[int, ...]]] = [
        (dict(kernel_size=2), (3, 3, 8)),  # the document's pool1
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (3, 8)),  # unbatched (C, L)
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (3, 6)),
        (dict(kernel_size=5, stride=3, padding=2, ceil_mode=True), (2, 2, 10)),
        (dict(kernel_size=(2,), stride=(1,), padding=(1,), count_include_pad=False), (1, 2, 5)),
        (dict(kernel_size=4, padding=2, ceil_mode=True), (2, 1, 4)),
        (dict(kernel_size=2), (0, 3, 8)),  # empty batch
    ]
    integer = Input((1, 2, 7), "int64", low=-20, high=20)  # sums divided with truncation toward zero
    extra += [
        (dict(kernel_size=3), integer),
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), integer),
    ]
    modules = [
        ModuleCase(*_AVGPOOL, kwargs=kwargs, inputs=((2, 3, 7),), modes=("train",), seed=seed)
        for seed, kwargs in enumerate(cases, start=101)
    ]
    modules += [
        ModuleCase(*_AVGPOOL, kwargs=kwargs, inputs=(shape,), modes=("train",), seed=seed)
        for seed, (kwargs, shape) in enumerate(extra, start=101 + len(cases))
    ]
    return modules


def _errors() -> list[ErrorCase]:
    cases: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
        "pad-more-than-half": (dict(kernel_size=2, padding=2), (2, 3, 8)),
        "pad-more-than-half-odd": (dict(kernel_size=3, padding=2), (2, 3, 8)),
        "pad-negative": (dict(kernel_size=3, padding=-1), (2, 3, 8)),
        "kernel-zero": (dict(kernel_size=0, stride=1), (2, 3, 8)),
        "kernel-zero-default-stride": (dict(kernel_size=0), (2, 3, 8)),
        "stride-negative": (dict(kernel_size=2, stride=-1), (2, 3, 8)),
        "output-too-small": (dict(kernel_size=9), (2, 3, 8)),
        "output-too-small-unbatched": (dict(kernel_size=2), (3, 1)),
        "kernel-two-ints": (dict(kernel_size=(2, 3)), (2, 3, 8)),
    }
    return [ErrorCase(*_AVGPOOL, name, kwargs=kwargs, inputs=(shape,)) for name, (kwargs, shape) in cases.items()]


register_module_cases("avgpool1d", _SECTION, [*_grid(), *_errors()])
