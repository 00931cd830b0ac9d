"""Train-step speed: torchsem.train on the document's Net against plain Flax + optax and PyTorch eager.

The work timed is one training iteration of the document's network (AvgPool1d(2) ->
BatchNorm1d(3) -> Linear(12, 4), batch 3, cross-entropy, SGD(lr=1e-2, momentum=0.9,
weight_decay=1e-4)) on the CPU:

- ``net_step_vs_flax_optax``: torchsem's jitted ``make_train_step`` (PyTorch's None gradients
  through torchsem.autograd, torchsem.optim.sgd's exact step) against the same step written in
  plain Flax + optax (``jax.value_and_grad``, ``optax.chain(add_decayed_weights, sgd)``,
  ``optax.apply_updates``), same module, both jitted (target <= 1.05);
- ``net_step_vs_torch_eager``: the same jitted step against PyTorch eager ``zero_grad(); loss =
  loss_fn(model(x), y); loss.backward(); optimizer.step()`` (target <= 0.35);
- ``scan_1000_steps_vs_torch_eager``: per-step time of 1000 steps in one ``train_loop``
  (``jax.lax.scan``) against PyTorch eager's per-step time over 1000 steps (target <= 1/20).

Every time is the median of interleaved repeats after warm-up; per-step times divide a run of
many steps by its length. The Flax + optax ratio is the median of per-round ratios over many
short alternating rounds (the step is ~70 us, and machine load drifts between rounds). PyTorch
runs with one thread (its fastest setting for this size).
"""

from __future__ import annotations

import numpy as np

from _timing import interleaved_medians

BATCH = 3
STEPS_PER_TIMING = 50
PAIRED_ROUNDS = 6  # rounds per requested repeat: many short paired runs beat a few long ones under load
SCAN_STEPS = 1000
LR, MOMENTUM, WEIGHT_DECAY = 1e-2, 0.9, 1e-4


def _data(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, BATCH, 3, 8)).astype(np.float32)
    ys = rng.integers(0, 4, (steps, BATCH)).astype(np.int32)
    return xs, ys


def _jax_steps():
    import jax
    import jax.numpy as jnp
    import optax

    from torchsem import optim, train
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    model = Net()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((BATCH, 3, 8), jnp.float32))
    tx = optim.sgd(LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    torchsem_state = train.TrainState.create(variables, tx)
    torchsem_step = train.make_train_step(model, cross_entropy, tx)

    plain_tx = optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), optax.sgd(LR, momentum=MOMENTUM))

    @jax.jit
    def plain_step(state, batch):
        params, batch_stats, opt_state = state
        x, y = batch

        def loss_of(params):
            logits, updated = model.apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updated["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = plain_tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), {"loss": loss}

    plain_state = (variables["params"], variables["batch_stats"], plain_tx.init(variables["params"]))
    return torchsem_step, torchsem_state, plain_step, plain_state


def _torch_step(steps_xs, steps_ys):
    import torch

    # One thread: on these tiny tensors more threads only add synchronisation (on a loaded 2-core
    # machine PyTorch's default 2 threads measured 25x slower), so this is PyTorch's best case.
    torch.set_num_threads(1)

    class net(torch.nn.Module):  # the document's network
        def __init__(self) -> None:
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3)
            self.fc1 = torch.nn.Linear(12, 4)

        def forward(self, x):
            x = self.pool1(x)
            x = self.bn1(x)
            x = x.reshape(x.size(0), -1)
            return self.fc1(x)

    model = net()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = [torch.from_numpy(x) for x in steps_xs]
    ys = [torch.from_numpy(y.astype(np.int64)) for y in steps_ys]

    def run(n: int) -> None:
        for i in range(n):
            optimizer.zero_grad()
            loss = loss_fn(model(xs[i % len(xs)]), ys[i % len(ys)])
            loss.backward()
            optimizer.step()

    return run


def run(repeats: int = 7) -> list[dict]:
    import jax

    from torchsem import train

    xs, ys = _data(SCAN_STEPS)
    batches = [(jax.device_put(xs[i]), jax.device_put(ys[i])) for i in range(STEPS_PER_TIMING)]
    torchsem_step, torchsem_state, plain_step, plain_state = _jax_steps()

    def loop(step, state):
        def go():
            s = state
            for batch in batches:
                s, _metrics = step(s, batch)
            jax.block_until_ready(s)

        return go

    rows: list[dict] = []
    try:
        import torch  # noqa: F401

        torch_run = _torch_step(xs, ys)
    except ImportError:
        torch_run = None

    fns = {"torchsem": loop(torchsem_step, torchsem_state), "plain": loop(plain_step, plain_state)}
    paired = interleaved_medians(fns, repeats * PAIRED_ROUNDS, alternate=True, reference="plain")
    medians = {k: paired[k] / STEPS_PER_TIMING for k in fns}
    if torch_run is not None:
        torch_medians = interleaved_medians(
            {"torchsem": fns["torchsem"], "torch": lambda: torch_run(STEPS_PER_TIMING)}, repeats, alternate=True
        )
        medians["torch"] = torch_medians["torch"] / STEPS_PER_TIMING
        medians["torchsem_vs_torch"] = torch_medians["torchsem"] / STEPS_PER_TIMING
    rows.append(
        {
            "name": "net_step_vs_flax_optax",
            "ratio": paired["torchsem/ratio"],
            "reference": "the same jitted step in plain Flax + optax",
            "median_s": medians["torchsem"],
            "reference_median_s": medians["plain"],
            "target": "<= 1.05",
            "batch": BATCH,
        }
    )
    if torch_run is not None:
        rows.append(
            {
                "name": "net_step_vs_torch_eager",
                "ratio": medians["torchsem_vs_torch"] / medians["torch"],
                "reference": "PyTorch eager zero_grad/forward/backward/step",
                "median_s": medians["torchsem_vs_torch"],
                "reference_median_s": medians["torch"],
                "target": "<= 0.35",
                "batch": BATCH,
            }
        )

        batches_all = (jax.device_put(xs), jax.device_put(ys))

        def scan_run():
            state, _metrics = train.train_loop(torchsem_step, torchsem_state, batches_all)
            jax.block_until_ready(state)

        scan_medians = interleaved_medians(
            {"scan": scan_run, "torch": lambda: torch_run(SCAN_STEPS)}, max(3, repeats // 2), warmup=1, alternate=True
        )
        per_step = {k: v / SCAN_STEPS for k, v in scan_medians.items()}
        rows.append(
            {
                "name": "scan_1000_steps_vs_torch_eager",
                "ratio": per_step["scan"] / per_step["torch"],
                "reference": "PyTorch eager, per step over 1000 steps",
                "median_s": per_step["scan"],
                "reference_median_s": per_step["torch"],
                "target": "<= 0.05",
                "steps": SCAN_STEPS,
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
