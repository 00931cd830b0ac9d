"""Section 5, ``model.eval()`` example one: eval mode changes no gradient behaviour.

``model.eval()`` sets ``training=False`` on every submodule: BatchNorm normalises with its
running statistics and stops updating them, Dropout passes everything through. It does not
touch autograd: ``requires_grad`` stays True, intermediates keep their ``grad_fn``, and
``loss.backward()`` still fills ``fc1.weight.grad`` (printed by the document).

In Flax the mode is an argument: ``model.apply(variables, x, train=False)`` (BatchNorm's
``use_running_average=True``) with ``batch_stats`` not mutable, so nothing can change; the
gradient is taken exactly as in training.

Run: ``python comparisons/05_eval_gradients.py``
"""

import sys

import jax.numpy as jnp

from _show import Comparison
from torchsem import autograd
from torchsem.compare import document_start
from torchsem.losses import cross_entropy
from torchsem.models import Net

compare = Comparison("document/eval-example-one")

# seed_torch(1029); model = net(); x = torch.randn((3, 3, 8))
model = Net()
variables, (x,) = document_start()  # from torchsem.random.Generator(1029), PyTorch's generator replayed
target = jnp.array([1, 1, 1])
params, batch_stats = variables["params"], variables["batch_stats"]

# model.eval(); print(model.fc1.weight.requires_grad)
requires_grad = autograd.requires_grad_mask(params)
compare.show(
    "print(model.fc1.weight.requires_grad)  # after model.eval()",
    "fc1.weight.requires_grad after model.eval()",
    requires_grad["fc1"]["weight"],
)


def forward(params):  # eval mode: train=False, batch_stats read-only
    output, state = model.apply(
        {"params": params, "batch_stats": batch_stats}, x, train=False, mutable=["intermediates"]
    )
    return {"output": output, **state["intermediates"]}


features = autograd.inspect_graph(forward, params)["reshape_out"]
compare.show(
    "print(x.requires_grad, x.is_leaf, x.grad_fn)  # inside forward, after the reshape",
    "features = x.reshape(N, -1)",
    f"{features.requires_grad}, {features.is_leaf}, {'<' + features.grad_fn + '>' if features.grad_fn else 'None'}",
)


# output = model(x); loss = loss_fn(output, target); loss.backward()
def loss_fn(params):
    return cross_entropy(forward(params)["output"], target)


grads = autograd.grad(loss_fn, requires_grad=requires_grad)(params)
compare.show("print(model.fc1.weight.grad)  # after backward() in eval mode", "fc1.weight.grad", grads["fc1"]["weight"])
compare.show(
    "print(model.bn1.running_mean)  # eval mode updated nothing", "bn1.running_mean", batch_stats["bn1"]["running_mean"]
)

sys.exit(compare.done())
