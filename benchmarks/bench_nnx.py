"""The NNX front end's training step against the linen modules' (issue 18's 1.05x target).

One SGD(momentum=0.9, weight_decay=5e-4) step with cross-entropy, forward, backward and
BatchNorm statistics, on the document's Net (batch 3) and ResNet-18 (batch 16, 3x32x32):
``torchsem.models`` applied under ``jax.jit`` (the reference) against ``torchsem.nnx.models``
stepped with ``nnx.Optimizer`` under ``nnx.jit``, under ``nnx.cached_partial``, under
``torchsem.nnx.jit_step`` (split once, the Variables updated in place after each call; with and
without donating the old arrays) and (the
document's net) split once and merged inside a ``jax.jit`` step without writing the Variables
back. Both run the same linen math.
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians


def _linen_step(model, x, y, tx):
    import jax
    import optax

    from torchsem.losses import cross_entropy
    from torchsem.random import Generator, torch_init

    variables = torch_init(model, Generator(0), x, train=False)
    box = [variables["params"], variables["batch_stats"], tx.init(variables["params"])]

    @jax.jit
    def step(params, stats, opt_state, x, y):
        def loss(p):
            logits, updated = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return cross_entropy(logits, y), updated["batch_stats"]

        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, value

    def run():
        box[0], box[1], box[2], value = step(*box, x, y)
        value.block_until_ready()

    return run


def _nnx_step(model, x, y, tx, how):
    import jax
    from flax import nnx

    from torchsem.losses import cross_entropy

    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    def body(model, optimizer, x, y):
        value, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
        optimizer.update(model, grads)
        return value

    if how == "split":
        graphdef, state = nnx.split((model, optimizer))
        leaves, treedef = jax.tree.flatten(state)

        @jax.jit
        def pure(leaves, x, y):
            model, optimizer = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
            value = body(model, optimizer, x, y)
            return jax.tree.leaves(nnx.state((model, optimizer))), value

        box = [leaves]

        def run_split():
            box[0], value = pure(box[0], x, y)
            value.block_until_ready()

        return run_split
    if how in ("jit_step", "jit_step_donate"):
        import torchsem.nnx as tnx

        stepped = tnx.jit_step(body, model, optimizer, donate=how == "jit_step_donate")
        return lambda: stepped(x, y).block_until_ready()
    step = nnx.jit(body)
    if how == "cached":
        cached = nnx.cached_partial(step, model, optimizer)
        return lambda: cached(x, y).block_until_ready()
    return lambda: step(model, optimizer, x, y).block_until_ready()


def run(repeats: int = 7) -> list[dict]:
    """Time the linen and NNX train steps of the document's Net and of ResNet-18."""
    import jax.numpy as jnp
    from flax import nnx

    import torchsem.nnx as tnx
    from torchsem import models, optim

    rng = np.random.default_rng(0)
    rows = []
    setups = {
        "document Net (batch 3)": (
            models.Net(),
            lambda: tnx.models.Net(rngs=nnx.Rngs(0)),
            jnp.asarray(rng.standard_normal((3, 3, 8)), jnp.float32),
            jnp.array([1, 1, 1]),
            200,
            ("jit", "cached", "jit_step", "jit_step_donate", "split"),
        ),
        "ResNet-18 (16, 3, 32, 32)": (
            models.resnet18(num_classes=10),
            lambda: tnx.models.resnet18(num_classes=10, rngs=nnx.Rngs(0)),
            jnp.asarray(rng.standard_normal((16, 3, 32, 32)), jnp.float32),
            jnp.arange(16) % 10,
            3,
            ("jit", "cached", "jit_step", "jit_step_donate"),
        ),
    }
    for label, (linen_model, make_nnx, x, y, block, ways) in setups.items():

        def tx():
            return optim.sgd(0.01, momentum=0.9, weight_decay=5e-4)

        fns = {"linen": _linen_step(linen_model, x, y, tx())}
        names = {
            "jit": "nnx.jit",
            "cached": "nnx.cached_partial",
            "jit_step": "torchsem.nnx.jit_step",
            "jit_step_donate": "torchsem.nnx.jit_step(donate=True)",
            "split": "split once, merge inside jax.jit",
        }
        for way in ways:
            fns[names[way]] = _nnx_step(make_nnx(), x, y, tx(), way)
        medians = interleaved_medians(fns, repeats, warmup=2, block=block, reference="linen", alternate=True)
        for way in ways:
            rows.append(
                {
                    "name": f"NNX train step, {label}, {names[way]}",
                    "ratio": medians[f"{names[way]}/ratio"],
                    "reference": "the linen step (torchsem.models, jax.jit)",
                    "median_s": medians[names[way]],
                    "reference_median_s": medians["linen"],
                }
            )
    return rows


if __name__ == "__main__":
    for result in run():
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e6:.0f} us vs {result['reference_median_s'] * 1e6:.0f} us)"
        )
