"""Section 4: ``with torch.no_grad():`` records nothing, so ``loss.backward()`` raises.

Inside the context the parameters keep ``requires_grad=True``, but every result has
``requires_grad=False`` and ``grad_fn=None``; the document then calls ``loss.backward()`` and
gets ``RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn``.
BatchNorm still behaves as in training: its running mean moves.

JAX has no ambient graph to switch off. ``torchsem.autograd.no_grad(fun)`` is the functional
form: ``fun``'s results carry no gradient, and ``torchsem.autograd.grad`` of a loss computed
from them raises PyTorch's error. Plain ``jax.grad`` raises nothing and returns zeros.

Run: ``python comparisons/04_no_grad.py``
"""

import sys

import jax
import jax.numpy as jnp

from _show import Comparison
from torchsem import autograd
from torchsem.compare import document_start
from torchsem.losses import cross_entropy
from torchsem.models import Net

compare = Comparison("document/no-grad-error")

# seed_torch(1029); model = net(); x = torch.randn((3, 3, 8))
model = Net()
variables, (x,) = document_start()  # from torchsem.random.Generator(1029), PyTorch's generator replayed
target = jnp.array([1, 1, 1])
params, batch_stats = variables["params"], variables["batch_stats"]

# with torch.no_grad(): print(model.fc1.weight.requires_grad)   -> still True
requires_grad = autograd.requires_grad_mask(params)
compare.show(
    "print(model.fc1.weight.requires_grad)  # inside no_grad",
    "fc1.weight.requires_grad inside no_grad",
    requires_grad["fc1"]["weight"],
)


#     output = model(x)
@autograd.no_grad
def forward(params):
    return model.apply(
        {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats", "intermediates"]
    )


def forward_with_intermediates(params):
    output, state = forward(params)
    return {"output": output, **state["intermediates"]}


output, state = forward(params)
features = autograd.inspect_graph(forward_with_intermediates, params)["reshape_out"]
compare.show(
    "print(x.requires_grad, x.is_leaf, x.grad_fn)  # inside forward, after the reshape",
    "features = x.reshape(N, -1)",
    f"{features.requires_grad}, {features.is_leaf}, {'<' + features.grad_fn + '>' if features.grad_fn else 'None'}",
)
compare.show("print(output)", "output", output)
compare.show(
    "print(model.bn1.running_mean)  # no_grad does not stop BatchNorm's update",
    "bn1.running_mean after the forward",
    state["batch_stats"]["bn1"]["running_mean"],
)


#     loss = loss_fn(output, target); loss.backward()
def loss_fn(params):
    return cross_entropy(forward(params)[0], target)


try:
    autograd.grad(loss_fn, requires_grad=requires_grad)(params)
    error = "(no error raised)"
except RuntimeError as err:
    error = str(err)
compare.show("loss.backward()", "loss.backward() error message", error)
compare.plain("loss.backward()", "(no error raised)", "jax.grad through stop_gradient just returns zeros")
compare.plain("print(model.fc1.weight.grad)", jax.grad(loss_fn)(params)["fc1"]["weight"], "zeros, not an error")

sys.exit(compare.done())
