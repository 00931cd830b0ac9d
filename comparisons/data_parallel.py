"""Data-parallel training of the document's Net on 8 host devices: single device vs 8 devices vs PyTorch.

PyTorch scales the document's loop out with ``DistributedDataParallel`` and
``SyncBatchNorm.convert_sync_batchnorm``, whose documented result is one process training on
the global batch. torchsem runs the same loop as one SPMD program over a device mesh
(``torchsem.parallel.make_train_step``): the batch split over the ``data`` axis, parameters and
optimizer state replicated, bn1's statistics synchronised, gradients summed across devices.

This script trains Net for 20 steps (SGD, lr=0.05, momentum=0.9) three ways on the same
batches and prints how far apart they end up:

1. global batch 32, split 4 per device;
2. uneven shards: 0 to 6 real examples per device (``torchsem.parallel.pad_shards``), which
   plain ``flax.linen.BatchNorm(axis_name=...)`` gets wrong (it averages per-device means as
   if every device held as many examples; shown for one batch at the end).

PyTorch's values come from torchsem's oracle: live PyTorch when importable, else the outputs
recorded from PyTorch (``TORCHSEM_ORACLE=recorded`` forces them).

Run: ``python comparisons/data_parallel.py``
"""

import os

# 8 host CPU devices; must be set before jax is imported.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import sys

import jax
import jax.numpy as jnp
import numpy as np

from torchsem import convert, optim, train
from torchsem.compare import compare_output, get, get_oracle
from torchsem.compare.scenarios.parallel import _real_batches
from torchsem.losses import cross_entropy
from torchsem.models import Net

SHOWN = ("fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "running_mean", "running_var", "loss")


def single_device(inputs):
    """The same 20 steps with torchsem.train.make_train_step on one device, every step's values."""
    model = Net()
    variables = convert.load_torch_state_dict(model.init(jax.random.PRNGKey(0), jnp.zeros((2, 3, 8))), inputs["state"])
    tx = optim.sgd(lr=0.05, momentum=0.9)
    state = train.TrainState.create(variables, tx)
    step = train.make_train_step(model, cross_entropy, tx)
    values = {name: [] for name in SHOWN}
    for x, y in _real_batches(inputs):
        state, metrics = step(state, (x, y))
        params = convert.to_torch_state_dict({"params": state.params})
        for name in SHOWN[:4]:
            values[name].append(np.asarray(params[name]))
        for name in ("running_mean", "running_var"):
            values[name].append(np.asarray(state.batch_stats["bn1"][name]))
        values["loss"].append(np.asarray(metrics["loss"]))
    return {name: np.stack(v) for name, v in values.items()}


def report(entry: str, title: str) -> bool:
    scenario = get(entry)
    oracle = get_oracle()
    inputs = scenario.make_inputs()
    pytorch = oracle.outputs(scenario)
    eight = scenario.jax_program(inputs, True)
    one = single_device(inputs)
    print(f"\n== {entry}: {title}")
    print(f"   PyTorch: {oracle.describe([scenario])}; torchsem on {len(jax.devices())} devices")
    print(f"   {'value':<13} {'|1 dev - 8 dev|':>16} {'|PyTorch - 8 dev|':>18} {'|PyTorch - 1 dev|':>18}")
    agree = True
    for name in SHOWN:
        p, e, o = (np.asarray(v, np.float64) for v in (pytorch[name], eight[name], one[name]))
        gaps = (np.max(np.abs(o - e)), np.max(np.abs(p - e)), np.max(np.abs(p - o)))
        print(f"   {name:<13} {gaps[0]:>16.3g} {gaps[1]:>18.3g} {gaps[2]:>18.3g}")
        agree &= compare_output(name, pytorch[name], np.asarray(eight[name]), scenario.tolerance_for(name)).ok
    steps = [0, 9, 19]
    print("   loss at steps " + ", ".join(str(s + 1) for s in steps) + ":")
    for label, values in (("PyTorch", pytorch), ("1 device", one), ("8 devices", eight)):
        print(f"     {label:<10} " + "  ".join(f"{float(np.asarray(values['loss'])[s]):.7f}" for s in steps))
    return agree


def flax_contrast(entry: str) -> None:
    """One uneven batch through flax.linen.BatchNorm(axis_name='data') with a mask: per-device means averaged."""
    import flax.linen as flax_nn
    from jax.sharding import PartitionSpec

    from torchsem import parallel

    inputs = get(entry).make_inputs()
    shards = [(inputs["xs"][0, k, :n].mean(axis=-1), inputs["ys"][0, k, :n]) for k, n in enumerate(inputs["sizes"][0])]
    x, _, mask = parallel.pad_shards(shards)  # (48, 3) features, 6 rows per device
    layer = flax_nn.BatchNorm(use_running_average=False, momentum=0.0, axis_name="data", use_fast_variance=False)
    variables = layer.init(jax.random.PRNGKey(0), x[:6])

    def per_device(x, mask):
        _, updated = layer.apply(variables, x, mask=mask[:, None], mutable=["batch_stats"])
        return updated["batch_stats"]["mean"]

    flax_mean = jax.shard_map(
        per_device, mesh=parallel.data_mesh(), in_specs=PartitionSpec("data"), out_specs=PartitionSpec()
    )(x, mask)
    print(
        f"\n== plain flax.linen.BatchNorm(axis_name='data', mask=...) on the first uneven batch "
        f"(real rows per device: {[int(n) for n in inputs['sizes'][0]]})"
    )
    print(f"   mean of the real examples: {np.round(x[mask].mean(axis=0), 5)}")
    print(f"   flax's synchronised mean:  {np.round(np.asarray(flax_mean), 5)}   (mean of per-device means)")


if __name__ == "__main__":
    ok = report("parallel/net-sgd/even", "global batch 32, 4 examples per device")
    ok &= report("parallel/net-sgd/uneven-shards", "0 to 6 real examples per device (pad_shards)")
    flax_contrast("parallel/net-sgd/uneven-shards")
    print("\n8-device training agrees with PyTorch on the global batch." if ok else "\nDIFFERS from PyTorch.")
    sys.exit(0 if ok else 1)
