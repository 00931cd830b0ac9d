"""Dropout parity: eval identity, p=0, p=1, the kept entries' exact scale, mask statistics, errors.

Family ``dropout``. The mask's bits cannot agree (PyTorch's generator is not JAX's), so the
random cases compare what is deterministic about them: every kept entry is exactly
``x * (1 / (1 - p))`` as PyTorch rounds it, dropped entries are ``x * 0``, and the kept
fraction is ``1 - p`` up to sampling noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.Dropout (model.train()/model.eval(), section 5)"
_N = 65536


def _inputs(seed: int):
    def make() -> dict[str, np.ndarray]:
        return {"x": np.random.default_rng(seed).standard_normal((_N // 256, 256)).astype(np.float32)}

    return make


def _summary(x: np.ndarray, y: np.ndarray, scale: Any) -> dict[str, Any]:
    """The kept fraction, and how far kept entries are from ``x * scale`` (0 when exact)."""
    kept = y != 0
    return {
        "keep_fraction": np.float32(kept.mean()),
        "kept_minus_x_times_scale": np.float32(np.abs(y[kept] - x[kept] * scale).max(initial=0.0)),
    }


def _train_torch(p: float):
    def program(inputs):
        import torch

        torch.manual_seed(0)
        x = torch.from_numpy(inputs["x"])
        y = torch.nn.Dropout(p)(x)
        ones = torch.nn.Dropout(p)(torch.ones(_N))  # kept entries are the noise value itself
        scale = ones.max().numpy()
        return {**_summary(inputs["x"], y.numpy(), scale), "scale": scale, "dropped_value": ones.min()}

    return program


def _train_jax(p: float):
    def program(inputs, jit: bool):
        import jax
        import jax.numpy as jnp

        from torchsem.nn import Dropout

        layer = Dropout(p)

        def run(v, key):
            return layer.apply({}, v, deterministic=False, rngs={"dropout": key})

        if jit:
            run = jax.jit(run)
        y = np.asarray(run(inputs["x"], jax.random.key(0)))
        ones = run(jnp.ones(_N), jax.random.key(1))
        scale = np.asarray(ones.max())
        return {**_summary(inputs["x"], y, scale), "scale": scale, "dropped_value": ones.min()}

    return program


_TRAIN_TOLERANCES = {
    "keep_fraction": Tolerance(
        0.0, 1.5e-2, reason="sampling: two kept fractions of 65536 Bernoulli draws differ by <= 2.8e-3 (1 sd)"
    ),
    "kept_minus_x_times_scale": Tolerance(0.0, 0.0, reason="exact: each kept entry is x times the float32 noise value"),
    "scale": Tolerance(0.0, 0.0, reason="exact: the noise value 1/(1-p), rounded to float32 as PyTorch does"),
}


def _register() -> None:
    for i, p in enumerate((0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9)):
        register(
            Scenario(
                name=f"dropout/train-p={p:.4g}",
                section=_SECTION,
                mapping=f"torch.nn.Dropout({p:.4g}) in train() -> torchsem.nn.Dropout({p:.4g}).apply(..., "
                f"rngs={{'dropout': key}})",
                make_inputs=_inputs(300 + i),
                torch_program=_train_torch(p),
                jax_program=_train_jax(p),
                tolerances=_TRAIN_TOLERANCES,
            )
        )
    # The deterministic cases through the generic module runner: eval is the identity, p=0 in
    # train too, p=1 zeroes everything (inf, -inf and NaN become NaN: x * 0, as PyTorch).
    nonfinite = Input((4, 16), fixed=(np.inf, -np.inf, np.nan, 0.0))
    dropout = ("torch.nn.Dropout", "torchsem.nn.Dropout")
    register_module_cases(
        "dropout",
        _SECTION,
        [
            ModuleCase(*dropout, (0.5,), inputs=(nonfinite,), modes=("eval",), seed=310),
            ModuleCase(*dropout, (1.0,), inputs=(nonfinite,), modes=("eval",), seed=311),
            ModuleCase(*dropout, (0.0,), inputs=(nonfinite,), modes=("train",), seed=312),
            ModuleCase(*dropout, (1.0,), inputs=(nonfinite,), modes=("train",), seed=313),
            ErrorCase(*dropout, "p=1.5", (1.5,)),
            ErrorCase(*dropout, "p=-0.1", (-0.1,)),
        ],
    )


_register()


# PyTorch's own masks: a small network with three dropouts trained for three SGD steps, PyTorch
# seeded with torch.manual_seed(s), torchsem with Generator(s) for the init replay and the masks.
_EXACT_STEPS = 3


def _exact_layers(nn: Any) -> Any:
    return nn.Sequential(
        nn.Linear(6, 8), nn.Dropout(0.25), nn.Tanh(), nn.Dropout1d(0.5), nn.Linear(8, 4), nn.Dropout(0.1)
    )


def _exact_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(320)
    return {
        "x": rng.standard_normal((_EXACT_STEPS, 5, 6)).astype(np.float32),
        "c": rng.standard_normal((_EXACT_STEPS, 5, 4)).astype(np.float32),
    }


def _exact_torch(inputs: Any) -> dict[str, Any]:
    import torch

    torch.manual_seed(321)
    model = _exact_layers(torch.nn)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    outputs: dict[str, Any] = {}
    for step in range(_EXACT_STEPS):
        optimizer.zero_grad()
        y = model(torch.from_numpy(inputs["x"][step]))
        (y * torch.from_numpy(inputs["c"][step])).sum().backward()
        optimizer.step()
        outputs[f"step{step}.output"] = y.detach().numpy()
        outputs[f"step{step}.grad 0.weight"] = model[0].weight.grad.numpy()
    outputs["weight after"] = model[4].weight.detach().numpy()
    return outputs


def _exact_jax(inputs: Any, jit: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import torchsem.nn
    from torchsem import optim
    from torchsem.random import Generator, torch_init

    from .. import jitted

    generator = Generator(321)
    model = _exact_layers(torchsem.nn)
    params = torch_init(model, generator, jnp.asarray(inputs["x"][0]), deterministic=True)["params"]
    tx = optim.sgd(0.1)
    state = tx.init(params)

    def step(params, state, x, c):
        def loss(p):
            y = model.apply({"params": p}, x, deterministic=False)
            return jnp.sum(y * c), y

        (_, y), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, y, grads

    outputs: dict[str, Any] = {}
    with torchsem.nn.torch_dropout(generator):
        run = jitted(step, jit)
        for i in range(_EXACT_STEPS):
            params, state, y, grads = run(params, state, inputs["x"][i], inputs["c"][i])
            outputs[f"step{i}.output"] = y
            outputs[f"step{i}.grad 0.weight"] = grads["0"]["weight"]
    outputs["weight after"] = params["4"]["weight"]
    return outputs


register(
    Scenario(
        name="dropout/torch-generator-masks",
        section=_SECTION,
        mapping="torch.manual_seed(s); model(x) in train() with Dropout/Dropout1d -> "
        "g = Generator(s); torch_init(model, g, x); with torchsem.nn.torch_dropout(g): model.apply(...)",
        make_inputs=_exact_inputs,
        torch_program=_exact_torch,
        jax_program=_exact_jax,
        notes="PyTorch's own dropout masks, drawn from torchsem.random.Generator in call order",
    )
)
