"""Learning-rate schedulers (family ``lr_scheduler``): ``torch.optim.lr_scheduler`` against
:mod:`torchsem.optim.lr_scheduler`.

Each case builds PyTorch's scheduler on a ``torch.optim.SGD`` (or ``Adam``, where the cycled
momentum is ``betas[0]``) and steps it 60 times after ``optimizer.step()``, reading
``param_groups[0]`` after construction and after every step:

- ``lr``: the float64 learning rate (torchsem: ``scheduler.lrs(61)``, its host replay), bit
  for bit (see ``_EXACT`` for why that holds on any x86-64 CPU);
- ``lr_used``: the float32 learning rate PyTorch's SGD kernel applied at each step, observed
  as the parameter after a step from 0 with gradient -1 (the optimizer state is cleared each
  step, so a momentum buffer starts as the gradient); torchsem: ``torchsem.optim.sgd(lr=
  scheduler)`` stepped the same way, which looks the schedule up by its update count;
- ``momentum`` / ``momentum_float32``: the cycled momentum, float64 and as a float32 kernel
  rounds it (torchsem: ``momentums(61)`` and the ``scheduler.momentum`` schedule).

Further cases: ReduceLROnPlateau on a metric sequence with plateaus, ties, NaN and cooldown
(and an SGD run driven by it), ``per_epoch``, and PyTorch's constructor errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, Tolerance, register

STEPS = 60
LR = 0.1
_SECTION = "torchsem.optim.lr_scheduler"

# Bit for bit, also for the cases whose recursion calls math.cos or float ** (the platform's libm):
# glibc picks its FMA or SSE2 variant of cos/pow by CPU, and the two differ for about 0.07% of
# arguments, but every value here was checked identical under both (the recording's machine,
# and GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA), so any x86-64 CPU reproduces the recording.
_EXACT = {
    name: Tolerance(
        0.0,
        0.0,
        reason="PyTorch's float64 recursion replayed step for step (float32: its value rounded once): bit for bit",
    )
    for name in ("lr", "momentum", "lr_used", "momentum_float32", "best")
}


# Host functions both sides call with the step (PyTorch's lr_lambda / scale_fn take Python ints).
def _lambda_factor(epoch: int) -> float:
    return 0.95**epoch / (1 + epoch // 10)


def _multiplicative_factor(epoch: int) -> float:
    return 0.97 if epoch % 3 else 1.02


def _scale_fn(x: float) -> float:
    return 0.5 ** (x / 10)


# case -> (PyTorch builder (lr_scheduler module, optimizer), torchsem builder (lr_scheduler module),
#          optimizer "sgd"/"adam").
Builder = Callable[[Any, Any], Any]
_CASES: dict[str, tuple[Builder, Callable[[Any], Any], str]] = {
    "step_lr/step_size=7-gamma=0.5": (
        lambda T, o: T.StepLR(o, step_size=7, gamma=0.5),
        lambda L: L.StepLR(LR, step_size=7, gamma=0.5),
        "sgd",
    ),
    "step_lr/step_size=1-gamma=0.9": (
        lambda T, o: T.StepLR(o, 1, 0.9),
        lambda L: L.StepLR(LR, 1, 0.9, horizon=32),
        "sgd",
    ),
    "multi_step_lr/repeated-milestone": (
        lambda T, o: T.MultiStepLR(o, milestones=[5, 12, 12, 40], gamma=0.3),
        lambda L: L.MultiStepLR(LR, milestones=[5, 12, 12, 40], gamma=0.3),
        "sgd",
    ),
    "constant_lr/factor=0.25-total_iters=10": (
        lambda T, o: T.ConstantLR(o, factor=0.25, total_iters=10),
        lambda L: L.ConstantLR(LR, factor=0.25, total_iters=10),
        "sgd",
    ),
    "constant_lr/defaults": (lambda T, o: T.ConstantLR(o), lambda L: L.ConstantLR(LR), "sgd"),
    "linear_lr/warmup": (
        lambda T, o: T.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20),
        lambda L: L.LinearLR(LR, start_factor=0.1, end_factor=1.0, total_iters=20),
        "sgd",
    ),
    "linear_lr/decay": (
        lambda T, o: T.LinearLR(o, 1.0, 0.05, 37),
        lambda L: L.LinearLR(LR, 1.0, 0.05, 37),
        "sgd",
    ),
    "exponential_lr/gamma=0.93": (
        lambda T, o: T.ExponentialLR(o, gamma=0.93),
        lambda L: L.ExponentialLR(LR, gamma=0.93),
        "sgd",
    ),
    "polynomial_lr/power=2": (
        lambda T, o: T.PolynomialLR(o, total_iters=40, power=2.0),
        lambda L: L.PolynomialLR(LR, total_iters=40, power=2.0),
        "sgd",
    ),
    "polynomial_lr/defaults": (lambda T, o: T.PolynomialLR(o), lambda L: L.PolynomialLR(LR), "sgd"),
    "cosine_annealing_lr/t_max=20-past-the-minimum": (
        lambda T, o: T.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
        lambda L: L.CosineAnnealingLR(LR, T_max=20, eta_min=0.001),
        "sgd",
    ),
    "cosine_annealing_lr/t_max=60-horizon=32": (
        lambda T, o: T.CosineAnnealingLR(o, T_max=60),
        lambda L: L.CosineAnnealingLR(LR, T_max=60, horizon=32),  # counts 32.. come from the host callback
        "sgd",
    ),
    "cosine_annealing_warm_restarts/t_mult=2": (
        lambda T, o: T.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=1e-4),
        lambda L: L.CosineAnnealingWarmRestarts(LR, T_0=7, T_mult=2, eta_min=1e-4, horizon=64),
        "sgd",
    ),
    "cosine_annealing_warm_restarts/t_0=10": (
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 10),
        lambda L: L.CosineAnnealingWarmRestarts(LR, 10, horizon=64),
        "sgd",
    ),
    "cyclic_lr/triangular": (
        lambda T, o: T.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=9),
        lambda L: L.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=9, horizon=64),
        "sgd",
    ),
    "cyclic_lr/triangular2-adam": (
        lambda T, o: T.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2"),
        lambda L: L.CyclicLR(0.01, 0.1, 4, mode="triangular2", horizon=64),
        "adam",
    ),
    "cyclic_lr/exp_range": (
        lambda T, o: T.CyclicLR(o, 0.01, 0.1, 6, mode="exp_range", gamma=0.97, base_momentum=0.7),
        lambda L: L.CyclicLR(0.01, 0.1, 6, mode="exp_range", gamma=0.97, base_momentum=0.7, horizon=64),
        "sgd",
    ),
    "cyclic_lr/scale_fn-iterations-no-momentum": (
        lambda T, o: T.CyclicLR(o, 0.01, 0.1, 3, 5, scale_fn=_scale_fn, scale_mode="iterations", cycle_momentum=False),
        lambda L: L.CyclicLR(0.01, 0.1, 3, 5, scale_fn=_scale_fn, scale_mode="iterations", cycle_momentum=False),
        "sgd",
    ),
    "one_cycle_lr/cos": (
        lambda T, o: T.OneCycleLR(o, max_lr=0.1, total_steps=STEPS),
        lambda L: L.OneCycleLR(max_lr=0.1, total_steps=STEPS),
        "sgd",
    ),
    "one_cycle_lr/three_phase-linear-adam": (
        lambda T, o: T.OneCycleLR(o, 0.1, epochs=6, steps_per_epoch=10, anneal_strategy="linear", three_phase=True),
        lambda L: L.OneCycleLR(0.1, epochs=6, steps_per_epoch=10, anneal_strategy="linear", three_phase=True),
        "adam",
    ),
    "lambda_lr": (
        lambda T, o: T.LambdaLR(o, lr_lambda=_lambda_factor),
        lambda L: L.LambdaLR(LR, lr_lambda=_lambda_factor, horizon=64),
        "sgd",
    ),
    "multiplicative_lr": (
        lambda T, o: T.MultiplicativeLR(o, lr_lambda=_multiplicative_factor),
        lambda L: L.MultiplicativeLR(LR, lr_lambda=_multiplicative_factor, horizon=64),
        "sgd",
    ),
    "sequential_lr/warmup-cosine": (
        lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.1, total_iters=10), T.CosineAnnealingLR(o, 50)], [10]),
        lambda L: L.SequentialLR([L.LinearLR(LR, 0.1, total_iters=10), L.CosineAnnealingLR(LR, 50)], [10], horizon=64),
        "sgd",
    ),
    "sequential_lr/three-members": (
        lambda T, o: T.SequentialLR(
            o, [T.ConstantLR(o, 0.5, 3), T.ExponentialLR(o, 0.9), T.StepLR(o, 4, 0.5)], milestones=[5, 30]
        ),
        lambda L: L.SequentialLR(
            [L.ConstantLR(LR, 0.5, 3), L.ExponentialLR(LR, 0.9), L.StepLR(LR, 4, 0.5)], milestones=[5, 30]
        ),
        "sgd",
    ),
    "chained_scheduler/constant-exponential": (
        lambda T, o: T.ChainedScheduler([T.ConstantLR(o, 0.5, 8), T.ExponentialLR(o, 0.95)]),
        lambda L: L.ChainedScheduler([L.ConstantLR(LR, 0.5, 8), L.ExponentialLR(LR, 0.95)]),
        "sgd",
    ),
    "chained_scheduler/linear-cyclic": (
        lambda T, o: T.ChainedScheduler([T.LinearLR(o, 0.5, total_iters=10), T.CyclicLR(o, 0.01, 0.1, 5)]),
        lambda L: L.ChainedScheduler([L.LinearLR(LR, 0.5, total_iters=10), L.CyclicLR(0.01, 0.1, 5)], horizon=64),
        "sgd",
    ),
}


def _torch_schedule(build: Builder, kind: str):
    def program(inputs):
        import torch

        param = torch.nn.Parameter(torch.zeros(()))
        if kind == "sgd":
            optimizer = torch.optim.SGD([param], lr=LR, momentum=0.9)
        else:
            optimizer = torch.optim.Adam([param], lr=LR)
        scheduler = build(torch.optim.lr_scheduler, optimizer)
        group = optimizer.param_groups[0]
        cycled = "base_momentum" in group  # set by CyclicLR/OneCycleLR when they cycle momentum

        def momentum() -> float:
            return group["momentum"] if kind == "sgd" else group["betas"][0]

        lrs, momentums, used = [group["lr"]], [momentum()], []
        for _ in range(STEPS):
            if kind == "sgd":
                with torch.no_grad():
                    param.zero_()
                param.grad = torch.full((), -1.0)
                optimizer.state.clear()  # a first step: the update is exactly lr (as float32)
            else:
                param.grad = torch.zeros(())
            optimizer.step()
            used.append(param.detach().numpy().copy())
            scheduler.step()
            lrs.append(group["lr"])
            momentums.append(momentum())
        outputs: dict[str, Any] = {"lr": np.array(lrs, np.float64)}
        if kind == "sgd":
            outputs["lr_used"] = np.stack(used)
        if cycled:
            outputs["momentum"] = np.array(momentums, np.float64)
            outputs["momentum_float32"] = np.array(momentums, np.float64).astype(np.float32)  # a kernel's rounding
        return outputs

    return program


def _lr_used(schedule: Any, jit: bool) -> np.ndarray:
    """torchsem's SGD stepped from 0 with gradient -1 each step: the float32 lr it applied at each count."""
    import jax.numpy as jnp

    from torchsem import optim

    tx = optim.sgd(lr=schedule)
    zero = jnp.zeros((), jnp.float32)
    state = tx.init(zero)
    one_step = jitted(lambda s: optim.step(tx, jnp.float32(-1.0), s, zero), jit)
    used = []
    for _ in range(STEPS):
        param, state = one_step(state)
        used.append(np.asarray(param))
    return np.stack(used)


