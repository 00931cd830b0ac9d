"""OneCycleLR and CyclicLR cycle the momentum too (family ``cycled_momentum``): SGD and Adam driven end to end.

PyTorch's OneCycleLR/CyclicLR (``cycle_momentum=True``, the default) write ``momentum`` (SGD)
or ``betas[0]`` (Adam) into the param group at every ``scheduler.step()``. torchsem's
schedulers expose that sequence as ``.momentum`` (and Adam's ``1 - beta1`` as
``.momentum.complement``), which ``optim.sgd(momentum=...)`` and ``optim.adam(betas=(...,
beta2))`` take. Three parameters, 30 steps with fixed gradients (one of them None at steps
4-6); every parameter after every step is compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._authoring import jitted
from .._scenario import Scenario, register

STEPS = 30
SHAPES = ((3,), (2, 3), (4,))
_NONE = {1: {4, 5, 6}}


def _inputs(seed: int):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for i, shape in enumerate(SHAPES):
            out[f"param{i}"] = rng.standard_normal(shape).astype(np.float32)
            out[f"grads{i}"] = rng.standard_normal((STEPS, *shape)).astype(np.float32)
        return out

    return make


# (name, optimizer, optimizer kwargs, scheduler, scheduler kwargs)
CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "sgd-onecycle-nesterov",
        "sgd",
        {"nesterov": True, "weight_decay": 1e-3},
        "OneCycleLR",
        {"max_lr": 0.5, "total_steps": STEPS},
    ),
    (
        "sgd-cyclic-triangular2",
        "sgd",
        {"dampening": 0.0},
        "CyclicLR",
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "triangular2"},
    ),
    ("adam-onecycle", "adam", {}, "OneCycleLR", {"max_lr": 1e-2, "total_steps": STEPS, "three_phase": True}),
]


def _with_total(scheduler: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "total_steps": STEPS} if scheduler == "OneCycleLR" else dict(kwargs)


def _torch_program(kind: str, options: dict[str, Any], scheduler: str, sched_kwargs: dict[str, Any]):
    def program(inputs):
        import torch

        params = [torch.nn.Parameter(torch.from_numpy(inputs[f"param{i}"].copy())) for i in range(len(SHAPES))]
        if kind == "sgd":
            optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, **options)
        else:
            optimizer = torch.optim.Adam(params, lr=1e-3, **options)
        schedule = getattr(torch.optim.lr_scheduler, scheduler)(optimizer, **_with_total(scheduler, sched_kwargs))
        history: list[list[np.ndarray]] = [[] for _ in SHAPES]
        for step in range(STEPS):
            for i, p in enumerate(params):
                p.grad = None if step + 1 in _NONE.get(i, ()) else torch.from_numpy(inputs[f"grads{i}"][step].copy())
            optimizer.step()
            schedule.step()
            for i, p in enumerate(params):
                history[i].append(p.detach().numpy().copy())
        return {f"param{i} after each step": np.stack(h) for i, h in enumerate(history)}

    return program


def _jax_program(kind: str, options: dict[str, Any], scheduler: str, sched_kwargs: dict[str, Any]):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem import optim
        from torchsem.optim import lr_scheduler

        schedule = getattr(lr_scheduler, scheduler)(**_with_total(scheduler, sched_kwargs))
        if kind == "sgd":
            tx = optim.sgd(lr=schedule, momentum=schedule.momentum, **options)
        else:
            tx = optim.adam(lr=schedule, betas=(schedule.momentum, 0.999), **options)
        params = [jnp.asarray(inputs[f"param{i}"]) for i in range(len(SHAPES))]
        state = tx.init(params)
        run = jitted(lambda g, s, p: optim.step(tx, g, s, p), jit)
        history: list[list[np.ndarray]] = [[] for _ in SHAPES]
        for step in range(STEPS):
            grads = [
                None if step + 1 in _NONE.get(i, ()) else jnp.asarray(inputs[f"grads{i}"][step])
                for i in range(len(SHAPES))
            ]
            params, state = run(grads, state, params)
            for i, p in enumerate(params):
                history[i].append(np.asarray(p))
        return {f"param{i} after each step": np.stack(h) for i, h in enumerate(history)}

    return program


_MOMENTUM_ARGUMENT = {"sgd": "momentum=schedule.momentum", "adam": "betas=(schedule.momentum, b2)"}

for _seed, (_name, _kind, _options, _scheduler, _sched_kwargs) in enumerate(CASES, start=2301):
    register(
        Scenario(
            name=f"cycled_momentum/{_name}",
            section="torchsem.optim.lr_scheduler: cycled momentum (training kit)",
            mapping=f"torch.optim.lr_scheduler.{_scheduler}(optimizer, ...) cycling "
            f"{'momentum' if _kind == 'sgd' else 'betas[0]'} -> "
            f"optim.{_kind}(lr=schedule, {_MOMENTUM_ARGUMENT[_kind]})",
            make_inputs=_inputs(_seed),
            torch_program=_torch_program(_kind, _options, _scheduler, _sched_kwargs),
            jax_program=_jax_program(_kind, _options, _scheduler, _sched_kwargs),
        )
    )
