"""GroupNorm, LayerNorm, RMSNorm and InstanceNorm1d/2d/3d parity, through the generic module runner.

Families ``groupnorm``, ``layernorm``, ``rmsnorm`` and ``instancenorm``. Every case loads the same
randomly moved ``state_dict`` into both sides (``perturb=True``: the defaults are ones and zeros),
then compares outputs, input and parameter gradients and buffers per step, eagerly and under
``jax.jit``. InstanceNorm runs ``("train", "train", "eval", "train")`` on one module, so the
running statistics (mean over the batch of per-instance statistics, unbiased variance) carry
over and eval reads them. The inputs are ``1 + 2 * N(0, 1)`` (``|mean| / std = 0.5``); one case
per family uses mean 1e3, std 1e-1, where float32 itself is ill-conditioned (tolerances below).
"""

from __future__ import annotations

from typing import Any

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Tolerance

_SECTION = "torchsem.nn normalisation layers (GroupNorm, LayerNorm, RMSNorm, InstanceNorm1d/2d/3d)"
_SEQUENCE = ("train", "train", "eval", "train")


def _x(*shape: int) -> Input:
    return Input(tuple(shape), offset=1.0, scale=2.0)


def _large_mean(*shape: int) -> Input:
    return Input(tuple(shape), offset=1e3, scale=1e-1)


# Mean 1e3, std 1e-1 (|mean| / std = 1e4): PyTorch's GroupNorm/LayerNorm kernels form
# y = x * scale - mean * scale from products of size 1e4 that cancel to ~1 (2^-24 * 1e4 = 6e-4 per
# rounding), and their backward kernels use uncentred sum(dy * x) forms that cancel the same way.
# Measured (torch 2.13 CPU, against PyTorch's own float64 run): PyTorch's float32 y is up to 7.8e-4
# from float64, torchsem's (centred (x - mean) * scale, plain JAX autodiff) up to 3.2e-4; dx: PyTorch
# up to 2.8e-2 (GroupNorm, |dx| <= 20) / 6.9e-3 (LayerNorm, |dx| <= 44) off, torchsem 1.8e-3 / 5.9e-4;
# dweight: PyTorch 5.4e-3, torchsem 1.8e-3. So the two differ by PyTorch's own float32 error:
# y up to 1.1e-3, dx up to 2.8e-2, dweight up to 5.7e-3. InstanceNorm shares BatchNorm's kernels
# (PyTorch's and torchsem's): its gradients agree to float32 tolerance, y to 4.6e-5 (PyTorch
# accumulates the statistics in double).
_LARGE_MEAN_REASON = (
    "mean 1e3, std 1e-1: PyTorch's kernels cancel float32 products of size |mean|/std = 1e4; "
    "its float32 result is as far from its own float64 result as from torchsem's (measured)"
)
_LARGE_Y = Tolerance(1e-5, 4e-3, reason=_LARGE_MEAN_REASON + ": y apart <= 1.1e-3")
_LARGE_GRADS = {
    "output0": _LARGE_Y,
    "grad input0": Tolerance(1e-5, 6e-2, reason=_LARGE_MEAN_REASON + ": dx apart <= 2.8e-2 (|dx| <= 44)"),
    "grad weight": Tolerance(1e-5, 1.5e-2, reason=_LARGE_MEAN_REASON + ": dweight apart <= 5.7e-3"),
}

# dweight / dbias sum dy * xhat over every (example, spatial) position of a channel (up to 40 terms of
# size ~1 that cancel): PyTorch and XLA add them in different orders, each ~n * 2^-24 from the exact sum.
_PARAMETER_GRADIENT = Tolerance(
    1e-5,
    4e-6,
    reason="float32 sums of up to 40 terms of size ~1 with cancellation, "
    "summed in different orders by PyTorch and XLA (each ~1e-6 from the exact sum)",
)
_PARAMETER_GRADIENTS = {"grad weight": _PARAMETER_GRADIENT, "grad bias": _PARAMETER_GRADIENT}