def _jax_schedule(build: Callable[[Any], Any], kind: str):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem.optim import lr_scheduler

        scheduler = build(lr_scheduler)
        outputs: dict[str, Any] = {"lr": scheduler.lrs(STEPS + 1)}
        if kind == "sgd":
            outputs["lr_used"] = _lr_used(scheduler, jit)
        if scheduler.momentum is not None:
            outputs["momentum"] = scheduler.momentums(STEPS + 1)
            momentum = jitted(scheduler.momentum, jit)
            outputs["momentum_float32"] = np.stack([np.asarray(momentum(jnp.int32(c))) for c in range(STEPS + 1)])
        return outputs

    return program


for _case, (_torch_build, _jax_build, _kind) in _CASES.items():
    _class = _case.split("/")[0]
    register(
        Scenario(
            name=f"lr_scheduler/{_case}",
            section=_SECTION,
            mapping=f"torch.optim.lr_scheduler.<{_class}>(optimizer, ...) stepped after optimizer.step() -> "
            f"torchsem.optim.lr_scheduler.<{_class}>(lr, ...) as the optimizer's lr (count = scheduler steps)",
            torch_program=_torch_schedule(_torch_build, _kind),
            jax_program=_jax_schedule(_jax_build, _kind),
            tolerances=_EXACT,
            notes="60 steps; param_groups[0]['lr'] (and the cycled momentum) after each, float64 from the host "
            "replay, and the float32 lr SGD applied, looked up by the update count.",
        )
    )


