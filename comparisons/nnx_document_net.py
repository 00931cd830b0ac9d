"""Section 5, ``model.eval()`` example two, written with ``torchsem.nnx``: it reads like the PyTorch original.

The document's code (PyTorch)::

    seed_torch(1029)
    model = net()
    x1, x2, x3, x4 = (torch.randn((1, 3, 8)) for _ in range(4))
    print(model.bn1.running_mean)
    model(x1); print(model.bn1.running_mean)
    model(x2); print(model.bn1.running_mean)
    model.eval(); print(model.bn1.running_mean)
    model(x3); print(model.bn1.running_mean)
    model(x4); print(model.bn1.running_mean)
    model.train(); print(model.bn1.running_mean)
    model(x1); print(model.bn1.running_mean)
    model(x2); print(model.bn1.running_mean)

The same lines below, on an NNX model whose state is PyTorch's (``torchsem.nnx.torch_init``
replays ``torch.manual_seed(1029); net()`` bit for bit): no ``batch_stats`` to thread through,
no ``mutable=``, the running statistics change in place in training and stay put in eval, as
PyTorch's do. PyTorch's values are those of the catalogue entry ``document/eval-example-two``
(live PyTorch when importable, else its recording).

Run: ``python comparisons/nnx_document_net.py``
"""

import sys

from flax import nnx

import torchsem.nnx as tnx
from _show import Comparison
from torchsem.random import Generator

compare = Comparison("document/eval-example-two")

# seed_torch(1029); model = net(); x1..x4 = torch.randn((1, 3, 8))
generator = Generator(1029)
model = tnx.torch_init(tnx.models.Net(rngs=nnx.Rngs(0)), generator)
x1, x2, x3, x4 = (generator.randn((1, 3, 8)) for _ in range(4))


def show(step: int, label: str) -> None:
    compare.show(
        f"print(model.bn1.running_mean)  # {label}",
        f"running_mean {step}: {label}" if step > 1 else "running_mean 1: init",
        model.bn1.running_mean.get_value(),
    )


show(1, "init")
model(x1)
show(2, "after train x1")
model(x2)
show(3, "after train x2")
model.eval()
show(4, "after model.eval()")
model(x3)
show(5, "after eval x3")
model(x4)
show(6, "after eval x4")
model.train()
show(7, "after model.train()")
model(x1)
show(8, "after train x1 again")
model(x2)
show(9, "after train x2 again")
compare.show(
    "print(model.bn1.running_var)  # at the end", "running_var after train x2 again", model.bn1.running_var.get_value()
)
compare.show("print(model.bn1.num_batches_tracked)", "num_batches_tracked", model.bn1.num_batches_tracked.get_value())

# The same eval calls through a view, jitted: nnx.view(model, use_running_average=True) shares
# the model's Variables and is in eval mode without switching the model itself.
evaluate = nnx.jit(lambda model, x: model(x))
evaluate(nnx.view(model, use_running_average=True), x3)
compare.show(
    "nnx.view(model, use_running_average=True)(x3)  # then print(model.bn1.running_mean)",
    "running_mean 9: after train x2 again",
    model.bn1.running_mean.get_value(),
)

sys.exit(compare.done())
