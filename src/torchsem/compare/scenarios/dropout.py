"""Dropout parity: eval identity, p=0, p=1, the kept entries' exact scale, mask statistics, errors.

Family ``dropout``. The mask's bits cannot agree (PyTorch's generator is not JAX's), so the
random cases compare what is deterministic about them: every kept entry is exactly
``x * (1 / (1 - p))`` as PyTorch rounds it, dropped entries are ``x * 0``, and the kept
fraction is ``1 - p`` up to sampling noise.
"""

from __future__ import annotations

import numpy as np

from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.Dropout (model.train()/model.eval(), section 5)"
_N = 65536


def _inputs(seed: int, special: bool = False):
    def make() -> dict[str, np.ndarray]:
        shape = (4, 16) if special else (_N // 256, 256)  # the deterministic cases record their whole output
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        if special:
            x[0, :4] = [np.inf, -np.inf, np.nan, 0.0]
        return {"x": x}
    return make


def _summary(x: np.ndarray, y: np.ndarray, scale: np.float32) -> dict[str, np.ndarray]:
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
            return layer.apply({}, v, rngs={"dropout": key})

        if jit:
            run = jax.jit(run)
        y = np.asarray(run(inputs["x"], jax.random.key(0)))
        ones = run(jnp.ones(_N), jax.random.key(1))
        scale = np.asarray(ones.max())
        return {**_summary(inputs["x"], y, scale), "scale": scale, "dropped_value": ones.min()}
    return program


_TRAIN_TOLERANCES = {
    "keep_fraction": Tolerance(0.0, 1.5e-2, reason="sampling: two kept fractions of 65536 Bernoulli draws differ by <= 2.8e-3 (1 sd)"),
    "kept_minus_x_times_scale": Tolerance(0.0, 0.0, reason="exact: each kept entry is x times the float32 noise value"),
    "scale": Tolerance(0.0, 0.0, reason="exact: the noise value 1/(1-p), rounded to float32 as PyTorch does"),
}


def _fixed_torch(p: float, train: bool):
    def program(inputs):
        import torch

        layer = torch.nn.Dropout(p)
        layer.train(train)
        return {"y": layer(torch.from_numpy(inputs["x"]))}
    return program


def _fixed_jax(p: float, train: bool):
    def program(inputs, jit: bool):
        import jax

        from torchsem.nn import Dropout

        def run(v):
            # No rng stream: deterministic cases must not need one.
            return Dropout(p).apply({}, v, deterministic=not train)

        return {"y": (jax.jit(run) if jit else run)(inputs["x"])}
    return program


def _error_torch(p: float):
    def program(inputs):
        import torch

        try:
            torch.nn.Dropout(p)
        except ValueError as error:
            return {"message": str(error)}
        return {"message": "no error"}
    return program


def _error_jax(p: float):
    def program(inputs, jit: bool):
        from torchsem.nn import Dropout

        try:
            Dropout(p)
        except ValueError as error:
            return {"message": str(error)}
        return {"message": "no error"}
    return program


def _register() -> None:
    for i, p in enumerate((0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9)):
        register(Scenario(
            name=f"dropout/train-p={p:.4g}",
            section=_SECTION,
            mapping=f"torch.nn.Dropout({p:.4g}) in train() -> torchsem.nn.Dropout({p:.4g}).apply(..., rngs={{'dropout': key}})",
            make_inputs=_inputs(300 + i),
            torch_program=_train_torch(p),
            jax_program=_train_jax(p),
            tolerances=_TRAIN_TOLERANCES,
        ))
    for case, p, train in (("eval-p=0.5", 0.5, False), ("eval-p=1", 1.0, False), ("train-p=0", 0.0, True),
                           ("train-p=1", 1.0, True)):
        register(Scenario(
            name=f"dropout/{case}",
            section=_SECTION,
            mapping=f"torch.nn.Dropout({p}) in {'train' if train else 'eval'}() -> "
                    f"torchsem.nn.Dropout({p}).apply(..., deterministic={not train})",
            make_inputs=_inputs(310, special=True),
            torch_program=_fixed_torch(p, train),
            jax_program=_fixed_jax(p, train),
            notes="The input holds inf, -inf, NaN and 0: p=1 turns them into NaN, NaN, NaN, 0 (x * 0), as PyTorch does.",
        ))
    for p in (1.5, -0.1):
        register(Scenario(
            name=f"dropout/error-p={p}",
            section=_SECTION,
            mapping=f"torch.nn.Dropout({p}) raises -> torchsem.nn.Dropout({p}) raises the same ValueError",
            torch_program=_error_torch(p),
            jax_program=_error_jax(p),
        ))


_register()
