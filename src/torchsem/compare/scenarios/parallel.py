"""Data-parallel training (family ``parallel``): DDP + SyncBatchNorm against single-process PyTorch.

``DistributedDataParallel`` with ``SyncBatchNorm`` documents its result as that of one process
on the global batch (SyncBatchNorm normalises with the statistics of the whole global batch and
DDP averages the gradients); so the oracle is PyTorch training the document's Net in one process
on each step's global batch (its real examples), and the JAX side is
:func:`torchsem.parallel.make_train_step` over every local device (8 host CPU devices under the
test suite), the batch split over the ``data`` axis. Both start from the same numpy weights
(``load_state_dict`` / :func:`torchsem.convert.load_torch_state_dict`). Compared after every one
of 20 steps: every parameter, bn1's running statistics and counter, the loss, and the optimizer
state (with which parameters have any).

- ``net-sgd/even``: global batch 32, ``SGD(lr=0.05, momentum=0.9)``.
- ``net-sgd/padded``: global batch 30 (8 does not divide it) through
  :func:`torchsem.parallel.pad_batch`: two zero rows, masked out.
- ``net-sgd/uneven-shards``: every device holds a different number of real examples
  (0 to 6) through :func:`torchsem.parallel.pad_shards`; PyTorch trains on their concatenation.
- ``net-adam/frozen-fc1-weight``: ``model.fc1.weight.requires_grad = False`` with ``Adam``:
  no gradient, no step, no state for fc1.weight, as one process does.
- ``sync-batchnorm/convert``: :func:`torchsem.nn.convert_sync_batchnorm` around a module that
  creates its BatchNorm in ``setup()``, called inside ``jax.shard_map`` with uneven per-device
  masks (train, eval, train): outputs, input and parameter gradients and running statistics
  against ``BatchNorm1d`` on the concatenated real examples.

The JAX program runs the jitted step in a Python loop (``jit=True``) or, for ``jit=False``,
the unjitted step inside :func:`torchsem.train.train_loop` (one ``lax.scan``): a data-parallel
step is one SPMD program, and ``shard_map`` dispatched op by op takes seconds per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._authoring import jitted
from .._document_net import random_net_state
from .._scenario import Scenario, Tolerance, register

STEPS = 20
DEVICES = 8  # the shard layout the inputs are drawn for; the programs run on any device count
PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")
STATS = ("running_mean", "running_var", "num_batches_tracked")
_SECTION = "torchsem.parallel: data-parallel training with synchronised BatchNorm (DDP + SyncBatchNorm)"
_OPTIMIZER_KEYS = {"sgd": ("momentum_buffer",), "adam": ("step", "exp_avg", "exp_avg_sq")}
_SGD = {"lr": 0.05, "momentum": 0.9}
_ADAM = {"lr": 1e-2}


# --- inputs ---------------------------------------------------------------------------------


def _batch_inputs(global_batch: int, seed: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        state = random_net_state(rng, fresh_statistics=True)
        # Inputs with per-channel offsets, so that the BatchNorm statistics matter.
        offsets = rng.normal(0.0, 1.0, (1, 1, 3, 1)).astype(np.float32)
        xs = (rng.standard_normal((STEPS, global_batch, 3, 8)) * 1.5 + offsets).astype(np.float32)
        return {"state": state, "xs": xs, "ys": rng.integers(0, 4, (STEPS, global_batch)).astype(np.int64)}

    return make


_SHARD_ROWS = 6  # the largest per-device shard of the uneven case


def _uneven_inputs(seed: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        state = random_net_state(rng, fresh_statistics=True)
        sizes = rng.integers(0, _SHARD_ROWS + 1, (STEPS, DEVICES))
        sizes[:, 3] = np.minimum(sizes[:, 3], 1)  # device 3 holds 0 or 1 examples
        full = np.array([0, 1, 2, 4, 5, 6, 7])[np.arange(STEPS) % 7]
        sizes[np.arange(STEPS), full] = _SHARD_ROWS  # one full device per step: the padded size is always 6
        xs = rng.standard_normal((STEPS, DEVICES, _SHARD_ROWS, 3, 8)).astype(np.float32)
        ys = rng.integers(0, 4, (STEPS, DEVICES, _SHARD_ROWS)).astype(np.int64)
        return {"state": state, "xs": xs, "ys": ys, "sizes": sizes.astype(np.int64)}

    return make


def _real_batches(inputs: Mapping[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every step's real examples, concatenated in device order: what one process trains on."""
    if "sizes" not in inputs:
        return [(inputs["xs"][s], inputs["ys"][s]) for s in range(STEPS)]
    batches = []
    for s in range(STEPS):
        sizes = inputs["sizes"][s]
        batches.append(
            (
                np.concatenate([inputs["xs"][s, k, :n] for k, n in enumerate(sizes)]),
                np.concatenate([inputs["ys"][s, k, :n] for k, n in enumerate(sizes)]),
            )
        )
    return batches


