"""Optimizers (family ``optim_more``): RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam against torchsem.optim.

The grid runs each optimizer over a few option sets for 20 steps on two small random
parameters, the first long enough (35 elements) for PyTorch's vectorised CPU kernels and a
tail, where

- parameter 0 has no gradient (None) at steps 1-2, so its state starts at step 3, and again
  at steps 9-11, where it is skipped with its state kept (its step count stops);
- parameter 1 gets a zero gradient at steps 6 and 15 (zeros are not None: weight decay,
  momentum and the step count still act);

two None patterns in all (each one JAX trace). It compares the parameters and the whole
optimizer state after every step: every tensor of ``optimizer.state_dict()["state"]``, which
parameters have state at all (Adagrad's constructor makes it for every parameter), and the
state's key names in PyTorch's order. The JAX side steps with :func:`torchsem.optim.step`; a
few cases go through optax's protocol (``tx.update`` + ``optax.apply_updates``) or a
learning-rate schedule. Each optimizer's defaults case also carries plain optax's closest
counterpart (``plain_jax_program``, never judged; ``torchsem compare --all`` shows it against
PyTorch, the README quotes its numbers). Further entries check PyTorch's argument errors, in
its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._authoring import jitted
from .._scenario import Scenario, Tolerance, register
from .optim import _case_name, _register_errors, _stack

STEPS = 20
SHAPES = ((5, 7), (3,))
_NONE_STEPS = {0: {1, 2, 9, 10, 11}}  # 1-based steps where the parameter's gradient is None
_ZERO_STEPS = {1: {6, 15}}

TORCH_NAMES = {
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
}
_SCALAR_KEYS = ("step", "mu_product")


def state_keys(kind: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """PyTorch's state keys of one parameter, in ``optimizer.state_dict()`` order."""
    if kind == "rmsprop":
        return (
            ("step", "square_avg")
            + (("momentum_buffer",) if options.get("momentum", 0) > 0 else ())
            + (("grad_avg",) if options.get("centered", False) else ())
        )
    return {
        "adagrad": ("step", "sum"),
        "adadelta": ("step", "square_avg", "acc_delta"),
        "adamax": ("step", "exp_avg", "exp_inf"),
        "nadam": ("step", "mu_product", "exp_avg", "exp_avg_sq"),
        "radam": ("step", "exp_avg", "exp_avg_sq"),
    }[kind]


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


def _record(outputs: dict[str, list], params: list[Any], state: Mapping[int, Mapping[str, Any]], keys) -> None:
    """One step's parameters and state; a parameter without state records zeros (and has_state False)."""
    for index, value in enumerate(params):
        outputs[f"param{index}"].append(np.array(value, np.float32, copy=True))  # PyTorch updates in place
        entry = state.get(index)
        outputs[f"has_state{index}"].append(entry is not None)
        for key in keys:
            shape = () if key in _SCALAR_KEYS else np.shape(value)
            outputs[f"{key}{index}"].append(
                np.zeros(shape, np.float32) if entry is None else np.array(entry[key], copy=True)
            )


def _new_outputs(keys) -> dict[str, list]:
    outputs: dict[str, list] = {}
    for index in range(len(SHAPES)):
        outputs[f"param{index}"] = []
        outputs[f"has_state{index}"] = []
        for key in keys:
            outputs[f"{key}{index}"] = []
    return outputs


def _finish(outputs: dict[str, list], state: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The stacked steps, and each parameter's final state keys in the optimizer's own order."""
    result: dict[str, Any] = _stack(outputs)
    for index in range(len(SHAPES)):
        result[f"keys{index}"] = ",".join(state.get(index, {}))
    return result


def _torch_grid(kind: str, options: Mapping[str, Any], scheduler: bool = False):
    """PyTorch's optimizer over the grid; with ``scheduler``, ExponentialLR(gamma=0.5) after each step."""

    def program(inputs):
        import torch

        params = [torch.nn.Parameter(torch.from_numpy(inputs[f"param{i}"].copy())) for i in range(len(SHAPES))]
        optimizer = getattr(torch.optim, TORCH_NAMES[kind])(params, **options)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5) if scheduler else None
        keys = state_keys(kind, options)
        outputs = _new_outputs(keys)
        state: dict = {}
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
        return _finish(outputs, state)

    return program


