"""BatchNorm forward + backward speed: torchsem.nn.BatchNorm1d against flax.linen.BatchNorm and PyTorch.

The work timed, at shape (64, 64, 1024) float32 in training mode on the CPU: the normalised
output, the running-statistics update, and the VJP of a fixed random cotangent with respect to
the input, weight and bias (``jax.vjp``; PyTorch: ``y.backward(cotangent)``).

- torchsem vs ``flax.linen.BatchNorm(axis=1, use_fast_variance=False)`` doing the same work
  under ``jax.jit`` (target: ratio <= 1.05, exactness should cost nothing);
- torchsem vs PyTorch eager ``BatchNorm1d`` forward + ``backward`` (target: ratio <= 0.5).

Also reported: the memory XLA plans for each jitted step (``compiled.memory_analysis()``:
arguments + outputs + temporaries; ``temp_bytes`` alone), and the number of cross-device
collectives in the compiled SyncBatchNorm forward and backward passes (``axis_name`` under
``jax.shard_map`` on 8 host CPU devices, in a subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from _timing import interleaved_medians

SHAPE = (64, 64, 1024)


def _memory(compiled) -> tuple[int | None, int | None]:
    """``(arguments + outputs + temporaries - aliased, temporaries)`` bytes XLA plans for a compiled step."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend reports it
        return None, None
    if stats is None:
        return None, None
    total = (
        stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes - stats.alias_size_in_bytes
    )
    return int(total), int(stats.temp_size_in_bytes)


def _jax_steps():
    """Jitted training steps: the output, the updated running statistics and the VJP of a random cotangent."""
    import flax.linen as flax_nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import BatchNorm1d

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(SHAPE, dtype=np.float32))
    cotangent = jnp.asarray(rng.standard_normal(SHAPE, dtype=np.float32))

    def make_step(apply):
        def step(x, params, stats, cotangent):
            y, pullback, new_stats = jax.vjp(lambda x, p: apply(x, p, stats), x, params, has_aux=True)
            dx, dparams = pullback(cotangent)
            return y, new_stats, dx, dparams

        return jax.jit(step)

    ours = BatchNorm1d(SHAPE[1])
    ours_vars = ours.init(jax.random.PRNGKey(0), x, use_running_average=False)

    def ours_apply(x, params, stats):
        y, updates = ours.apply(
            {"params": params, "batch_stats": stats}, x, use_running_average=False, mutable=["batch_stats"]
        )
        return y, updates["batch_stats"]

    reference = flax_nn.BatchNorm(
        axis=1, use_running_average=False, momentum=0.9, epsilon=1e-5, use_fast_variance=False
    )
    ref_vars = reference.init(jax.random.PRNGKey(0), x)

    def ref_apply(x, params, stats):
        y, updates = reference.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
        return y, updates["batch_stats"]

    ours_args = (x, ours_vars["params"], ours_vars["batch_stats"], cotangent)
    ref_args = (x, ref_vars["params"], ref_vars["batch_stats"], cotangent)
    return (make_step(ours_apply), ours_args), (make_step(ref_apply), ref_args)


def _count_collectives_here() -> dict[str, int]:
    """Cross-device collectives in the compiled synchronised forward, and forward + backward."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, PartitionSpec

    from torchsem.nn import BatchNorm1d

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("batch",))
    layer = BatchNorm1d(8, axis_name="batch")
    x = jnp.ones((4 * len(devices), 8, 16), jnp.float32)
    variables = layer.init(jax.random.PRNGKey(0), x[:4], use_running_average=True)

    def local_forward(x, params, stats):
        y, updates = layer.apply(
            {"params": params, "batch_stats": stats}, x, use_running_average=False, mutable=["batch_stats"]
        )
        return y, updates["batch_stats"]

    specs = (PartitionSpec("batch"), PartitionSpec(), PartitionSpec())
    forward = jax.shard_map(
        local_forward, mesh=mesh, in_specs=specs, out_specs=(PartitionSpec("batch"), PartitionSpec())
    )

    def loss(x, params, stats):
        y, _ = forward(x, params, stats)
        return jnp.sum(y * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape))

    ops = ("all-gather", "all-reduce", "reduce-scatter", "collective-permute", "all-to-all")

    def count(fn) -> int:
        text = jax.jit(fn).lower(x, variables["params"], variables["batch_stats"]).compile().as_text()
        return sum(1 for line in text.splitlines() if any(f" {op}(" in line or f" {op}-start(" in line for op in ops))

    return {
        "devices": len(devices),
        "forward": count(forward),
        "forward_backward": count(jax.grad(loss, argnums=(0, 1))),
    }


def _collective_counts() -> dict[str, int] | None:
    """:func:`_count_collectives_here` on 8 host devices, in a subprocess (the device count is fixed at start-up)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--collectives"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run(repeats: int = 7) -> list[dict]:
    """Time torchsem's BatchNorm1d forward + backward against flax and PyTorch; return the ratios."""
    import jax

    (ours_step, ours_args), (ref_step, ref_args) = _jax_steps()

    def ours() -> None:
        jax.block_until_ready(ours_step(*ours_args))

    def flax_ref() -> None:
        jax.block_until_ready(ref_step(*ref_args))

    medians = interleaved_medians({"ours": ours, "flax": flax_ref}, repeats, 3, block=3, settle_s=0.05)
    ours_peak, ours_temp = _memory(ours_step.lower(*ours_args).compile())
    flax_peak, flax_temp = _memory(ref_step.lower(*ref_args).compile())
    results = [
        {
            "name": "batchnorm1d_train_fwd_bwd_64x64x1024_vs_flax",
            "ratio": medians["ours"] / medians["flax"],
            "reference": "flax.linen.BatchNorm(axis=1, use_fast_variance=False), same work under jax.jit",
            "median_s": medians["ours"],
            "reference_median_s": medians["flax"],
            "peak_memory_bytes": ours_peak,
            "reference_peak_memory_bytes": flax_peak,
            "temp_bytes": ours_temp,
            "reference_temp_bytes": flax_temp,
        }
    ]

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        rng = np.random.default_rng(0)
        xt = torch.from_numpy(rng.standard_normal(SHAPE, dtype=np.float32)).requires_grad_(True)
        gt = torch.from_numpy(rng.standard_normal(SHAPE, dtype=np.float32))
        module = torch.nn.BatchNorm1d(SHAPE[1])

        def torch_step() -> None:
            xt.grad = None
            module.zero_grad(set_to_none=True)
            module(xt).backward(gt)

        medians = interleaved_medians({"ours": ours, "torch": torch_step}, repeats, 3, block=3, settle_s=0.05)
        results.append(
            {
                "name": "batchnorm1d_train_fwd_bwd_64x64x1024_vs_torch",
                "ratio": medians["ours"] / medians["torch"],
                "reference": f"PyTorch {torch.__version__} eager BatchNorm1d forward + backward "
                f"({torch.get_num_threads()} threads)",
                "median_s": medians["ours"],
                "reference_median_s": medians["torch"],
            }
        )

    counts = _collective_counts()
    if counts is not None:
        # SyncBatchNorm (axis_name under shard_map on 8 host devices): collectives in the compiled HLO.
        results[0]["sync_forward_collectives"] = counts["forward"]
        results[0]["sync_backward_collectives"] = counts["forward_backward"] - counts["forward"]
    return results


if __name__ == "__main__":
    if sys.argv[1:] == ["--collectives"]:
        print(json.dumps(_count_collectives_here()))
    else:
        for row in run():
            print(row)
