"""A training script's kit together (family ``training_kit``): clipping, a scheduler and parameter groups.

PyTorch::

    optimizer = SGD([{"params": [fc1.weight], "weight_decay": 1e-3},
                     {"params": [bn1.weight, bn1.bias, fc1.bias], "lr": 0.05}], lr=0.1, momentum=0.9)
    scheduler = CosineAnnealingLR(optimizer, T_max=6)
    for x, y in batches:
        optimizer.zero_grad(); loss_fn(model(x), y).backward()
        clip_grad_norm_(model.parameters(), 0.5); optimizer.step(); scheduler.step()

torchsem: ``optax.chain(optim.clip_grad_norm(0.5), optim.param_groups(optim.sgd, [...],
momentum=0.9))`` with one ``lr_scheduler.CosineAnnealingLR`` per group (PyTorch anneals each
group from its own initial lr), through ``train.make_train_step``. The document's Net from the
same weights, 10 steps (past ``T_max``: the cosine climbs back); compared after every step:
every parameter, BatchNorm's statistics and the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._document_net import net_variables, random_net_state
from .._scenario import Scenario, register

STEPS, BATCH, T_MAX, MAX_NORM = 10, 4, 6, 0.5
PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")


def _make_inputs() -> dict[str, Any]:
    rng = np.random.default_rng(2401)
    return {
        "state": random_net_state(rng, fresh_statistics=True),
        "xs": rng.standard_normal((STEPS, BATCH, 3, 8)).astype(np.float32),
        "ys": rng.integers(0, 4, (STEPS, BATCH)).astype(np.int64),
    }


def _record(outputs: dict[str, list], params: dict[str, Any], stats: dict[str, Any], loss: Any) -> None:
    outputs.setdefault("loss", []).append(np.asarray(loss, np.float32))
    for name in PARAMS:
        outputs.setdefault(name, []).append(np.array(params[name], np.float32, copy=True))
    for name in ("running_mean", "running_var"):
        outputs.setdefault(f"bn1.{name}", []).append(np.array(stats[name], np.float32, copy=True))


def _torch_program(inputs):
    import torch

    from .._torch_net import torch_net

    model = torch_net(inputs["state"])
    model.train()
    named = dict(model.named_parameters())
    optimizer = torch.optim.SGD(
        [
            {"params": [named["fc1.weight"]], "weight_decay": 1e-3},
            {"params": [named["bn1.weight"], named["bn1.bias"], named["fc1.bias"]], "lr": 0.05},
        ],
        lr=0.1,
        momentum=0.9,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=T_MAX)
    outputs: dict[str, list] = {}
    for step in range(STEPS):
        optimizer.zero_grad()
        x, y = torch.from_numpy(inputs["xs"][step]), torch.from_numpy(inputs["ys"][step])
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        optimizer.step()
        scheduler.step()
        stats = {n.split(".", 1)[1]: b.numpy() for n, b in model.named_buffers()}
        _record(outputs, {n: p.detach().numpy() for n, p in named.items()}, stats, loss.detach().numpy())
    return {k: np.stack(v) for k, v in outputs.items()}


def _jax_program(inputs, jit):
    import jax.numpy as jnp
    import optax

    from torchsem import optim, train
    from torchsem.losses import cross_entropy
    from torchsem.models import Net
    from torchsem.optim import lr_scheduler

    groups = [
        {"params": "fc1.weight", "weight_decay": 1e-3, "lr": lr_scheduler.CosineAnnealingLR(0.1, T_max=T_MAX)},
        {"params": ["bn1", "fc1.bias"], "lr": lr_scheduler.CosineAnnealingLR(0.05, T_max=T_MAX)},
    ]
    tx = optax.chain(optim.clip_grad_norm(MAX_NORM), optim.param_groups(optim.sgd, groups, momentum=0.9))
    state = train.TrainState.create(net_variables(inputs["state"]), tx)
    step_fn = train.make_train_step(Net(), cross_entropy, tx, jit=jit)
    outputs: dict[str, list] = {}
    for step in range(STEPS):
        state, metrics = step_fn(state, (jnp.asarray(inputs["xs"][step]), jnp.asarray(inputs["ys"][step])))
        params = {f"{m}.{n}": v for m, leaves in state.params.items() for n, v in leaves.items()}
        _record(outputs, params, dict(state.batch_stats["bn1"]), metrics["loss"])
    return {k: np.stack(v) for k, v in outputs.items()}


register(
    Scenario(
        name="training_kit/net-clip-cosine-param-groups",
        section="torchsem.optim: clipping + scheduler + parameter groups in one run (training kit)",
        mapping="SGD([group, group], ...) + CosineAnnealingLR + clip_grad_norm_ -> "
        "optax.chain(optim.clip_grad_norm, optim.param_groups(optim.sgd, [...]) with lr_scheduler schedules)",
        make_inputs=_make_inputs,
        torch_program=_torch_program,
        jax_program=_jax_program,
    )
)