# LayerNorm(1) / GroupNorm(C, C) on (N, C): every row (group) is one element, so y = bias and
# dx = dweight = 0 exactly. PyTorch's native_layer_norm_backward (dx = rstd * dy * w + b * x + c,
# uncentred, rstd = 1/sqrt(eps) = 316)
# leaves rounding noise where torchsem's gradients are 0: measured up to 3.1e-5 (dx), 2.5e-5 (dweight).
_ONE_ELEMENT_NOISE = Tolerance(
    1e-5,
    1e-4,
    reason="rows of one element: the exact gradient is 0; PyTorch's "
    "uncentred backward leaves rounding noise up to 3.1e-5 (measured)",
)
_ONE_ELEMENT_ROWS = {
    "grad input0": _ONE_ELEMENT_NOISE,
    "grad weight": _ONE_ELEMENT_NOISE,
    "grad bias": _PARAMETER_GRADIENT,
}


def _groupnorm_cases() -> list[ModuleCase | ErrorCase]:
    cases: list[ModuleCase | ErrorCase] = []
    seed = 300
    for groups in (1, 3, 6):
        for affine in (True, False):
            cases.append(
                ModuleCase(
                    "torch.nn.GroupNorm",
                    "torchsem.nn.GroupNorm",
                    (groups, 6),
                    {"affine": affine},
                    inputs=(_x(2, 6, 5),),
                    seed=seed,
                    perturb=True,
                    tolerances=_PARAMETER_GRADIENTS,
                )
            )
            seed += 1
    for shape in ((3, 6), (2, 6, 2, 3), (2, 6, 2, 2, 2), (1, 6, 4)):
        cases.append(
            ModuleCase(
                "torch.nn.GroupNorm",
                "torchsem.nn.GroupNorm",
                (2, 6),
                inputs=(_x(*shape),),
                seed=seed,
                perturb=True,
                tolerances=_PARAMETER_GRADIENTS,
            )
        )
        seed += 1
    for kwargs in ({"bias": False}, {"eps": 1e-3}):
        cases.append(
            ModuleCase(
                "torch.nn.GroupNorm",
                "torchsem.nn.GroupNorm",
                (3, 6),
                kwargs,
                inputs=(_x(2, 6, 5),),
                seed=seed,
                perturb=True,
                tolerances=_PARAMETER_GRADIENTS,
            )
        )
        seed += 1
    one_value_output = Tolerance(
        1e-5,
        1e-4,
        reason="groups of one value: y = bias exactly (torchsem); PyTorch's "
        "x * scale + (bias - scale * mean) with scale ~ 1/sqrt(eps) = 316 leaves up to "
        "2.6e-5 of rounding (measured)",
    )
    cases.append(
        ModuleCase(
            "torch.nn.GroupNorm",
            "torchsem.nn.GroupNorm",
            (6, 6),
            inputs=(_x(2, 6),),
            seed=seed,
            perturb=True,
            name="one-value-groups",
            tolerances={**_ONE_ELEMENT_ROWS, "output0": one_value_output},
        )
    )
    seed += 1
    cases.append(
        ModuleCase(
            "torch.nn.GroupNorm",
            "torchsem.nn.GroupNorm",
            (3, 6),
            inputs=(_large_mean(2, 6, 5),),
            modes=("train",),
            seed=seed,
            perturb=True,
            name="large-mean",
            tolerances={**_LARGE_GRADS, "grad bias": _PARAMETER_GRADIENT},
        )
    )
    errors: dict[str, tuple[tuple, dict[str, Any], tuple[int, ...] | None]] = {
        "not-divisible": ((4, 6), {}, None),
        "rank-1": ((2, 6), {}, (6,)),
        "one-value-per-group": ((6, 6), {}, (1, 6)),
        "channels-not-divisible": ((2, 6), {}, (3, 5, 4)),
        "wrong-channels": ((2, 6), {}, (3, 4, 4)),
    }
    for name, (args, kwargs, input_shape) in errors.items():
        cases.append(
            ErrorCase(
                "torch.nn.GroupNorm",
                "torchsem.nn.GroupNorm",
                name,
                args,
                kwargs,
                inputs=() if input_shape is None else (input_shape,),
            )
        )
    return cases


