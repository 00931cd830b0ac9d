"""Section 3: leaf and non-leaf tensors, ``requires_grad``, ``grad_fn`` and ``retain_grad()``.

PyTorch records, for every tensor, whether it requires grad, whether it is a leaf, and the
backward node that made it: ``a = torch.tensor([1.0]); b = a + 1`` is a leaf (``a`` needs no
grad, so ``b`` is outside the graph); ``c = w * 2`` with ``w.requires_grad`` is a non-leaf
with ``grad_fn=<MulBackward0>``; in the document's network the features after the reshape
print ``grad_fn=<ViewBackward0>``. Non-leaf gradients are freed unless ``retain_grad()`` is
called.

JAX arrays carry none of this; ``torchsem.autograd.inspect_graph`` derives it from the traced
program, and ``retain_module_grads`` + ``value_grad_and_retained`` give the gradients of
intermediates (Flax's ``perturb``). Each line prints ``requires_grad, is_leaf, grad_fn``.

Run: ``python comparisons/03_leaf_and_grad_fn.py``
"""

import sys

import jax.numpy as jnp

from _show import Comparison
from torchsem import autograd
from torchsem.compare import document_start
from torchsem.losses import cross_entropy
from torchsem.models import Net

compare = Comparison("document/leaf-and-grad-fn")


def facts(info) -> str:
    return f"{info.requires_grad}, {info.is_leaf}, {'<' + info.grad_fn + '>' if info.grad_fn else 'None'}"


# a = torch.tensor([1.0]); b = a + 1;   w = torch.tensor([1.0], requires_grad=True); c = w * 2
small = autograd.inspect_graph(
    lambda a, w: {"b": a + 1, "c": w * 2}, jnp.array([1.0]), jnp.array([1.0]), requires_grad=(False, True)
)
for name, key in (
    ("a = torch.tensor([1.0])", "a"),
    ("b = a + 1", "b"),
    ("w = torch.tensor([1.0], requires_grad=True)", "w"),
    ("c = w * 2", "c"),
):
    compare.show(f"print({key}.requires_grad, {key}.is_leaf, {key}.grad_fn)", name, facts(small[key]))

# The document's network: seed_torch(1029); model = net(); x = torch.randn((3, 3, 8))
model = Net()
variables, (x,) = document_start()  # from torchsem.random.Generator(1029), PyTorch's generator replayed
target = jnp.array([1, 1, 1])


def forward(params, x):  # every intermediate Net sows, plus the output
    output, state = model.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        mutable=["batch_stats", "intermediates"],
    )
    return {"output": output, **state["intermediates"]}


graph = autograd.inspect_graph(forward, variables["params"], x, requires_grad=(True, False))
for name, key in (
    ("x", "x"),
    ("fc1.weight", "params.fc1.weight"),
    ("pool1 output", "pool1_out"),
    ("bn1 output", "bn1_out"),
    ("features = x.reshape(N, -1)", "reshape_out"),
    ("fc1 output", "fc1_out"),
):
    compare.show(f"print(t.requires_grad, t.is_leaf, t.grad_fn)  # t: {name}", name, facts(graph[key]))
compare.show(
    "print(x)  # inside forward, after the reshape",
    "features, printed in forward",
    forward(variables["params"], x)["reshape_out"][0],
)

# bn1's output and the features (fc1's input): h.retain_grad(); loss.backward(); print(h.grad)
retain = autograd.retain_module_grads(outputs=["bn1"], inputs=["fc1"])
with retain:
    perturbed = autograd.init_perturbations(model, variables, x, train=True)


@retain
def loss_fn(differentiated):
    output, _ = model.apply(
        {**differentiated, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=["batch_stats"]
    )
    return cross_entropy(output, target)


_, _, retained = autograd.value_grad_and_retained(loss_fn)(
    {"params": variables["params"], "perturbations": perturbed["perturbations"]}
)
compare.show(
    "print(bn1_output.grad)  # after retain_grad() and backward()",
    "bn1 output .grad with retain_grad()",
    retained["bn1.output"],
)
compare.show(
    "print(features.grad)  # after retain_grad() and backward()",
    "features.grad with retain_grad()",
    retained["fc1.input"],
)

sys.exit(compare.done())