# ------------------------------------------------------------------------ per_epoch

_EPOCHS, _PER_EPOCH = 15, 4


def _per_epoch_torch(build: Builder):
    def program(inputs):
        import torch

        param = torch.nn.Parameter(torch.zeros(()))
        optimizer = torch.optim.SGD([param], lr=LR)
        scheduler = build(torch.optim.lr_scheduler, optimizer)
        lrs, used = [], []
        for _ in range(_EPOCHS):
            for _ in range(_PER_EPOCH):
                lrs.append(optimizer.param_groups[0]["lr"])
                with torch.no_grad():
                    param.zero_()
                param.grad = torch.full((), -1.0)
                optimizer.step()
                used.append(param.detach().numpy().copy())
            scheduler.step()  # once per epoch
        return {"lr": np.array(lrs, np.float64), "lr_used": np.stack(used)}

    return program


def _per_epoch_jax(build: Callable[[Any], Any]):
    def program(inputs, jit):
        from torchsem.optim import lr_scheduler

        schedule = lr_scheduler.per_epoch(build(lr_scheduler), steps_per_epoch=_PER_EPOCH)
        return {"lr": schedule.lrs(_EPOCHS * _PER_EPOCH), "lr_used": _lr_used(schedule, jit)}

    return program


for _case, _torch_build, _jax_build in (
    ("step_lr", lambda T, o: T.StepLR(o, 2, 0.5), lambda L: L.StepLR(LR, 2, 0.5)),
    ("cosine_annealing_lr", lambda T, o: T.CosineAnnealingLR(o, 15), lambda L: L.CosineAnnealingLR(LR, 15)),
):
    register(
        Scenario(
            name=f"lr_scheduler/per_epoch/{_case}",
            section=_SECTION,
            mapping="scheduler.step() once per epoch of 4 optimizer steps -> "
            "torchsem.optim.lr_scheduler.per_epoch(scheduler, steps_per_epoch=4)",
            torch_program=_per_epoch_torch(_torch_build),
            jax_program=_per_epoch_jax(_jax_build),
            tolerances=_EXACT,
            notes="15 epochs of 4 SGD steps; the lr at each optimizer step.",
        )
    )


