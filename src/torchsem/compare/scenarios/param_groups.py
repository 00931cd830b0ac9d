"""Parameter groups: ``torch.optim.X([{"params": ..., **overrides}, ...], **defaults)`` against ``optim.param_groups``.

Family ``param_groups``. Five named parameters (``fc.weight``, ``fc.bias``, ``bn.weight``,
``bn.bias``, ``head.weight``) stepped for 12 steps with fixed gradients (``bn.bias`` has none at
steps 3-5); each case groups them as a training script does (no weight decay on biases and
norm parameters, a larger learning rate for one block, a parameter left out of every group) and
compares every parameter after every step, and each group's resolved hyperparameters against
``optimizer.param_groups``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._authoring import jitted
from .._scenario import Scenario, register

_SECTION = "torchsem.optim parameter groups (training kit)"
STEPS = 12
SHAPES = {"bn.bias": (3,), "bn.weight": (3,), "fc.bias": (4,), "fc.weight": (4, 3), "head.weight": (2, 4)}
_NONE = {"bn.bias": {3, 4, 5}}  # 1-based steps without a gradient


def _is_decayed(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) > 1


# (case, optimizer, groups as (selection kind, overrides), defaults). A selection is "decayed",
# "not_decayed" (by shape, as a predicate), or a list of dotted names / prefixes.
CASES: list[tuple[str, str, list[tuple[Any, dict[str, Any]]], dict[str, Any]]] = [
    (
        "sgd-no-decay-on-biases-and-norms",
        "sgd",
        [("decayed", {"weight_decay": 5e-4}), ("not_decayed", {"lr": 0.05})],
        {"lr": 0.1, "momentum": 0.9},
    ),
    (
        "adamw-per-block-lr",
        "adamw",
        [(["fc"], {"lr": 1e-2, "betas": (0.8, 0.99)}), (["bn", "head.weight"], {})],
        {"lr": 1e-3, "weight_decay": 0.1},
    ),
    (
        "adam-a-parameter-in-no-group",
        "adam",
        [(["fc.weight", "bn"], {"amsgrad": True}), (["fc.bias"], {"lr": 0.1})],
        {"lr": 1e-2},
    ),
]


def _selected(selection: Any) -> list[str]:
    if selection == "decayed":
        return [n for n, s in SHAPES.items() if _is_decayed(n, s)]
    if selection == "not_decayed":
        return [n for n, s in SHAPES.items() if not _is_decayed(n, s)]
    return [n for n in SHAPES if any(n == p or n.startswith(p + ".") for p in selection)]


def _inputs(seed: int):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs: dict[str, np.ndarray] = {}
        for name, shape in SHAPES.items():
            inputs[f"param {name}"] = rng.standard_normal(shape).astype(np.float32)
            inputs[f"grads {name}"] = rng.standard_normal((STEPS, *shape)).astype(np.float32)
        return inputs

    return make


_HYPER = ("lr", "momentum", "weight_decay", "betas", "amsgrad", "eps", "dampening")


def _hyper_outputs(groups: list[dict[str, Any]]) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for index, group in enumerate(groups):
        for key in _HYPER:
            if key in group:
                outputs[f"group{index} {key}"] = np.asarray(group[key], np.float64)
    return outputs


def _torch_program(kind: str, groups: list[tuple[Any, dict[str, Any]]], defaults: dict[str, Any]):
    def program(inputs):
        import torch

        params = {n: torch.nn.Parameter(torch.from_numpy(inputs[f"param {n}"].copy())) for n in SHAPES}
        optimizer_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
        optimizer = optimizer_class(
            [{"params": [params[n] for n in _selected(sel)], **over} for sel, over in groups], **defaults
        )
        history: dict[str, list[np.ndarray]] = {n: [] for n in SHAPES}
        for step in range(STEPS):
            for name, p in params.items():
                none = step + 1 in _NONE.get(name, ())
                p.grad = None if none else torch.from_numpy(inputs[f"grads {name}"][step].copy())
            optimizer.step()
            for name, p in params.items():
                history[name].append(p.detach().numpy().copy())
        outputs: dict[str, Any] = {f"{n} after each step": np.stack(v) for n, v in history.items()}
        outputs.update(_hyper_outputs(optimizer.param_groups))
        return outputs

    return program


def _jax_program(kind: str, groups: list[tuple[Any, dict[str, Any]]], defaults: dict[str, Any]):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem import optim
        from torchsem.tree import unflatten_mapping

        def selection(sel: Any) -> Any:
            if sel == "decayed":
                return lambda name, p: p.ndim > 1
            if sel == "not_decayed":
                return lambda name, p: p.ndim <= 1
            return list(sel)

        factory = {"sgd": optim.sgd, "adam": optim.adam, "adamw": optim.adamw}[kind]
        tx = optim.param_groups(factory, [{"params": selection(sel), **over} for sel, over in groups], **defaults)
        template = {"bn": {"bias": 0, "weight": 0}, "fc": {"bias": 0, "weight": 0}, "head": {"weight": 0}}
        params = unflatten_mapping(template, {n: jnp.asarray(inputs[f"param {n}"]) for n in SHAPES})
        state = tx.init(params)
        run = jitted(lambda g, s, p: optim.step(tx, g, s, p), jit)
        history: dict[str, list[np.ndarray]] = {n: [] for n in SHAPES}
        for step in range(STEPS):
            flat = {
                n: None if step + 1 in _NONE.get(n, ()) else jnp.asarray(inputs[f"grads {n}"][step]) for n in SHAPES
            }
            params, state = run(unflatten_mapping(template, flat), state, params)
            for name in SHAPES:
                head, leaf = name.split(".")
                history[name].append(np.asarray(params[head][leaf]))
        outputs: dict[str, Any] = {f"{n} after each step": np.stack(v) for n, v in history.items()}
        outputs.update(_hyper_outputs(list(tx.param_groups)))
        return outputs

    return program


for _seed, (_name, _kind, _groups, _defaults) in enumerate(CASES, start=2101):
    register(
        Scenario(
            name=f"param_groups/{_name}",
            section=_SECTION,
            mapping=f"torch.optim.{_kind}([{{'params': ..., **overrides}}, ...], **defaults) -> "
            f"torchsem.optim.param_groups(optim.{_kind}, [{{'params': selector, **overrides}}, ...], **defaults)",
            make_inputs=_inputs(_seed),
            torch_program=_torch_program(_kind, _groups, _defaults),
            jax_program=_jax_program(_kind, _groups, _defaults),
        )
    )
