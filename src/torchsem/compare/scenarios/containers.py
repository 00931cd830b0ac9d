"""Container and shape parity: Sequential's state_dict names, Flatten/Unflatten/Identity, channel dropout.

Family ``containers``. ``Sequential`` cases build the same layers on both sides through the
factories below (PyTorch's modules there, torchsem's here), so the initial ``state_dict`` check
compares PyTorch's keys (``0.weight``, ``2.bias``, ``block.1.weight``) and its seeded weights bit
for bit. Channel dropout is compared where it is deterministic: eval mode, and ``p=0``/``p=1``
in training (``x * 0``: inf and NaN become NaN, as PyTorch).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases

_SECTION = "torchsem.nn containers and shape modules (CNN toolkit)"
_HERE = "torchsem.compare.scenarios.containers"


def _layers(nn: Any) -> tuple[Any, ...]:
    return nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)


def torch_mlp() -> Any:
    """``Sequential(Linear(4, 3), ReLU(), Linear(3, 2))`` in PyTorch."""
    import torch

    return torch.nn.Sequential(*_layers(torch.nn))


def torchsem_mlp() -> Any:
    """The same in torchsem."""
    import torchsem.nn

    return torchsem.nn.Sequential(*_layers(torchsem.nn))


def _nested(nn: Any) -> Any:
    # Named children (an OrderedDict), a nested Sequential, Flatten and Identity on the way.
    return nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("block", nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Identity(54, unused=True))),
                ("head", nn.Linear(4, 2, bias=False)),
            ]
        )
    )


def torch_nested() -> Any:
    """A nested PyTorch Sequential with named children."""
    import torch

    return _nested(torch.nn)


def torchsem_nested() -> Any:
    """The same in torchsem."""
    import torchsem.nn

    return _nested(torchsem.nn)


def _cases() -> list[ModuleCase | ErrorCase]:
    seed = iter(range(1600, 1700))
    cases: list[ModuleCase | ErrorCase] = []

    def add(name: str, args: tuple = (), inputs: tuple = (), modes: tuple[str, ...] = ("train",), **extra: Any) -> None:
        cases.append(
            ModuleCase(
                f"torch.nn.{name}", f"torchsem.nn.{name}", args, inputs=inputs, modes=modes, seed=next(seed), **extra
            )
        )

    cases.append(
        ModuleCase(
            f"{_HERE}.torch_mlp",
            f"{_HERE}.torchsem_mlp",
            inputs=((5, 4),),
            modes=("train",),
            seed=next(seed),
            name="sequential-mlp",
        )
    )
    cases.append(
        ModuleCase(
            f"{_HERE}.torch_mlp",
            f"{_HERE}.torchsem_mlp",
            inputs=((4,),),
            modes=("train",),
            seed=next(seed),
            name="sequential-mlp-unbatched",
        )
    )
    cases.append(
        ModuleCase(
            f"{_HERE}.torch_nested",
            f"{_HERE}.torchsem_nested",
            inputs=((3, 2, 3),),
            modes=("train",),
            seed=next(seed),
            name="sequential-nested-named",
        )
    )
    add("Flatten", inputs=((2, 3, 4, 5),))
    add("Flatten", (0, 2), inputs=((2, 3, 4, 5),))
    add("Flatten", (-3, -2), inputs=((2, 3, 4, 5),))
    add("Flatten", (0,), inputs=((),))
    add("Flatten", (0,), inputs=((3,),))
    add("Unflatten", (1, (2, 3)), inputs=((4, 6),))
    add("Unflatten", (-1, (2, -1, 2)), inputs=((3, 8),))
    add("Unflatten", (0, [3, 1]), inputs=((3, 2),))
    add("Identity", (3, "ignored"), inputs=((2, 3),))
    nonfinite = (math.inf, -math.inf, math.nan, 0.0)
    for name, shapes in (
        ("Dropout1d", ((2, 3, 4), (3, 4))),
        ("Dropout2d", ((2, 3, 2, 2), (2, 3, 4))),
        ("Dropout3d", ((2, 2, 2, 2, 2), (2, 2, 2, 2))),
    ):
        for shape in shapes:
            x = Input(shape, fixed=nonfinite)
            add(name, (0.5,), inputs=(x,), modes=("eval",))
            add(name, (0.0,), inputs=(x,), modes=("train",))
            add(name, (1.0,), inputs=(x,), modes=("train",))

    def error(name: str, label: str, args: tuple, inputs: tuple = (), mode: str = "train") -> ErrorCase:
        return ErrorCase(f"torch.nn.{name}", f"torchsem.nn.{name}", label, args, inputs=inputs, mode=mode)

    cases += [
        error("Flatten", "flatten-1d-default", (), ((3,),)),
        error("Flatten", "flatten-scalar-default", (), ((),)),
        error("Flatten", "flatten-dim-range", (3,), ((2, 3),)),
        error("Flatten", "flatten-start-after-end", (2, 1), ((2, 3, 4),)),
        error("Unflatten", "unflatten-product", (1, (4, 2)), ((2, 6),)),
        error("Unflatten", "unflatten-empty", (1, ()), ((2, 6),)),
        error("Unflatten", "unflatten-dim-range", (2, (2, 3)), ((2, 6),)),
        error("Unflatten", "unflatten-float-size", (1, (2.0, 3))),
        error("Unflatten", "unflatten-int-size", (1, 6)),
        error("Dropout1d", "dropout1d-4d", (0.5,), ((1, 2, 3, 4),)),
        error("Dropout1d", "dropout1d-1d-eval", (0.5,), ((3,),), mode="eval"),
        error("Dropout2d", "dropout2d-p", (1.5,)),
        error("Dropout3d", "dropout3d-p", (-0.1,)),
    ]
    return cases


register_module_cases("containers", _SECTION, _cases())
