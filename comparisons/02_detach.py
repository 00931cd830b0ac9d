"""Section 2, example two: ``x.detach()`` cuts the graph, so nothing upstream gets a gradient.

The document's ``forward`` detaches the features after the reshape, before ``fc1``. After
``loss.backward()``, ``bn1.weight`` still has ``requires_grad=True`` but its ``.grad`` is
``None``; ``fc1.weight.grad`` is a full 4x12 tensor.

In JAX, ``x.detach()`` is ``jax.lax.stop_gradient(x)`` (``torchsem.models.Net(detach=True)``
does exactly that). Plain ``jax.grad`` then returns zeros for bn1, indistinguishable from a
true zero gradient; ``torchsem.autograd.grad`` sees the cut in the traced program and returns
``None`` where PyTorch does.

Run: ``python comparisons/02_detach.py``
"""

import sys

import jax
import jax.numpy as jnp

from _show import Comparison
from torchsem import autograd
from torchsem.compare import document_start
from torchsem.losses import cross_entropy
from torchsem.models import Net

compare = Comparison("document/detach-example-two")

# seed_torch(1029); model = net()  (with x = x.detach() in forward); x = torch.randn((3, 3, 8))
model = Net(detach=True)
variables, (x,) = document_start()  # from torchsem.random.Generator(1029), PyTorch's generator replayed
target = jnp.array([1, 1, 1])
params, batch_stats = variables["params"], variables["batch_stats"]

# model.bn1.weight.requires_grad: every parameter requires grad by default
requires_grad = autograd.requires_grad_mask(params)
print(f">>> print(model.bn1.weight.requires_grad)\ntorchsem: {requires_grad['bn1']['weight']}")


# output = model(x); loss = loss_fn(output, target); loss.backward()
def loss_fn(params):
    output, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
    return cross_entropy(output, target)


grads = autograd.grad(loss_fn, requires_grad=requires_grad)(params)
compare.show("print(model.bn1.weight.grad)", "bn1.weight.grad", grads["bn1"]["weight"])
compare.plain(
    "print(model.bn1.weight.grad)",
    jax.grad(loss_fn)(params)["bn1"]["weight"],
    "zeros, not None: 'no path' looks like 'zero gradient'",
)
compare.show("print(model.fc1.weight.grad)", "fc1.weight.grad", grads["fc1"]["weight"])
compare.show("print(model.fc1.bias.grad)", "fc1.bias.grad", grads["fc1"]["bias"])

sys.exit(compare.done())
