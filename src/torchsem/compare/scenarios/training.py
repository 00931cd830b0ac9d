"""Whole training runs (family ``training``): the document's Net trained by PyTorch and by torchsem.

Both sides start from the same numpy weights (PyTorch through ``load_state_dict``, torchsem
through :func:`torchsem.convert.load_torch_state_dict`) and train for 50 steps on the same
random batches with ``SGD(lr=1e-2, momentum=0.9, weight_decay=1e-4)`` and
``CrossEntropyLoss``, with one eval pass (``model.eval()`` + ``torch.no_grad()``) every 10
steps. Compared after every step: every parameter, BatchNorm's running statistics and
counter, the loss, the optimizer state (momentum buffers, and which parameters have one), and
the eval outputs.

- ``frozen-fc1-weight``: ``model.fc1.weight.requires_grad = False`` (PyTorch) and
  ``make_train_step(..., frozen="fc1.weight")`` (torchsem): the weight never gets a gradient,
  never moves, and SGD keeps no buffer for it (no weight decay either).
- ``detach``: the document's example two, ``x = x.detach()`` before ``fc1``: bn1's parameters
  get no gradient (None), so SGD skips them (no weight decay, no buffer); its running
  statistics still update.

The torchsem side runs the jitted train step in a Python loop, and (``/scan``) the same run as
``torchsem.train.train_loop`` blocks of 10 steps (one ``jax.lax.scan`` each) between evals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._document_net import net_variables, random_net_state
from .._scenario import Scenario, register

STEPS = 50
EVAL_EVERY = 10
BATCH = 3
EVAL_BATCH = 5
PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")
LR, MOMENTUM, WEIGHT_DECAY = 1e-2, 0.9, 1e-4


def _make_inputs(seed: int):
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        return {
            "state": random_net_state(rng, fresh_statistics=True),
            "xs": rng.standard_normal((STEPS, BATCH, 3, 8)).astype(np.float32),
            "ys": rng.integers(0, 4, (STEPS, BATCH)).astype(np.int64),
            "x_eval": rng.standard_normal((EVAL_BATCH, 3, 8)).astype(np.float32),
            "y_eval": rng.integers(0, 4, EVAL_BATCH).astype(np.int64),
        }

    return make


def _empty_record() -> dict[str, list]:
    names = [*PARAMS, "running_mean", "running_var", "num_batches_tracked", "loss", "eval_outputs", "eval_loss"]
    names += [f"momentum_buffer.{p}" for p in PARAMS] + [f"has_state.{p}" for p in PARAMS]
    return {name: [] for name in names}


def _record_state(record: dict[str, list], params: Mapping[str, Any], stats: Mapping[str, Any]) -> None:
    for name in PARAMS:
        record[name].append(np.array(params[name], np.float32, copy=True))
    for name in ("running_mean", "running_var"):
        record[name].append(np.array(stats[name], np.float32, copy=True))
    record["num_batches_tracked"].append(np.array(stats["num_batches_tracked"], np.int64))


def _record_optimizer(
    record: dict[str, list], torch_state: Mapping[int, Mapping[str, Any]], shapes: Mapping[str, tuple[int, ...]]
) -> None:
    for index, name in enumerate(PARAMS):
        entry = torch_state.get(index)
        record[f"has_state.{name}"].append(entry is not None)
        record[f"momentum_buffer.{name}"].append(
            np.zeros(shapes[name], np.float32) if entry is None else np.array(entry["momentum_buffer"], copy=True)
        )


def _stack(record: dict[str, list]) -> dict[str, np.ndarray]:
    return {name: np.stack(values) for name, values in record.items()}


# --- PyTorch ------------------------------------------------------------------------------


def _torch_run(detach: bool, frozen: tuple[str, ...]):
    def program(inputs):
        import torch

        from .._torch_net import torch_net

        model = torch_net(inputs["state"], detach=detach)
        named = dict(model.named_parameters())
        for name in frozen:
            named[name].requires_grad = False
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        loss_fn = torch.nn.CrossEntropyLoss()
        shapes = {name: tuple(p.shape) for name, p in named.items()}

        def stats():
            return {
                "running_mean": model.bn1.running_mean.detach().numpy(),
                "running_var": model.bn1.running_var.detach().numpy(),
                "num_batches_tracked": model.bn1.num_batches_tracked.numpy(),
            }

        record = _empty_record()
        _record_state(record, {n: p.detach().numpy() for n, p in named.items()}, stats())
        model.train()
        for step in range(STEPS):
            optimizer.zero_grad()
            loss = loss_fn(model(torch.from_numpy(inputs["xs"][step])), torch.from_numpy(inputs["ys"][step]))
            loss.backward()
            optimizer.step()
            record["loss"].append(loss.detach().numpy().copy())
            _record_state(record, {n: p.detach().numpy() for n, p in named.items()}, stats())
            _record_optimizer(
                record,
                {
                    i: {k: v.detach().numpy() for k, v in entry.items()}
                    for i, entry in optimizer.state_dict()["state"].items()
                },
                shapes,
            )
            if (step + 1) % EVAL_EVERY == 0:
                model.eval()
                with torch.no_grad():
                    outputs = model(torch.from_numpy(inputs["x_eval"]))
                    record["eval_outputs"].append(outputs.numpy().copy())
                    record["eval_loss"].append(loss_fn(outputs, torch.from_numpy(inputs["y_eval"])).numpy().copy())
                model.train()
        return _stack(record)

    return program


# --- torchsem -----------------------------------------------------------------------------


def _flat_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{module}.{name}": value for module, leaves in params.items() for name, value in leaves.items()}


def _flat_stats(batch_stats: Mapping[str, Any]) -> dict[str, Any]:
    return dict(batch_stats["bn1"])


def _jax_run(detach: bool, frozen: tuple[str, ...], use_scan: bool):
    def program(inputs, jit):
        import jax
        import jax.numpy as jnp

        from torchsem import optim, train
        from torchsem.losses import cross_entropy
        from torchsem.models import Net

        model = Net(detach=detach)
        variables = net_variables(inputs["state"])
        tx = optim.sgd(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        state = train.TrainState.create(variables, tx)
        train_step = train.make_train_step(model, cross_entropy, tx, frozen=list(frozen) or None, jit=jit)
        eval_step = train.make_eval_step(model, cross_entropy, jit=jit)
        shapes = {name: tuple(np.shape(v)) for name, v in _flat_params(state.params).items()}

        record = _empty_record()

        def whole_state(state_now):  # one function object: train_loop compiles once for every block
            return state_now

        def after_step(state_now) -> None:
            _record_state(record, _flat_params(state_now.params), _flat_stats(state_now.batch_stats))
            _record_optimizer(record, optim.state_dict(state_now.opt_state, order=PARAMS), shapes)

        _record_state(record, _flat_params(state.params), _flat_stats(state.batch_stats))
        eval_batch = (jnp.asarray(inputs["x_eval"]), jnp.asarray(inputs["y_eval"]))
        for block in range(STEPS // EVAL_EVERY):
            steps = slice(block * EVAL_EVERY, (block + 1) * EVAL_EVERY)
            if use_scan:
                batches = (jnp.asarray(inputs["xs"][steps]), jnp.asarray(inputs["ys"][steps]))
                state, (metrics, trajectory) = train.train_loop(train_step, state, batches, collect=whole_state)
                for i in range(EVAL_EVERY):
                    record["loss"].append(np.asarray(metrics["loss"][i]))
                    after_step(jax.tree.map(lambda leaf, i=i: leaf[i], trajectory))
            else:
                for step in range(steps.start, steps.stop):
                    batch = (jnp.asarray(inputs["xs"][step]), jnp.asarray(inputs["ys"][step]))
                    state, metrics = train_step(state, batch)
                    record["loss"].append(np.asarray(metrics["loss"]))
                    after_step(state)
            evaluated = eval_step(state, eval_batch)
            record["eval_outputs"].append(np.asarray(evaluated["outputs"]))
            record["eval_loss"].append(np.asarray(evaluated["loss"]))
        return _stack(record)

    return program


def _register(case: str, detach: bool, frozen: tuple[str, ...], seed: int) -> None:
    torch_idiom = (
        "x = x.detach() before fc1" if detach else "; ".join(f"model.{name}.requires_grad = False" for name in frozen)
    )
    torchsem_idiom = "Net(detach=True)" if detach else f"make_train_step(..., frozen={list(frozen)!r})"
    for use_scan in (False, True):
        register(
            Scenario(
                name=f"training/net-sgd/{case}" + ("/scan" if use_scan else ""),
                section="The document's training loop (sections 1, 2 and 5), 50 steps",
                mapping=f"PyTorch loop (zero_grad, forward, backward, SGD step; eval every {EVAL_EVERY}), "
                f"{torch_idiom} -> "
                f"torchsem.train.{'train_loop' if use_scan else 'make_train_step'}, {torchsem_idiom}",
                make_inputs=_make_inputs(seed),
                torch_program=_torch_run(detach, frozen),
                jax_program=_jax_run(detach, frozen, use_scan),
                notes="Drift over 50 steps stays at float32 rounding: the forward and backward passes round in a "
                "different order from PyTorch's kernels (matmul and BatchNorm reductions), one ulp here and "
                "there, which the following steps carry along.",
            )
        )


_register("frozen-fc1-weight", detach=False, frozen=("fc1.weight",), seed=600)
_register("detach", detach=True, frozen=(), seed=601)