# --- recording ------------------------------------------------------------------------------


def _empty_record(optimizer: str) -> dict[str, list]:
    names = [*PARAMS, *STATS, "loss"] + [f"has_state.{p}" for p in PARAMS]
    names += [f"{key}.{p}" for key in _OPTIMIZER_KEYS[optimizer] for p in PARAMS]
    return {name: [] for name in names}


def _record(
    record: dict[str, list],
    params: Mapping[str, Any],
    stats: Mapping[str, Any],
    optimizer_state: Mapping[int, Mapping[str, Any]],
    shapes: Mapping[str, tuple[int, ...]],
    optimizer: str,
) -> None:
    for name in PARAMS:
        record[name].append(np.array(params[name], np.float32, copy=True))
    for name in ("running_mean", "running_var"):
        record[name].append(np.array(stats[name], np.float32, copy=True))
    record["num_batches_tracked"].append(np.array(stats["num_batches_tracked"], np.int64))
    for index, name in enumerate(PARAMS):
        entry = optimizer_state.get(index)
        record[f"has_state.{name}"].append(entry is not None)
        for key in _OPTIMIZER_KEYS[optimizer]:
            shape = () if key == "step" else shapes[name]
            value = np.zeros(shape, np.float32) if entry is None else np.array(entry[key], np.float32, copy=True)
            record[f"{key}.{name}"].append(value)


def _stack(record: dict[str, list]) -> dict[str, np.ndarray]:
    return {name: np.stack(values) for name, values in record.items()}


# --- PyTorch: one process on the global batch -------------------------------------------------


def _torch_net(state):
    from .._torch_net import torch_net

    return torch_net(state)


def _torch_run(optimizer: str, frozen: tuple[str, ...]):
    def program(inputs):
        import torch

        model = _torch_net(inputs["state"])
        named = dict(model.named_parameters())
        for name in frozen:
            named[name].requires_grad = False
        if optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), **_SGD)
        else:
            opt = torch.optim.Adam(model.parameters(), **_ADAM)
        loss_fn = torch.nn.CrossEntropyLoss()
        shapes = {name: tuple(p.shape) for name, p in named.items()}
        record = _empty_record(optimizer)
        model.train()
        for x, y in _real_batches(inputs):
            opt.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()
            record["loss"].append(loss.detach().numpy().copy())
            stats = {name: getattr(model.bn1, name).detach().numpy() for name in STATS}
            opt_state = {
                index: {key: value.detach().numpy() for key, value in entry.items()}
                for index, entry in opt.state_dict()["state"].items()
            }
            _record(record, {n: p.detach().numpy() for n, p in named.items()}, stats, opt_state, shapes, optimizer)
        return _stack(record)

    return program


# --- torchsem: the data-parallel step on every local device ---------------------------------


def _jax_batches(inputs: Mapping[str, Any], case: str, mesh: Any) -> list[tuple[Any, ...]]:
    from torchsem import parallel

    if case == "uneven-shards":
        batches = []
        for s in range(STEPS):
            shards = [(inputs["xs"][s, k, :n], inputs["ys"][s, k, :n]) for k, n in enumerate(inputs["sizes"][s])]
            batches.append(parallel.pad_shards(shards))
        return batches
    if case == "padded":
        return [parallel.pad_batch((x, y), mesh) for x, y in _real_batches(inputs)]
    return [(x, y) for x, y in _real_batches(inputs)]


