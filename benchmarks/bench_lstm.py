"""Speed of LSTM: torchsem's PyTorch-layout LSTM against ``flax.linen.RNN`` and PyTorch eager.

One jitted forward + backward (gradients of ``sum(output * c)`` with respect to the input and
every parameter) of an ``LSTM(64, 128)`` over 100 steps of a batch of 16, compared in the same
process with:

- ``flax.linen.RNN(flax.linen.OptimizedLSTMCell(128))`` and ``flax.linen.RNN(flax.linen.LSTMCell(128))``
  on the same data in their native batch-major layout, traced under
  ``jax.default_matmul_precision("highest")`` so that both sides multiply in full float32 (the
  target: ratio <= 1.05);
- PyTorch eager ``nn.LSTM`` forward + ``backward`` (its own threads, timed in its own block).

torchsem projects the whole sequence through ``W_ih`` in one matmul before the scan (as
PyTorch's CPU kernel does); Flax's cells multiply the input inside every step.
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians

INPUT, HIDDEN, STEPS, BATCH = 64, 128, 100, 16


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def run(repeats: int = 7) -> list[dict]:
    """Time LSTM fwd+bwd against flax.linen.RNN (OptimizedLSTMCell, LSTMCell) and PyTorch eager."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import LSTM

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32))  # PyTorch's (L, N, H_in)
    cot = jnp.asarray(rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(np.float32))
    x_batch, cot_batch = jnp.swapaxes(x, 0, 1), jnp.swapaxes(cot, 0, 1)  # Flax's (N, L, H_in)

    ours = LSTM(INPUT, HIDDEN)
    v_ours = ours.init(jax.random.key(0), x)

    def ours_loss(v, x):
        output, _ = ours.apply(v, x)
        return jnp.sum(output * cot)

    ours_step = jax.jit(jax.grad(ours_loss, argnums=(0, 1)))

    def flax_step(cell):
        module = nn.RNN(cell)
        variables = module.init(jax.random.key(0), x_batch)

        def loss(v, x):
            return jnp.sum(module.apply(v, x) * cot_batch)

        with jax.default_matmul_precision("highest"):
            compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(variables, x_batch).compile()
        return lambda: jax.block_until_ready(compiled(variables, x_batch))

    medians = interleaved_medians(
        {
            "ours": lambda: jax.block_until_ready(ours_step(v_ours, x)),
            "optimized": flax_step(nn.OptimizedLSTMCell(HIDDEN)),
            "lstmcell": flax_step(nn.LSTMCell(HIDDEN)),
        },
        repeats,
        warmup=3,
        reference="optimized",
    )
    shape = f"({STEPS} steps, batch {BATCH}, {INPUT}->{HIDDEN})"
    rows = [
        {
            "name": f"lstm fwd+bwd jit {shape}",
            "ratio": medians["ours/ratio"],
            "reference": "flax.linen.RNN(OptimizedLSTMCell), precision highest",
            "median_s": medians["ours"],
            "reference_median_s": medians["optimized"],
        },
        {
            "name": f"lstm fwd+bwd jit {shape}",
            "ratio": medians["ours"] / medians["lstmcell"],
            "reference": "flax.linen.RNN(LSTMCell), precision highest",
            "median_s": medians["ours"],
            "reference_median_s": medians["lstmcell"],
        },
    ]
    torch = _torch()
    if torch is not None:
        lstm = torch.nn.LSTM(INPUT, HIDDEN)
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        ct = torch.from_numpy(np.array(cot))

        def torch_step():
            lstm.zero_grad(set_to_none=True)
            xt.grad = None
            (lstm(xt)[0] * ct).sum().backward()

        torch_median = interleaved_medians({"torch": torch_step}, repeats, warmup=3)["torch"]
        rows.append(
            {
                "name": f"lstm fwd+bwd {shape}",
                "ratio": medians["ours"] / torch_median,
                "reference": f"PyTorch eager nn.LSTM ({torch.get_num_threads()} threads)",
                "median_s": medians["ours"],
                "reference_median_s": torch_median,
            }
        )
    return rows


if __name__ == "__main__":
    for result in run():
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e3:.2f} ms vs {result['reference_median_s'] * 1e3:.2f} ms)"
        )
