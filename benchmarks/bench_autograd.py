"""torchsem.autograd.grad against jax.grad over the trainable leaves only: what the None semantics cost.

Claims: jitted, the step runs as fast as ``jax.grad`` over the trainable leaves (same HLO
flops; the None structure is decided at trace time); tracing + lowering costs about the same
(the loss is traced once, abstractly, then its program is analysed in one linear pass and
evaluated under ``jax.grad``); an eager (un-jitted) call costs about what an eager
``jax.grad`` call costs.

    python benchmarks/bench_autograd.py
"""

from __future__ import annotations

import collections
import re
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def _median_pair(
    fn: Callable[[], object], reference: Callable[[], object], repeats: int, warmup: int = 2, inner: int = 1
) -> tuple[float, float]:
    """Median seconds of ``fn`` and of ``reference``, timed alternately so that load drift hits both."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
        jax.block_until_ready(reference())
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for which, f in enumerate((fn, reference)):
            start = time.perf_counter()
            for _ in range(inner):
                out = f()
            jax.block_until_ready(out)
            times[which].append((time.perf_counter() - start) / inner)
    return statistics.median(times[0]), statistics.median(times[1])


def _mlp_problem():
    """A 3-layer MLP (1024 -> 512 -> 512 -> 10) on a batch of 256; the first layer frozen."""
    rng = np.random.default_rng(0)
    sizes = [(1024, 512), (512, 512), (512, 10)]
    params = {
        f"layer{i}": {
            "weight": jnp.asarray(rng.standard_normal((o, i_)) / np.sqrt(i_), jnp.float32),
            "bias": jnp.zeros(o, jnp.float32),
        }
        for i, (i_, o) in enumerate(sizes)
    }
    x = jnp.asarray(rng.standard_normal((256, 1024)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 256))

    def loss(params, x, y):
        h = x
        for i in range(3):
            h = h @ params[f"layer{i}"]["weight"].T + params[f"layer{i}"]["bias"]
            if i < 2:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1))

    trainable = {
        "layer0": {"weight": False, "bias": False},
        "layer1": {"weight": True, "bias": True},
        "layer2": {"weight": True, "bias": True},
    }
    return loss, params, trainable, (x, y)


def _scan_problem():
    """An Elman RNN over 64 steps (hidden 128, batch 32) with a frozen input projection."""
    rng = np.random.default_rng(1)
    params = {
        "w_in": jnp.asarray(rng.standard_normal((64, 128)) * 0.1, jnp.float32),
        "w_h": jnp.asarray(rng.standard_normal((128, 128)) * 0.1, jnp.float32),
        "w_out": jnp.asarray(rng.standard_normal((128, 1)) * 0.1, jnp.float32),
    }
    xs = jnp.asarray(rng.standard_normal((64, 32, 64)), jnp.float32)

    def loss(params, xs):
        def step(h, x):
            h = jnp.tanh(x @ params["w_in"] + h @ params["w_h"])
            return h, (h @ params["w_out"]).sum()

        _, ys = jax.lax.scan(step, jnp.zeros((32, 128)), xs)
        return ys.mean()

    return loss, params, {"w_in": False, "w_h": True, "w_out": True}, (xs,)


def _plain_reference(loss, params, trainable):
    """jax.grad over the trainable leaves only, the frozen ones passed separately (no zeros for them)."""
    flat, treedef = jax.tree.flatten(params)
    flags = jax.tree.leaves(trainable)
    train = [leaf for leaf, flag in zip(flat, flags) if flag]
    frozen = [leaf for leaf, flag in zip(flat, flags) if not flag]

    def reference(train_leaves, frozen_leaves, *data):
        t, f = iter(train_leaves), iter(frozen_leaves)
        return loss(treedef.unflatten([next(t) if flag else next(f) for flag in flags]), *data)

    return jax.grad(reference), (train, frozen)


def _op_counts(compiled) -> collections.Counter:
    """How many of each HLO instruction the optimised module has (names and layouts ignored)."""
    return collections.Counter(re.findall(r"= \S+ (\w[\w-]*)\(", compiled.as_text()))


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis.get("flops", float("nan")))


def run(repeats: int = 7) -> list[dict]:
    from torchsem import autograd

    rows: list[dict] = []
    for label, problem in (("mlp", _mlp_problem), ("rnn-scan", _scan_problem)):
        loss, params, trainable, data = problem()
        ours = autograd.grad(loss, requires_grad=trainable)
        plain, plain_args = _plain_reference(loss, params, trainable)

        # Trace + lower to HLO, with a fresh function each time so that jit's trace cache cannot answer.
        trace_ours, trace_plain = _median_pair(
            lambda: jax.jit(lambda *a: ours(*a)).lower(params, *data),
            lambda: jax.jit(lambda *a: plain(*a)).lower(*plain_args, *data),
            repeats,
            warmup=1,
        )
        rows.append(
            {
                "name": f"{label}: trace+lower",
                "ratio": trace_ours / trace_plain,
                "reference": "jax.jit(jax.grad over trainable leaves).lower",
                "median_s": trace_ours,
                "reference_median_s": trace_plain,
            }
        )

        jit_ours, jit_plain = jax.jit(ours), jax.jit(plain)
        compiled_ours = jit_ours.lower(params, *data).compile()
        compiled_plain = jit_plain.lower(*plain_args, *data).compile()
        flops_ours, flops_plain = _flops(compiled_ours), _flops(compiled_plain)
        same_ops = _op_counts(compiled_ours) == _op_counts(compiled_plain)
        step_ours, step_plain = _median_pair(
            lambda: jit_ours(params, *data), lambda: jit_plain(*plain_args, *data), repeats, inner=5
        )
        rows.append(
            {
                "name": f"{label}: jitted gradient step",
                "ratio": step_ours / step_plain,
                "reference": "jitted jax.grad over trainable leaves",
                "median_s": step_ours,
                "reference_median_s": step_plain,
                "hlo_flops": flops_ours,
                "reference_hlo_flops": flops_plain,
                "same_optimized_hlo_instructions": same_ops,
            }
        )

        eager_ours, eager_plain = _median_pair(
            lambda: ours(params, *data), lambda: plain(*plain_args, *data), max(3, repeats // 2), warmup=1
        )
        rows.append(
            {
                "name": f"{label}: eager call",
                "ratio": eager_ours / eager_plain,
                "reference": "eager jax.grad over trainable leaves",
                "median_s": eager_ours,
                "reference_median_s": eager_plain,
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        extra = (
            f"  flops {row['hlo_flops']:.0f} vs {row['reference_hlo_flops']:.0f}, same HLO instructions: "
            f"{row['same_optimized_hlo_instructions']}"
            if "hlo_flops" in row
            else ""
        )
        print(
            f"{row['name']:32s} ratio {row['ratio']:.3f}  ({row['median_s'] * 1e3:.3f} ms vs "
            f"{row['reference_median_s'] * 1e3:.3f} ms){extra}"
        )