def _jax_grid(kind: str, options: Mapping[str, Any], via: str, scheduler: bool = False):
    def program(inputs, jit):
        import jax.numpy as jnp
        import optax

        from torchsem import optim

        jax_options = dict(options)
        if scheduler:
            jax_options["lr"] = optax.exponential_decay(options.get("lr", 1.0), transition_steps=1, decay_rate=0.5)
        tx = getattr(optim, kind)(**jax_options)

        def one_step(params, state, grads):
            if via == "step":
                return optim.step(tx, grads, state, params)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        one_step = jitted(one_step, jit)
        params = [jnp.asarray(inputs[f"param{i}"]) for i in range(len(SHAPES))]
        opt_state = tx.init(params)
        keys = state_keys(kind, options)
        outputs = _new_outputs(keys)
        state: dict = {}
        for step in range(STEPS):
            grads = [
                jnp.asarray(inputs[f"grads{i}"][step]) if inputs["has_grad"][step, i] else None
                for i in range(len(SHAPES))
            ]
            params, opt_state = one_step(params, opt_state, grads)
            state = optim.state_dict(opt_state)
            _record(outputs, [np.asarray(p) for p in params], state, keys)
        return _finish(outputs, state)

    return program


_SQRT_REASON = (
    "PyTorch's CPU sqrt (MKL VML) is not correctly rounded: about 20% of float32 inputs come out one ulp away "
    "on AVX2 and AVX-512 builds; XLA's sqrt is correctly rounded. With a correctly rounded sqrt in PyTorch the "
    "grid is bit for bit (tests/test_optim_more.py)"
)


def _tolerances(kind: str, options: Mapping[str, Any]) -> dict[str, Tolerance]:
    """Per-output tolerances where the float32 default is too tight, each with its reason."""
    if kind != "rmsprop" or not options.get("momentum", 0) > 0:
        return {}
    reason = (
        "the momentum buffer sums g / denom terms of size up to ~30 with changing signs; an element near zero "
        "carries the absolute error of the large terms (the sqrt's last bit, ~4e-6 seen), not one of its own size. "
        + _SQRT_REASON
    )
    return {f"momentum_buffer{index}": Tolerance(1e-5, 2e-5, reason=reason) for index in range(len(SHAPES))}


def _plain_grid(make_tx):
    """Plain optax over the grid, fed what ``jax.grad`` gives where PyTorch's ``.grad`` is None: zeros."""

    def program(inputs):
        import jax.numpy as jnp
        import optax

        tx = make_tx(optax)
        params = [jnp.asarray(inputs[f"param{i}"]) for i in range(len(SHAPES))]
        state = tx.init(params)
        outputs: dict[str, list] = {f"param{i}": [] for i in range(len(SHAPES))}
        for step in range(STEPS):
            grads = [jnp.asarray(inputs[f"grads{i}"][step] * inputs["has_grad"][step, i]) for i in range(len(SHAPES))]
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            for index, value in enumerate(params):
                outputs[f"param{index}"].append(np.asarray(value))
        return _stack(outputs)

    return program


_NONE_PITFALL = (
    "optax has no None gradient: the zeros jax.grad gives for parameter 0 at steps 1-2 and 9-11 still decay its "
    "moments and advance the one step count optax keeps for all parameters, where PyTorch skips the parameter."
)

