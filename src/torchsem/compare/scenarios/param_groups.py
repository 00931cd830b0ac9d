"""Parameter groups: ``torch.optim.X([{"params": ..., **overrides}, ...], **defaults)`` against ``optim.param_groups``.

Family ``param_groups``. Five named parameters (``fc.weight``, ``fc.bias``, ``bn.weight``,
``bn.bias``, ``head.weight``) stepped for 12 steps with fixed gradients (``bn.bias`` has none at
steps 3-5); each case groups them as a training script does (no weight decay on biases and
norm parameters, a larger learning rate for one block, a parameter left out of every group) and
compares every parameter after every step, and each group's resolved hyperparameters against
``optimizer.param_groups``. Halfway, each side saves its whole ``state_dict()`` and loads it into
a fresh optimizer (``optim.state_dict`` / ``optim.load_state_dict`` with ``tx=``), and at the end
the whole ``state_dict()`` is compared: every group's keys, their order, values and types, the
``params`` indices, and every per-parameter buffer. Further cases: the ``param_groups`` entries
of every optimizer class, a scheduled ``lr`` (its value now and ``initial_lr``), and PyTorch's
``load_state_dict`` errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, register

_SECTION = "torchsem.optim parameter groups (training kit)"
STEPS = 12
SHAPES = {"bn.bias": (3,), "bn.weight": (3,), "fc.bias": (4,), "fc.weight": (4, 3), "head.weight": (2, 4)}
ORDER = list(SHAPES)  # the order the PyTorch program creates (and lists) the parameters in
RELOAD_AT = STEPS // 2  # after this many steps both sides save the whole state_dict and load it afresh
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


def _described(value: Any) -> Any:
    """A param_groups value with its type, as a string can show it (a tensor lr as its float)."""
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, [_described(v) for v in value])
    if hasattr(value, "shape"):
        return ("tensor", float(value))
    return (type(value).__name__, value)


def state_dict_outputs(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A whole optimizer ``state_dict()`` as outputs: the groups (keys, order, types, values) and each buffer."""
    groups = [[(key, _described(value)) for key, value in group.items()] for group in state_dict["param_groups"]]
    outputs: dict[str, Any] = {
        "state_dict keys": repr(list(state_dict)),
        "state_dict param_groups": repr(groups),
        "state_dict state layout": repr([(int(index), list(entry)) for index, entry in state_dict["state"].items()]),
    }
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            outputs[f"state_dict state {index} {key}"] = np.asarray(value)
    return outputs


def _torch_program(kind: str, groups: list[tuple[Any, dict[str, Any]]], defaults: dict[str, Any]):
    def program(inputs):
        import torch

        params = {n: torch.nn.Parameter(torch.from_numpy(inputs[f"param {n}"].copy())) for n in SHAPES}
        optimizer_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]

        def build():
            return optimizer_class(
                [{"params": [params[n] for n in _selected(sel)], **over} for sel, over in groups], **defaults
            )

        optimizer = build()
        history: dict[str, list[np.ndarray]] = {n: [] for n in SHAPES}
        for step in range(STEPS):
            if step == RELOAD_AT:
                saved = optimizer.state_dict()
                optimizer = build()
                optimizer.load_state_dict(saved)
            for name, p in params.items():
                none = step + 1 in _NONE.get(name, ())
                p.grad = None if none else torch.from_numpy(inputs[f"grads {name}"][step].copy())
            optimizer.step()
            for name, p in params.items():
                history[name].append(p.detach().numpy().copy())
        outputs: dict[str, Any] = {f"{n} after each step": np.stack(v) for n, v in history.items()}
        outputs.update(_hyper_outputs(optimizer.param_groups))
        outputs.update(state_dict_outputs(optimizer.state_dict()))
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
            if step == RELOAD_AT:
                saved = optim.state_dict(state, ORDER, tx=tx)
                state = optim.load_state_dict(tx.init(params), saved, ORDER, tx=tx)
            flat = {
                n: None if step + 1 in _NONE.get(n, ()) else jnp.asarray(inputs[f"grads {n}"][step]) for n in SHAPES
            }
            params, state = run(unflatten_mapping(template, flat), state, params)
            for name in SHAPES:
                head, leaf = name.split(".")
                history[name].append(np.asarray(params[head][leaf]))
        outputs: dict[str, Any] = {f"{n} after each step": np.stack(v) for n, v in history.items()}
        outputs.update(_hyper_outputs(list(tx.param_groups)))
        outputs.update(state_dict_outputs(optim.state_dict(state, ORDER, tx=tx)))
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


