"""torch.nn.init parity: gains, fans, deterministic fills, error messages, and sampling statistics.

Family ``init``. Random initialisers cannot agree bit for bit (PyTorch's generator is not
JAX's), so those cases compare summary statistics of 65536 draws, each tolerance sized to
the sampling noise of two independent samples; everything deterministic is compared exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.init (PyTorch's initialisers as Flax initialisers)"
_SHAPE = (256, 64, 4)  # fan_in 256, fan_out 1024, 65536 draws

# (case name, torch call on a tensor `w`, torchsem factory call, bounded support?)
_RANDOM = [
    ("uniform", "init.uniform_(w, -0.3, 0.7)", "init.uniform(-0.3, 0.7)", True),
    ("normal", "init.normal_(w, 0.5, 2.0)", "init.normal(0.5, 2.0)", False),
    ("trunc_normal", "init.trunc_normal_(w, 0.5, 2.0, -1.0, 3.0)", "init.trunc_normal(0.5, 2.0, -1.0, 3.0)", True),
    ("trunc_normal-default", "init.trunc_normal_(w)", "init.trunc_normal()", True),
    ("xavier_uniform", "init.xavier_uniform_(w, gain=1.5)", "init.xavier_uniform(gain=1.5)", True),
    ("xavier_normal", "init.xavier_normal_(w, gain=1.5)", "init.xavier_normal(gain=1.5)", False),
    ("kaiming_uniform", "init.kaiming_uniform_(w)", "init.kaiming_uniform()", True),
    (
        "kaiming_uniform-linear-default",
        "init.kaiming_uniform_(w, a=math.sqrt(5))",
        "init.kaiming_uniform(a=math.sqrt(5))",
        True,
    ),
    (
        "kaiming_uniform-fan_out-relu",
        "init.kaiming_uniform_(w, mode='fan_out', nonlinearity='relu')",
        "init.kaiming_uniform(mode='fan_out', nonlinearity='relu')",
        True,
    ),
    ("kaiming_normal", "init.kaiming_normal_(w)", "init.kaiming_normal()", False),
    (
        "kaiming_normal-fan_out-relu",
        "init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu')",
        "init.kaiming_normal(mode='fan_out', nonlinearity='relu')",
        False,
    ),
    (
        "kaiming_normal-leaky-0.2",
        "init.kaiming_normal_(w, a=0.2, nonlinearity='leaky_relu')",
        "init.kaiming_normal(a=0.2, nonlinearity='leaky_relu')",
        False,
    ),
]

_STAT_TOLERANCES = {
    # n = 65536 per side; two independent samples are compared.
    "std": Tolerance(2e-2, 0.0, reason="sampling: two sample stds of 65536 draws differ by <= 4e-3 relative (1 sd)"),
    "mean_over_std": Tolerance(
        0.0, 3e-2, reason="sampling: two standardised means of 65536 draws differ by 5.5e-3 (1 sd)"
    ),
    "kurtosis": Tolerance(0.0, 0.15, reason="sampling: two sample kurtoses of 65536 draws differ by <= 0.027 (1 sd)"),
    "min": Tolerance(
        5e-3, 0.0, reason="sampling: the smallest of 65536 draws sits within ~1e-3 of a bounded support's end"
    ),
    "max": Tolerance(
        5e-3, 0.0, reason="sampling: the largest of 65536 draws sits within ~1e-3 of a bounded support's end"
    ),
}


def _statistics(values: np.ndarray, bounded: bool) -> dict[str, Any]:
    values = np.asarray(values, np.float64).ravel()
    centred = values - values.mean()
    std = centred.std()
    stats = {
        "std": np.float32(std),
        "mean_over_std": np.float32(values.mean() / std),
        "kurtosis": np.float32((centred**4).mean() / std**4),
    }
    if bounded:
        stats["min"] = np.float32(values.min())
        stats["max"] = np.float32(values.max())
    return stats


def _random_torch(call: str, bounded: bool):
    def program(inputs):
        import math  # given to the evaluated call

        import torch
        from torch.nn import init

        torch.manual_seed(0)
        w = torch.empty(_SHAPE)
        eval(call, {"init": init, "math": math, "w": w})
        return {**_statistics(w.numpy(), bounded), "dtype": str(w.dtype).replace("torch.", "")}

    return program


def _random_jax(call: str, bounded: bool):
    def program(inputs, jit: bool):
        import functools
        import math

        import jax
        import jax.numpy as jnp

        from torchsem.nn import init

        initializer = eval(call, {"init": init, "math": math})
        draw = functools.partial(initializer, shape=_SHAPE, dtype=jnp.float32)
        w = jitted(draw, jit)(jax.random.key(0))
        return {**_statistics(np.asarray(w), bounded), "dtype": str(w.dtype)}

    return program


def _register_random() -> None:
    for case, torch_call, jax_call, bounded in _RANDOM:
        register(
            Scenario(
                name=f"init/{case}",
                section=_SECTION,
                mapping=f"torch.nn.{torch_call} -> torchsem.nn.{jax_call}(key, shape, dtype)",
                torch_program=_random_torch(torch_call, bounded),
                jax_program=_random_jax(jax_call, bounded),
                tolerances=_STAT_TOLERANCES,
                notes="Summary statistics of 65536 draws of a (256, 64, 4) weight (fan_in 256, fan_out 1024).",
            )
        )


# calculate_gain's cases, one list for both programs.
_GAIN_CASES = (
    ("linear", None),
    ("conv1d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 3),
    ("selu", None),
)


def _deterministic_torch(inputs):
    import torch
    from torch.nn import init

    outputs = {}
    for name, fill in (("zeros", init.zeros_), ("ones", init.ones_)):
        outputs[name] = fill(torch.empty(3, 4))
    outputs["constant"] = init.constant_(torch.empty(2, 5), -1.25)
    for nonlinearity, param in _GAIN_CASES:
        outputs[f"gain_{nonlinearity}_{param}"] = np.float64(init.calculate_gain(nonlinearity, param))
    for shape in ((4, 12), (8, 3, 5), (2, 3, 4, 5), (6, 0), (7, 2, 0)):
        fan_in, fan_out = init._calculate_fan_in_and_fan_out(torch.empty(shape))
        outputs[f"fans_{'x'.join(map(str, shape))}"] = np.array([fan_in, fan_out], np.int64)
    return outputs


def _deterministic_jax(inputs, jit: bool):
    import jax
    import jax.numpy as jnp

    from torchsem.nn import init

    key = jax.random.key(0)

    def fill(initializer, shape):
        return jitted(initializer, jit, static_argnums=1)(key, shape)

    outputs = {
        "zeros": fill(init.zeros(), (3, 4)),
        "ones": fill(init.ones(), (3, 4)),
        "constant": fill(init.constant(-1.25), (2, 5)),
    }
    for nonlinearity, param in _GAIN_CASES:
        outputs[f"gain_{nonlinearity}_{param}"] = np.float64(init.calculate_gain(nonlinearity, param))
    for shape in ((4, 12), (8, 3, 5), (2, 3, 4, 5), (6, 0), (7, 2, 0)):
        outputs[f"fans_{'x'.join(map(str, shape))}"] = np.array(init.calculate_fan_in_and_fan_out(shape), np.int64)
    assert jnp.dtype(outputs["zeros"].dtype) == jnp.float32
    return outputs


_ERRORS = [
    ("unsupported-nonlinearity", "init.calculate_gain('swish')", "init.calculate_gain('swish')"),
    ("bad-negative-slope", "init.calculate_gain('leaky_relu', 'x')", "init.calculate_gain('leaky_relu', 'x')"),
    ("bad-mode", "init.kaiming_uniform_(torch.empty(4, 3), mode='FAN_AVG')", "init.kaiming_uniform(mode='FAN_AVG')"),
    ("fan-of-a-vector", "init.kaiming_normal_(torch.empty(3))", "init.kaiming_normal()(key, (3,))"),
    ("xavier-of-a-vector", "init.xavier_uniform_(torch.empty(3))", "init.xavier_uniform()(key, (3,))"),
    ("uniform-reversed", "init.uniform_(torch.empty(4, 3), 1.0, 0.0)", "init.uniform(1.0, 0.0)"),
    ("normal-negative-std", "init.normal_(torch.empty(4, 3), 0.0, -1.0)", "init.normal(0.0, -1.0)"),
]


def _error_torch(call: str):
    def program(inputs):
        import torch
        from torch.nn import init

        return error_outputs(lambda: eval(call, {"init": init, "torch": torch}))

    return program


def _error_jax(call: str):
    def program(inputs, jit: bool):
        import jax

        from torchsem.nn import init

        # The checks run on static arguments (settings, shapes), before any tracing.
        return error_outputs(lambda: eval(call, {"init": init, "key": jax.random.key(0)}))

    return program


def _register_deterministic() -> None:
    register(
        Scenario(
            name="init/deterministic",
            section=_SECTION,
            mapping="torch.nn.init.{zeros_,ones_,constant_,calculate_gain,_calculate_fan_in_and_fan_out} -> "
            "torchsem.nn.init.{zeros,ones,constant,calculate_gain,calculate_fan_in_and_fan_out}",
            torch_program=_deterministic_torch,
            jax_program=_deterministic_jax,
        )
    )
    for case, torch_call, jax_call in _ERRORS:
        register(
            Scenario(
                name=f"init/error-{case}",
                section=_SECTION,
                mapping=f"torch.nn.{torch_call} raises -> torchsem.nn.{jax_call} raises the same error type "
                "and message",
                torch_program=_error_torch(torch_call),
                jax_program=_error_jax(jax_call),
            )
        )


_register_random()
_register_deterministic()