def _jax_run(case: str, optimizer: str, frozen: tuple[str, ...]):
    def program(inputs, jit):
        import jax
        import jax.numpy as jnp

        from torchsem import convert, optim, parallel, train
        from torchsem.losses import cross_entropy
        from torchsem.models import Net

        mesh = parallel.data_mesh()
        model = Net()
        variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 3, 8), jnp.float32))
        variables = convert.load_torch_state_dict(variables, inputs["state"])
        tx = optim.sgd(**_SGD) if optimizer == "sgd" else optim.adam(**_ADAM)
        state = parallel.replicate(train.TrainState.create(variables, tx), mesh)
        step = parallel.make_train_step(model, cross_entropy, tx, mesh, frozen=list(frozen) or None, jit=jit)
        batches = _jax_batches(inputs, case, mesh)
        shapes = {
            name: tuple(np.shape(v)) for name, v in convert.to_torch_state_dict({"params": variables["params"]}).items()
        }

        states, losses = [], []
        if jit:
            for batch in batches:
                state, metrics = step(state, batch)
                states.append(state)
                losses.append(metrics["loss"])
        else:
            stacked = tuple(np.stack(column) for column in zip(*batches))
            _, (metrics, trajectory) = train.train_loop(step, state, stacked, collect=_whole_state)
            states = [jax.tree.map(lambda leaf, i=i: leaf[i], trajectory) for i in range(STEPS)]
            losses = list(metrics["loss"])

        record = _empty_record(optimizer)
        for state_now, loss in zip(states, losses):
            record["loss"].append(np.asarray(loss))
            params = convert.to_torch_state_dict({"params": state_now.params})
            _record(
                record,
                params,
                state_now.batch_stats["bn1"],
                optim.state_dict(state_now.opt_state, order=PARAMS),
                shapes,
                optimizer,
            )
        return _stack(record)

    return program


def _whole_state(state: Any) -> Any:
    return state


_CASES = {
    "net-sgd/even": ("sgd", (), _batch_inputs(32, 800), "global batch 32 over the devices (4 per device on 8)"),
    "net-sgd/padded": (
        "sgd",
        (),
        _batch_inputs(30, 801),
        "global batch 30: torchsem.parallel.pad_batch pads to 32 and masks the 2 padding rows",
    ),
    "net-sgd/uneven-shards": (
        "sgd",
        (),
        _uneven_inputs(802),
        "0 to 6 real examples per device (torchsem.parallel.pad_shards); PyTorch trains on their concatenation",
    ),
    "net-adam/frozen-fc1-weight": (
        "adam",
        ("fc1.weight",),
        _batch_inputs(32, 803),
        "model.fc1.weight.requires_grad = False with Adam: no grad, no step, no state",
    ),
}
for _case, (_optimizer, _frozen, _make, _note) in _CASES.items():
    register(
        Scenario(
            name=f"parallel/{_case}",
            section=_SECTION,
            mapping="DDP(SyncBatchNorm.convert_sync_batchnorm(net)) == one process on the global batch -> "
            "torchsem.parallel.make_train_step(Net(), cross_entropy, tx, data_mesh())"
            + (f", frozen={list(_frozen)!r}" if _frozen else ""),
            make_inputs=_make,
            torch_program=_torch_run(_optimizer, _frozen),
            jax_program=_jax_run(_case.split("/")[1], _optimizer, _frozen),
            notes=f"{STEPS} steps; {_note}. The sums over the global batch add per device and then across devices "
            "(PyTorch: in one reduction); after 20 steps the difference is still below the float32 default "
            "tolerance.",
        )
    )


# --- SyncBatchNorm through convert_sync_batchnorm ------------------------------------------

_CONVERT_SEQUENCE = ("train", "eval", "train")
_CONVERT_ROWS = 4  # rows per device; 8 devices -> 32 rows, some of them padding
_CONVERT_MASK = np.array(
    [1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1], bool
)


def _convert_inputs() -> dict[str, Any]:
    rng = np.random.default_rng(810)
    inputs: dict[str, Any] = {
        "mask": _CONVERT_MASK.copy(),
        "weight": rng.uniform(0.5, 1.5, 3).astype(np.float32),
        "bias": rng.normal(0.0, 0.5, 3).astype(np.float32),
    }
    for i in range(len(_CONVERT_SEQUENCE)):
        inputs[f"x{i}"] = (rng.standard_normal((DEVICES * _CONVERT_ROWS, 3, 5)) + rng.normal(0, 2, (1, 3, 1))).astype(
            np.float32
        )
        inputs[f"cotangent{i}"] = rng.standard_normal((DEVICES * _CONVERT_ROWS, 3, 5)).astype(np.float32)
    return inputs