# The closest optax counterpart of each optimizer at PyTorch's defaults (hyperparameters optax names alike
# matched), and what it does differently. Numbers: max |optax - PyTorch| / |PyTorch| of parameter 1 (a gradient
# at every step) after the 20 steps, and of both parameters.
_PLAIN: dict[str, tuple[Any, str]] = {
    "rmsprop": (
        lambda optax: optax.rmsprop(1e-2, decay=0.99, eps=1e-8),
        "optax.rmsprop adds eps inside the square root (eps_in_sqrt=True; PyTorch adds it after): 1.4e-4 relative "
        "after 20 steps (eps_in_sqrt=False: 1e-7), and its default decay is 0.9 (PyTorch's alpha 0.99: 0.9 "
        "relative). " + _NONE_PITFALL,
    ),
    "adagrad": (
        lambda optax: optax.adagrad(1e-2),
        "optax.adagrad starts the accumulator at 0.1 (PyTorch: 0) and adds eps=1e-7 inside the square root "
        "(PyTorch: 1e-10 after it): 2.4e-2 relative after 20 steps. " + _NONE_PITFALL,
    ),
    "adadelta": (
        lambda optax: optax.adadelta(1.0),
        "optax.adadelta(1.0) follows PyTorch's formula where every step has a gradient. " + _NONE_PITFALL,
    ),
    "adamax": (
        lambda optax: optax.adamax(2e-3),
        "optax.adamax follows PyTorch's formula where every step has a gradient. " + _NONE_PITFALL,
    ),
    "nadam": (
        lambda optax: optax.nadam(2e-3),
        "optax.nadam is Adam with Nesterov momentum, without PyTorch's momentum schedule mu_t (momentum_decay): "
        "4.3e-3 relative after 20 steps. " + _NONE_PITFALL,
    ),
    "radam": (
        lambda optax: optax.radam(1e-3),
        "optax.radam adds eps to the bias-corrected sqrt(v) (PyTorch to the uncorrected one) and rectifies when "
        "rho_t >= 5 (PyTorch: > 5): 2e-6 relative after 20 steps. " + _NONE_PITFALL,
    ),
}


def _register_grid(kind: str, options: dict[str, Any], seed: int, via: str = "step", scheduler: bool = False) -> None:
    suffix = "/optax-update" if via == "update" else "/schedule" if scheduler else ""
    plain = _PLAIN[kind] if not (options or scheduler or via != "step") else None
    name = f"optim_more/{kind}/{_case_name(options) or 'defaults'}{suffix}"
    arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
    jax_call = (
        "params, state = torchsem.optim.step(tx, grads, state, params)"
        if via == "step"
        else "updates, state = tx.update(grads, state, params); optax.apply_updates(params, updates)"
    )
    mapping = (
        f"torch.optim.{TORCH_NAMES[kind]}(params{', ' if arguments else ''}{arguments}).step() -> "
        f"torchsem.optim.{kind}({arguments}); {jax_call}"
    )
    if scheduler:
        mapping += "; ExponentialLR(gamma=0.5) -> lr=optax.exponential_decay(lr, 1, 0.5)"
    register(
        Scenario(
            name=name,
            section="torchsem.optim",
            mapping=mapping,
            make_inputs=lambda: _grid_inputs(seed),
            torch_program=_torch_grid(kind, options, scheduler),
            jax_program=_jax_grid(kind, options, via, scheduler),
            tolerances=_tolerances(kind, options),
            plain_jax_program=_plain_grid(plain[0]) if plain else None,
            pitfall=plain[1] if plain else "",
            notes="20 steps; a parameter without gradient (None) at steps 1-2 and 9-11, zero gradients at steps "
            "6 and 15. "
            + (
                "No square root: PyTorch's parameters and state bit for bit."
                if kind == "adamax"
                else "Parameters and state may differ in the last bits: " + _SQRT_REASON + "."
            ),
        )
    )


_GRID: dict[str, list[dict[str, Any]]] = {
    "rmsprop": [
        {},
        dict(lr=0.01, weight_decay=0.1, maximize=True),
        dict(lr=0.01, momentum=0.9, centered=True),
    ],
    "adagrad": [
        {},
        dict(lr=0.1, lr_decay=0.1, weight_decay=0.1),
        dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3, maximize=True),
    ],
    "adadelta": [
        {},
        dict(rho=0.5, weight_decay=0.1),
        dict(lr=0.5, eps=1e-3, maximize=True),
    ],
    "adamax": [
        {},
        dict(lr=0.05, weight_decay=0.1),
        # beta1 = 0.5 takes lerp's other branch (weight 1 - beta1 >= 0.5).
        dict(lr=0.05, betas=(0.5, 0.9), maximize=True),
    ],
    "nadam": [
        {},
        dict(lr=0.05, weight_decay=0.1),
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.1),
        dict(lr=0.05, betas=(0.5, 0.9), maximize=True),
    ],
    "radam": [
        {},  # rectified from step 6
        dict(lr=0.05, weight_decay=0.1),
        # rho_inf = 7: rectified from step 8 only.
        dict(lr=0.05, betas=(0.5, 0.75), maximize=True),
    ],
}

