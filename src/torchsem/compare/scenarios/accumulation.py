"""Gradient accumulation (family ``accumulation``): k micro-batches per optimizer step, as PyTorch scripts do it.

PyTorch::

    optimizer.zero_grad()
    for x, y in micro_batches:                        # k of them
        (loss_fn(model(x), y) / k).backward()         # .grad accumulates; BatchNorm updates each time
    optimizer.step()

torchsem: ``make_train_step(model, loss_fn, tx, accumulation_steps=k)`` on ``(x[k, ...],
y[k, ...])``. The document's Net (BatchNorm1d, so the running statistics see every micro-batch)
from the same weights, SGD with momentum and weight decay, 4 optimizer steps of 3
micro-batches of 2; compared after every optimizer step: every parameter, the running
statistics and counter, the accumulated loss and the momentum buffers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._document_net import net_variables, random_net_state
from .._scenario import Scenario, register

STEPS, MICRO, BATCH = 4, 3, 2
PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")


def _make_inputs() -> dict[str, Any]:
    rng = np.random.default_rng(2201)
    return {
        "state": random_net_state(rng, fresh_statistics=True),
        "xs": rng.standard_normal((STEPS, MICRO, BATCH, 3, 8)).astype(np.float32),
        "ys": rng.integers(0, 4, (STEPS, MICRO, BATCH)).astype(np.int64),
    }


def _record(outputs: dict[str, list], params: dict[str, Any], stats: dict[str, Any], buffers: dict[str, Any]) -> None:
    for name in PARAMS:
        outputs.setdefault(name, []).append(np.array(params[name], np.float32, copy=True))
        outputs.setdefault(f"momentum_buffer {name}", []).append(np.array(buffers[name], np.float32, copy=True))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        outputs.setdefault(f"bn1.{name}", []).append(np.array(stats[name], copy=True))


def _torch_program(inputs):
    import torch

    from .._torch_net import torch_net

    model = torch_net(inputs["state"])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    outputs: dict[str, list] = {"loss": []}
    for step in range(STEPS):
        optimizer.zero_grad()
        total = 0.0
        for micro in range(MICRO):
            x = torch.from_numpy(inputs["xs"][step, micro])
            loss = torch.nn.functional.cross_entropy(model(x), torch.from_numpy(inputs["ys"][step, micro])) / MICRO
            loss.backward()
            total = loss.detach() if micro == 0 else total + loss.detach()
        optimizer.step()
        outputs["loss"].append(np.asarray(total))
        named = dict(model.named_parameters())
        buffers = {n: optimizer.state[p]["momentum_buffer"].numpy() for n, p in named.items()}
        stats = {n.split(".", 1)[1]: b.numpy() for n, b in model.named_buffers()}
        _record(outputs, {n: p.detach().numpy() for n, p in named.items()}, stats, buffers)
    return {k: np.stack(v) for k, v in outputs.items()}


def _jax_program(inputs, jit):
    import jax.numpy as jnp

    from torchsem import optim, train
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    tx = optim.sgd(lr=0.1, momentum=0.9, weight_decay=1e-3)
    state = train.TrainState.create(net_variables(inputs["state"]), tx)
    step_fn = train.make_train_step(Net(), cross_entropy, tx, accumulation_steps=MICRO, jit=jit)
    outputs: dict[str, list] = {"loss": []}
    for step in range(STEPS):
        state, metrics = step_fn(state, (jnp.asarray(inputs["xs"][step]), jnp.asarray(inputs["ys"][step])))
        outputs["loss"].append(np.asarray(metrics["loss"]))
        params = {f"{m}.{n}": v for m, leaves in state.params.items() for n, v in leaves.items()}
        entries = optim.state_dict(state.opt_state, order=list(params))
        buffers = {name: entries[i]["momentum_buffer"] for i, name in enumerate(params)}
        _record(outputs, params, dict(state.batch_stats["bn1"]), buffers)
    return {k: np.stack(v) for k, v in outputs.items()}


register(
    Scenario(
        name="accumulation/net-sgd-3-micro-batches",
        section="torchsem.train: gradient accumulation (training kit)",
        mapping="for each of k micro-batches: (loss / k).backward(); then optimizer.step() -> "
        "make_train_step(model, loss_fn, tx, accumulation_steps=k)((x[k], y[k]))",
        make_inputs=_make_inputs,
        torch_program=_torch_program,
        jax_program=_jax_program,
    )
)