def _layernorm_cases() -> list[ModuleCase | ErrorCase]:
    cases: list[ModuleCase | ErrorCase] = []
    configurations: list[tuple[Any, dict[str, Any], tuple[int, ...]]] = [
        (5, {}, (3, 5)),
        (5, {}, (2, 3, 5)),
        (5, {}, (5,)),
        ((3, 5), {}, (2, 3, 5)),
        ([2, 3, 5], {}, (2, 3, 5)),
        (5, {"elementwise_affine": False}, (3, 5)),
        ((3, 5), {"bias": False}, (2, 3, 5)),
        (5, {"eps": 1e-3}, (4, 5)),
        (1, {}, (4, 1)),
    ]
    for seed, (shape, kwargs, input_shape) in enumerate(configurations, start=400):
        tolerances = _ONE_ELEMENT_ROWS if shape == 1 else _PARAMETER_GRADIENTS
        cases.append(
            ModuleCase(
                "torch.nn.LayerNorm",
                "torchsem.nn.LayerNorm",
                (shape,),
                kwargs,
                inputs=(_x(*input_shape),),
                seed=seed,
                perturb=True,
                tolerances=tolerances,
            )
        )
    cases.append(
        ModuleCase(
            "torch.nn.LayerNorm",
            "torchsem.nn.LayerNorm",
            ((3, 5),),
            inputs=(_large_mean(2, 3, 5),),
            modes=("train",),
            seed=420,
            perturb=True,
            name="large-mean",
            tolerances={**_LARGE_GRADS, "grad bias": _PARAMETER_GRADIENT},
        )
    )
    errors: dict[str, tuple[Any, tuple[int, ...]]] = {
        "shape-mismatch": (5, (3, 4)),
        "shape-mismatch-2d": ((4, 5), (3, 4, 6)),
        "too-few-dims": ((2, 4, 5), (4, 5)),
        "empty-normalized-shape": ((), (3, 4)),
    }
    for name, (shape, input_shape) in errors.items():
        cases.append(ErrorCase("torch.nn.LayerNorm", "torchsem.nn.LayerNorm", name, (shape,), inputs=(input_shape,)))
    return cases


def _rmsnorm_cases() -> list[ModuleCase | ErrorCase]:
    cases: list[ModuleCase | ErrorCase] = []
    configurations: list[tuple[Any, dict[str, Any], Input, str | None]] = [
        (5, {}, _x(3, 5), None),
        (5, {}, _x(2, 3, 5), None),
        (5, {}, _x(5), None),
        ((3, 5), {}, _x(2, 3, 5), None),
        (5, {"elementwise_affine": False}, _x(3, 5), None),
        (5, {"eps": 1e-3}, _x(4, 5), None),
        # mean(x^2) ~ 1e-6, comparable to eps: the eps=None default (float32's 1.19e-7) matters here
        (5, {}, Input((4, 5), scale=1e-3), "small-input"),
        (5, {"eps": 1e-6}, Input((4, 5), scale=1e-3), "small-input-eps1e-6"),
        ((3, 5), {}, _large_mean(2, 3, 5), "large-mean"),
    ]
    for seed, (shape, kwargs, spec, name) in enumerate(configurations, start=500):
        cases.append(
            ModuleCase(
                "torch.nn.RMSNorm",
                "torchsem.nn.RMSNorm",
                (shape,),
                kwargs,
                inputs=(spec,),
                seed=seed,
                perturb=True,
                tolerances={"grad weight": _PARAMETER_GRADIENT},
                name=name,
            )
        )
    errors: dict[str, tuple[Any, tuple[int, ...]]] = {
        "shape-mismatch": (5, (3, 4)),
        "shape-mismatch-2d": ((4, 5), (3, 4, 6)),
        "too-few-dims": ((2, 4, 5), (4, 5)),
        "empty-normalized-shape": ((), (3, 4)),
    }
    for name, (shape, input_shape) in errors.items():
        cases.append(ErrorCase("torch.nn.RMSNorm", "torchsem.nn.RMSNorm", name, (shape,), inputs=(input_shape,)))
    return cases


_INSTANCE_SHAPES = {1: (2, 3, 5), 2: (2, 3, 2, 3), 3: (2, 3, 2, 2, 2)}


