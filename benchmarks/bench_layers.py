"""Speed of the document's layers: AvgPool1d, Linear, cross_entropy and the whole Net train step.

Each row times forward + backward under ``jax.jit`` on the CPU and compares it, in the same
process (JAX pairs interleaved, PyTorch timed in its own block), against:

- the plain Flax/Optax way of doing the same work (target: ratio <= 1.05, PyTorch's exact
  semantics should cost nothing): ``flax.linen.avg_pool`` on a transposed NLC array,
  ``flax.linen.Dense`` at the same precision, ``optax.softmax_cross_entropy_with_integer_labels``;
- PyTorch eager doing the same work (forward + ``backward``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from _timing import interleaved_medians

POOL_SHAPE = (64, 64, 1024)
LINEAR_SHAPE = (4096, 512, 512)  # batch, in_features, out_features
LOSS_SHAPE = (4096, 1000)
NET_BATCH = 4096


def _paired_medians(fns: dict[str, Callable[[], object]], jax_reference: str, repeats: int) -> dict[str, dict]:
    """Medians of ``ours`` against each reference, one interleaved pair at a time.

    PyTorch's OpenMP threads keep spinning for a while after each call, which would slow
    whatever runs next; timing each pair on its own keeps that out of the JAX-vs-JAX ratio.
    """
    pairs = {
        jax_reference: interleaved_medians({"ours": fns["ours"], jax_reference: fns[jax_reference]}, repeats, warmup=3)
    }
    if "torch" in fns:
        pairs["torch"] = _block_medians({"ours": fns["ours"], "torch": fns["torch"]}, repeats)
    return pairs


def _block_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 10) -> dict[str, float]:
    """Median time of each function, timed one function at a time (for JAX against PyTorch).

    Interleaving would let PyTorch's spinning OpenMP threads slow the JAX call that follows;
    PyTorch also gets a longer warm-up, its first calls being slow.
    """
    medians = {}
    for name, fn in fns.items():
        medians[name] = interleaved_medians({name: fn}, repeats, warmup)[name]
    return medians


def _row(name: str, medians: dict[str, float], reference: str, reference_text: str) -> dict:
    return {
        "name": name,
        "ratio": medians["ours"] / medians[reference],
        "reference": reference_text,
        "median_s": medians["ours"],
        "reference_median_s": medians[reference],
    }


def _bytes_accessed(jitted, *args) -> float | None:
    """XLA's estimate of the memory traffic of a compiled step: a noise-free companion to the timings."""
    try:
        analysis = jitted.lower(*args).compile().cost_analysis()
    except Exception:  # not every backend reports it
        return None
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return None if analysis is None else analysis.get("bytes accessed")


