"""The loss modules through the generic module runner (family ``loss_modules``).

``torch.nn.MSELoss``/``L1Loss``/``SmoothL1Loss``/``HuberLoss``/``CrossEntropyLoss``/``NLLLoss``/
``BCELoss``/``BCEWithLogitsLoss``/``KLDivLoss`` against ``torchsem.nn``'s, with PyTorch's
constructor arguments: the loss and its gradient with respect to the input (targets are not
differentiated), and through ``torchsem.nnx``'s twins the same cases a second time
(``tests/test_nnx_parity.py``). The functional forms' full grids are the ``cross_entropy`` and
``losses`` families; this family checks the module front ends and their arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._module_case import Input, ModuleCase, register_module_cases

_SECTION = "the loss modules (torch.nn.*Loss) through the module runner"
_SHAPE = (4, 5)


def _target(shape: tuple[int, ...] = _SHAPE, **options: Any) -> Input:
    return Input(shape, requires_grad=False, **options)


def _probabilities(shape: tuple[int, ...] = _SHAPE) -> Input:
    # 0.5 +- 0.1 N(0, 1): inside (0, 1) for every draw of these few elements
    return Input(shape, offset=0.5, scale=0.1)


def _cases() -> list[ModuleCase]:
    regression: list[tuple[str, dict[str, Any]]] = [
        ("MSELoss", {}),
        ("MSELoss", {"reduction": "sum"}),
        ("MSELoss", {"reduction": "none"}),
        ("L1Loss", {}),
        ("L1Loss", {"reduction": "none"}),
        ("SmoothL1Loss", {"beta": 0.5}),
        ("SmoothL1Loss", {"reduction": "sum"}),
        ("HuberLoss", {"delta": 0.7}),
        ("HuberLoss", {"reduction": "none"}),
    ]
    cases = [
        ModuleCase(f"torch.nn.{cls}", f"torchsem.nn.{cls}", kwargs=kwargs, inputs=(_SHAPE, _target()), seed=seed)
        for seed, (cls, kwargs) in enumerate(regression, start=3100)
    ]
    classes = _target((4,), dtype="int64", low=0, high=5)
    classification: list[tuple[str, dict[str, Any]]] = [
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", {"label_smoothing": 0.1}),
        ("CrossEntropyLoss", {"ignore_index": 1, "reduction": "sum"}),
        ("NLLLoss", {}),
        ("NLLLoss", {"reduction": "none"}),
    ]
    cases += [
        ModuleCase(f"torch.nn.{cls}", f"torchsem.nn.{cls}", kwargs=kwargs, inputs=(_SHAPE, classes), seed=seed)
        for seed, (cls, kwargs) in enumerate(classification, start=3120)
    ]
    cases += [
        ModuleCase("torch.nn.BCELoss", "torchsem.nn.BCELoss", inputs=(_probabilities(), _probabilities()), seed=3130),
        ModuleCase(
            "torch.nn.BCELoss",
            "torchsem.nn.BCELoss",
            kwargs={"reduction": "sum"},
            inputs=(_probabilities(), _target(offset=0.5, scale=0.1)),
            seed=3131,
        ),
        ModuleCase(
            "torch.nn.BCEWithLogitsLoss",
            "torchsem.nn.BCEWithLogitsLoss",
            inputs=(_SHAPE, _target(offset=0.5, scale=0.1)),
            seed=3132,
        ),
        ModuleCase(
            "torch.nn.KLDivLoss",
            "torchsem.nn.KLDivLoss",
            kwargs={"reduction": "batchmean"},
            inputs=(_SHAPE, _target(offset=0.5, scale=0.1)),
            seed=3133,
        ),
        ModuleCase(
            "torch.nn.KLDivLoss",
            "torchsem.nn.KLDivLoss",
            kwargs={"reduction": "sum", "log_target": True},
            inputs=(_SHAPE, _target()),
            seed=3134,
        ),
    ]
    # Losses holding a buffer: the class weights (a buffer "weight" in PyTorch's state_dict) and
    # BCEWithLogitsLoss's pos_weight, as numpy arrays (a tensor on PyTorch's side).
    weight = np.linspace(0.5, 2.0, 5, dtype=np.float32)
    weighted: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
        ("CrossEntropyLoss", {"weight": weight}, (_SHAPE, classes)),
        ("CrossEntropyLoss", {"weight": weight, "label_smoothing": 0.2, "reduction": "sum"}, (_SHAPE, classes)),
        ("NLLLoss", {"weight": weight, "ignore_index": 2}, (_SHAPE, classes)),
        ("BCELoss", {"weight": weight}, (_probabilities(), _probabilities())),
        ("BCEWithLogitsLoss", {"pos_weight": weight}, (_SHAPE, _target(offset=0.5, scale=0.1))),
        (
            "BCEWithLogitsLoss",
            {"weight": weight, "pos_weight": weight[::-1].copy()},
            (_SHAPE, _target(offset=0.5, scale=0.1)),
        ),
    ]
    cases += [
        ModuleCase(
            f"torch.nn.{cls}",
            f"torchsem.nn.{cls}",
            kwargs=kwargs,
            inputs=inputs,
            seed=seed,
            name=f"{cls.lower()}-" + "-".join(sorted(kwargs)) + f"-{seed}",
        )
        for seed, (cls, kwargs, inputs) in enumerate(weighted, start=3140)
    ]
    return [case if case.modes == ("train",) else _train_only(case) for case in cases]


def _train_only(case: ModuleCase) -> ModuleCase:
    import dataclasses

    return dataclasses.replace(case, modes=("train",))  # a loss has no mode-dependent state


register_module_cases("loss_modules", _SECTION, _cases())
