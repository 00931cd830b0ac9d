"""Linear parity: module cases (the generic runner) and Flax's own default initialisation.

Family ``linear``. The module cases run ``torch.nn.Linear`` and ``torchsem.nn.Linear`` through
:class:`~torchsem.compare.ModuleCase`: PyTorch's seeded initial weights (bit for bit through
``torch_init``), forward, input and parameter gradients in train and eval. The statistics case
compares a large layer's ``Linear.init`` with a JAX key (the bits differ: PyTorch's generator
is not JAX's) through summary statistics, with tolerances sized to sampling noise.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .._module_case import ErrorCase, ModuleCase, register_module_cases
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.Linear (the document's fc1)"


def _register_parity() -> None:
    cases: list[ModuleCase | ErrorCase] = [
        ModuleCase(
            "torch.nn.Linear",
            "torchsem.nn.Linear",
            (in_features, out_features),
            {"bias": bias},
            inputs=((*batch, in_features),),
            modes=("train",),
            seed=seed,
        )  # no mode-dependent state
        for seed, ((in_features, out_features), batch, bias) in enumerate(
            itertools.product(((12, 4), (1, 3), (7, 1), (33, 17)), ((), (3,), (2, 5)), (True, False)), start=201
        )
    ]
    # No input features: the weight is empty and the bias is drawn from U(-0, 0), +0.0 in PyTorch.
    cases.append(ModuleCase("torch.nn.Linear", "torchsem.nn.Linear", (0, 3), inputs=((2, 0),), modes=("train",)))
    cases += [
        ErrorCase("torch.nn.Linear", "torchsem.nn.Linear", "features", (12, 4), inputs=((3, 11),)),
        ErrorCase("torch.nn.Linear", "torchsem.nn.Linear", "features-batched", (12, 4), inputs=((2, 3, 5),)),
        ErrorCase("torch.nn.Linear", "torchsem.nn.Linear", "scalar-input", (1, 4), inputs=((),)),
    ]
    register_module_cases("linear", _SECTION, cases)


def _statistics(prefix: str, values: np.ndarray, bound: float) -> dict[str, Any]:
    values = np.asarray(values, np.float64)
    return {
        f"{prefix}_min_over_bound": np.float32(values.min() / bound),
        f"{prefix}_max_over_bound": np.float32(values.max() / bound),
        f"{prefix}_mean_over_bound": np.float32(values.mean() / bound),
        f"{prefix}_std_over_bound": np.float32(values.std() / bound),
    }


# A 16 -> 16384 layer: 262144 weights and 16384 biases, both U(-1/4, 1/4) in PyTorch.
_INIT_IN, _INIT_OUT = 16, 16384
_BOUND = 1 / math.sqrt(_INIT_IN)
_INIT_TOLERANCES = {
    # The extremes of n draws of U(-1, 1) sit about 2/n inside the bounds (n = 262144 and 16384).
    "weight_min_over_bound": Tolerance(
        1e-4, 0.0, reason="sampling: the min of 262144 U(-1,1) draws is -1 + Exp(mean 7.6e-6)"
    ),
    "weight_max_over_bound": Tolerance(
        1e-4, 0.0, reason="sampling: the max of 262144 U(-1,1) draws is 1 - Exp(mean 7.6e-6)"
    ),
    "bias_min_over_bound": Tolerance(
        1.5e-3, 0.0, reason="sampling: the min of 16384 U(-1,1) draws is -1 + Exp(mean 1.2e-4)"
    ),
    "bias_max_over_bound": Tolerance(
        1.5e-3, 0.0, reason="sampling: the max of 16384 U(-1,1) draws is 1 - Exp(mean 1.2e-4)"
    ),
    # Two independent samples are compared: the difference of their means has sd
    # sqrt(2) * 0.577 / sqrt(n) = 1.6e-3 (weights), 6.4e-3 (biases); 5 sd allowed.
    "weight_mean_over_bound": Tolerance(
        0.0, 8e-3, reason="sampling: difference of two means of 262144 U(-1,1) draws, sd 1.6e-3"
    ),
    "bias_mean_over_bound": Tolerance(
        0.0, 3.2e-2, reason="sampling: difference of two means of 16384 U(-1,1) draws, sd 6.4e-3"
    ),
    # Relative sd of a sample std of U(-1, 1) is sqrt(0.8 / 4n); of the ratio of two, sqrt(2) times that.
    "weight_std_over_bound": Tolerance(
        1e-2, 0.0, reason="sampling: two sample stds (n=262144) differ by 1.2e-3 relative (1 sd)"
    ),
    "bias_std_over_bound": Tolerance(
        2.5e-2, 0.0, reason="sampling: two sample stds (n=16384) differ by 5e-3 relative (1 sd)"
    ),
}


def _init_torch(inputs):
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Linear(_INIT_IN, _INIT_OUT)
    return {
        **_statistics("weight", layer.weight.detach().numpy(), _BOUND),
        **_statistics("bias", layer.bias.detach().numpy(), _BOUND),
    }


def _init_jax(inputs, jit: bool):
    import jax
    import jax.numpy as jnp

    from torchsem.nn import Linear

    layer = Linear(_INIT_IN, _INIT_OUT)
    init = jax.jit(layer.init) if jit else layer.init
    params = init(jax.random.key(0), jnp.zeros((1, _INIT_IN)))["params"]
    return {
        **_statistics("weight", np.asarray(params["weight"]), _BOUND),
        **_statistics("bias", np.asarray(params["bias"]), _BOUND),
    }


def _register_init() -> None:
    register(
        Scenario(
            name="linear/default-init-statistics",
            section=_SECTION,
            mapping="torch.nn.Linear(16, 16384) reset_parameters -> torchsem.nn.Linear(16, 16384).init: "
            "weight and bias U(-1/sqrt(in), 1/sqrt(in))",
            torch_program=_init_torch,
            jax_program=_init_jax,
            tolerances=_INIT_TOLERANCES,
            notes="Statistics divided by the bound 1/sqrt(in_features): min ~ -1, max ~ 1, mean ~ 0, std ~ 1/sqrt(3). "
            "The bias bound comes from the weight's fan-in (16), not from the bias's own length.",
        )
    )


_register_parity()
_register_init()
