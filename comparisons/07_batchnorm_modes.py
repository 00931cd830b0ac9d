"""Section 6: BatchNorm's four ``training x track_running_stats`` modes, and ``momentum=None``.

| training | track_running_stats | normalises with              | running statistics               |
| True     | True                | batch mean, biased batch var | updated, with the unbiased var   |
| True     | False               | batch mean, biased batch var | none exist (``running_mean is None``) |
| False    | True                | running_mean, running_var    | not updated                      |
| False    | False               | batch mean, biased batch var | none exist                       |

``momentum=None`` makes the update a cumulative average (factor ``1 / num_batches_tracked``).
``torchsem.nn.BatchNorm1d`` has PyTorch's fields; the mode is Flax's ``use_running_average``
(``not training``), and the statistics live in the ``batch_stats`` collection, absent when not
tracked. Each mode below starts from the same weight, bias and running statistics as PyTorch.

Run: ``python comparisons/07_batchnorm_modes.py``
"""

import sys

import jax
import jax.numpy as jnp

from _show import Comparison
from torchsem.compare import get
from torchsem.nn import BatchNorm1d

status = 0
for training in (True, False):
    for track in (True, False):
        name = f"document/batchnorm-training={str(training).lower()}-track_running_stats={str(track).lower()}"
        compare = Comparison(name)
        inputs = get(name).make_inputs()  # the entry's x, weight, bias and starting running statistics

        # bn = nn.BatchNorm1d(3, track_running_stats=track); bn.train(training)
        bn = BatchNorm1d(3, track_running_stats=track)
        variables = {"params": {"weight": jnp.asarray(inputs["weight"]), "bias": jnp.asarray(inputs["bias"])}}
        if track:
            variables["batch_stats"] = {
                "running_mean": jnp.asarray(inputs["running_mean"]),
                "running_var": jnp.asarray(inputs["running_var"]),
                "num_batches_tracked": jnp.array(0),
            }
        # y = bn(x): only training with tracked statistics has anything to update
        mutable = ["batch_stats"] if training and track else False
        result = bn.apply(variables, inputs["x1"], use_running_average=not training, mutable=mutable)
        y, state = result if mutable else (result, variables)
        stats = state.get("batch_stats", {})
        compare.show("print(y)", "output", y)
        compare.show("print(bn.running_mean)", "running_mean", stats.get("running_mean"))
        compare.show("print(bn.running_var)", "running_var", stats.get("running_var"))
        compare.show("print(bn.num_batches_tracked)", "num_batches_tracked", stats.get("num_batches_tracked"))
        status |= compare.done()
        print("\n" + "-" * 100 + "\n")

# momentum=None: the cumulative average over the batches seen so far
compare = Comparison("document/batchnorm-momentum-none")
inputs = get("document/batchnorm-momentum-none").make_inputs()
bn = BatchNorm1d(3, momentum=None)
variables = bn.init(jax.random.key(0), inputs["x1"], use_running_average=True)
for batch in (1, 2, 3):
    _, updated = bn.apply(variables, inputs[f"x{batch}"], use_running_average=False, mutable=["batch_stats"])
    variables = {**variables, **updated}
    compare.show(
        f"print(bn.running_mean)  # after batch {batch}",
        f"running_mean after batch {batch}",
        variables["batch_stats"]["running_mean"],
    )
compare.show("print(bn.num_batches_tracked)", "num_batches_tracked", variables["batch_stats"]["num_batches_tracked"])
status |= compare.done()
sys.exit(status)
