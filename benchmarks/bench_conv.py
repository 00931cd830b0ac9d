"""Speed of Conv2d: torchsem's channels-first convolution against Flax's channels-last one and PyTorch.

One jitted forward + backward (gradients of ``sum(y * c)`` with respect to the input and the
weight) of a 3x3, 64 -> 64 channel convolution, padding 1, on ``(N, 64, H, W)``, compared in the
same process with:

- ``flax.linen.Conv`` on the same data in NHWC (its native layout) at the same precision
  (``HIGHEST``; target: ratio <= 1.05: channels-first must cost no transposes);
- PyTorch eager ``nn.Conv2d`` forward + ``backward`` (its own threads, timed in its own block).

The row also counts the transpose ops in torchsem's optimised HLO. XLA's CPU convolution is
channels-last inside, so for NCHW it transposes activations (measured: 2 in this step; more
when the cotangent is itself computed from the input); the time ratio is what they cost.
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians

SHAPE = (8, 64, 28, 28)  # (N, C, H, W): small enough for a 2-core CI-size machine


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def run(repeats: int = 7) -> list[dict]:
    """Time Conv2d fwd+bwd against flax.linen.Conv (NHWC) and PyTorch eager; count HLO transposes."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import Conv2d

    n, c, h, w = SHAPE
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    cot = jnp.asarray(rng.standard_normal((n, c, h, w)).astype(np.float32))
    ours = Conv2d(c, c, 3, padding=1)
    v_ours = ours.init(jax.random.key(0), x)
    theirs = nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), precision=jax.lax.Precision.HIGHEST)
    x_nhwc, cot_nhwc = jnp.transpose(x, (0, 2, 3, 1)), jnp.transpose(cot, (0, 2, 3, 1))
    v_theirs = theirs.init(jax.random.key(0), x_nhwc)

    def step(module, cotangent):
        def loss(v, x):
            return jnp.sum(module.apply(v, x) * cotangent)

        return jax.jit(jax.grad(loss, argnums=(0, 1)))

    ours_step, theirs_step = step(ours, cot), step(theirs, cot_nhwc)
    hlo = ours_step.lower(v_ours, x).compile().as_text()
    transposes = hlo.count(" transpose(")
    medians = interleaved_medians(
        {
            "ours": lambda: jax.block_until_ready(ours_step(v_ours, x)),
            "flax": lambda: jax.block_until_ready(theirs_step(v_theirs, x_nhwc)),
        },
        repeats,
        warmup=3,
        reference="flax",
    )
    rows = [
        {
            "name": f"conv2d fwd+bwd jit {SHAPE} 3x3 64->64",
            "ratio": medians["ours/ratio"],
            "reference": "flax.linen.Conv NHWC, precision HIGHEST",
            "median_s": medians["ours"],
            "reference_median_s": medians["flax"],
            "hlo_transposes": transposes,
        }
    ]
    torch = _torch()
    if torch is not None:
        conv = torch.nn.Conv2d(c, c, 3, padding=1)
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        ct = torch.from_numpy(np.array(cot))

        def torch_step():
            conv.zero_grad(set_to_none=True)
            xt.grad = None
            (conv(xt) * ct).sum().backward()

        torch_median = interleaved_medians({"torch": torch_step}, repeats, warmup=3)["torch"]
        rows.append(
            {
                "name": f"conv2d fwd+bwd {SHAPE} 3x3 64->64",
                "ratio": medians["ours"] / torch_median,
                "reference": f"PyTorch eager nn.Conv2d ({torch.get_num_threads()} threads)",
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
            + (f"; HLO transposes: {result['hlo_transposes']}" if "hlo_transposes" in result else "")
        )