def _instancenorm_cases() -> list[ModuleCase | ErrorCase]:
    cases: list[ModuleCase | ErrorCase] = []
    seed = 600
    for dims, shape in _INSTANCE_SHAPES.items():
        cls = f"InstanceNorm{dims}d"
        for track in (True, False):
            for affine in (True, False):
                cases.append(
                    ModuleCase(
                        f"torch.nn.{cls}",
                        f"torchsem.nn.{cls}",
                        (3,),
                        {"affine": affine, "track_running_stats": track},
                        inputs=(_x(*shape),),
                        modes=_SEQUENCE,
                        seed=seed,
                        perturb=True,
                        tolerances=_PARAMETER_GRADIENTS,
                    )
                )
                seed += 1
        # unbatched (C, *spatial): a batch of one, as PyTorch
        cases.append(
            ModuleCase(
                f"torch.nn.{cls}",
                f"torchsem.nn.{cls}",
                (3,),
                {"affine": True, "track_running_stats": True},
                inputs=(_x(*shape[1:]),),
                modes=_SEQUENCE,
                seed=seed,
                perturb=True,
                tolerances=_PARAMETER_GRADIENTS,
            )
        )
        seed += 1
    extras: list[tuple[dict[str, Any], tuple[int, ...]]] = [
        ({"momentum": None, "track_running_stats": True}, (2, 3, 5)),  # PyTorch passes momentum 0.0: stats frozen
        ({"momentum": 0.5, "track_running_stats": True, "affine": True}, (2, 3, 5)),
        ({"affine": True, "bias": False, "track_running_stats": True}, (2, 3, 5)),
        ({"eps": 1e-3, "track_running_stats": True}, (1, 3, 4)),  # N = 1
    ]
    for kwargs, shape in extras:
        cases.append(
            ModuleCase(
                "torch.nn.InstanceNorm1d",
                "torchsem.nn.InstanceNorm1d",
                (3,),
                kwargs,
                inputs=(_x(*shape),),
                modes=_SEQUENCE,
                seed=seed,
                perturb=True,
                tolerances=_PARAMETER_GRADIENTS,
            )
        )
        seed += 1
    cases.append(
        ModuleCase(
            "torch.nn.InstanceNorm1d",
            "torchsem.nn.InstanceNorm1d",
            (3,),
            {"affine": True, "track_running_stats": True},
            inputs=(_large_mean(2, 3, 5),),
            modes=("train", "eval"),
            seed=seed,
            perturb=True,
            name="large-mean",
            tolerances={"output0": _LARGE_Y, **_PARAMETER_GRADIENTS},
        )
    )
    errors: dict[str, tuple[str, dict[str, Any], tuple[int, ...], str]] = {
        "rank-1d": ("InstanceNorm1d", {}, (2, 3, 4, 5), "train"),
        "rank-3d": ("InstanceNorm3d", {}, (3, 4, 5), "train"),
        "wrong-channels-affine": ("InstanceNorm1d", {"affine": True}, (2, 4, 5), "train"),
        "wrong-channels-affine-unbatched": ("InstanceNorm2d", {"affine": True}, (4, 5, 5), "eval"),
        "wrong-channels-tracked": ("InstanceNorm1d", {"track_running_stats": True}, (2, 4, 5), "eval"),
        "one-spatial-element": ("InstanceNorm1d", {}, (2, 3, 1), "train"),
        "one-spatial-element-eval-untracked": ("InstanceNorm1d", {}, (2, 3, 1), "eval"),
        "one-spatial-element-eval-tracked": ("InstanceNorm1d", {"track_running_stats": True}, (2, 3, 1), "eval"),
    }
    for name, (cls, kwargs, shape, mode) in errors.items():
        cases.append(ErrorCase(f"torch.nn.{cls}", f"torchsem.nn.{cls}", name, (3,), kwargs, inputs=(shape,), mode=mode))
    return cases


register_module_cases("groupnorm", _SECTION, _groupnorm_cases())
register_module_cases("layernorm", _SECTION, _layernorm_cases())
register_module_cases("rmsnorm", _SECTION, _rmsnorm_cases())
register_module_cases("instancenorm", _SECTION, _instancenorm_cases())
