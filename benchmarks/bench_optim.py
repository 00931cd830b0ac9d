"""Optimizer speed: torchsem.optim against optax, and what freezing a large layer saves.

- ``freeze_large_linear``: one jitted train step (forward, backward, SGD with momentum) of a
  2-layer MLP ``Linear(4096, 4096) -> ReLU -> Linear(4096, 10)`` on a batch of 64, with
  ``fc1.weight`` frozen (``make_train_step(..., frozen="fc1.weight")``, wrapped in
  ``optim.freeze`` so it holds no momentum buffer either) against the same step with every
  parameter trained. The ratio is frozen / unfrozen: the frozen weight's gradient matmul and
  its optimizer update are never computed, as PyTorch skips them for ``requires_grad=False``
  (PyTorch's own frozen / unfrozen ratio on the same model is reported alongside).
- ``sgd_update_vs_optax`` / ``adam_update_vs_optax``: the jitted ``update`` + ``apply_updates`` of
  torchsem's SGD (momentum 0.9, weight decay 1e-4) and Adam on 1M float32 parameters against
  optax's nearest equivalents (``chain(add_decayed_weights, sgd(momentum))``, ``adam``): the
  cost of PyTorch's exact rounding (no fused multiply-add where PyTorch rounds, true division
  by the bias correction, per-parameter step counts).
"""

from __future__ import annotations

import contextlib

import numpy as np

from _timing import interleaved_medians

HIDDEN, BATCH, CLASSES = 4096, 64, 10


def _mlp():
    import flax.linen as nn
    import jax

    from torchsem.nn import Linear

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            x = jax.nn.relu(Linear(HIDDEN, HIDDEN, name="fc1")(x))
            return Linear(HIDDEN, CLASSES, name="fc2")(x)

    return MLP()


def _freeze_rows(repeats: int) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from torchsem import optim, train
    from torchsem.losses import cross_entropy

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((BATCH, HIDDEN)).astype(np.float32))
    y = jax.device_put(rng.integers(0, CLASSES, BATCH).astype(np.int32))
    model = _mlp()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, HIDDEN), jnp.float32))
    sgd = optim.sgd(1e-2, momentum=0.9)
    frozen_tx = optim.freeze(sgd, frozen="fc1.weight")
    steps = {
        "unfrozen": (train.make_train_step(model, cross_entropy, sgd), train.TrainState.create(variables, sgd)),
        "frozen": (
            train.make_train_step(model, cross_entropy, frozen_tx, frozen="fc1.weight"),
            train.TrainState.create(variables, frozen_tx),
        ),
    }

    def timed(step, state):
        def go():
            jax.block_until_ready(step(state, (x, y)))

        return go

    medians = interleaved_medians({k: timed(*v) for k, v in steps.items()}, repeats)
    row = {
        "name": "freeze_large_linear",
        "ratio": medians["frozen"] / medians["unfrozen"],
        "reference": f"the same step with fc1.weight ({HIDDEN}x{HIDDEN}) trained",
        "median_s": medians["frozen"],
        "reference_median_s": medians["unfrozen"],
        "batch": BATCH,
    }
    with contextlib.suppress(ImportError):
        row.update(_torch_freeze(repeats, np.asarray(x), np.asarray(y)))
    return [row]


def _torch_freeze(repeats: int, x: np.ndarray, y: np.ndarray) -> dict:
    import torch

    def make(frozen: bool):
        model = torch.nn.Sequential(torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))
        if frozen:
            model[0].weight.requires_grad = False
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
        xt, yt = torch.from_numpy(np.array(x)), torch.from_numpy(y.astype(np.int64))

        def go():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            optimizer.step()

        return go

    medians = interleaved_medians({"frozen": make(True), "unfrozen": make(False)}, repeats)
    return {
        "torch_frozen_over_unfrozen": medians["frozen"] / medians["unfrozen"],
        "torch_frozen_median_s": medians["frozen"],
        "torch_unfrozen_median_s": medians["unfrozen"],
    }


def _update_rows(repeats: int) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import optax

    from torchsem import optim

    rng = np.random.default_rng(1)
    shapes = [(512, 512), (512, 512), (512, 512), (512, 512)]
    params = [jnp.asarray(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    grads = [jnp.asarray(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    pairs = {
        "sgd_update_vs_optax": (
            optim.sgd(1e-2, momentum=0.9, weight_decay=1e-4),
            optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(1e-2, momentum=0.9)),
            "optax.chain(add_decayed_weights(1e-4), sgd(1e-2, momentum=0.9))",
        ),
        "adam_update_vs_optax": (optim.adam(1e-3), optax.adam(1e-3), "optax.adam(1e-3)"),
    }
    rows = []
    for name, (ours, theirs, reference) in pairs.items():

        def make(tx):
            @jax.jit
            def step(params, state):
                updates, state = tx.update(grads, state, params)
                return optax.apply_updates(params, updates), state

            state = tx.init(params)
            carry = {"params": params, "state": state}
            step(params, state)

            def go():
                for _ in range(10):
                    carry["params"], carry["state"] = step(carry["params"], carry["state"])
                jax.block_until_ready(carry["params"])

            return go

        medians = interleaved_medians({"torchsem": make(ours), "optax": make(theirs)}, repeats)
        rows.append(
            {
                "name": name,
                "ratio": medians["torchsem"] / medians["optax"],
                "reference": reference,
                "median_s": medians["torchsem"] / 10,
                "reference_median_s": medians["optax"] / 10,
                "parameters": int(sum(np.prod(s) for s in shapes)),
            }
        )
    return rows


def run(repeats: int = 7) -> list[dict]:
    return _freeze_rows(repeats) + _update_rows(repeats)


if __name__ == "__main__":
    for row in run():
        print(row)
