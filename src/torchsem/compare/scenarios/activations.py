"""Activation parity: every ``torch.nn`` activation torchsem has, forward and gradient, kinks included.

Family ``activation``. The first elements of each input are fixed to the values where PyTorch
has to choose a gradient or where NaN and infinities meet a branch (0, -0, the bounds and
thresholds, +-inf, NaN), the rest standard normal times 4. Every input has a multiple of 32
elements, so PyTorch runs its vectorised CPU kernel over all of them: its scalar tail can
answer differently at NaN/inf (``Hardtanh``'s gradient at NaN, ``GELU(inf)``), and torchsem
follows the vectorised kernel.
"""

from __future__ import annotations

import math

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Tolerance

_SECTION = "torchsem.nn activations (CNN toolkit)"

_INF, _NAN = math.inf, math.nan
# Kinks and branch points of every activation below, then +-inf and NaN.
_EDGES = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    3.0,
    -3.0,
    6.0,
    0.5,
    -0.5,
    20.0,
    20.5,
    10.0,
    5.0,
    2.0,
    -2.0,
    1e-8,
    -1e-8,
    0.25,
    _INF,
    -_INF,
    _NAN,
)


def _x(shape: tuple[int, ...], fixed: tuple[float, ...] = _EDGES) -> Input:
    return Input(shape, scale=4.0, fixed=fixed)


_SATURATED_TANH = Tolerance(
    1e-5,
    6e-6,
    reason=(
        "XLA's CPU tanh is within 2.6e-7 of the true value, PyTorch's (SLEEF) within 3e-8; near saturation the "
        "gradient's 1 - tanh(u)**2 magnifies that: measured max abs difference 4.8e-6 on this input (x ~ -5)"
    ),
)


def _cases() -> list[ModuleCase | ErrorCase]:
    cases: list[ModuleCase | ErrorCase] = []
    seed = iter(range(1400, 1500))

    def add(torch_name: str, args: tuple = (), kwargs: dict | None = None, inputs: tuple = (), **extra) -> None:
        cases.append(
            ModuleCase(
                f"torch.nn.{torch_name}",
                f"torchsem.nn.{torch_name}",
                args,
                kwargs or {},
                inputs=inputs or (_x((2, 16)),),
                modes=("train",),
                seed=next(seed),
                **extra,
            )
        )

    for name in ("ReLU", "ReLU6", "Hardsigmoid", "Hardswish", "Tanhshrink", "Sigmoid", "Softsign", "SiLU"):
        add(name)
    add("ReLU", inputs=(_x((32,)),))  # unbatched / any shape
    add("LeakyReLU")
    add("LeakyReLU", (0.2,), inputs=(_x((2, 2, 8)),))
    for name, args in (("ELU", ()), ("ELU", (0.5,)), ("CELU", ()), ("CELU", (2.0,)), ("SELU", ())):
        add(name, args)
    add("GELU")
    add("GELU", kwargs={"approximate": "tanh"})
    # Where tanh saturates (|x| 4..6) the gradient's 1 - tanh(u)**2 magnifies the error of XLA's CPU tanh.
    add(
        "GELU",
        kwargs={"approximate": "tanh"},
        inputs=(Input((2, 16), offset=-5.0, scale=0.5),),
        name="gelu-approximate=tanh-saturating",
        tolerances={"grad input0": _SATURATED_TANH},
    )
    add("Mish")
    add("Tanh")
    add("LogSigmoid")
    add("Softplus")
    add("Softplus", (2.0, 10.0))
    add("Hardtanh")
    add("Hardtanh", (-2.0, 3.0))
    add("Hardshrink")
    add("Hardshrink", (1.0,))
    add("Softshrink")
    add("Softshrink", (2.0,))
    add("Threshold", (0.5, 2.0))
    add("Threshold", (-1.0, -3.0))
    # PReLU: a parameter filled with init; one slope, or one per channel (axis 1).
    add("PReLU", inputs=(_x((2, 16)),))
    add("PReLU", (3,), {"init": 0.1}, inputs=(_x((2, 3, 4)),))
    add("PReLU", inputs=(_x((32,)),))
    # GLU halves an axis; Softmax family along an explicit dim and PyTorch's implicit one (dim=None).
    finite = (0.0, -0.0, 1.0, -1.0, 20.0, -20.0, 88.0, -88.0)
    add("GLU", inputs=(_x((2, 16), finite),))
    add("GLU", (0,), inputs=(_x((4, 8), finite),))
    for name in ("Softmax", "LogSoftmax", "Softmin"):
        add(name, (1,), inputs=(_x((4, 8), finite),))
        add(name, (-1,), inputs=(_x((2, 2, 8), finite),))
        add(name, inputs=(_x((2, 4, 4), finite),))  # dim=None on 3-d: dim 0
        add(name, inputs=(_x((32,), finite),))  # dim=None on 1-d: dim 0
    add("Softmax", inputs=(_x((2, 4, 4, 2), finite),))  # dim=None on 4-d: dim 1
    add("Softmax2d", inputs=(_x((2, 4, 2, 2), finite),))
    add("Softmax2d", inputs=(_x((4, 2, 4), finite),))  # unbatched (C, H, W)
    add("Softmax", (0,), inputs=(Input(()),))  # a 0-d input is its own dimension
    cases += [
        ErrorCase("torch.nn.Hardtanh", "torchsem.nn.Hardtanh", "hardtanh-bounds", (1.0, -1.0)),
        ErrorCase("torch.nn.Hardtanh", "torchsem.nn.Hardtanh", "hardtanh-equal-bounds", (1.0, 1.0)),
        ErrorCase("torch.nn.GELU", "torchsem.nn.GELU", "gelu-approximate", ("foo",), inputs=((2, 3),)),
        ErrorCase("torch.nn.Softshrink", "torchsem.nn.Softshrink", "softshrink-negative", (-0.5,), inputs=((2, 3),)),
        ErrorCase("torch.nn.CELU", "torchsem.nn.CELU", "celu-alpha-zero", (0.0,), inputs=((2, 3),)),
        ErrorCase("torch.nn.GLU", "torchsem.nn.GLU", "glu-odd", (), inputs=((2, 3),)),
        ErrorCase("torch.nn.GLU", "torchsem.nn.GLU", "glu-scalar", (), inputs=((),)),
        ErrorCase("torch.nn.GLU", "torchsem.nn.GLU", "glu-dim", (3,), inputs=((2, 4),)),
        ErrorCase("torch.nn.Softmax", "torchsem.nn.Softmax", "softmax-dim", (2,), inputs=((2, 3),)),
        ErrorCase("torch.nn.Softmax", "torchsem.nn.Softmax", "softmax-scalar-dim", (1,), inputs=((),)),
        ErrorCase("torch.nn.Softmax2d", "torchsem.nn.Softmax2d", "softmax2d-2d", (), inputs=((2, 3),)),
        ErrorCase("torch.nn.Softmax2d", "torchsem.nn.Softmax2d", "softmax2d-5d", (), inputs=((1, 1, 1, 1, 1),)),
        ErrorCase("torch.nn.PReLU", "torchsem.nn.PReLU", "prelu-channels", (3,), inputs=((2, 4),)),
        ErrorCase("torch.nn.PReLU", "torchsem.nn.PReLU", "prelu-1d", (3,), inputs=((3,),)),
        ErrorCase("torch.nn.PReLU", "torchsem.nn.PReLU", "prelu-0d", (3,), inputs=((),)),
    ]
    return cases


register_module_cases("activation", _SECTION, _cases())
