"""One process of the two-process data-parallel run that tests/test_multihost.py launches.

Usage (one command per process; every process with the same coordinator and out path)::

    python tests/_multihost_worker.py --coordinator 127.0.0.1:PORT --num-processes 2 \
        --process-id P --local-devices 4 --out result.npz

What a real multi-host job does, on CPU: ``jax.distributed.initialize`` before anything touches
JAX, CPU collectives over gloo (TCP), a mesh over every process's devices
(:func:`torchsem.parallel.data_mesh`), each process handing only ITS rows of the global batch to
:func:`torchsem.parallel.shard_batch`, and the unchanged :func:`torchsem.parallel.make_train_step`.

The run is the catalogue scenario ``parallel/net-sgd/even`` (the document's Net, global batch 32,
``SGD(lr=0.05, momentum=0.9)``, 20 steps, same starting weights as PyTorch), so its outputs have
the scenario's names and the test judges them against the same PyTorch outputs (live or
recorded) as the single-process catalogue check. Process 0 writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SCENARIO = "parallel/net-sgd/even"
"""The catalogue run this worker reproduces across processes (SGD; the other cases are single-process)."""


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of process 0's coordinator service")
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--local-devices", type=int, default=4, help="host CPU devices in this process")
    parser.add_argument("--out", required=True, help="the .npz process 0 writes")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait for the other processes")
    return parser.parse_args()


def main() -> int:
    args = _parse()
    # Before jax is imported: this process's device count (never inherit a parent's setting).
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={args.local_devices}"])
    os.environ["JAX_PLATFORMS"] = "cpu"
    sys.modules["torch"] = None  # type: ignore[assignment]  # the multi-host path needs no PyTorch

    import jax

    # Cross-process collectives on CPU: gloo over TCP (jax 0.10's default; set so that it is explicit).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # On a loopback coordinator, listen on loopback only (by default it listens on every interface).
    loopback = args.coordinator.rpartition(":")[0] in ("127.0.0.1", "localhost", "[::1]")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=args.timeout,
        heartbeat_timeout_seconds=args.timeout,
        shutdown_timeout_seconds=args.timeout,
        coordinator_bind_address=args.coordinator if loopback else None,
    )
    started = time.perf_counter()
    try:
        outputs = _train(args)
    finally:
        jax.distributed.shutdown()
    if outputs is not None:
        import numpy as np

        np.savez(args.out, **outputs)
    print(f"process {args.process_id}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from torchsem import compare, convert, optim, parallel, train
    from torchsem.compare.scenarios import parallel as scenarios
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    process, processes = jax.process_index(), jax.process_count()
    assert processes == args.num_processes and process == args.process_id, (processes, process)
    assert jax.local_device_count() == args.local_devices, jax.local_devices()
    assert jax.device_count() == args.local_devices * processes, jax.devices()

    scenario = compare.get(SCENARIO)
    inputs = scenario.make_inputs()
    mesh = parallel.data_mesh()  # every device of every process on axis 'data'
    model, tx = Net(), optim.sgd(**scenarios._SGD)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 3, 8), jnp.float32))
    variables = convert.load_torch_state_dict(variables, inputs["state"])
    state = parallel.replicate(train.TrainState.create(variables, tx), mesh)
    step = parallel.make_train_step(model, cross_entropy, tx, mesh)

    # Every process draws the whole (deterministic) global batch here, then hands over only its rows.
    xs, ys = inputs["xs"], inputs["ys"]
    global_batch = xs.shape[1]
    local, per_device = global_batch // processes, global_batch // jax.device_count()
    rows = slice(process * local, (process + 1) * local)  # this process's block, as DistributedSampler's
    trajectory = []
    for s in range(xs.shape[0]):
        batch = parallel.shard_batch((xs[s, rows], ys[s, rows]), mesh)
        if s == 0:  # the global array, of which this process's devices hold exactly its rows
            assert batch[0].shape == xs[s].shape, (batch[0].shape, xs[s].shape)
            for shard in batch[0].addressable_shards:
                start = shard.index[0].start
                assert rows.start <= start < rows.stop, (process, shard.index)
                np.testing.assert_array_equal(np.asarray(shard.data), xs[s, start : start + per_device])
        state, metrics = step(state, batch)
        # Replicated: every process holds the whole value on its own devices, so np.asarray reads it.
        trajectory.append(jax.tree.map(np.asarray, (state, metrics["loss"])))
    if process != 0:
        return None

    shapes = {
        name: tuple(np.shape(v)) for name, v in convert.to_torch_state_dict({"params": variables["params"]}).items()
    }
    record = scenarios._empty_record("sgd")
    for state_now, loss in trajectory:
        record["loss"].append(np.asarray(loss))
        params = convert.to_torch_state_dict({"params": state_now.params})
        scenarios._record(
            record,
            params,
            state_now.batch_stats["bn1"],
            optim.state_dict(state_now.opt_state, order=scenarios.PARAMS),
            shapes,
            "sgd",
        )
    return scenarios._stack(record)


if __name__ == "__main__":
    sys.exit(main())
