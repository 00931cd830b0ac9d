"""Speed of a ResNet-18 training step: torchsem's channels-first port against plain Flax (NHWC) and PyTorch eager.

One SGD(momentum=0.9, weight_decay=5e-4) step with cross-entropy on a batch of ``(16, 3, 32, 32)``
images, 10 classes, jitted (forward, backward, BatchNorm statistics, optimizer), compared in the
same process with:

- a plain Flax ResNet-18 (``flax.linen.Conv``/``BatchNorm``/``Dense``, NHWC, ``optax.sgd``), the
  same architecture at the same precision (XLA CPU runs float32 convolutions in float32);
- PyTorch eager: torchvision's ResNet-18 structure (``torchsem.compare``'s reference copy),
  ``torch.optim.SGD``, its own intra-op threads.

``conv_algorithm="matmul"`` rows time torchsem's opt-in convolution (see ``torchsem.nn.Conv2d``),
which lowers a convolution to shifted matrix products: faster on XLA's CPU backend, with
different float32 rounding than ``lax.conv`` (both within float32 drift of PyTorch).
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians

BATCH = (16, 3, 32, 32)
CLASSES = 10


def _plain_flax_resnet18():
    """ResNet-18 as a Flax user writes it: NHWC, Flax's own modules, momentum 0.9 BatchNorm."""
    import flax.linen as nn
    import jax.numpy as jnp

    class Block(nn.Module):
        planes: int
        stride: int

        @nn.compact
        def __call__(self, x, train):
            bn = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5)
            conv = dict(use_bias=False, precision="highest")
            y = nn.Conv(self.planes, (3, 3), (self.stride,) * 2, padding=((1, 1), (1, 1)), **conv)(x)
            y = nn.relu(nn.BatchNorm(**bn)(y))
            y = nn.Conv(self.planes, (3, 3), padding=((1, 1), (1, 1)), **conv)(y)
            y = nn.BatchNorm(**bn)(y)
            if self.stride != 1 or x.shape[-1] != self.planes:
                x = nn.BatchNorm(**bn)(nn.Conv(self.planes, (1, 1), (self.stride,) * 2, **conv)(x))
            return nn.relu(x + y)

    class ResNet18(nn.Module):
        @nn.compact
        def __call__(self, x, train=True):
            x = nn.Conv(64, (7, 7), (2, 2), padding=((3, 3), (3, 3)), use_bias=False, precision="highest")(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                x = Block(planes, stride)(x, train)
                x = Block(planes, 1)(x, train)
            return nn.Dense(CLASSES, precision="highest")(jnp.mean(x, axis=(1, 2)))

    return ResNet18()


def _jax_step(model, tx, loss_fn):
    import jax
    import optax

    def step(params, batch_stats, opt_state, x, y):
        def loss(p):
            logits, updated = model.apply(
                {"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
            )
            return loss_fn(logits, y), updated["batch_stats"]

        (value, new_stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, value

    return jax.jit(step, donate_argnums=(0, 1, 2))


def run(repeats: int = 7) -> list[dict]:
    """Time the ResNet-18 train step: torchsem (lax.conv and matmul convs), plain Flax NHWC, PyTorch eager."""
    import jax
    import jax.numpy as jnp
    import optax

    from torchsem import optim
    from torchsem.losses import cross_entropy
    from torchsem.models import resnet18

    rng = np.random.default_rng(0)
    x = rng.standard_normal(BATCH).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH[0])
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    x_nhwc = jnp.transpose(xj, (0, 2, 3, 1))

    sides = {}
    for label, kwargs in (("torchsem", {}), ("torchsem-matmul", {"conv_algorithm": "matmul"})):
        try:
            model = resnet18(num_classes=CLASSES, **kwargs)
        except TypeError:  # a torchsem without the opt-in algorithm
            continue
        variables = model.init(jax.random.key(0), xj, train=False)
        tx = optim.sgd(0.1, momentum=0.9, weight_decay=5e-4)
        state = [variables["params"], variables["batch_stats"], tx.init(variables["params"])]
        sides[label] = (_jax_step(model, tx, cross_entropy), state, xj)

    flax_model = _plain_flax_resnet18()
    fv = flax_model.init(jax.random.key(0), x_nhwc, train=False)
    ftx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, momentum=0.9))

    def flax_loss(logits, labels):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    sides["flax"] = (
        _jax_step(flax_model, ftx, flax_loss),
        [fv["params"], fv["batch_stats"], ftx.init(fv["params"])],
        x_nhwc,
    )

    def runner(label):
        step, state, inputs = sides[label]

        def call():
            p, s, o, loss = step(state[0], state[1], state[2], inputs, yj)
            state[:] = [p, s, o]
            jax.block_until_ready(loss)

        return call

    medians = interleaved_medians({k: runner(k) for k in sides}, repeats, warmup=3, reference="flax")
    rows = []
    for label in sides:
        if label == "flax":
            continue
        rows.append(
            {
                "name": f"resnet18 train step jit {BATCH} ({label})",
                "ratio": medians[f"{label}/ratio"],
                "reference": "plain Flax ResNet-18 NHWC (flax.linen.Conv/BatchNorm, optax.sgd), precision HIGHEST",
                "median_s": medians[label],
                "reference_median_s": medians["flax"],
            }
        )
    try:
        import torch
    except ImportError:
        return rows
    from torchsem.compare._torch_resnet import torch_resnet

    torch.manual_seed(0)
    net = torch_resnet("resnet18", num_classes=CLASSES)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    torch_median = interleaved_medians({"torch": torch_step}, repeats, warmup=3, settle_s=0.05)["torch"]
    for label in [k for k in sides if k != "flax"] + ["flax"]:
        rows.append(
            {
                "name": f"resnet18 train step {BATCH} ({label})",
                "ratio": medians[label] / torch_median,
                "reference": f"PyTorch eager, torch.optim.SGD ({torch.get_num_threads()} threads)",
                "median_s": medians[label],
                "reference_median_s": torch_median,
            }
        )
    return rows


if __name__ == "__main__":
    for result in run():
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e3:.1f} ms vs {result['reference_median_s'] * 1e3:.1f} ms)"
        )