def _with_traffic(row: dict, ours: float | None, reference: float | None) -> dict:
    return {**row, "bytes_accessed": ours, "reference_bytes_accessed": reference}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _pool_rows(repeats: int, torch) -> list[dict]:
    import flax.linen as flax_nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import AvgPool1d

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(POOL_SHAPE, dtype=np.float32))
    cotangent = jnp.asarray(rng.standard_normal((*POOL_SHAPE[:2], POOL_SHAPE[2] // 2), dtype=np.float32))
    pool = AvgPool1d(2)
    # The cotangent is an argument, not a captured constant, so XLA cannot fold the backward pass.
    ours_step = jax.jit(jax.grad(lambda v, c: jnp.vdot(pool.apply({}, v), c)))
    flax_step = jax.jit(
        jax.grad(
            lambda v, c: jnp.vdot(jnp.swapaxes(flax_nn.avg_pool(jnp.swapaxes(v, 1, 2), (2,), strides=(2,)), 1, 2), c)
        )
    )
    fns = {
        "ours": lambda: jax.block_until_ready(ours_step(x, cotangent)),
        "flax": lambda: jax.block_until_ready(flax_step(x, cotangent)),
    }
    if torch is not None:
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        gt = torch.from_numpy(np.array(cotangent))
        module = torch.nn.AvgPool1d(2)

        def torch_step() -> None:
            xt.grad = None
            module(xt).backward(gt)

        fns["torch"] = torch_step
    medians = _paired_medians(fns, "flax", repeats)
    shape = "x".join(map(str, POOL_SHAPE))
    rows = [
        _with_traffic(
            _row(
                f"avgpool1d_k2_fwd_bwd_{shape}_vs_flax",
                medians["flax"],
                "flax",
                "flax.linen.avg_pool on the NLC transpose (swapaxes in and out), same work under jax.jit",
            ),
            _bytes_accessed(ours_step, x, cotangent),
            _bytes_accessed(flax_step, x, cotangent),
        )
    ]
    if torch is not None:
        rows.append(
            _row(
                f"avgpool1d_k2_fwd_bwd_{shape}_vs_torch",
                medians["torch"],
                "torch",
                f"PyTorch {torch.__version__} eager AvgPool1d(2) forward + backward",
            )
        )
    return rows


def _linear_rows(repeats: int, torch) -> list[dict]:
    import flax.linen as flax_nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import Linear

    batch, n_in, n_out = LINEAR_SHAPE
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((batch, n_in), dtype=np.float32))
    cotangent = jnp.asarray(rng.standard_normal((batch, n_out), dtype=np.float32))
    ours = Linear(n_in, n_out)
    ours_params = ours.init(jax.random.key(0), x)["params"]
    dense = flax_nn.Dense(n_out, precision=jax.lax.Precision.HIGHEST)
    dense_params = dense.init(jax.random.key(0), x)["params"]
    ours_step = jax.jit(jax.grad(lambda p, v, c: jnp.vdot(ours.apply({"params": p}, v), c), argnums=(0, 1)))
    dense_step = jax.jit(jax.grad(lambda p, v, c: jnp.vdot(dense.apply({"params": p}, v), c), argnums=(0, 1)))
    fns = {
        "ours": lambda: jax.block_until_ready(ours_step(ours_params, x, cotangent)),
        "flax": lambda: jax.block_until_ready(dense_step(dense_params, x, cotangent)),
    }
    if torch is not None:
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        gt = torch.from_numpy(np.array(cotangent))
        module = torch.nn.Linear(n_in, n_out)

        def torch_step() -> None:
            xt.grad = None
            module.zero_grad(set_to_none=True)
            module(xt).backward(gt)

        fns["torch"] = torch_step
    medians = _paired_medians(fns, "flax", repeats)
    shape = "x".join(map(str, LINEAR_SHAPE))
    rows = [
        _with_traffic(
            _row(
                f"linear_fwd_bwd_{shape}_vs_flax",
                medians["flax"],
                "flax",
                "flax.linen.Dense(precision=HIGHEST) (kernel (in, out)), same work under jax.jit",
            ),
            _bytes_accessed(ours_step, ours_params, x, cotangent),
            _bytes_accessed(dense_step, dense_params, x, cotangent),
        )
    ]
    if torch is not None:
        rows.append(
            _row(
                f"linear_fwd_bwd_{shape}_vs_torch",
                medians["torch"],
                "torch",
                f"PyTorch {torch.__version__} eager Linear forward + backward ({torch.get_num_threads()} threads)",
            )
        )
    return rows


def _loss_rows(repeats: int, torch) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import optax

    from torchsem.losses import cross_entropy

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal(LOSS_SHAPE, dtype=np.float32))
    target = jnp.asarray(rng.integers(0, LOSS_SHAPE[1], LOSS_SHAPE[0]), jnp.int32)
    ours_step = jax.jit(jax.value_and_grad(lambda v, t: cross_entropy(v, t)))
    optax_step = jax.jit(jax.value_and_grad(lambda v, t: optax.softmax_cross_entropy_with_integer_labels(v, t).mean()))
    fns = {
        "ours": lambda: jax.block_until_ready(ours_step(x, target)),
        "optax": lambda: jax.block_until_ready(optax_step(x, target)),
    }
    if torch is not None:
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        tt = torch.from_numpy(np.asarray(target).astype(np.int64))

        def torch_step() -> None:
            xt.grad = None
            torch.nn.functional.cross_entropy(xt, tt).backward()

        fns["torch"] = torch_step
    medians = _paired_medians(fns, "optax", repeats)
    shape = "x".join(map(str, LOSS_SHAPE))
    rows = [
        _with_traffic(
            _row(
                f"cross_entropy_mean_fwd_bwd_{shape}_vs_optax",
                medians["optax"],
                "optax",
                "optax.softmax_cross_entropy_with_integer_labels(...).mean() under jax.jit",
            ),
            _bytes_accessed(ours_step, x, target),
            _bytes_accessed(optax_step, x, target),
        )
    ]
    if torch is not None:
        rows.append(
            _row(
                f"cross_entropy_mean_fwd_bwd_{shape}_vs_torch",
                medians["torch"],
                "torch",
                f"PyTorch {torch.__version__} eager F.cross_entropy forward + backward",
            )
        )
    return rows


def _net_rows(repeats: int, torch) -> list[dict]:
    if torch is None:
        return []
    import jax
    import jax.numpy as jnp

    from torchsem.convert import load_torch_state_dict
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    class net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3)
            self.fc1 = torch.nn.Linear(12, 4)

        def forward(self, x):
            return self.fc1(self.bn1(self.pool1(x)).reshape(x.size(0), -1))

    torch.manual_seed(0)
    model = net()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((NET_BATCH, 3, 8), dtype=np.float32)
    target = rng.integers(0, 4, NET_BATCH)
    variables = load_torch_state_dict(
        Net().init(jax.random.key(0), jnp.zeros((2, 3, 8)), train=False), model.state_dict()
    )

    @jax.jit
    def step(params, batch_stats, x, target):
        def loss_fn(params):
            output, updates = Net().apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
            )
            return cross_entropy(output, target), updates["batch_stats"]

        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    xj, tj = jnp.asarray(x), jnp.asarray(target, jnp.int32)
    xt, tt = torch.from_numpy(x), torch.from_numpy(target)
    loss_fn = torch.nn.CrossEntropyLoss()

    def torch_step() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(xt), tt).backward()

    medians = _block_medians(
        {
            "ours": lambda: jax.block_until_ready(step(variables["params"], variables["batch_stats"], xj, tj)),
            "torch": torch_step,
        },
        repeats,
    )
    return [
        _row(
            f"net_train_step_batch{NET_BATCH}_vs_torch",
            medians,
            "torch",
            f"PyTorch {torch.__version__} eager: net forward, CrossEntropyLoss, backward (running stats updated)",
        )
    ]


def run(repeats: int = 7) -> list[dict]:
    """Time the layers, the loss and the Net train step; return ratios against their references."""
    torch = _torch()
    return [
        *_pool_rows(repeats, torch),
        *_linear_rows(repeats, torch),
        *_loss_rows(repeats, torch),
        *_net_rows(repeats, torch),
    ]


if __name__ == "__main__":
    for result in run():
        traffic = (
            f"; XLA bytes accessed {result['bytes_accessed']:.4g} vs {result['reference_bytes_accessed']:.4g}"
            if result.get("bytes_accessed") and result.get("reference_bytes_accessed")
            else ""
        )
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e3:.2f} ms vs {result['reference_median_s'] * 1e3:.2f} ms{traffic})"
        )