# ---------------------------------------------------------------- the param_groups entries of every class

CLASSES = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
    "Adadelta": "adadelta",
    "Adamax": "adamax",
    "NAdam": "nadam",
    "RAdam": "radam",
}
# Per class: the defaults alone, then two groups (the second sets weight_decay and lr, in that
# order: PyTorch lists a group's own keys first) with a constructor argument given.
_GIVEN = {"SGD": {"momentum": 0.9}, "RMSprop": {"alpha": 0.9}, "Adagrad": {"lr_decay": 0.01}, "Adadelta": {"rho": 0.8}}


def _every_class_torch(inputs):
    import torch

    outputs: dict[str, Any] = {}
    for torch_name in CLASSES:
        params = {n: torch.nn.Parameter(torch.from_numpy(inputs[f"param {n}"].copy())) for n in SHAPES}
        optimizer_class = getattr(torch.optim, torch_name)
        alone = optimizer_class(list(params.values()))
        outputs.update({f"{torch_name} {k}": v for k, v in state_dict_outputs(alone.state_dict()).items()})
        grouped = optimizer_class(
            [
                {"params": [params[n] for n in ORDER if n.startswith("fc")]},
                {"params": [params[n] for n in ORDER if not n.startswith("fc")], "weight_decay": 0.0, "lr": 0.05},
            ],
            **_GIVEN.get(torch_name, {}),
        )
        outputs.update({f"{torch_name} groups {k}": v for k, v in state_dict_outputs(grouped.state_dict()).items()})
    return outputs


def _every_class_jax(inputs, jit):
    import jax.numpy as jnp

    from torchsem import optim
    from torchsem.tree import unflatten_mapping

    template = {"bn": {"bias": 0, "weight": 0}, "fc": {"bias": 0, "weight": 0}, "head": {"weight": 0}}
    params = unflatten_mapping(template, {n: jnp.asarray(inputs[f"param {n}"]) for n in SHAPES})
    outputs: dict[str, Any] = {}
    for torch_name, factory_name in CLASSES.items():
        factory = getattr(optim, factory_name)
        alone = optim.param_groups(factory)
        saved = optim.state_dict(alone.init(params), ORDER, tx=alone, params=params)
        outputs.update({f"{torch_name} {k}": v for k, v in state_dict_outputs(saved).items()})
        grouped = optim.param_groups(
            factory,
            [{"params": "fc"}, {"params": ["bn", "head"], "weight_decay": 0.0, "lr": 0.05}],
            **_GIVEN.get(torch_name, {}),
        )
        saved = optim.state_dict(grouped.init(params), ORDER, tx=grouped, params=params)
        outputs.update({f"{torch_name} groups {k}": v for k, v in state_dict_outputs(saved).items()})
    return outputs


register(
    Scenario(
        name="param_groups/state-dict-entries-of-every-class",
        section=_SECTION,
        mapping="torch.optim.X(...).state_dict()['param_groups'] -> "
        "torchsem.optim.state_dict(state, order, tx=optim.param_groups(optim.x, ...))['param_groups']",
        make_inputs=_inputs(2201),
        torch_program=_every_class_torch,
        jax_program=_every_class_jax,
    )
)


# ---------------------------------------------------------------- a scheduled lr: its value now and initial_lr