# ------------------------------------------------------------------------ ReduceLROnPlateau

_METRICS = [
    # improving, then a plateau (ties are not improvements), a tiny gain under the threshold, NaN, inf
    *(1.0, 0.8, 0.7, 0.7, 0.7, 0.69995, 0.7, float("nan"), 0.6, 0.6),
    *(0.61, 0.62, 0.63, 0.64, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5),
    *(0.4, float("inf"), 0.41, 0.42, 0.43, 0.44, 0.45, 0.3, 0.3, 0.3),
    *(0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3),
]
_PLATEAU_CASES: dict[str, dict[str, Any]] = {
    "min-rel-patience=2-cooldown=1": dict(mode="min", factor=0.5, patience=2, cooldown=1),
    "max-abs-patience=0-min_lr": dict(
        mode="max", threshold=0.05, threshold_mode="abs", patience=0, cooldown=2, min_lr=0.01
    ),
    "min-abs-eps-skips-the-last-cut": dict(
        mode="min", factor=0.5, patience=1, threshold=0.0, threshold_mode="abs", min_lr=[0.004], eps=1e-3
    ),
}
_PLATEAU_FIELDS = ("lr", "best", "num_bad_epochs", "cooldown_counter")


def _plateau_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(600)
    return {
        "metrics": np.array(_METRICS, np.float64),
        "param": rng.standard_normal(3).astype(np.float32),
        "grads": rng.standard_normal((len(_METRICS), 3)).astype(np.float32),
    }


