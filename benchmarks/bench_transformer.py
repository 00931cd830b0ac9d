"""Speed of TransformerEncoderLayer: torchsem's PyTorch-semantics layer against a flax.linen composition and PyTorch.

One jitted forward + backward (gradients of ``sum(y * c)`` with respect to the input and every
parameter) of ``TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024)``,
post-norm, ReLU, on ``(32, 64, 256)`` (``batch_first``), in eval (``deterministic=True``) and
in training with ``dropout=0.1`` (both sides drawing their masks from JAX's ``'dropout'``
stream), compared in the same process with:

- the same layer composed from ``flax.linen``: ``MultiHeadDotProductAttention`` (its own
  per-projection ``DenseGeneral`` kernels), ``Dense``, ``LayerNorm(epsilon=1e-5)``, ``Dropout``,
  all at the same precision (``HIGHEST``; target: ratio <= 1.05);
- PyTorch eager ``nn.TransformerEncoderLayer`` forward + ``backward`` (its own threads).
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians

SHAPE = (32, 64, 256)  # (N, S, E): batch_first
HEADS, FF = 8, 1024


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _flax_layer(dropout: float):
    """Post-norm encoder layer from flax.linen parts, at ``HIGHEST`` precision, PyTorch's eps."""
    import flax.linen as nn
    import jax

    highest = jax.lax.Precision.HIGHEST
    d_model = SHAPE[-1]

    class FlaxEncoderLayer(nn.Module):
        @nn.compact
        def __call__(self, x, deterministic: bool):
            attention = nn.MultiHeadDotProductAttention(
                num_heads=HEADS, qkv_features=d_model, dropout_rate=dropout, precision=highest
            )(x, x, deterministic=deterministic)
            x = nn.LayerNorm(epsilon=1e-5)(x + nn.Dropout(dropout)(attention, deterministic))
            hidden = nn.relu(nn.Dense(FF, precision=highest)(x))
            hidden = nn.Dense(d_model, precision=highest)(nn.Dropout(dropout)(hidden, deterministic))
            return nn.LayerNorm(epsilon=1e-5)(x + nn.Dropout(dropout)(hidden, deterministic))

    return FlaxEncoderLayer()


def _torch_dropout_cost(x, cot, repeats: int) -> dict:
    """The train step with PyTorch's own masks (``torch_dropout``: host draws) against Flax's rng masks."""
    import jax
    import jax.numpy as jnp

    from torchsem.nn import TransformerEncoderLayer, torch_dropout
    from torchsem.random import Generator

    layer = TransformerEncoderLayer(SHAPE[-1], HEADS, FF, dropout=0.1, batch_first=True)
    variables = layer.init({"params": jax.random.key(0)}, x, deterministic=True)

    def loss(v, x, key):
        return jnp.sum(layer.apply(v, x, deterministic=False, rngs={"dropout": key}) * cot)

    flax_step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    with torch_dropout(Generator(0)):
        torch_masks_step = jax.jit(jax.grad(lambda v, x: _no_key_loss(layer, v, x, cot)))
        jax.block_until_ready(torch_masks_step(variables, x))  # traced inside the block
    key = jax.random.key(1)
    medians = interleaved_medians(
        {
            "torch": lambda: jax.block_until_ready(torch_masks_step(variables, x)),
            "flax": lambda: jax.block_until_ready(flax_step(variables, x, key)),
        },
        repeats,
        warmup=2,
        alternate=True,
        reference="flax",
    )
    return {
        "name": f"TransformerEncoderLayer train step {SHAPE} dropout=0.1, PyTorch's masks (torch_dropout)",
        "ratio": medians["torch/ratio"],
        "reference": "the same jitted step with Flax's 'dropout' rng masks",
        "median_s": medians["torch"],
        "reference_median_s": medians["flax"],
    }


def _no_key_loss(layer, v, x, cot):
    import jax.numpy as jnp

    return jnp.sum(layer.apply(v, x, deterministic=False) * cot)


def run(repeats: int = 7) -> list[dict]:
    """Time the layer's fwd+bwd against the flax.linen composition and PyTorch eager, eval and train."""
    import jax
    import jax.numpy as jnp

    from torchsem.nn import TransformerEncoderLayer

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    cot = jnp.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    torch = _torch()
    rows = []
    for mode, dropout in (("eval", 0.1), ("train", 0.1)):
        deterministic = mode == "eval"
        ours = TransformerEncoderLayer(SHAPE[-1], HEADS, FF, dropout=dropout, batch_first=True)
        theirs = _flax_layer(dropout)
        keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
        v_ours = ours.init(keys, x, deterministic=True)
        v_theirs = theirs.init(keys, x, deterministic=True)

        def step(module, deterministic=deterministic):
            def loss(v, x, key):
                return jnp.sum(module.apply(v, x, deterministic=deterministic, rngs={"dropout": key}) * cot)

            return jax.jit(jax.grad(loss, argnums=(0, 1)))

        ours_step, theirs_step = step(ours), step(theirs)
        key = jax.random.key(2)
        medians = interleaved_medians(
            {
                "ours": lambda ours_step=ours_step, v_ours=v_ours: jax.block_until_ready(ours_step(v_ours, x, key)),
                "flax": lambda theirs_step=theirs_step, v_theirs=v_theirs: jax.block_until_ready(
                    theirs_step(v_theirs, x, key)
                ),
            },
            repeats,
            warmup=2,
            alternate=True,
            reference="flax",
        )
        name = f"TransformerEncoderLayer(256, 8, 1024) fwd+bwd jit {SHAPE} {mode} dropout={dropout}"
        rows.append(
            {
                "name": name,
                "ratio": medians["ours/ratio"],
                "reference": "flax.linen MultiHeadDotProductAttention + Dense + LayerNorm, precision HIGHEST",
                "median_s": medians["ours"],
                "reference_median_s": medians["flax"],
            }
        )
        if torch is not None:
            layer = torch.nn.TransformerEncoderLayer(SHAPE[-1], HEADS, FF, dropout=dropout, batch_first=True)
            layer.train(not deterministic)
            xt = torch.from_numpy(np.array(x)).requires_grad_(True)
            ct = torch.from_numpy(np.array(cot))

            def torch_step(layer=layer, xt=xt, ct=ct):
                layer.zero_grad(set_to_none=True)
                xt.grad = None
                (layer(xt) * ct).sum().backward()

            torch_median = interleaved_medians({"torch": torch_step}, repeats, warmup=2)["torch"]
            rows.append(
                {
                    "name": name.replace(" jit", ""),
                    "ratio": medians["ours"] / torch_median,
                    "reference": f"PyTorch eager nn.TransformerEncoderLayer ({torch.get_num_threads()} threads)",
                    "median_s": medians["ours"],
                    "reference_median_s": torch_median,
                }
            )
    rows.append(_torch_dropout_cost(x, cot, repeats))
    return rows


if __name__ == "__main__":
    for result in run():
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e3:.2f} ms vs {result['reference_median_s'] * 1e3:.2f} ms)"
        )