for _offset, (_kind, _cases) in enumerate(_GRID.items()):
    for _index, _options in enumerate(_cases):
        _register_grid(_kind, _options, seed=600 + 10 * _offset + _index)
_register_grid("rmsprop", dict(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1), seed=660, via="update")
_register_grid("radam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), seed=661, via="update")
# Schedules: Adagrad divides lr_t / (1 + (t - 1) * lr_decay) in float32; NAdam multiplies its lr = 1 coefficients.
_register_grid("adagrad", dict(lr=0.1, lr_decay=0.05), seed=662, scheduler=True)
_register_grid("nadam", dict(lr=0.05), seed=663, scheduler=True)


# ------------------------------------------------------------------------ argument errors

_BAD: dict[str, dict[str, dict[str, Any]]] = {
    "rmsprop": {
        "negative-lr": dict(lr=-1),
        "nan-lr": dict(lr=float("nan")),
        "negative-eps": dict(eps=-1e-8),
        "negative-momentum": dict(momentum=-0.9),
        "negative-weight-decay": dict(weight_decay=-0.1),
        "negative-alpha": dict(alpha=-0.5),
        "eps-before-alpha": dict(alpha=-0.5, eps=-1.0),
        "alpha-above-one-accepted": dict(alpha=1.5),
    },
    "adagrad": {
        "negative-lr": dict(lr=-0.1),
        "negative-lr-decay": dict(lr_decay=-0.1),
        "negative-weight-decay": dict(weight_decay=-0.1),
        "negative-initial-accumulator": dict(initial_accumulator_value=-1),
        "negative-eps": dict(eps=-1e-10),
        "lr-decay-before-eps": dict(eps=-1.0, lr_decay=-1.0),
    },
    "adadelta": {
        "negative-lr": dict(lr=-1.0),
        "rho-above-one": dict(rho=1.5),
        "negative-rho": dict(rho=-0.1),
        "negative-eps": dict(eps=-1e-6),
        "negative-weight-decay": dict(weight_decay=-0.1),
        "rho-one-accepted": dict(rho=1.0),
    },
    "adamax": {
        "negative-lr": dict(lr=-0.1),
        "negative-eps": dict(eps=-1e-8),
        "beta1-one": dict(betas=(1.0, 0.999)),
        "beta2-negative": dict(betas=(0.9, -0.1)),
        "negative-weight-decay": dict(weight_decay=-0.1),
        "integer-beta-accepted": dict(betas=(0, 0.999)),
    },
    "nadam": {
        "nan-lr": dict(lr=float("nan")),
        "negative-eps": dict(eps=-1e-8),
        "beta1-one": dict(betas=(1.0, 0.999)),
        "beta2-one": dict(betas=(0.9, 1.0)),
        "negative-weight-decay": dict(weight_decay=-0.1),
        "negative-momentum-decay": dict(momentum_decay=-0.004),
        "weight-decay-before-momentum-decay": dict(weight_decay=-1.0, momentum_decay=-1.0),
    },
    "radam": {
        "negative-lr": dict(lr=-1e-3),
        "negative-eps": dict(eps=-1e-8),
        "beta1-negative": dict(betas=(-0.1, 0.999)),
        "beta2-one": dict(betas=(0.9, 1.0)),
        "negative-weight-decay": dict(weight_decay=-0.1),
    },
}


for _kind, _bad in _BAD.items():
    _register_errors(_kind, _bad, family="optim_more", torch_call=TORCH_NAMES[_kind])