def _plateau_torch(options: dict[str, Any], train: bool):
    def program(inputs):
        import torch

        param = torch.nn.Parameter(torch.from_numpy(inputs["param"].copy()))
        optimizer = torch.optim.SGD([param], lr=LR, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
        record: dict[str, list] = {name: [] for name in _PLATEAU_FIELDS}
        params = []
        for epoch, metric in enumerate(inputs["metrics"]):
            if train:
                param.grad = torch.from_numpy(inputs["grads"][epoch].copy())
                optimizer.step()
                params.append(param.detach().numpy().copy())
            scheduler.step(float(metric))
            record["lr"].append(optimizer.param_groups[0]["lr"])
            record["best"].append(scheduler.best)
            record["num_bad_epochs"].append(scheduler.num_bad_epochs)
            record["cooldown_counter"].append(scheduler.cooldown_counter)
        outputs: dict[str, Any] = {
            "lr": np.array(record["lr"], np.float64),
            "best": np.array(record["best"], np.float64),
            "num_bad_epochs": np.array(record["num_bad_epochs"], np.int64),
            "cooldown_counter": np.array(record["cooldown_counter"], np.int64),
        }
        if train:
            outputs["params"] = np.stack(params)
        return outputs

    return program


def _plateau_jax(options: dict[str, Any], train: bool):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem import optim
        from torchsem.optim import lr_scheduler

        scheduler = lr_scheduler.ReduceLROnPlateau(LR, **options)
        state = scheduler.init()
        param = jnp.asarray(inputs["param"])
        # The optimizer's state does not hold the lr: rebuild the optimizer when the lr changes.
        tx_lr, tx = state.lr, optim.sgd(lr=state.lr, momentum=0.9)
        opt_state = tx.init(param)
        step = jitted(lambda t, g, s, p: optim.step(t, g, s, p), jit, static_argnums=0)
        record: dict[str, list] = {name: [] for name in _PLATEAU_FIELDS}
        params = []
        for epoch, metric in enumerate(inputs["metrics"]):
            if train:
                if state.lr != tx_lr:
                    tx_lr, tx = state.lr, optim.sgd(lr=state.lr, momentum=0.9)
                param, opt_state = step(tx, jnp.asarray(inputs["grads"][epoch]), opt_state, param)
                params.append(np.asarray(param))
            state = scheduler.step(state, metric)  # a numpy float64, read with float() as PyTorch reads it
            for name in _PLATEAU_FIELDS:
                record[name].append(getattr(state, name))
        outputs: dict[str, Any] = {
            "lr": np.array(record["lr"], np.float64),
            "best": np.array(record["best"], np.float64),
            "num_bad_epochs": np.array(record["num_bad_epochs"], np.int64),
            "cooldown_counter": np.array(record["cooldown_counter"], np.int64),
        }
        if train:
            outputs["params"] = np.stack(params)
        return outputs

    return program


for _index, (_case, _options) in enumerate(_PLATEAU_CASES.items()):
    _train = _index == 0
    register(
        Scenario(
            name=f"lr_scheduler/reduce_lr_on_plateau/{_case}",
            section=_SECTION,
            mapping="scheduler.step(metric) once per epoch -> state = ReduceLROnPlateau(lr, ...).step(state, metric); "
            "train with state.lr" + ("; SGD rebuilt with the new lr, its state kept" if _train else ""),
            make_inputs=_plateau_inputs,
            torch_program=_plateau_torch(_options, _train),
            jax_program=_plateau_jax(_options, _train),
            tolerances=_EXACT,
            notes="40 epochs of metrics with ties, a gain under the threshold, NaN and inf; lr, best, "
            "num_bad_epochs and cooldown_counter after each."
            + (" SGD(momentum=0.9) steps once per epoch with the current lr (params compared)." if _train else ""),
        )
    )


# ------------------------------------------------------------------------ constructor errors


def _one_cycle_past_the_end(T, o):
    scheduler = T.OneCycleLR(o, 0.1, total_steps=5)
    for _ in range(6):
        o.step()
        scheduler.step()


_ERRORS: dict[str, tuple[Builder, Callable[[Any], Any]]] = {
    "constant_lr/factor": (lambda T, o: T.ConstantLR(o, factor=1.5), lambda L: L.ConstantLR(LR, factor=1.5)),
    "linear_lr/start_factor": (lambda T, o: T.LinearLR(o, start_factor=0), lambda L: L.LinearLR(LR, start_factor=0)),
    "linear_lr/end_factor": (lambda T, o: T.LinearLR(o, end_factor=1.5), lambda L: L.LinearLR(LR, end_factor=1.5)),
    "warm_restarts/t_0": (
        lambda T, o: T.CosineAnnealingWarmRestarts(o, T_0=0),
        lambda L: L.CosineAnnealingWarmRestarts(LR, T_0=0),
    ),
    "warm_restarts/t_mult": (
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, T_mult=1.5),
        lambda L: L.CosineAnnealingWarmRestarts(LR, 5, T_mult=1.5),
    ),
    "warm_restarts/eta_min": (
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, eta_min="0"),
        lambda L: L.CosineAnnealingWarmRestarts(LR, 5, eta_min="0"),
    ),
    "cyclic_lr/mode": (
        lambda T, o: T.CyclicLR(o, 0.01, 0.1, mode="cosine"),
        lambda L: L.CyclicLR(0.01, 0.1, mode="cosine"),
    ),
    "cyclic_lr/max_lr-list": (
        lambda T, o: T.CyclicLR(o, 0.01, [0.1, 0.2]),
        lambda L: L.CyclicLR(0.01, [0.1, 0.2]),
    ),
    "one_cycle_lr/no-length": (lambda T, o: T.OneCycleLR(o, 0.1), lambda L: L.OneCycleLR(0.1)),
    "one_cycle_lr/total_steps": (
        lambda T, o: T.OneCycleLR(o, 0.1, total_steps=0),
        lambda L: L.OneCycleLR(0.1, total_steps=0),
    ),
    "one_cycle_lr/epochs": (
        lambda T, o: T.OneCycleLR(o, 0.1, epochs=2.5, steps_per_epoch=3),
        lambda L: L.OneCycleLR(0.1, epochs=2.5, steps_per_epoch=3),
    ),
    "one_cycle_lr/pct_start": (
        lambda T, o: T.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5),
        lambda L: L.OneCycleLR(0.1, total_steps=10, pct_start=1.5),
    ),
    "one_cycle_lr/anneal_strategy": (
        lambda T, o: T.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="exp"),
        lambda L: L.OneCycleLR(0.1, total_steps=10, anneal_strategy="exp"),
    ),
    "one_cycle_lr/stepped-past-total_steps": (
        _one_cycle_past_the_end,
        lambda L: L.OneCycleLR(0.1, total_steps=5).lrs(7),
    ),
    "lambda_lr/two-functions": (
        lambda T, o: T.LambdaLR(o, [_lambda_factor, _lambda_factor]),
        lambda L: L.LambdaLR(LR, [_lambda_factor, _lambda_factor]),
    ),
    "multiplicative_lr/not-callable": (
        lambda T, o: T.MultiplicativeLR(o, 0.9),
        lambda L: L.MultiplicativeLR(LR, 0.9),
    ),
    "sequential_lr/empty": (lambda T, o: T.SequentialLR(o, [], []), lambda L: L.SequentialLR([], [])),
    "sequential_lr/milestones": (
        lambda T, o: T.SequentialLR(o, [T.StepLR(o, 2), T.StepLR(o, 3)], [2, 4]),
        lambda L: L.SequentialLR([L.StepLR(LR, 2), L.StepLR(LR, 3)], [2, 4]),
    ),
    "sequential_lr/reduce_lr_on_plateau": (
        lambda T, o: T.SequentialLR(o, [T.StepLR(o, 2), T.ReduceLROnPlateau(o)], [2]),
        lambda L: L.SequentialLR([L.StepLR(LR, 2), L.ReduceLROnPlateau(LR)], [2]),
    ),
    "chained_scheduler/empty": (lambda T, o: T.ChainedScheduler([]), lambda L: L.ChainedScheduler([])),
    "chained_scheduler/reduce_lr_on_plateau": (
        lambda T, o: T.ChainedScheduler([T.ReduceLROnPlateau(o)]),
        lambda L: L.ChainedScheduler([L.ReduceLROnPlateau(LR)]),
    ),
    "reduce_lr_on_plateau/factor": (
        lambda T, o: T.ReduceLROnPlateau(o, factor=1.0),
        lambda L: L.ReduceLROnPlateau(LR, factor=1.0),
    ),
    "reduce_lr_on_plateau/mode": (
        lambda T, o: T.ReduceLROnPlateau(o, mode="avg"),
        lambda L: L.ReduceLROnPlateau(LR, mode="avg"),
    ),
    "reduce_lr_on_plateau/threshold_mode": (
        lambda T, o: T.ReduceLROnPlateau(o, threshold_mode="pct"),
        lambda L: L.ReduceLROnPlateau(LR, threshold_mode="pct"),
    ),
    "reduce_lr_on_plateau/min_lr-list": (
        lambda T, o: T.ReduceLROnPlateau(o, min_lr=[0.0, 0.1]),
        lambda L: L.ReduceLROnPlateau(LR, min_lr=[0.0, 0.1]),
    ),
}


for _case, (_torch_build, _jax_build) in _ERRORS.items():

    def _torch_error(inputs, build=_torch_build):
        import torch

        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR, momentum=0.9)
        return error_outputs(lambda: build(torch.optim.lr_scheduler, optimizer))

    def _jax_error(inputs, jit, build=_jax_build):
        from torchsem.optim import lr_scheduler

        return error_outputs(lambda: build(lr_scheduler))  # checked when built (or on the host replay)

    register(
        Scenario(
            name=f"lr_scheduler/errors/{_case}",
            section=_SECTION,
            mapping="a bad scheduler argument -> the same error type and PyTorch's message",
            torch_program=_torch_error,
            jax_program=_jax_error,
        )
    )