def _scheduled_torch(inputs):
    import torch

    params = {n: torch.nn.Parameter(torch.from_numpy(inputs[f"param {n}"].copy())) for n in SHAPES}
    optimizer = torch.optim.SGD([params[n] for n in ORDER], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for step in range(5):
        for name, p in params.items():
            p.grad = torch.from_numpy(inputs[f"grads {name}"][step].copy())
        optimizer.step()
        scheduler.step()
    return state_dict_outputs(optimizer.state_dict())


def _scheduled_jax(inputs, jit):
    import jax.numpy as jnp

    from torchsem import optim
    from torchsem.tree import unflatten_mapping

    template = {"bn": {"bias": 0, "weight": 0}, "fc": {"bias": 0, "weight": 0}, "head": {"weight": 0}}
    params = unflatten_mapping(template, {n: jnp.asarray(inputs[f"param {n}"]) for n in SHAPES})
    tx = optim.param_groups(optim.sgd, lr=optim.lr_scheduler.StepLR(0.1, step_size=2, gamma=0.5), momentum=0.9)
    state = tx.init(params)
    run = jitted(lambda g, s, p: optim.step(tx, g, s, p), jit)
    for step in range(5):
        grads = unflatten_mapping(template, {n: jnp.asarray(inputs[f"grads {n}"][step]) for n in SHAPES})
        params, state = run(grads, state, params)
    return state_dict_outputs(optim.state_dict(state, ORDER, tx=tx))


register(
    Scenario(
        name="param_groups/state-dict-with-a-scheduled-lr",
        section=_SECTION,
        mapping="SGD(..., lr=0.1) + StepLR(...).step() x5, state_dict() -> "
        "optim.state_dict(state, order, tx=optim.param_groups(optim.sgd, lr=StepLR(0.1, ...)))",
        make_inputs=_inputs(2202),
        torch_program=_scheduled_torch,
        jax_program=_scheduled_jax,
    )
)


# ---------------------------------------------------------------- PyTorch's load_state_dict errors


def _load_errors_torch(inputs):
    import torch

    params = {n: torch.nn.Parameter(torch.from_numpy(inputs[f"param {n}"].copy())) for n in SHAPES}
    two = torch.optim.AdamW(
        [{"params": [params[n] for n in ORDER if n.startswith("fc")]}, {"params": [params["head.weight"]]}]
    )
    one = torch.optim.AdamW([params[n] for n in ORDER])
    three_and_one = torch.optim.AdamW(
        [{"params": [params[n] for n in ORDER if not n.startswith("head")]}, {"params": [params["head.weight"]]}]
    )
    outputs: dict[str, Any] = {}
    for case, attempt in {
        "group count": lambda: two.load_state_dict(one.state_dict()),
        "group size": lambda: two.load_state_dict(three_and_one.state_dict()),
    }.items():
        outputs.update({f"{case} {k}": v for k, v in error_outputs(attempt).items()})
    return outputs


def _load_errors_jax(inputs, jit):
    import jax.numpy as jnp

    from torchsem import optim
    from torchsem.tree import unflatten_mapping

    template = {"bn": {"bias": 0, "weight": 0}, "fc": {"bias": 0, "weight": 0}, "head": {"weight": 0}}
    params = unflatten_mapping(template, {n: jnp.asarray(inputs[f"param {n}"]) for n in SHAPES})
    two = optim.param_groups(optim.adamw, [{"params": "fc"}, {"params": "head.weight"}])
    one = optim.param_groups(optim.adamw)
    three_and_one = optim.param_groups(optim.adamw, [{"params": ["fc", "bn"]}, {"params": "head.weight"}])

    def saved(tx: Any) -> Any:
        return optim.state_dict(tx.init(params), ORDER, tx=tx)

    outputs: dict[str, Any] = {}
    for case, attempt in {
        "group count": lambda: optim.load_state_dict(two.init(params), saved(one), ORDER, tx=two),
        "group size": lambda: optim.load_state_dict(two.init(params), saved(three_and_one), ORDER, tx=two),
    }.items():
        outputs.update({f"{case} {k}": v for k, v in error_outputs(attempt).items()})
    return outputs


register(
    Scenario(
        name="param_groups/load-state-dict-errors",
        section=_SECTION,
        mapping="optimizer.load_state_dict(mismatched) -> optim.load_state_dict(state, mismatched, order, tx=tx)",
        make_inputs=_inputs(2203),
        torch_program=_load_errors_torch,
        jax_program=_load_errors_jax,
    )
)
