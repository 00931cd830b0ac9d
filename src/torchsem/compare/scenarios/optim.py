"""Optimizers (family ``optim``): ``torch.optim.SGD/Adam/AdamW`` against :mod:`torchsem.optim`.

The grid runs each optimizer and option set for 20 steps on three small random parameters
with random gradients, where

- parameter 0 has no gradient (None) at steps 3 and 12 and a zero gradient at step 7
  (zeros are not None: momentum and weight decay still act);
- parameter 1 is frozen (gradient None) for steps 5-10, then trained again;
- parameter 2 gets its first gradient at step 4 (its momentum buffer / Adam state starts then),

and compares the parameters and the whole optimizer state (``optimizer.state_dict()["state"]``:
momentum buffers, exp_avg, exp_avg_sq, max_exp_avg_sq, the per-parameter step, and which
parameters have state at all) after every step. The JAX side steps with
:func:`torchsem.optim.step`; a few cases also go through optax's protocol
(``tx.update`` + ``optax.apply_updates``). Further entries check PyTorch's argument errors,
a learning-rate schedule, and freezing (including the ``optax.masked`` pitfall, and the
predicate form of :func:`torchsem.optim.freeze` against PyTorch's ``requires_grad = False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, register

STEPS = 20
SHAPES = ((3,), (2, 3), (4,))
_NONE_STEPS = {0: {3, 12}, 1: set(range(5, 11)), 2: {1, 2, 3}}  # 1-based steps with grad None
_ZERO_STEPS = {0: {7}}

_STATE_KEYS = {
    "sgd": ("momentum_buffer",),
    "adam": ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
}


def _grid_inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    has_grad = np.ones((STEPS, len(SHAPES)), bool)
    for index, shape in enumerate(SHAPES):
        inputs[f"param{index}"] = rng.standard_normal(shape).astype(np.float32)
        grads = rng.standard_normal((STEPS, *shape)).astype(np.float32)
        for step in _ZERO_STEPS.get(index, ()):
            grads[step - 1] = 0.0
        for step in _NONE_STEPS.get(index, ()):
            has_grad[step - 1, index] = False
        inputs[f"grads{index}"] = grads
    inputs["has_grad"] = has_grad
    return inputs


def _state_keys(kind: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    if kind == "sgd":
        return _STATE_KEYS["sgd"] if options.get("momentum", 0) != 0 else ()
    keys = _STATE_KEYS["adam"]
    return keys if options.get("amsgrad", False) else keys[:-1]


def _record(
    outputs: dict[str, list], params: list[np.ndarray], state: Mapping[int, Mapping[str, Any]], keys: tuple[str, ...]
) -> None:
    for index, value in enumerate(params):
        outputs[f"param{index}"].append(np.array(value, np.float32, copy=True))  # PyTorch updates in place
        entry = state.get(index)
        outputs[f"has_state{index}"].append(entry is not None)
        for key in keys:
            shape = () if key == "step" else np.shape(value)
            outputs[f"{key}{index}"].append(
                np.zeros(shape, np.float32) if entry is None else np.array(entry[key], copy=True)
            )


def _new_outputs(keys: tuple[str, ...]) -> dict[str, list]:
    outputs: dict[str, list] = {}
    for index in range(len(SHAPES)):
        outputs[f"param{index}"] = []  # after each step: the starting values are the inputs on both sides
        outputs[f"has_state{index}"] = []
        for key in keys:
            outputs[f"{key}{index}"] = []
    return outputs


def _stack(outputs: dict[str, list]) -> dict[str, np.ndarray]:
    return {name: np.stack(values) for name, values in outputs.items()}


def _torch_grid(kind: str, options: Mapping[str, Any], scheduler: bool = False):
    """PyTorch's optimizer over the grid's steps; with ``scheduler``, ExponentialLR(gamma=0.5) after each step."""

    def program(inputs):
        import torch

        optimizer_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
        params = [torch.nn.Parameter(torch.from_numpy(inputs[f"param{i}"].copy())) for i in range(len(SHAPES))]
        optimizer = optimizer_class(params, **options)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5) if scheduler else None
        keys = _state_keys("sgd" if kind == "sgd" else "adam", options)
        outputs = _new_outputs(keys)
        for step in range(STEPS):
            for index, param in enumerate(params):
                has = bool(inputs["has_grad"][step, index])
                param.grad = torch.from_numpy(inputs[f"grads{index}"][step].copy()) if has else None
            optimizer.step()
            if schedule is not None:
                schedule.step()
            state = {
                i: {k: v.detach().numpy() for k, v in entry.items()}
                for i, entry in optimizer.state_dict()["state"].items()
            }
            _record(outputs, [p.detach().numpy() for p in params], state, keys)
        return _stack(outputs)

    return program


def _jax_grid(kind: str, options: Mapping[str, Any], via: str):
    def program(inputs, jit):
        import jax.numpy as jnp
        import optax

        from torchsem import optim

        tx = {"sgd": optim.sgd, "adam": optim.adam, "adamw": optim.adamw}[kind](**options)

        def one_step(params, state, grads):
            if via == "step":
                return optim.step(tx, grads, state, params)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        one_step = jitted(one_step, jit)
        params = [jnp.asarray(inputs[f"param{i}"]) for i in range(len(SHAPES))]
        state = tx.init(params)
        keys = _state_keys("sgd" if kind == "sgd" else "adam", options)
        outputs = _new_outputs(keys)
        for step in range(STEPS):
            grads = [
                jnp.asarray(inputs[f"grads{i}"][step]) if inputs["has_grad"][step, i] else None
                for i in range(len(SHAPES))
            ]
            params, state = one_step(params, state, grads)
            _record(outputs, [np.asarray(p) for p in params], optim.state_dict(state), keys)
        return _stack(outputs)

    return program


def _case_name(options: Mapping[str, Any]) -> str:
    parts = []
    for key, value in options.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, tuple):
            value = "_".join(f"{v:g}" for v in value)
        parts.append(f"{key}={value}")
    return "-".join(parts)


_SQRT_TOLERANCE_REASON = (
    "PyTorch's CPU sqrt goes through MKL VML (VML_HA), which is not correctly rounded (about 1% of float32 "
    "inputs one ulp away); XLA's sqrt is; parameters then differ in the last bit"
)


def _register_grid(kind: str, options: dict[str, Any], seed: int, via: str = "step") -> None:
    name = f"optim/{kind}/{_case_name(options)}" + ("/optax-update" if via == "update" else "")
    torch_call = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[kind]
    arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
    jax_call = (
        "params, state = torchsem.optim.step(tx, grads, state, params)"
        if via == "step"
        else "updates, state = tx.update(grads, state, params); optax.apply_updates(params, updates)"
    )
    register(
        Scenario(
            name=name,
            section="torchsem.optim",
            mapping=f"torch.optim.{torch_call}(params, {arguments}).step() -> "
            f"torchsem.optim.{kind}({arguments}); {jax_call}",
            make_inputs=lambda: _grid_inputs(seed),
            torch_program=_torch_grid(kind, options),
            jax_program=_jax_grid(kind, options, via),
            notes="20 steps; None gradients (skipped), a zero gradient (not skipped), a parameter frozen for steps "
            "5-10, a parameter whose state starts at step 4. "
            + (
                "Adam's parameters may differ in the last bit: " + _SQRT_TOLERANCE_REASON
                if kind != "sgd"
                else "SGD's parameters and buffers are PyTorch's bit for bit with torchsem.optim.step."
            ),
        )
    )


def _sgd_grid() -> list[dict[str, Any]]:
    cases = []
    for weight_decay in (0.0, 0.1):
        for maximize in (False, True):
            cases.append(dict(lr=0.1, weight_decay=weight_decay, maximize=maximize))
            for dampening, nesterov in ((0.0, False), (0.0, True), (0.5, False)):
                cases.append(
                    dict(
                        lr=0.1,
                        momentum=0.9,
                        dampening=dampening,
                        nesterov=nesterov,
                        weight_decay=weight_decay,
                        maximize=maximize,
                    )
                )
    return cases


def _adam_grid() -> list[dict[str, Any]]:
    cases = []
    for weight_decay in (0.0, 0.1):
        for amsgrad in (False, True):
            for maximize in (False, True):
                cases.append(
                    dict(lr=0.05, betas=(0.9, 0.999), weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
                )
    # beta1 = 0.5 takes lerp's other branch (weight 1 - beta1 >= 0.5: end + (w - 1) * (end - start)).
    cases.append(dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True, maximize=False))
    cases.append(dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.0, amsgrad=False, maximize=True))
    return cases


for _seed, _options in enumerate(_sgd_grid()):
    _register_grid("sgd", _options, seed=100 + _seed)
for _kind in ("adam", "adamw"):
    for _seed, _options in enumerate(_adam_grid()):
        _register_grid(_kind, _options, seed=200 + _seed)
_register_grid("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.1), seed=300, via="update")
_register_grid("sgd", dict(lr=0.1, momentum=0.9, dampening=0.5, maximize=True), seed=301, via="update")
_register_grid("adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True), seed=302, via="update")
_register_grid("adamw", dict(lr=0.05), seed=303, via="update")


# ------------------------------------------------------------------------ argument errors

_SGD_BAD: dict[str, dict[str, Any]] = {
    "negative-lr": dict(lr=-0.1),
    "negative-momentum": dict(lr=0.1, momentum=-0.5),
    "negative-weight-decay": dict(lr=0.1, weight_decay=-1e-4),
    "nesterov-without-momentum": dict(lr=0.1, nesterov=True),
    "nesterov-with-dampening": dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    "nan-lr-accepted": dict(lr=float("nan")),
}
_ADAM_BAD: dict[str, dict[str, Any]] = {
    "negative-lr": dict(lr=-0.1),
    "nan-lr": dict(lr=float("nan")),
    "negative-eps": dict(eps=-1e-8),
    "beta1-one": dict(betas=(1.0, 0.999)),
    "beta2-negative": dict(betas=(0.9, -0.1)),
    "negative-weight-decay": dict(weight_decay=-0.01),
    "integer-beta": dict(betas=(0, 0.999)),
}


def _register_errors(
    kind: str, cases: Mapping[str, Mapping[str, Any]], *, family: str = "optim", torch_call: str | None = None
) -> None:
    """One scenario per bad configuration: PyTorch's constructor error (type and text) against torchsem's factory's."""
    torch_call = torch_call or {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[kind]
    for case, options in cases.items():

        def torch_program(inputs, options=options):
            import torch

            return error_outputs(
                lambda: getattr(torch.optim, torch_call)([torch.nn.Parameter(torch.zeros(2))], **options)
            )

        def jax_program(inputs, jit, options=options):
            from torchsem import optim

            return error_outputs(lambda: getattr(optim, kind)(**options))  # checked when built, before any trace

        arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
        register(
            Scenario(
                name=f"{family}/errors/{kind}/{case}",
                section="torchsem.optim",
                mapping=f"torch.optim.{torch_call}(params, {arguments}) -> torchsem.optim.{kind}({arguments}): "
                "the same error type and text (or none)",
                torch_program=torch_program,
                jax_program=jax_program,
            )
        )


_register_errors("sgd", _SGD_BAD)
_register_errors("adam", _ADAM_BAD)
_register_errors("adamw", _ADAM_BAD)


# ------------------------------------------------------------------------ learning-rate schedule


def _register_schedule(kind: str, options: dict[str, Any], seed: int) -> None:
    def jax_options():
        import optax

        return {**options, "lr": optax.exponential_decay(options["lr"], transition_steps=1, decay_rate=0.5)}

    def jax_program(inputs, jit):
        return _jax_grid(kind, jax_options(), "step")(inputs, jit)

    register(
        Scenario(
            name=f"optim/schedule/{kind}",
            section="torchsem.optim",
            mapping=f"torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5), scheduler.step() after opt.step() -> "
            f"torchsem.optim.{kind}(lr=optax.exponential_decay({options['lr']}, 1, 0.5))",
            make_inputs=lambda: _grid_inputs(seed),
            torch_program=_torch_grid(kind, options, scheduler=True),
            jax_program=jax_program,
            notes="A schedule is called with the number of previous updates (0 first), as a PyTorch scheduler "
            "stepped after every optimizer.step(); Adam then divides lr_t / (1 - beta1**t) in float32.",
        )
    )


_register_schedule("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.1), seed=400)
_register_schedule("adam", dict(lr=0.05, weight_decay=0.1), seed=401)


# ------------------------------------------------------------------------ freezing

_W, _B, _X, _Y = 1.0, 0.0, 1.0, -0.5  # (w*x + b - y)**2 has dloss/dw = 3 at this point


def _squared_error(w, b):
    return (w * _X + b - _Y) ** 2


def _masked_torch(inputs):
    import torch

    w = torch.nn.Parameter(torch.tensor(_W))
    b = torch.nn.Parameter(torch.tensor(_B))
    w.requires_grad = False  # frozen
    optimizer = torch.optim.SGD([w, b], lr=0.1)
    _squared_error(w, b).backward()
    optimizer.step()
    return {"w": w.detach(), "b": b.detach(), "w_grad": w.grad, "b_grad": b.grad}


def _masked_jax(inputs, jit):
    import jax.numpy as jnp

    from torchsem import autograd, optim

    params = {"w": jnp.float32(_W), "b": jnp.float32(_B)}
    tx = optim.freeze(optim.sgd(lr=0.1), "w")  # the positional argument is the frozen set
    grad = autograd.grad(
        lambda p: _squared_error(p["w"], p["b"]), requires_grad=autograd.requires_grad_mask(params, frozen="w")
    )

    def run(params):
        grads = grad(params)  # w does not require grad: its gradient is None, as PyTorch's w.grad
        new_params, _ = optim.step(tx, grads, tx.init(params), params)
        return new_params, grads

    new, grads = jitted(run, jit)(params)
    return {"w": new["w"], "b": new["b"], "w_grad": grads["w"], "b_grad": grads["b"]}


def _masked_plain(inputs):
    import jax
    import jax.numpy as jnp
    import optax

    params = {"w": jnp.float32(_W), "b": jnp.float32(_B)}
    tx = optax.masked(optax.sgd(0.1), {"w": False, "b": True})
    grads = jax.grad(lambda p: _squared_error(p["w"], p["b"]))(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    return {"w": new["w"], "b": new["b"], "w_grad": grads["w"], "b_grad": grads["b"]}


register(
    Scenario(
        name="optim/freeze/masked-pitfall",
        section="1. requires_grad=False on a parameter (example one)",
        mapping="w.requires_grad = False; loss.backward(); SGD([w, b]).step() -> "
        "torchsem.autograd.grad(loss, requires_grad=requires_grad_mask(params, frozen='w')) + "
        "torchsem.optim.freeze(sgd(0.1), 'w') (not optax.masked, which adds the raw gradient to w: 1 -> 4)",
        make_inputs=dict,
        torch_program=_masked_torch,
        jax_program=_masked_jax,
        plain_jax_program=_masked_plain,
        in_report=True,
        notes="Squared error (w*x + b - y)**2 at w=1, b=0, x=1, y=-0.5: dloss/dw = dloss/db = 3. PyTorch leaves the "
        "frozen w at 1 and moves b to -0.3; optax.masked(optax.sgd(0.1), {w: False, b: True}) passes w's raw "
        "gradient through as its update, so optax.apply_updates moves w from 1 to 4 (uphill).",
    )
)


def _adam_freeze_torch(inputs):
    import torch

    params = [torch.nn.Parameter(torch.from_numpy(inputs[f"param{i}"].copy())) for i in range(2)]
    params[0].requires_grad = False
    optimizer = torch.optim.Adam(params, lr=0.05)
    outputs: dict[str, list] = {"param0": [], "param1": [], "has_state0": [], "exp_avg1": []}
    for step in range(5):
        params[1].grad = torch.from_numpy(inputs["grads1"][step].copy())
        optimizer.step()
        state = optimizer.state_dict()["state"]
        outputs["param0"].append(params[0].detach().numpy().copy())
        outputs["param1"].append(params[1].detach().numpy().copy())
        outputs["has_state0"].append(0 in state)
        outputs["exp_avg1"].append(state[1]["exp_avg"].numpy().copy())
    return _stack(outputs)


def _adam_freeze_jax(inputs, jit):
    import jax.numpy as jnp

    from torchsem import optim

    params = [jnp.asarray(inputs[f"param{i}"]) for i in range(2)]
    tx = optim.freeze(optim.adam(lr=0.05), trainable=[False, True])
    state = tx.init(params)

    def one_step(params, state, grads):
        return optim.step(tx, grads, state, params)

    one_step = jitted(one_step, jit)
    outputs: dict[str, list] = {"param0": [], "param1": [], "has_state0": [], "exp_avg1": []}
    for step in range(5):
        # The frozen leaf's gradient exists on the JAX side (jax.grad computes it); freeze ignores it.
        grads = [jnp.asarray(inputs["grads0"][step]), jnp.asarray(inputs["grads1"][step])]
        params, state = one_step(params, state, grads)
        torch_state = optim.state_dict(state)
        outputs["param0"].append(np.asarray(params[0]))
        outputs["param1"].append(np.asarray(params[1]))
        outputs["has_state0"].append(0 in torch_state)
        outputs["exp_avg1"].append(torch_state[1]["exp_avg"])
    return _stack(outputs)


def _adam_freeze_plain(inputs):
    import jax.numpy as jnp
    import optax

    params = [jnp.asarray(inputs[f"param{i}"]) for i in range(2)]
    zero_frozen = optax.masked(optax.set_to_zero(), [True, False])
    tx = optax.chain(optax.adam(0.05), zero_frozen)
    state = tx.init(params)
    outputs: dict[str, list] = {"param0": [], "param1": [], "has_state0": [], "exp_avg1": []}
    for step in range(5):
        grads = [jnp.asarray(inputs["grads0"][step]), jnp.asarray(inputs["grads1"][step])]
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        outputs["param0"].append(np.asarray(params[0]))
        outputs["param1"].append(np.asarray(params[1]))
        first_moments = optax.tree_utils.tree_get(state, "mu")
        outputs["has_state0"].append(bool(np.any(np.asarray(first_moments[0]) != 0)))  # frozen gradients in Adam
        outputs["exp_avg1"].append(np.asarray(first_moments[1]))
    return _stack(outputs)


register(
    Scenario(
        name="optim/freeze/adam-keeps-no-state-for-frozen",
        section="torchsem.optim",
        mapping="p0.requires_grad = False; Adam([p0, p1]) -> torchsem.optim.freeze(adam(0.05), "
        "trainable=[False, True]) "
        "(not optax.chain(optax.adam, zero_frozen), which feeds the frozen gradients into Adam's moments)",
        make_inputs=lambda: _grid_inputs(500),
        torch_program=_adam_freeze_torch,
        jax_program=_adam_freeze_jax,
        plain_jax_program=_adam_freeze_plain,
        notes="PyTorch keeps no state for a frozen parameter; the chained optax version accumulates the frozen "
        "gradients in Adam's moments (has_state0 true) although the parameter does not move.",
    )
)


# --------------------------------------------- freezing by predicate (the README's two-part mapping)

_NAMED_SHAPES = {"fc.weight": (4, 3), "fc.bias": (4,), "out.weight": (2, 4), "out.bias": (2,)}  # PyTorch's order
_ADAM_DECAY = {"lr": 0.05, "weight_decay": 0.1}  # L2 decay: a zero gradient would still move a parameter
_FREEZE_STEPS = 5


def _is_bias(name: str, leaf: Any) -> bool:
    """The predicate both sides freeze with: PyTorch over ``named_parameters()``, torchsem over dotted leaf names."""
    return name.endswith(".bias")


def _predicate_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(510)
    inputs = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in _NAMED_SHAPES.items()}
    inputs["xs"] = rng.standard_normal((_FREEZE_STEPS, 8, 3)).astype(np.float32)
    inputs["ys"] = rng.standard_normal((_FREEZE_STEPS, 8, 2)).astype(np.float32)
    return inputs


def _two_layer_loss(p: Mapping[str, Any], x, y):
    """Mean squared error of ``out(fc(x))`` (both linear); the same expression on torch tensors and JAX arrays."""
    hidden = x @ p["fc.weight"].T + p["fc.bias"]
    return ((hidden @ p["out.weight"].T + p["out.bias"] - y) ** 2).mean()


def _stack_grads(grads: list) -> np.ndarray | None:
    """One output per parameter over the steps: None when its gradient was None at every step."""
    if all(g is None for g in grads):
        return None
    if any(g is None for g in grads):
        raise ValueError("a gradient that is None at some steps only is not expected here")
    return np.stack([np.asarray(g) for g in grads])


def _predicate_record(
    params: Mapping[str, Any],
    grads: Mapping[str, Any],
    loss: Any,
    state: Mapping[int, Mapping[str, Any]],
    outputs: dict[str, list],
) -> None:
    outputs.setdefault("loss", []).append(np.asarray(loss, np.float32))
    for index, name in enumerate(_NAMED_SHAPES):
        entry = state.get(index)
        outputs.setdefault(name, []).append(np.array(params[name], np.float32, copy=True))
        outputs.setdefault(f"{name}.grad", []).append(None if grads[name] is None else np.array(grads[name]))
        outputs.setdefault(f"has_state.{name}", []).append(entry is not None)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            shape = () if key == "step" else _NAMED_SHAPES[name]
            outputs.setdefault(f"{key}.{name}", []).append(
                np.zeros(shape, np.float32) if entry is None else np.array(entry[key], np.float32, copy=True)
            )


def _predicate_outputs(outputs: dict[str, list]) -> dict[str, Any]:
    return {
        name: _stack_grads(values) if name.endswith(".grad") else np.stack(values) for name, values in outputs.items()
    }


def _predicate_torch(inputs):
    import torch

    params = {name: torch.nn.Parameter(torch.from_numpy(inputs[name].copy())) for name in _NAMED_SHAPES}
    for name, param in params.items():
        param.requires_grad = not _is_bias(name, param)
    optimizer = torch.optim.Adam(params.values(), **_ADAM_DECAY)
    outputs: dict[str, list] = {}
    for step in range(_FREEZE_STEPS):
        optimizer.zero_grad()
        loss = _two_layer_loss(params, torch.from_numpy(inputs["xs"][step]), torch.from_numpy(inputs["ys"][step]))
        loss.backward()
        grads = {name: None if p.grad is None else p.grad.numpy().copy() for name, p in params.items()}
        optimizer.step()
        state = {
            i: {k: v.detach().numpy() for k, v in entry.items()} for i, entry in optimizer.state_dict()["state"].items()
        }
        _predicate_record(
            {n: p.detach().numpy() for n, p in params.items()}, grads, loss.detach().numpy(), state, outputs
        )
    return _predicate_outputs(outputs)


def _predicate_jax(inputs, jit):
    import jax
    import jax.numpy as jnp

    from torchsem import autograd, optim

    params = {name: jnp.asarray(inputs[name]) for name in _NAMED_SHAPES}
    tx = optim.freeze(optim.adam(**_ADAM_DECAY), _is_bias)  # positional: the frozen set, here a predicate
    value_and_grad = autograd.value_and_grad(
        _two_layer_loss, requires_grad=autograd.requires_grad_mask(params, frozen=_is_bias)
    )

    def one_step(params, state, x, y):
        loss, grads = value_and_grad(params, x, y)  # None for the biases: PyTorch's .grad
        # The optimizer is fed every leaf's gradient (plain jax.grad's, as JAX code has it): with the
        # None gradients above Adam would skip the biases by itself, so this is what shows that the
        # predicate, and only it, keeps them still and without state.
        new_params, state = optim.step(tx, jax.grad(_two_layer_loss)(params, x, y), state, params)
        return new_params, state, loss, grads

    one_step = jitted(one_step, jit)
    state = tx.init(params)
    outputs: dict[str, list] = {}
    for step in range(_FREEZE_STEPS):
        params, state, loss, grads = one_step(
            params, state, jnp.asarray(inputs["xs"][step]), jnp.asarray(inputs["ys"][step])
        )
        _predicate_record(params, grads, loss, optim.state_dict(state, order=list(_NAMED_SHAPES)), outputs)
    return _predicate_outputs(outputs)


register(
    Scenario(
        name="optim/freeze/predicate",
        section="1. requires_grad by predicate",
        mapping="for name, p in model.named_parameters(): p.requires_grad = not is_bias(name); "
        "Adam(model.parameters(), lr=0.05, weight_decay=0.1) -> "
        "torchsem.autograd.value_and_grad(loss, requires_grad=requires_grad_mask(params, frozen=is_bias)) + "
        "torchsem.optim.freeze(adam(lr=0.05, weight_decay=0.1), is_bias), "
        "is_bias = lambda name, leaf: name.endswith('.bias')",
        make_inputs=_predicate_inputs,
        torch_program=_predicate_torch,
        jax_program=_predicate_jax,
        notes="Two linear layers, 5 Adam steps with L2 weight decay. PyTorch: the biases get no .grad, never move and "
        "hold no optimizer state. torchsem: the same predicate gives the None gradients (autograd) and the "
        "frozen partition (freeze), which here receives every leaf's gradient.",
    )
)
