"""Section 1, example one: a parameter with ``requires_grad=False`` gets no gradient.

The document seeds everything with 1029, builds ``net`` (AvgPool1d -> BatchNorm1d -> reshape ->
Linear), sets ``model.fc1.weight.requires_grad = False`` and runs one forward/backward on
``x = torch.randn((3, 3, 8))`` with targets ``[1, 1, 1]``. It prints ``None`` for the frozen
weight's gradient and ``tensor([ 0.1875, -0.8615,  0.3708,  0.3033])`` for the bias.

In JAX a gradient is a value you ask for. ``torchsem.autograd.grad`` takes PyTorch's
``requires_grad`` as a mask and returns ``None`` for the frozen leaf, and
``torchsem.optim.freeze`` keeps the optimizer from moving it, as ``optimizer.step()`` skips a
parameter whose ``.grad`` is None. (Before ``backward()`` the document also prints ``None``
twice: in JAX no gradient exists before it is taken, so there is nothing to print.)

Run: ``python comparisons/01_requires_grad.py``
"""

import sys

import jax
import jax.numpy as jnp
import optax

from _show import Comparison
from torchsem import autograd, optim
from torchsem.compare import document_start
from torchsem.losses import cross_entropy
from torchsem.models import Net

compare = Comparison("document/requires-grad-example-one")

# seed_torch(1029); model = net(); x = torch.randn((3, 3, 8)); target = torch.tensor([1, 1, 1])
# document_start draws the weights and x from torchsem.random.Generator(1029), PyTorch's CPU
# generator bit for bit (torchsem.random.torch_init, then generator.randn): the same weights and x.
model = Net()
variables, (x,) = document_start()
target = jnp.array([1, 1, 1])
params, batch_stats = variables["params"], variables["batch_stats"]

# model.fc1.weight.requires_grad = False
requires_grad = autograd.requires_grad_mask(params, frozen="fc1.weight")
# optimizer = optim.SGD(model.parameters(), lr=1e-2)
optimizer = optim.freeze(optim.sgd(lr=1e-2), frozen="fc1.weight")
optimizer_state = optimizer.init(params)


# output = model(x); loss = loss_fn(output, target); loss.backward()
def loss_fn(params):
    output, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
    return cross_entropy(output, target)


grads = autograd.grad(loss_fn, requires_grad=requires_grad)(params)
compare.show("print(model.fc1.weight.grad)", "fc1.weight.grad", grads["fc1"]["weight"])
compare.show("print(model.fc1.bias.grad)", "fc1.bias.grad", grads["fc1"]["bias"])
compare.plain(
    "print(model.fc1.weight.grad)",
    jax.grad(loss_fn)(params)["fc1"]["weight"],
    "jax.grad differentiates every leaf, frozen or not",
)

# optimizer.step(): the frozen weight does not move, the bias takes one SGD step
updates, optimizer_state = optimizer.update(grads, optimizer_state, params)
stepped = optax.apply_updates(params, updates)
compare.show(
    "print(model.fc1.bias)  # after optimizer.step()", "fc1.bias after optimizer.step()", stepped["fc1"]["bias"]
)
compare.show(
    "print(model.fc1.weight)  # after optimizer.step(): unchanged",
    "fc1.weight after optimizer.step()",
    stepped["fc1"]["weight"],
)

sys.exit(compare.done())
