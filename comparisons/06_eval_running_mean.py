"""Section 5, ``model.eval()`` example two: the running-mean trace.

The document draws four inputs ``x1..x4`` of shape (1, 3, 8) after building ``net`` (seed
1029), and prints ``model.bn1.running_mean`` nine times: at the start, after training on
``x1`` and ``x2``, after ``model.eval()`` and two eval calls on ``x3`` and ``x4`` (unchanged),
and after ``model.train()`` and training on ``x1`` and ``x2`` again.

In Flax the running statistics are the ``batch_stats`` collection, threaded through by hand:
a training call returns the updated collection (``mutable=['batch_stats']``), an eval call
(``train=False``) reads it and cannot change it. ``flax.linen.BatchNorm`` would track the same
mean but a different variance (the biased one): the last lines show the difference.

Run: ``python comparisons/06_eval_running_mean.py``
"""

import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

from _show import Comparison
from torchsem.compare import document_start
from torchsem.models import Net

compare = Comparison("document/eval-example-two")

# seed_torch(1029); model = net(); x1..x4 = torch.randn((1, 3, 8)) four times
model = Net()
variables, (x1, x2, x3, x4) = document_start([(1, 3, 8)] * 4)  # from torchsem.random.Generator(1029)
params, batch_stats = variables["params"], variables["batch_stats"]


@jax.jit
def train_call(batch_stats, x):  # model.train(); model(x)
    _, state = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
    return state["batch_stats"]


@jax.jit
def eval_call(batch_stats, x):  # model.eval(); model(x): reads the running statistics, changes nothing
    return model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)


def show_mean(step: int, label: str) -> None:
    compare.show(
        f"print(model.bn1.running_mean)  # {label}",
        f"running_mean {step}: {label}" if step > 1 else "running_mean 1: init",
        batch_stats["bn1"]["running_mean"],
    )


show_mean(1, "init")
batch_stats = train_call(batch_stats, x1)
show_mean(2, "after train x1")
batch_stats = train_call(batch_stats, x2)
show_mean(3, "after train x2")
show_mean(4, "after model.eval()")
eval_call(batch_stats, x3)
show_mean(5, "after eval x3")
eval_call(batch_stats, x4)
show_mean(6, "after eval x4")
show_mean(7, "after model.train()")
batch_stats = train_call(batch_stats, x1)
show_mean(8, "after train x1 again")
variance_x1_again = batch_stats["bn1"]["running_var"]
batch_stats = train_call(batch_stats, x2)
show_mean(9, "after train x2 again")
compare.show(
    "print(model.bn1.running_var)  # at the end", "running_var after train x2 again", batch_stats["bn1"]["running_var"]
)

# For contrast: the same four training calls with flax.linen.BatchNorm (momentum 0.1 is Flax's 0.9).
flax_bn = nn.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5)
flax_variables = flax_bn.init(jax.random.key(0), jnp.zeros((1, 3, 4)), use_running_average=True)
pool = jax.jit(lambda x: x.reshape(1, 3, 4, 2).mean(-1))  # AvgPool1d(2): what bn1 sees
for x in (x1, x2, x1, x2):
    _, updated = flax_bn.apply(flax_variables, pool(x), use_running_average=False, mutable=["batch_stats"])
    flax_variables = {**flax_variables, **updated}
compare.plain(
    "print(model.bn1.running_var)  # at the end",
    flax_variables["batch_stats"]["var"],
    "flax.linen.BatchNorm updates it with the biased variance",
)

sys.exit(compare.done())