def _convert_torch(inputs):
    import torch

    mask = inputs["mask"]
    layer = torch.nn.BatchNorm1d(3, momentum=0.3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(inputs["weight"]))
        layer.bias.copy_(torch.from_numpy(inputs["bias"]))
    outputs: dict[str, list] = {}
    for i, mode in enumerate(_CONVERT_SEQUENCE):
        layer.train(mode == "train")
        x = torch.from_numpy(inputs[f"x{i}"][mask]).requires_grad_(True)
        y = layer(x)
        (y * torch.from_numpy(inputs[f"cotangent{i}"][mask])).sum().backward()
        values = {"y": y.detach(), "dx": x.grad, "dweight": layer.weight.grad.clone(), "dbias": layer.bias.grad.clone()}
        values.update({name: getattr(layer, name).clone() for name in STATS})
        layer.zero_grad(set_to_none=True)
        for name, value in values.items():
            outputs.setdefault(name, []).append(value.detach().numpy().copy())
    return {name: np.stack(values) for name, values in outputs.items()}


def _convert_jax(inputs, jit):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec

    from torchsem import parallel
    from torchsem.nn import BatchNorm1d, convert_sync_batchnorm

    class Block(nn.Module):  # creates its BatchNorm in setup(): no field to rewrite
        def setup(self) -> None:
            self.bn = BatchNorm1d(3, momentum=0.3)

        def __call__(self, x, mask, train: bool):
            return self.bn(x, use_running_average=not train, mask=mask)

    mesh = parallel.data_mesh()
    model = convert_sync_batchnorm(Block(), "data")
    variables = model.init(jax.random.PRNGKey(0), inputs["x0"], None, False)
    variables = {
        "params": {"bn": {"weight": jnp.asarray(inputs["weight"]), "bias": jnp.asarray(inputs["bias"])}},
        "batch_stats": variables["batch_stats"],
    }
    data, replicated = PartitionSpec("data"), PartitionSpec()

    def call(variables, x, mask, cotangent, train):
        def per_device(params, stats, x, mask, cotangent):
            def local(params, x):
                y, updated = model.apply(
                    {"params": params, "batch_stats": stats}, x, mask, train, mutable=["batch_stats"]
                )
                return jnp.sum(jnp.where(mask[:, None, None], y * cotangent, 0)), (y, updated["batch_stats"])

            (_, (y, new_stats)), (dparams, dx) = jax.value_and_grad(local, argnums=(0, 1), has_aux=True)(params, x)
            return y, dx, dparams, new_stats

        return jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(replicated, replicated, data, data, data),
            out_specs=(data, data, replicated, replicated),
        )(variables["params"], variables["batch_stats"], x, mask, cotangent)

    call = jitted(call, jit, static_argnums=4)
    real = inputs["mask"]
    outputs: dict[str, list] = {}
    for i, mode in enumerate(_CONVERT_SEQUENCE):
        y, dx, dparams, stats = call(variables, inputs[f"x{i}"], real, inputs[f"cotangent{i}"], mode == "train")
        variables = {"params": variables["params"], "batch_stats": stats}
        values = {
            "y": np.asarray(y)[real],
            "dx": np.asarray(dx)[real],
            "dweight": dparams["bn"]["weight"],
            "dbias": dparams["bn"]["bias"],
        }
        values.update({name: stats["bn"][name] for name in STATS})
        for name, value in values.items():
            outputs.setdefault(name, []).append(np.asarray(value))
    return {name: np.stack(values) for name, values in outputs.items()}


# dweight/dbias are sums over the 95 real values per channel (with cancellation): PyTorch sums
# them in float32 per row and in double across rows, here per device and then across devices.
_PARAMETER_GRADIENT = Tolerance(
    1e-5,
    4e-6,
    reason="float32 sums of ~100 terms of size ~1 with cancellation, "
    "added in another order (per device, then across devices)",
)

register(
    Scenario(
        name="parallel/sync-batchnorm/convert",
        section=_SECTION,
        mapping="torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) over ranks with uneven batches (== "
        "BatchNorm1d on "
        "the concatenated real examples) -> torchsem.nn.convert_sync_batchnorm(model, 'data') in jax.shard_map",
        make_inputs=_convert_inputs,
        torch_program=_convert_torch,
        jax_program=_convert_jax,
        tolerances={"dweight": _PARAMETER_GRADIENT, "dbias": _PARAMETER_GRADIENT},
        notes="A module that creates its BatchNorm in setup(); 0 to 4 real examples per device; calls train, eval, "
        "train; real rows only.",
    )
)
