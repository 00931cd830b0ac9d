"""Gradient clipping (family ``clip``): ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``
against torchsem's optax transformations.

Four gradients (one of them None, one long enough for PyTorch's vectorised kernels) are
clipped by both; compared: every clipped gradient (None where PyTorch's ``.grad`` is None)
and the total norm ``clip_grad_norm_`` returns (torchsem: the transformation's state). Norm
types 2, 1, inf, 3 and 0.5, a norm under ``max_norm`` (the factor clamps to 1), non-finite
gradients with and without ``error_if_nonfinite``, no gradients at all, and clipping
followed by SGD steps through ``optax.chain``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.optim.clip_grad_norm / clip_grad_value"
_SHAPES = ((3,), (4, 5), (1000,), (2, 2, 3))
_NONE = 1  # the parameter whose gradient is None


def _inputs(special: str | None = None, seed: int = 700):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs = {f"grad{i}": rng.standard_normal(shape).astype(np.float32) for i, shape in enumerate(_SHAPES)}
        if special == "inf":
            inputs["grad0"][1] = np.inf
        elif special == "nan":
            inputs["grad2"][17] = np.nan
        inputs["present"] = np.array([i != _NONE for i in range(len(_SHAPES))])
        return inputs

    return make


def _torch_clip(call: str, options: dict[str, Any], present: bool = True):
    def program(inputs):
        import torch

        params = [torch.nn.Parameter(torch.zeros(shape)) for shape in _SHAPES]
        for index, param in enumerate(params):
            if present and inputs["present"][index]:
                param.grad = torch.from_numpy(inputs[f"grad{index}"].copy())
        outputs: dict[str, Any] = {}
        if call == "norm":
            outputs["total_norm"] = torch.nn.utils.clip_grad_norm_(params, **options)
        else:
            torch.nn.utils.clip_grad_value_(params, **options)
        for index, param in enumerate(params):
            outputs[f"grad{index}"] = param.grad
        return outputs

    return program


def _jax_clip(call: str, options: dict[str, Any], present: bool = True):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem.optim import clip_grad_norm, clip_grad_value

        grads = [
            jnp.asarray(inputs[f"grad{i}"]) if present and inputs["present"][i] else None for i in range(len(_SHAPES))
        ]
        tx = clip_grad_norm(**options) if call == "norm" else clip_grad_value(**options)
        state = tx.init([jnp.zeros(shape) for shape in _SHAPES])
        clipped, state = jitted(tx.update, jit)(grads, state)
        outputs: dict[str, Any] = {}
        if call == "norm":
            outputs["total_norm"] = state.total_norm
        for index, grad in enumerate(clipped):
            outputs[f"grad{index}"] = grad
        return outputs

    return program


_NORM_CASES: dict[str, tuple[dict[str, Any], str | None]] = {
    "norm=2": (dict(max_norm=1.0), None),
    "norm=2-under-max_norm": (dict(max_norm=1e3), None),
    "norm=1": (dict(max_norm=0.5, norm_type=1.0), None),
    "norm=inf": (dict(max_norm=0.1, norm_type=math.inf), None),
    "norm=inf-string": (dict(max_norm=0.1, norm_type="inf"), None),
    "norm=3": (dict(max_norm=2.0, norm_type=3), None),
    "norm=0.5": (dict(max_norm=100.0, norm_type=0.5), None),
    "nonfinite-inf-scaled-anyway": (dict(max_norm=1.0), "inf"),
    "nonfinite-nan-scaled-anyway": (dict(max_norm=1.0, norm_type=1.0), "nan"),
}

for _case, (_options, _special) in _NORM_CASES.items():
    register(
        Scenario(
            name=f"clip/clip_grad_norm/{_case}",
            section=_SECTION,
            mapping=f"torch.nn.utils.clip_grad_norm_(params, {', '.join(f'{k}={v!r}' for k, v in _options.items())}) "
            "-> torchsem.optim.clip_grad_norm(...).update(grads, state); state.total_norm",
            make_inputs=_inputs(_special),
            torch_program=_torch_clip("norm", _options),
            jax_program=_jax_clip("norm", _options),
            notes="Per-tensor norms, then the norm of the norms; factor max_norm / (norm + 1e-6) clamped to 1. "
            "The per-tensor sums are XLA's order, not PyTorch's: the norm may differ in the last bits.",
        )
    )

register(
    Scenario(
        name="clip/clip_grad_norm/no-gradients",
        section=_SECTION,
        mapping="clip_grad_norm_ on parameters without .grad -> total norm 0, gradients None",
        make_inputs=_inputs(),
        torch_program=_torch_clip("norm", dict(max_norm=1.0), present=False),
        jax_program=_jax_clip("norm", dict(max_norm=1.0), present=False),
    )
)

for _case, _options, _special in (
    ("clip_value=0.3-nan", dict(clip_value=0.3), "nan"),
    ("clip_value=-0.2", dict(clip_value=-0.2), None),
):
    register(
        Scenario(
            name=f"clip/clip_grad_value/{_case}",
            section=_SECTION,
            mapping=f"torch.nn.utils.clip_grad_value_(params, {_options['clip_value']}) -> "
            "torchsem.optim.clip_grad_value(...).update(grads, state)",
            make_inputs=_inputs(_special),
            torch_program=_torch_clip("value", _options),
            jax_program=_jax_clip("value", _options),
            notes="clamp_min(-c) then clamp_max(c): NaN stays NaN, a negative clip_value sets every element to it.",
        )
    )


# ------------------------------------------------------------------------ errors


def _error_torch(options: dict[str, Any], special: str | None):
    def program(inputs):
        import torch

        params = [torch.nn.Parameter(torch.zeros(shape)) for shape in _SHAPES]
        for index, param in enumerate(params):
            if inputs["present"][index]:
                param.grad = torch.from_numpy(inputs[f"grad{index}"].copy())
        return error_outputs(lambda: torch.nn.utils.clip_grad_norm_(params, **options))

    return program


def _error_jax(options: dict[str, Any], special: str | None):
    def program(inputs, jit):
        import jax
        import jax.numpy as jnp

        from torchsem.optim import clip_grad_norm

        grads = [jnp.asarray(inputs[f"grad{i}"]) if inputs["present"][i] else None for i in range(len(_SHAPES))]

        def attempt():
            tx = clip_grad_norm(**options)
            clipped, _ = jitted(tx.update, jit)(grads, tx.init(grads))
            jax.block_until_ready(clipped)

        return error_outputs(attempt)

    return program


_CONTAINED = Tolerance(
    0.0,
    0.0,
    reason="under jax.jit the error is raised in a host callback and arrives as JAX's runtime error (a "
    "RuntimeError) whose text contains PyTorch's message",
    text="contained",
)

for _case, _options, _special in (
    ("nonfinite-error", dict(max_norm=1.0, error_if_nonfinite=True), "inf"),
    ("nan-error", dict(max_norm=1.0, norm_type=math.inf, error_if_nonfinite=True), "nan"),
    ("finite-no-error", dict(max_norm=1.0, error_if_nonfinite=True), None),
    ("norm_type-fro", dict(max_norm=1.0, norm_type="fro"), None),
):
    register(
        Scenario(
            name=f"clip/errors/{_case}",
            section=_SECTION,
            mapping="clip_grad_norm_(..., error_if_nonfinite=True) / a bad norm_type -> the same error and message",
            make_inputs=_inputs(_special),
            torch_program=_error_torch(_options, _special),
            jax_program=_error_jax(_options, _special),
            tolerances={"error message": _CONTAINED},
        )
    )


# ------------------------------------------------------------------------ clipping, then SGD

_TRAIN_STEPS = 5


def _train_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(710)
    return {
        "w": rng.standard_normal((4, 3)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "xs": rng.standard_normal((_TRAIN_STEPS, 8, 3)).astype(np.float32) * 3,
        "ys": rng.standard_normal((_TRAIN_STEPS, 8, 4)).astype(np.float32),
    }


def _train_torch(inputs):
    import torch

    w = torch.nn.Parameter(torch.from_numpy(inputs["w"].copy()))
    b = torch.nn.Parameter(torch.from_numpy(inputs["b"].copy()))
    optimizer = torch.optim.SGD([w, b], lr=0.1, momentum=0.9)
    outputs: dict[str, list] = {"w": [], "b": [], "total_norm": []}
    for step in range(_TRAIN_STEPS):
        optimizer.zero_grad()
        x, y = torch.from_numpy(inputs["xs"][step]), torch.from_numpy(inputs["ys"][step])
        ((x @ w.T + b - y) ** 2).mean().backward()
        outputs["total_norm"].append(torch.nn.utils.clip_grad_norm_([w, b], max_norm=0.5).detach().numpy())
        optimizer.step()
        outputs["w"].append(w.detach().numpy().copy())
        outputs["b"].append(b.detach().numpy().copy())
    return {name: np.stack(values) for name, values in outputs.items()}


def _train_jax(inputs, jit):
    import jax
    import jax.numpy as jnp
    import optax

    from torchsem import optim
    from torchsem.optim import clip_grad_norm

    params = {"w": jnp.asarray(inputs["w"]), "b": jnp.asarray(inputs["b"])}
    tx = optax.chain(clip_grad_norm(max_norm=0.5), optim.sgd(lr=0.1, momentum=0.9))
    state = tx.init(params)

    def one_step(params, state, x, y):
        grads = jax.grad(lambda p: ((x @ p["w"].T + p["b"] - y) ** 2).mean())(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    one_step = jitted(one_step, jit)
    outputs: dict[str, list] = {"w": [], "b": [], "total_norm": []}
    for step in range(_TRAIN_STEPS):
        params, state = one_step(params, state, jnp.asarray(inputs["xs"][step]), jnp.asarray(inputs["ys"][step]))
        outputs["total_norm"].append(np.asarray(state[0].total_norm))
        outputs["w"].append(np.asarray(params["w"]))
        outputs["b"].append(np.asarray(params["b"]))
    return {name: np.stack(values) for name, values in outputs.items()}


register(
    Scenario(
        name="clip/clip_grad_norm/then-sgd",
        section=_SECTION,
        mapping="loss.backward(); clip_grad_norm_(params, 0.5); SGD(lr=0.1, momentum=0.9).step() -> "
        "optax.chain(torchsem.optim.clip_grad_norm(0.5), torchsem.optim.sgd(lr=0.1, momentum=0.9))",
        make_inputs=_train_inputs,
        torch_program=_train_torch,
        jax_program=_train_jax,
        notes="5 steps of a linear least-squares model, clipped every step.",
    )
)
