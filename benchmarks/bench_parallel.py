"""Communication of the data-parallel train step: cross-device collectives in the compiled HLO.

Weak scaling on host CPU devices sharing 2 cores says nothing about speed, so the claim here is
the communication per step of ``torchsem.parallel.make_train_step`` on 8 host devices, read from
the compiled program (``jit(step).lower(...).compile().as_text()``): every ``all-reduce``,
``all-gather``, ``reduce-scatter``, ``collective-permute`` and ``all-to-all``, its shape, and the
layer and direction it belongs to (from the op's ``op_name`` metadata: ``transpose(...)`` is the
backward pass).

The target (issue 8): BatchNorm synchronisation is one fused reduction per BatchNorm layer per
direction, not one per statistic. The ``ratio`` of a row is collectives per BatchNorm layer for
that direction (target 1.0; 0.0 backward means the input gradient is not needed, so XLA drops the
exchange), or for the gradient row the number of gradient all-reduces (target 1: one bucket for
every parameter, the loss and the real-example count).

Models: the document's Net (one BatchNorm, nothing with parameters upstream of it) and a
3 x (Linear -> BatchNorm1d -> ReLU) MLP, each with an even global batch of 32 and with a padded
one (29 real examples, ``pad_batch`` + mask); plus, for contrast, the same MLP with
``flax.linen.BatchNorm(axis_name='data')`` and ``jax.grad`` inside ``shard_map`` (Flax's fused
``pmean`` of mean and mean of squares, and one ``psum`` per parameter gradient).

``median_s`` / ``reference_median_s`` (the data-parallel step vs the single-device step on the
same global batch) are context only, not a speed claim: 8 simulated devices on a shared CPU.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import numpy as np

GLOBAL_BATCH = 32
DEVICES = 8
# "%x = f32[8,4,3]{2,1,0} all-gather(...)" or, after XLA's combiner, "%x = (f32[64]{0}, f32[2,64]{1,0}) all-reduce(...)"
_COLLECTIVE = re.compile(
    r"= (\(.*?\)|\S+) (all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)"
    r"(?:-start)?\("
)
_SHAPE = re.compile(r"(\w+)\[([\d,]*)\]")
_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "s32": 4, "s64": 8, "u32": 4, "pred": 1}
_BN_LAYER = re.compile(r"\b(bn\d+)/")


def collectives(hlo: str) -> list[dict]:
    """Every cross-device collective of compiled HLO text.

    Returns one dict per collective op: ``kind``, ``shapes`` (several when XLA combined
    reductions into one op), ``bytes`` (of the result), ``layers`` (the BatchNorm layers its
    ``op_name`` names; empty for the gradient reduction) and ``direction`` (``backward`` when
    the op comes from a ``transpose``).
    """
    found = []
    for line in hlo.splitlines():
        match = _COLLECTIVE.search(line)
        if not match:
            continue
        result, kind = match.groups()
        shapes = _SHAPE.findall(result)
        op_name = re.search(r'op_name="([^"]*)"', line)
        op_name = op_name.group(1) if op_name else ""
        found.append(
            {
                "kind": kind,
                "shapes": [f"{dtype}[{dims}]" for dtype, dims in shapes],
                "bytes": sum(
                    _BYTES.get(dtype, 4) * int(np.prod([int(d) for d in dims.split(",") if d]))
                    for dtype, dims in shapes
                ),
                "layers": sorted(set(_BN_LAYER.findall(op_name))),
                "direction": "backward" if "transpose(" in op_name else "forward",
            }
        )
    return found


def _median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _models():
    import flax.linen as nn

    from torchsem.models import Net
    from torchsem.nn import BatchNorm1d, Linear

    class MLP(nn.Module):
        """3 x (Linear -> BatchNorm1d -> ReLU) -> Linear: every BatchNorm needs its input gradient."""

        flax_batchnorm: bool = False

        @nn.compact
        def __call__(self, x, train: bool = True):
            for i in range(3):
                x = Linear(x.shape[-1], 64, name=f"fc{i}")(x)
                if self.flax_batchnorm:
                    x = nn.BatchNorm(
                        use_running_average=not train,
                        momentum=0.9,
                        axis=-1,
                        axis_name="data",
                        use_fast_variance=False,
                        name=f"bn{i}",
                    )(x)
                else:
                    x = BatchNorm1d(64, name=f"bn{i}")(x, use_running_average=not train)
                x = nn.relu(x)
            return Linear(64, 10, name="head")(x)

    rng = np.random.default_rng(0)
    net_x = rng.standard_normal((GLOBAL_BATCH, 3, 8)).astype(np.float32)
    mlp_x = rng.standard_normal((GLOBAL_BATCH, 32)).astype(np.float32)
    return {
        "net": (Net(), net_x, rng.integers(0, 4, GLOBAL_BATCH).astype(np.int32), 1),
        "mlp3": (MLP(), mlp_x, rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32), 3),
        "mlp3-flax-reference": (MLP(flax_batchnorm=True), mlp_x, rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32), 3),
    }


def _flax_reference_step(model, mesh):
    """Plain Flax data parallelism: jax.grad inside shard_map, replicated parameters (psum per leaf)."""
    import jax
    import optax
    from jax.sharding import PartitionSpec

    from torchsem.losses import cross_entropy

    tx = optax.sgd(0.1, momentum=0.9)
    devices = mesh.shape["data"]

    def per_device(params, stats, opt_state, x, y):
        def loss_of(params):
            out, updated = model.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
            return cross_entropy(out, y) / devices, updated["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, jax.lax.psum(loss, "data")

    data, replicated = PartitionSpec("data"), PartitionSpec()
    step = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(replicated, replicated, replicated, data, data),
            out_specs=(replicated, replicated, replicated, replicated),
        )
    )
    return tx, step


def _describe(c: dict) -> str:
    return f"{c['kind']} {', '.join(c['shapes'])}"


def _rows_for(name: str, found: list[dict], bn_layers: int, timing: dict, reference: str) -> list[dict]:
    rows = []
    for direction in ("forward", "backward"):
        mine = [c for c in found if c["layers"] and c["direction"] == direction]
        per_layer: dict[str, list[str]] = {}
        for c in mine:
            per_layer.setdefault("+".join(c["layers"]), []).append(_describe(c))
        rows.append(
            {
                "name": f"{name}: BatchNorm sync, {direction}",
                "ratio": len(mine) / bn_layers,
                "reference": reference + f"; collective ops per BatchNorm layer ({bn_layers} layers), {direction}",
                "collectives": len(mine),
                "bytes": sum(c["bytes"] for c in mine),
                "per_layer": per_layer,
                **timing,
            }
        )
    rest = [c for c in found if not c["layers"]]
    rows.append(
        {
            "name": f"{name}: gradients (+ loss, count)",
            "ratio": float(len(rest)),
            "reference": reference + "; all-reduce ops for the parameter gradients per step (target: 1 bucket)",
            "collectives": len(rest),
            "bytes": sum(c["bytes"] for c in rest),
            "shapes": [_describe(c) for c in rest],
            **timing,
        }
    )
    return rows


def run(repeats: int = 7) -> list[dict]:
    import jax

    if jax.device_count() < DEVICES:
        # JAX was started before this module could ask for 8 host devices (benchmarks/run.py
        # initialises it first): measure in a fresh process that has them.
        env = dict(os.environ)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={DEVICES}").strip()
        completed = subprocess.run(
            [sys.executable, __file__, "--json", str(repeats)], env=env, check=True, capture_output=True, text=True
        )
        return json.loads(completed.stdout.splitlines()[-1])

    from torchsem import optim, parallel, train
    from torchsem.losses import cross_entropy

    mesh = parallel.data_mesh()
    reference = "target 1.0 (issue 8)"
    rows: list[dict] = []
    for model_name, (model, x, y, bn_layers) in _models().items():
        variables = model.init(jax.random.PRNGKey(0), x)
        if model_name.endswith("flax-reference"):
            tx, step = _flax_reference_step(model, mesh)
            args = (variables["params"], variables["batch_stats"], tx.init(variables["params"]), x, y)
            found = collectives(step.lower(*args).compile().as_text())
            timing = {
                "median_s": _median_seconds(lambda: jax.block_until_ready(step(*args)), repeats),
                "reference_median_s": float("nan"),
                "devices": len(jax.devices()),
            }
            rows += _rows_for(
                f"{model_name} (even batch)",
                found,
                bn_layers,
                timing,
                "plain flax.linen.BatchNorm + jax.grad, for contrast",
            )
            continue
        tx = optim.sgd(lr=0.1, momentum=0.9)
        state = parallel.replicate(train.TrainState.create(variables, tx), mesh)
        single_state = train.TrainState.create(variables, tx)
        step = parallel.make_train_step(model, cross_entropy, tx, mesh)
        single = train.make_train_step(model, cross_entropy, tx)
        for batch_name, batch in (("even batch", (x, y)), ("padded batch", parallel.pad_batch((x[:29], y[:29]), mesh))):
            found = collectives(step.lower(state, batch).compile().as_text())
            real = (batch[0][batch[2]], batch[1][batch[2]]) if len(batch) == 3 else batch
            timing = {
                "median_s": _median_seconds(lambda: jax.block_until_ready(step(state, batch)), repeats),
                "reference_median_s": _median_seconds(
                    lambda: jax.block_until_ready(single(single_state, real)), repeats
                ),
                "devices": len(jax.devices()),
                "timing_note": "context only: 8 host devices on a shared CPU; reference = single-device step",
            }
            rows += _rows_for(f"{model_name} ({batch_name})", found, bn_layers, timing, reference)
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--json":
        print(json.dumps(run(int(sys.argv[2]))))
        sys.exit(0)
    for row in run():
        extra = row.get("per_layer") or row.get("shapes")
        print(
            f"{row['name']:<58} ratio {row['ratio']:.2f}  collectives {row['collectives']:>2}  "
            f"bytes {row['bytes']:>6}  step {row['median_s'] * 1e3:7.2f} ms  {extra}"
        )
