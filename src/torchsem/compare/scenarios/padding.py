"""Padding parity: the ``torch.nn`` padding modules, forward and gradient, cropping and PyTorch's errors.

Family ``padding``. PyTorch's tuple order (last axis first), asymmetric and negative entries
(cropping: reflection and replication fill from the uncropped input, circular wraps the cropped
one), batched and unbatched inputs, and the error of each bad size.
"""

from __future__ import annotations

from .._module_case import ErrorCase, ModuleCase, register_module_cases

_SECTION = "torchsem.nn padding modules (CNN toolkit)"


def _cases() -> list[ModuleCase | ErrorCase]:
    seed = iter(range(1500, 1600))
    configs = [
        ("ZeroPad1d", (2,), (2, 3, 4)),
        ("ZeroPad1d", ((1, -2),), (3, 5)),
        ("ZeroPad2d", ((1, 2, 0, 3),), (1, 2, 3, 4)),
        ("ZeroPad2d", (1,), (2, 3)),  # a 2-d input: both axes padded
        ("ZeroPad3d", ((1, 0, -1, 2, 0, 1),), (1, 2, 2, 3, 3)),
        ("ConstantPad1d", (2, 3.5), (2, 3, 4)),
        ("ConstantPad1d", ((-2, 1), -1.0), (5,)),
        ("ConstantPad2d", ((1, -2, 0, 2), 0.5), (2, 3, 4)),
        ("ConstantPad3d", (1, 2.0), (1, 2, 2, 2)),
        ("ReflectionPad1d", (2,), (2, 3, 4)),
        ("ReflectionPad1d", ((-1, 2),), (1, 2, 5)),
        ("ReflectionPad1d", ((3, 0),), (2, 5)),  # unbatched (C, L)
        ("ReflectionPad2d", ((1, 2, 3, 0),), (1, 2, 4, 5)),
        ("ReflectionPad2d", (1,), (2, 3, 3)),
        ("ReflectionPad3d", (1,), (1, 2, 3, 3, 3)),
        ("ReflectionPad3d", ((1, 0, 2, 1, 0, 1),), (2, 3, 3, 3)),
        ("ReplicationPad1d", ((-2, 4),), (1, 2, 5)),
        ("ReplicationPad1d", (3,), (2, 4)),
        ("ReplicationPad2d", ((1, -1, 2, 3),), (2, 3, 4)),
        ("ReplicationPad3d", ((1, 0, -1, 2, 0, 1),), (1, 2, 3, 3, 3)),
        ("CircularPad1d", (2,), (2, 3, 4)),
        ("CircularPad1d", ((-1, 3),), (2, 4)),
        ("CircularPad2d", ((2, -1, 1, 3),), (1, 2, 4, 3)),
        ("CircularPad3d", (1,), (1, 1, 2, 3, 2)),
        ("CircularPad3d", ((1, 2, 0, 1, 2, 0),), (2, 2, 3, 2)),
    ]
    cases: list[ModuleCase | ErrorCase] = [
        ModuleCase(f"torch.nn.{name}", f"torchsem.nn.{name}", args, inputs=(shape,), modes=("train",), seed=next(seed))
        for name, args, shape in configs
    ]

    def error(name: str, label: str, args: tuple, shape: tuple[int, ...]) -> ErrorCase:
        return ErrorCase(f"torch.nn.{name}", f"torchsem.nn.{name}", label, args, inputs=(shape,))

    cases += [
        error("ReflectionPad1d", "reflection1d-too-large", (3,), (1, 2, 3)),
        error("ReflectionPad1d", "reflection1d-equal", ((2, 3),), (1, 2, 3)),
        error("ReflectionPad2d", "reflection2d-height-too-large", ((1, 1, 3, 0),), (1, 2, 3, 4)),
        error("ReflectionPad3d", "reflection3d-too-large", (3,), (1, 2, 3, 3, 3)),
        error("ReflectionPad1d", "reflection1d-1d-input", (1,), (5,)),
        error("ReflectionPad2d", "reflection2d-2d-input", (1,), (3, 3)),
        error("ReflectionPad1d", "reflection1d-empty-channels", (1,), (1, 0, 5)),
        error("ReplicationPad3d", "replication3d-3d-input", (1,), (3, 3, 3)),
        error("ReplicationPad1d", "replication1d-empty-length", (1,), (1, 2, 0)),
        error("CircularPad1d", "circular1d-wraps-twice", (4,), (1, 2, 3)),
        error("CircularPad1d", "circular1d-1d-input", (1,), (5,)),
        error("CircularPad2d", "circular2d-5d-input", (1,), (1, 1, 1, 3, 3)),
        error("ConstantPad2d", "constant2d-1d-input", (1, 2.0), (5,)),
        error("ConstantPad1d", "constant1d-crop-too-much", ((-6, 1), 2.0), (1, 5)),
        error("ConstantPad1d", "constant1d-0d-input", (1, 0.0), ()),
        error("ZeroPad2d", "zero2d-odd-tuple", ((1, 2, 3),), (1, 2, 3)),
    ]
    return cases


register_module_cases("padding", _SECTION, _cases())
