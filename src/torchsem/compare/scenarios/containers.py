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


def _stack_forward(blocks: Any, heads: Any, x: Any, tanh: Any) -> Any:
    for block in blocks:
        x = tanh(block(x))
    return heads["cls"](x) + heads["reg"](x)


def torch_stack() -> Any:
    """A PyTorch module holding a ModuleList of blocks and a ModuleDict of heads."""
    import torch

    class Stack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])
            self.heads = torch.nn.ModuleDict({"cls": torch.nn.Linear(4, 3), "reg": torch.nn.Linear(4, 1)})

        def forward(self, x: Any) -> Any:
            return _stack_forward(self.blocks, self.heads, x, torch.tanh)

    return Stack()


def torchsem_stack() -> Any:
    """The same in torchsem: the containers assigned in ``setup``, their members called directly."""
    import flax.linen as fnn
    import jax.numpy as jnp

    import torchsem.nn

    class Stack(fnn.Module):
        def setup(self) -> None:
            self.blocks = torchsem.nn.ModuleList([torchsem.nn.Linear(4, 4), torchsem.nn.Linear(4, 4)])
            self.heads = torchsem.nn.ModuleDict({"cls": torchsem.nn.Linear(4, 3), "reg": torchsem.nn.Linear(4, 1)})

        def __call__(self, x: Any) -> Any:
            return _stack_forward(self.blocks, self.heads, x, jnp.tanh)

    return Stack()


def _conv_block(nn: Any) -> Any:
    # bias=False as in ResNets: a bias before a train-mode BatchNorm has gradient 0 up to rounding.
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2))


def torch_conv_block() -> Any:
    """``Sequential(Conv2d, BatchNorm2d, ReLU, MaxPool2d)``: train/eval reach the BatchNorm inside."""
    import torch

    return _conv_block(torch.nn)


def torchsem_conv_block() -> Any:
    """The same in torchsem: one ``use_running_average`` flag given to the Sequential drives its BatchNorm."""
    import torchsem.nn

    return _conv_block(torchsem.nn)


def _bad_containers(nn: Any, which: str) -> Any:
    if which == "dict-key-type":
        return nn.ModuleDict({1: nn.ReLU()})
    if which == "dict-key-dot":
        return nn.ModuleDict({"a.b": nn.ReLU()})
    if which == "dict-key-empty":
        return nn.ModuleDict({"": nn.ReLU()})
    if which == "list-member":
        return nn.ModuleList([3])
    return nn.ModuleList([nn.ReLU()])[3]


def torch_bad_container(which: str) -> Any:
    """A PyTorch container built wrong, by ``which``."""
    import torch

    return _bad_containers(torch.nn, which)


def torchsem_bad_container(which: str) -> Any:
    """The same mistake with torchsem's containers."""
    import torchsem.nn

    return _bad_containers(torchsem.nn, which)


_extra: list[ModuleCase | ErrorCase] = [
    ModuleCase(
        f"{_HERE}.torch_stack",
        f"{_HERE}.torchsem_stack",
        inputs=((3, 4),),
        modes=("train",),
        seed=1700,
        name="modulelist-moduledict",
    ),
    ModuleCase(
        f"{_HERE}.torch_conv_block",
        f"{_HERE}.torchsem_conv_block",
        inputs=((2, 2, 4, 4),),
        modes=("train", "eval", "train"),
        seed=1701,
        name="sequential-mode-dependent",
    ),
]
_extra += [
    ErrorCase(f"{_HERE}.torch_bad_container", f"{_HERE}.torchsem_bad_container", which, (which,))
    for which in ("dict-key-type", "dict-key-dot", "dict-key-empty", "list-member", "list-index")
]
register_module_cases("containers", _SECTION, _extra)
