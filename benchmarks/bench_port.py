"""Speed of a ported model: ``torchsem.port`` of torchvision's ResNet-18 against ``torchsem.models.resnet18``.

The same jitted SGD(momentum=0.9, weight_decay=5e-4) train step with cross-entropy on a batch
of ``(16, 3, 32, 32)`` images (``bench_resnet.py``'s), once with the module ``port`` generated
from the PyTorch model and once with the hand-written torchsem model, interleaved in one
process. The port builds the same torchsem layers in the same order, so the two programs
should be the same XLA computation; the ratio says whether the generated code costs anything.
Needs torch (the port traces the PyTorch model); without it, nothing is timed.
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians
from bench_resnet import BATCH, CLASSES, _jax_step


def run(repeats: int = 7) -> list[dict]:
    """Time the ported and the hand-written ResNet-18 train steps."""
    try:
        import torch
    except ImportError:
        return []
    import jax
    import jax.numpy as jnp

    from torchsem import optim
    from torchsem.compare._torch_resnet import torch_resnet
    from torchsem.losses import cross_entropy
    from torchsem.models import resnet18
    from torchsem.port import port

    rng = np.random.default_rng(0)
    x = rng.standard_normal(BATCH).astype(np.float32)
    xj, yj = jnp.asarray(x), jnp.asarray(rng.integers(0, CLASSES, BATCH[0]))
    torch.manual_seed(0)
    module, variables = port(torch_resnet("resnet18", num_classes=CLASSES), torch.from_numpy(x))
    tx = optim.sgd(0.1, momentum=0.9, weight_decay=5e-4)
    sides = {}
    for label, model in (("ported", module), ("hand-written", resnet18(num_classes=CLASSES))):
        copy = jax.tree_util.tree_map(jnp.array, variables)  # each side donates its own buffers
        state = [copy["params"], copy["batch_stats"], tx.init(copy["params"])]
        sides[label] = (_jax_step(model, tx, cross_entropy), state)

    def runner(label):
        step, state = sides[label]

        def call():
            p, s, o, loss = step(state[0], state[1], state[2], xj, yj)
            state[:] = [p, s, o]
            jax.block_until_ready(loss)

        return call

    medians = interleaved_medians({k: runner(k) for k in sides}, repeats, warmup=3, reference="hand-written")
    return [
        {
            "name": f"ported resnet18 train step jit {BATCH}",
            "ratio": medians["ported/ratio"],
            "reference": "torchsem.models.resnet18, the same step",
            "median_s": medians["ported"],
            "reference_median_s": medians["hand-written"],
        }
    ]


if __name__ == "__main__":
    for result in run():
        print(
            f"{result['name']}: {result['ratio']:.3f}x of {result['reference']} "
            f"({result['median_s'] * 1e3:.1f} ms vs {result['reference_median_s'] * 1e3:.1f} ms)"
        )
