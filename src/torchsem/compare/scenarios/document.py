"""The source document's behaviours (family ``document``): what ``torchsem compare`` shows.

Each entry runs the document's own PyTorch code (``shared/seed``: the network ``net`` =
AvgPool1d(2) -> BatchNorm1d(3) -> reshape -> Linear(12, 4), seeded with 1029) and the same
steps in JAX with torchsem, from the same starting point: the JAX side draws its initial
weights and inputs from :class:`torchsem.random.Generator` (PyTorch's CPU generator replayed
bit for bit), never from PyTorch's tensors, so the whole chain runs without PyTorch. The
initial weights and inputs are outputs too, compared bit for bit, so a generator mismatch
shows as its own line instead of as a mysterious gradient difference.

Where plain JAX/Flax/Optax behaves differently by design (zeros where PyTorch has None, no
error where PyTorch raises, Flax's biased running variance, ``optax.masked`` moving a frozen
parameter), the entry carries a plain JAX program that the report shows next to PyTorch's
answer; it is never judged.

Only the document's random draws come from the generator; inputs the document does not
specify (the BatchNorm table, Dropout) are small numpy arrays shared by both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._document_net import (
    DOCUMENT_SEED,
    DOCUMENT_X_SHAPE,
    RUNNING_MEAN_TRACE,
    TRACE_X_SHAPE,
    document_start,
)
from .._scenario import Scenario, Tolerance, register
from .._torch_net import torch_document_start

BIT_EXACT = Tolerance(0.0, 0.0, reason="torchsem.random replays PyTorch's generator bit for bit")

_INITIAL = ("init fc1.weight", "init fc1.bias", "x")
_TRACE_INPUTS = ("x1", "x2", "x3", "x4")


def _document_inputs() -> dict[str, Any]:
    # The seed and the document's targets, [1, 1, 1]; every tensor is drawn from the seed on each side.
    return {"seed": np.int64(DOCUMENT_SEED), "target": np.array([1, 1, 1], np.int64)}


# ---------------------------------------------------------------------------------- PyTorch side


def _torch_start(inputs: Mapping[str, Any], detach: bool = False, seen: dict | None = None):
    """``seed_torch(1029); model = net(); x = torch.randn((3, 3, 8))``."""
    model, (x,) = torch_document_start(seed=int(inputs["seed"]), detach=detach, seen=seen)
    return model, x


def _torch_initial(model, x) -> dict[str, Any]:
    return {
        "init fc1.weight": model.fc1.weight.detach().clone(),
        "init fc1.bias": model.fc1.bias.detach().clone(),
        "x": x.clone(),
    }


def _torch_loss(model, x, inputs):
    import torch
    import torch.nn as nn

    return nn.CrossEntropyLoss()(model(x), torch.tensor(inputs["target"]))


def _grad_fn(tensor) -> str | None:
    return None if tensor.grad_fn is None else type(tensor.grad_fn).__name__


# -------------------------------------------------------------------------------------- JAX side


def _jax_start(inputs: Mapping[str, Any], detach: bool = False):
    """The same start from ``torchsem.random.Generator(1029)``: ``Net``, its variables and ``x``."""
    from torchsem.models import Net

    variables, (x,) = document_start((DOCUMENT_X_SHAPE,), seed=int(inputs["seed"]))
    return Net(detach=detach), variables, x


def _jax_initial(variables, x) -> dict[str, Any]:
    fc1 = variables["params"]["fc1"]
    return {"init fc1.weight": fc1["weight"], "init fc1.bias": fc1["bias"], "x": x}


def _grads_by_name(grads) -> dict[str, Any]:
    return {f"{module}.{name}.grad": grads[module][name] for module in ("bn1", "fc1") for name in ("weight", "bias")}


def _graph_text(requires_grad: bool, is_leaf: bool, grad_fn: str | None) -> str:
    """One tensor's autograd facts as the document prints them: ``requires_grad, is_leaf, grad_fn``."""
    return f"{requires_grad}, {is_leaf}, {'<' + grad_fn + '>' if grad_fn else 'None'}"


def _torch_graph_text(tensor) -> str:
    return _graph_text(tensor.requires_grad, tensor.is_leaf, _grad_fn(tensor))


def _jax_graph_text(info) -> str:
    return _graph_text(info.requires_grad, info.is_leaf, info.grad_fn)


def _jax_forward_graph(net, variables, x, *, train: bool, no_grad: bool = False):
    """The inspector's report on the document's forward pass: parameters, ``x`` and every sown intermediate."""
    from torchsem import autograd

    def forward(params, x):
        state = {k: v for k, v in variables.items() if k != "params"}
        output, new_state = net.apply(
            {"params": params, **state},
            x,
            train=train,
            mutable=["batch_stats", "intermediates"] if train else ["intermediates"],
        )
        return {"output": output, **new_state["intermediates"]}

    return autograd.inspect_graph(
        autograd.no_grad(forward) if no_grad else forward, variables["params"], x, requires_grad=(True, False)
    )


# ============================================================ 1. requires_grad (example one)


def _torch_example_one(inputs):
    import torch.optim as optim

    model, x = _torch_start(inputs)
    initial = _torch_initial(model, x)
    optimizer = optim.SGD(model.parameters(), lr=1e-2)
    model.fc1.weight.requires_grad = False
    loss = _torch_loss(model, x, inputs)
    loss.backward()
    grads = {f"{n}.grad": p.grad for n, p in model.named_parameters()}
    optimizer.step()
    return {
        **initial,
        "loss": loss,
        "fc1.weight.grad": grads["fc1.weight.grad"],
        "fc1.bias.grad": grads["fc1.bias.grad"],
        "bn1.weight.grad": grads["bn1.weight.grad"],
        "bn1.bias.grad": grads["bn1.bias.grad"],
        "fc1.weight after optimizer.step()": model.fc1.weight,
        "fc1.bias after optimizer.step()": model.fc1.bias,
    }


def _jax_example_one(inputs, jit):
    import optax

    from torchsem import autograd, optim
    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs)
    requires_grad = autograd.requires_grad_mask(variables["params"], frozen="fc1.weight")
    tx = optim.freeze(optim.sgd(lr=1e-2), frozen="fc1.weight")

    def step(params, batch_stats, x, target):
        def loss_fn(p):
            logits, _ = net.apply({"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
            return cross_entropy(logits, target)

        loss, grads = autograd.value_and_grad(loss_fn, requires_grad=requires_grad)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return loss, grads, optax.apply_updates(params, updates)

    loss, grads, stepped = jitted(step, jit)(variables["params"], variables["batch_stats"], x, inputs["target"])
    return {
        **_jax_initial(variables, x),
        "loss": loss,
        **_grads_by_name(grads),
        "fc1.weight after optimizer.step()": stepped["fc1"]["weight"],
        "fc1.bias after optimizer.step()": stepped["fc1"]["bias"],
    }


def _plain_example_one(inputs):
    import jax
    import optax

    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs)
    params, batch_stats = variables["params"], variables["batch_stats"]

    def loss_fn(p):
        logits, _ = net.apply({"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
        return cross_entropy(logits, inputs["target"])

    trainable = jax.tree.map(lambda _: True, params)
    trainable["fc1"]["weight"] = False
    tx = optax.masked(optax.sgd(1e-2), trainable)

    @jax.jit
    def step(params):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return loss, grads, optax.apply_updates(params, updates)

    loss, grads, stepped = step(params)
    return {
        "loss": loss,
        **_grads_by_name(grads),
        "fc1.weight after optimizer.step()": stepped["fc1"]["weight"],
        "fc1.bias after optimizer.step()": stepped["fc1"]["bias"],
    }


register(
    Scenario(
        name="document/requires-grad-example-one",
        section="1. requires_grad, example one: a frozen parameter gets no gradient and is not stepped",
        mapping="model.fc1.weight.requires_grad = False -> requires_grad mask (torchsem.autograd) "
        "+ frozen optimizer partition (torchsem.optim.freeze)",
        make_inputs=_document_inputs,
        torch_program=_torch_example_one,
        jax_program=_jax_example_one,
        plain_jax_program=_plain_example_one,
        tolerances={name: BIT_EXACT for name in _INITIAL},
        pitfall="jax.grad differentiates every leaf it is given: the frozen fc1.weight gets a gradient where PyTorch "
        "has None; optax.masked passes masked-out updates through untouched, so the raw gradient is added "
        "to the 'frozen' weight.",
        in_report=True,
    )
)


# ============================================================== 2. detach (example two)


def _torch_example_two(inputs):
    model, x = _torch_start(inputs, detach=True)
    initial = _torch_initial(model, x)
    loss = _torch_loss(model, x, inputs)
    loss.backward()
    return {**initial, "loss": loss, **{f"{n}.grad": p.grad for n, p in model.named_parameters()}}


def _jax_example_two(inputs, jit):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs, detach=True)

    def backward(params, batch_stats, x, target):
        def loss_fn(p):
            logits, _ = net.apply({"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
            return cross_entropy(logits, target)

        return autograd.value_and_grad(loss_fn)(params)

    loss, grads = jitted(backward, jit)(variables["params"], variables["batch_stats"], x, inputs["target"])
    return {**_jax_initial(variables, x), "loss": loss, **_grads_by_name(grads)}


def _plain_example_two(inputs):
    import jax

    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs, detach=True)

    def loss_fn(p):
        logits, _ = net.apply(
            {"params": p, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=["batch_stats"]
        )
        return cross_entropy(logits, inputs["target"])

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(variables["params"])
    return {"loss": loss, **_grads_by_name(grads)}


register(
    Scenario(
        name="document/detach-example-two",
        section="2. detach, example two: everything upstream of x.detach() gets no gradient",
        mapping="x = x.detach() -> x = jax.lax.stop_gradient(x) (torchsem.autograd.detach); grads via "
        "torchsem.autograd.grad",
        make_inputs=_document_inputs,
        torch_program=_torch_example_two,
        jax_program=_jax_example_two,
        plain_jax_program=_plain_example_two,
        tolerances={name: BIT_EXACT for name in _INITIAL},
        pitfall="jax.grad returns zeros for bn1.weight and bn1.bias, cut off by stop_gradient, where PyTorch leaves "
        ".grad None: a port cannot tell 'no path' from 'zero gradient'.",
        in_report=True,
    )
)


# ======================================================= 3. leaf and non-leaf tensors, grad_fn

_GRAPH = ""  # each value reads "requires_grad, is_leaf, grad_fn", as the section says
_NETWORK_VALUES = (
    ("x", "x"),
    ("fc1.weight", "params.fc1.weight"),
    ("pool1 output", "pool1_out"),
    ("bn1 output", "bn1_out"),
    ("features = x.reshape(N, -1)", "reshape_out"),
    ("fc1 output", "fc1_out"),
)


def _torch_leaf(inputs):
    import torch

    a = torch.tensor([1.0])
    b = a + 1
    w = torch.tensor([1.0], requires_grad=True)
    c = w * 2
    seen: dict = {}
    model, x = _torch_start(inputs, seen=seen)
    loss = _torch_loss(model, x, inputs)
    seen["bn1_out"].retain_grad()
    seen["reshape_out"].retain_grad()
    loss.backward()
    tensors = {
        "x": x,
        "fc1.weight": model.fc1.weight,
        "pool1 output": seen["pool1_out"],
        "bn1 output": seen["bn1_out"],
        "features = x.reshape(N, -1)": seen["reshape_out"],
        "fc1 output": seen["fc1_out"],
    }
    return {
        "a = torch.tensor([1.0])" + _GRAPH: _torch_graph_text(a),
        "b = a + 1" + _GRAPH: _torch_graph_text(b),
        "w = torch.tensor([1.0], requires_grad=True)" + _GRAPH: _torch_graph_text(w),
        "c = w * 2" + _GRAPH: _torch_graph_text(c),
        **{name + _GRAPH: _torch_graph_text(t) for name, t in tensors.items()},
        "features, printed in forward": seen["reshape_out"],
        "bn1 output .grad with retain_grad()": seen["bn1_out"].grad,
        "features.grad with retain_grad()": seen["reshape_out"].grad,
    }


def _jax_leaf(inputs, jit):
    import jax.numpy as jnp

    from torchsem import autograd
    from torchsem.losses import cross_entropy

    small = autograd.inspect_graph(
        lambda a, w: {"b": a + 1, "c": w * 2}, jnp.array([1.0]), jnp.array([1.0]), requires_grad=(False, True)
    )
    net, variables, x = _jax_start(inputs)
    graph = _jax_forward_graph(net, variables, x, train=True)
    batch_stats = variables["batch_stats"]

    # h.retain_grad() on bn1's output and on the features (fc1's input, made by a reshape, not a module).
    retain = autograd.retain_module_grads(outputs=["bn1"], inputs=["fc1"])

    @retain
    def loss_fn(differentiated, x, target):
        logits, _ = net.apply({**differentiated, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
        return cross_entropy(logits, target)

    with retain:
        perturbed = autograd.init_perturbations(net, variables, x, train=True)

    def backward(differentiated, x, target):
        _, _, retained = autograd.value_grad_and_retained(loss_fn)(differentiated, x, target)
        features = net.apply(variables, x, train=True, mutable=["batch_stats", "intermediates"])[1]
        return retained, features["intermediates"]["reshape_out"][0]

    retained, features = jitted(backward, jit)(
        {"params": variables["params"], "perturbations": perturbed["perturbations"]}, x, inputs["target"]
    )
    return {
        "a = torch.tensor([1.0])" + _GRAPH: _jax_graph_text(small["a"]),
        "b = a + 1" + _GRAPH: _jax_graph_text(small["b"]),
        "w = torch.tensor([1.0], requires_grad=True)" + _GRAPH: _jax_graph_text(small["w"]),
        "c = w * 2" + _GRAPH: _jax_graph_text(small["c"]),
        **{name + _GRAPH: _jax_graph_text(graph[key]) for name, key in _NETWORK_VALUES},
        "features, printed in forward": features,
        "bn1 output .grad with retain_grad()": retained["bn1.output"],
        "features.grad with retain_grad()": retained["fc1.input"],
    }


register(
    Scenario(
        name="document/leaf-and-grad-fn",
        section="3. leaf and non-leaf tensors: (requires_grad, is_leaf, grad_fn) of each tensor; retain_grad",
        mapping="t.is_leaf / t.requires_grad / t.grad_fn -> torchsem.autograd.inspect_graph(fun, ...); "
        "h.retain_grad() -> retain_module_grads + value_grad_and_retained",
        make_inputs=_document_inputs,
        torch_program=_torch_leaf,
        jax_program=_jax_leaf,
        notes="The loss itself is not listed: torchsem's cross_entropy is reported as its last JAX operation "
        "(DivBackward0), where PyTorch fuses it into NllLossBackward0.",
        in_report=True,
    )
)


# ================================================================ 4. no_grad and its error

_BACKWARD = "loss.backward()"


def _backward(attempt: Callable[[], Any]) -> tuple[dict[str, str], Any]:
    """Run ``loss.backward()`` or its JAX counterpart: its error type and message, and what it returned.

    The outputs are ``"loss.backward() error type"`` and ``"... error message"`` (``NO_ERROR`` when it
    did not raise); what it returned is None when it raised.
    """
    returned: list = []
    outcome = error_outputs(lambda: returned.append(attempt()))
    return {f"{_BACKWARD} {name}": value for name, value in outcome.items()}, (returned[0] if returned else None)


def _torch_no_grad(inputs):
    import torch

    seen: dict = {}
    model, x = _torch_start(inputs, seen=seen)
    initial = _torch_initial(model, x)
    with torch.no_grad():
        weight_requires_grad = model.fc1.weight.requires_grad
        output = model(x)
        loss = torch.nn.CrossEntropyLoss()(output, torch.tensor(inputs["target"]))
        backward, _ = _backward(loss.backward)
    return {
        **initial,
        "fc1.weight" + _GRAPH: _torch_graph_text(model.fc1.weight),
        "fc1.weight.requires_grad inside no_grad": torch.tensor(weight_requires_grad),
        "features = x.reshape(N, -1)" + _GRAPH: _torch_graph_text(seen["reshape_out"]),
        "output" + _GRAPH: _torch_graph_text(output),
        "output": output,
        **backward,
        "fc1.weight.grad": model.fc1.weight.grad,
        "bn1.running_mean after the forward": model.bn1.running_mean,
    }


def _jax_no_grad(inputs, jit):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs)
    params, batch_stats = variables["params"], variables["batch_stats"]
    requires_grad = autograd.requires_grad_mask(params)

    def inside(p, x):  # the body of the `with torch.no_grad():` block
        return net.apply({"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])

    forward = autograd.no_grad(inside)

    def loss_through(apply: Callable):
        def loss_fn(p, x, target):
            logits, _ = apply(p, x)
            return cross_entropy(logits, target)

        return jitted(autograd.grad(loss_fn, requires_grad=requires_grad), jit)

    # fc1.weight.requires_grad inside the block, observed: the block's own computation still
    # differentiates fc1.weight (a gradient, not None); only what leaves the block carries none.
    inside_grads = loss_through(inside)(params, x, inputs["target"])
    # loss.backward() on what left the block: PyTorch's RuntimeError, and no gradient.
    backward, grads = _backward(lambda: loss_through(forward)(params, x, inputs["target"]))
    output, new_state = jitted(forward, jit)(params, x)
    graph = _jax_forward_graph(net, variables, x, train=True, no_grad=True)
    return {
        **_jax_initial(variables, x),
        "fc1.weight" + _GRAPH: _jax_graph_text(graph["params.fc1.weight"]),
        "fc1.weight.requires_grad inside no_grad": np.bool_(inside_grads["fc1"]["weight"] is not None),
        "features = x.reshape(N, -1)" + _GRAPH: _jax_graph_text(graph["reshape_out"]),
        "output" + _GRAPH: _jax_graph_text(graph["output"]),
        "output": output,
        **backward,
        "fc1.weight.grad": None if grads is None else grads["fc1"]["weight"],
        "bn1.running_mean after the forward": new_state["batch_stats"]["bn1"]["running_mean"],
    }


def _plain_no_grad(inputs):
    import jax

    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs)

    def loss_fn(p):
        logits, _ = net.apply(
            {"params": p, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=["batch_stats"]
        )
        return cross_entropy(jax.lax.stop_gradient(logits), inputs["target"])

    backward, grads = _backward(lambda: jax.jit(jax.grad(loss_fn))(variables["params"]))
    return {**backward, "fc1.weight.grad": None if grads is None else grads["fc1"]["weight"]}


register(
    Scenario(
        name="document/no-grad-error",
        section="4. with torch.no_grad(): results need no grad, loss.backward() raises, BatchNorm still updates",
        mapping="with torch.no_grad(): out = model(x) -> out = torchsem.autograd.no_grad(model.apply)(...); "
        "torchsem.autograd.grad of it raises PyTorch's RuntimeError",
        make_inputs=_document_inputs,
        torch_program=_torch_no_grad,
        jax_program=_jax_no_grad,
        plain_jax_program=_plain_no_grad,
        tolerances={name: BIT_EXACT for name in _INITIAL},
        pitfall="jax.grad through jax.lax.stop_gradient raises nothing and returns zeros, where PyTorch refuses "
        "loss.backward() and leaves .grad None.",
        in_report=True,
    )
)


# ============================================ 5. model.eval(), example one: gradients unchanged


def _torch_eval_one(inputs):
    seen: dict = {}
    model, x = _torch_start(inputs, seen=seen)
    initial = _torch_initial(model, x)
    model.eval()
    weight_requires_grad = model.fc1.weight.requires_grad
    loss = _torch_loss(model, x, inputs)
    loss.backward()
    import torch

    return {
        **initial,
        "fc1.weight.requires_grad after model.eval()": torch.tensor(weight_requires_grad),
        "features = x.reshape(N, -1)" + _GRAPH: _torch_graph_text(seen["reshape_out"]),
        "loss": loss,
        **{f"{n}.grad": p.grad for n, p in model.named_parameters()},
        "bn1.running_mean": model.bn1.running_mean,
        "bn1.num_batches_tracked": model.bn1.num_batches_tracked,
    }


def _jax_eval_one(inputs, jit):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    net, variables, x = _jax_start(inputs)
    requires_grad = autograd.requires_grad_mask(variables["params"])
    graph = _jax_forward_graph(net, variables, x, train=False)

    def backward(params, batch_stats, x, target):
        def loss_fn(p):
            # model.eval(): running statistics, and batch_stats not mutable (nothing may change).
            return cross_entropy(net.apply({"params": p, "batch_stats": batch_stats}, x, train=False), target)

        return autograd.value_and_grad(loss_fn, requires_grad=requires_grad)(params)

    loss, grads = jitted(backward, jit)(variables["params"], variables["batch_stats"], x, inputs["target"])
    stats = variables["batch_stats"]["bn1"]
    return {
        **_jax_initial(variables, x),
        # observed: the eval-mode backward still gives fc1.weight a gradient (None if it did not require grad)
        "fc1.weight.requires_grad after model.eval()": np.bool_(grads["fc1"]["weight"] is not None),
        "features = x.reshape(N, -1)" + _GRAPH: _jax_graph_text(graph["reshape_out"]),
        "loss": loss,
        **_grads_by_name(grads),
        "bn1.running_mean": stats["running_mean"],
        "bn1.num_batches_tracked": stats["num_batches_tracked"],
    }


register(
    Scenario(
        name="document/eval-example-one",
        section="5. model.eval(), example one: eval mode changes no gradient behaviour",
        mapping="model.eval() -> apply(..., train=False) (use_running_average=True) with no mutable batch_stats; "
        "gradients as in train mode",
        make_inputs=_document_inputs,
        torch_program=_torch_eval_one,
        jax_program=_jax_eval_one,
        tolerances={name: BIT_EXACT for name in _INITIAL},
        in_report=True,
    )
)


# ============================================ 5. model.eval(), example two: the running-mean trace


def _trace_names() -> list[str]:
    """The output name of each printed running mean, from the step's display label."""
    return [
        f"running_mean {i + 1}: after {step.label}" if i else "running_mean 1: init"
        for i, step in enumerate(RUNNING_MEAN_TRACE)
    ]


def _var_names() -> dict[int, str]:
    """The running variance is also compared after every training call."""
    return {
        i: f"running_var after {step.label}"
        for i, step in enumerate(RUNNING_MEAN_TRACE)
        if step.mode == "train" and step.input is not None
    }


def _trace_draws() -> tuple[tuple[int, ...], ...]:
    """``net()``'s weights are drawn first, then ``x1..x4``, each ``randn((1, 3, 8))``."""
    return (TRACE_X_SHAPE,) * len(_TRACE_INPUTS)


def _torch_eval_two(inputs):
    model, xs = torch_document_start(_trace_draws(), seed=int(inputs["seed"]))
    outputs: dict[str, Any] = {name: x for name, x in zip(_TRACE_INPUTS, xs)}
    means, variances = _trace_names(), _var_names()
    for i, step in enumerate(RUNNING_MEAN_TRACE):
        training = step.mode == "train"
        if model.training != training:
            model.train(training)  # the document's model.eval() / model.train()
        if step.input is not None:
            model(xs[step.input])
        outputs[means[i]] = model.bn1.running_mean.clone()
        if i in variances:
            outputs[variances[i]] = model.bn1.running_var.clone()
    outputs["num_batches_tracked"] = model.bn1.num_batches_tracked
    return outputs


def _run_trace(
    apply_train: Callable, apply_eval: Callable, batch_stats, xs, read: Callable[[Any], tuple[Any, Any, Any]]
) -> dict[str, Any]:
    """The document's sequence of calls; ``read(batch_stats)`` gives (running mean, running var, count)."""
    outputs: dict[str, Any] = {}
    means, variances = _trace_names(), _var_names()
    for i, step in enumerate(RUNNING_MEAN_TRACE):
        if step.input is not None and step.mode == "train":
            batch_stats = apply_train(batch_stats, xs[step.input])
        elif step.input is not None:  # an eval call: it returns no statistics to carry on
            apply_eval(batch_stats, xs[step.input])
        mean, var, _ = read(batch_stats)
        outputs[means[i]] = mean
        if i in variances:
            outputs[variances[i]] = var
    outputs["num_batches_tracked"] = read(batch_stats)[2]
    return outputs


def _read_torchsem_stats(batch_stats) -> tuple[Any, Any, Any]:
    bn1 = batch_stats["bn1"]
    return bn1["running_mean"], bn1["running_var"], bn1["num_batches_tracked"]


def _jax_eval_two(inputs, jit):
    from torchsem.models import Net

    net = Net()
    variables, xs = document_start(_trace_draws(), seed=int(inputs["seed"]))
    params = variables["params"]

    def train(batch_stats, x):  # model.train(); model(x): batch statistics, running ones updated
        _, state = net.apply({"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
        return state["batch_stats"]

    def evaluate(batch_stats, x):  # model.eval(); model(x): running statistics, nothing mutable
        return net.apply({"params": params, "batch_stats": batch_stats}, x, train=False)

    trace = _run_trace(jitted(train, jit), jitted(evaluate, jit), variables["batch_stats"], xs, _read_torchsem_stats)
    return {**dict(zip(_TRACE_INPUTS, xs)), **trace}


def _plain_eval_two(inputs):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from torchsem.nn import AvgPool1d, Linear

    class FlaxNet(nn.Module):
        """The document's net with flax.linen.BatchNorm (momentum 0.1 in PyTorch's terms is Flax's 0.9)."""

        @nn.compact
        def __call__(self, x, train: bool = True):
            x = AvgPool1d(2)(x)
            x = nn.BatchNorm(use_running_average=not train, axis=1, momentum=0.9, epsilon=1e-5, name="bn1")(x)
            return Linear(12, 4)(x.reshape(x.shape[0], -1))

    _, xs = document_start(_trace_draws(), seed=int(inputs["seed"]))  # x1..x4, drawn after net()'s weights
    net = FlaxNet()
    variables = net.init(jax.random.key(0), jnp.zeros((1, 3, 8), jnp.float32), train=False)

    @jax.jit
    def train(batch_stats, x):
        _, state = net.apply(
            {"params": variables["params"], "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
        )
        return state["batch_stats"]

    @jax.jit
    def evaluate(batch_stats, x):
        return net.apply({"params": variables["params"], "batch_stats": batch_stats}, x, train=False)

    def read(batch_stats):  # Flax names them mean and var, and counts nothing
        return batch_stats["bn1"]["mean"], batch_stats["bn1"]["var"], None

    return {**dict(zip(_TRACE_INPUTS, xs)), **_run_trace(train, evaluate, variables["batch_stats"], xs, read)}


register(
    Scenario(
        name="document/eval-example-two",
        section="5. model.eval(), example two: the running-mean trace (train x1, x2; eval x3, x4; train x1, x2)",
        mapping="model.train(); model(x) -> apply(..., train=True, mutable=['batch_stats']); "
        "model.eval() -> train=False (use_running_average=True), batch_stats not mutable",
        make_inputs=_document_inputs,
        torch_program=_torch_eval_two,
        jax_program=_jax_eval_two,
        plain_jax_program=_plain_eval_two,
        tolerances={name: BIT_EXACT for name in _TRACE_INPUTS},
        pitfall="flax.linen.BatchNorm(momentum=0.9) tracks the same running mean but updates the running variance "
        "with the biased batch variance (divide by n, not n - 1) and keeps no num_batches_tracked.",
        in_report=True,
    )
)


# ===================================== 6. BatchNorm: the four training x track_running_stats rows


def _batchnorm_inputs(batches: int = 1) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(6)
        scale, offset = np.array([1.0, 2.0, 0.5])[:, None], np.array([0.5, -1.0, 2.0])[:, None]
        inputs = {
            f"x{b + 1}": (rng.standard_normal((4, 3, 5)) * scale + offset).astype(np.float32) for b in range(batches)
        }
        inputs.update(
            {
                "weight": np.array([1.5, 0.5, -1.0], np.float32),
                "bias": np.array([0.1, 0.2, -0.3], np.float32),
                "running_mean": np.array([0.1, -0.2, 0.3], np.float32),
                "running_var": np.array([0.5, 2.0, 1.5], np.float32),
                "cotangent": rng.standard_normal((4, 3, 5)).astype(np.float32),
            }
        )
        return inputs

    return make


def _torch_batchnorm(training: bool, track: bool):
    def program(inputs):
        import torch

        bn = torch.nn.BatchNorm1d(3, track_running_stats=track)
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(inputs["weight"]))
            bn.bias.copy_(torch.from_numpy(inputs["bias"]))
            if track:
                bn.running_mean.copy_(torch.from_numpy(inputs["running_mean"]))
                bn.running_var.copy_(torch.from_numpy(inputs["running_var"]))
        bn.train(training)
        x = torch.from_numpy(inputs["x1"]).requires_grad_()
        y = bn(x)
        (y * torch.from_numpy(inputs["cotangent"])).sum().backward()
        return {
            "output": y,
            "running_mean": bn.running_mean,
            "running_var": bn.running_var,
            "num_batches_tracked": bn.num_batches_tracked,
            "input.grad": x.grad,
            "weight.grad": bn.weight.grad,
            "bias.grad": bn.bias.grad,
        }

    return program


def _jax_batchnorm(training: bool, track: bool):
    def program(inputs, jit):
        import jax.numpy as jnp

        from torchsem import autograd
        from torchsem.nn import BatchNorm1d

        bn = BatchNorm1d(3, track_running_stats=track)
        variables: dict[str, Any] = {
            "params": {"weight": jnp.asarray(inputs["weight"]), "bias": jnp.asarray(inputs["bias"])}
        }
        if track:
            variables["batch_stats"] = {
                "running_mean": jnp.asarray(inputs["running_mean"]),
                "running_var": jnp.asarray(inputs["running_var"]),
                "num_batches_tracked": jnp.zeros((), jnp.int32),
            }

        def run(variables, x, cotangent):
            def loss(params, x):
                state = {k: v for k, v in variables.items() if k != "params"}
                # bn.train() / bn.eval(); only training with tracked statistics updates anything.
                y, new_state = bn.apply(
                    {"params": params, **state},
                    x,
                    use_running_average=not training,
                    mutable=["batch_stats"] if training and track else [],
                )
                return jnp.sum(y * cotangent), (y, new_state)

            (_, (y, new_state)), grads = autograd.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
                variables["params"], x
            )
            return y, new_state.get("batch_stats", variables.get("batch_stats")), grads

        y, stats, (param_grads, input_grad) = jitted(run, jit)(
            variables, jnp.asarray(inputs["x1"]), jnp.asarray(inputs["cotangent"])
        )
        stats = stats or {}
        return {
            "output": y,
            "running_mean": stats.get("running_mean"),
            "running_var": stats.get("running_var"),
            "num_batches_tracked": stats.get("num_batches_tracked"),
            "input.grad": input_grad,
            "weight.grad": param_grads["weight"],
            "bias.grad": param_grads["bias"],
        }

    return program


def _plain_batchnorm(training: bool):
    """The same call with flax.linen.BatchNorm, which has no track_running_stats: it always keeps statistics."""

    def program(inputs):
        import flax.linen as nn
        import jax
        import jax.numpy as jnp

        bn = nn.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5)
        variables = {
            "params": {"scale": jnp.asarray(inputs["weight"]), "bias": jnp.asarray(inputs["bias"])},
            "batch_stats": {"mean": jnp.asarray(inputs["running_mean"]), "var": jnp.asarray(inputs["running_var"])},
        }
        if training:
            y, state = jax.jit(lambda v, x: bn.apply(v, x, use_running_average=False, mutable=["batch_stats"]))(
                variables, inputs["x1"]
            )
            stats = state["batch_stats"]
        else:
            y = jax.jit(lambda v, x: bn.apply(v, x, use_running_average=True))(variables, inputs["x1"])
            stats = variables["batch_stats"]
        return {"output": y, "running_mean": stats["mean"], "running_var": stats["var"], "num_batches_tracked": None}

    return program


_BATCHNORM_ROWS = (
    # (training, track_running_stats, mapping, plain program or None, pitfall)
    (
        True,
        True,
        "bn.train(); bn(x) -> bn.apply(v, x, use_running_average=False, mutable=['batch_stats']): batch mean and "
        "biased var; running stats updated with the unbiased var",
        _plain_batchnorm(True),
        "flax.linen.BatchNorm normalises the same way but updates running_var with the biased batch variance "
        "and keeps no num_batches_tracked.",
    ),
    (
        True,
        False,
        "BatchNorm1d(3, track_running_stats=False) -> torchsem.nn.BatchNorm1d(3, track_running_stats=False): "
        "no batch_stats collection at all (running_mean is None)",
        _plain_batchnorm(True),
        "flax.linen.BatchNorm has no track_running_stats: it creates and updates running statistics that "
        "PyTorch does not have.",
    ),
    (
        False,
        True,
        "bn.eval(); bn(x) -> bn.apply(v, x, use_running_average=True) with batch_stats not mutable: running "
        "stats used, nothing updated",
        None,
        "",
    ),
    (
        False,
        False,
        "bn.eval() with track_running_stats=False -> use_running_average=True still normalises with the batch "
        "statistics (there are no running ones)",
        _plain_batchnorm(False),
        "flax.linen.BatchNorm(use_running_average=True) always reads running statistics; PyTorch without "
        "tracked statistics normalises with the batch's in eval mode too.",
    ),
)

for _training, _track, _mapping, _plain, _pitfall in _BATCHNORM_ROWS:
    register(
        Scenario(
            name=f"document/batchnorm-training={str(_training).lower()}-track_running_stats={str(_track).lower()}",
            section=f"6. BatchNorm1d, training={_training}, track_running_stats={_track}",
            mapping=_mapping,
            make_inputs=_batchnorm_inputs(),
            torch_program=_torch_batchnorm(_training, _track),
            jax_program=_jax_batchnorm(_training, _track),
            plain_jax_program=_plain,
            pitfall=_pitfall,
            in_report=True,
        )
    )


# ======================================================== 6. BatchNorm: momentum=None

_MOMENTUM_NONE_BATCHES = 3


def _torch_momentum_none(inputs):
    import torch

    bn = torch.nn.BatchNorm1d(3, momentum=None)
    outputs: dict[str, Any] = {}
    for b in range(1, _MOMENTUM_NONE_BATCHES + 1):
        outputs[f"output {b}"] = bn(torch.from_numpy(inputs[f"x{b}"]))
        outputs[f"running_mean after batch {b}"] = bn.running_mean.clone()
        outputs[f"running_var after batch {b}"] = bn.running_var.clone()
    outputs["num_batches_tracked"] = bn.num_batches_tracked
    return outputs


def _jax_momentum_none(inputs, jit):
    import jax
    import jax.numpy as jnp

    from torchsem.nn import BatchNorm1d

    bn = BatchNorm1d(3, momentum=None)
    variables = bn.init(jax.random.key(0), jnp.asarray(inputs["x1"]), use_running_average=True)

    def train(variables, x):
        y, state = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        return y, {**variables, **state}

    train = jitted(train, jit)
    outputs: dict[str, Any] = {}
    for b in range(1, _MOMENTUM_NONE_BATCHES + 1):
        outputs[f"output {b}"], variables = train(variables, jnp.asarray(inputs[f"x{b}"]))
        outputs[f"running_mean after batch {b}"] = variables["batch_stats"]["running_mean"]
        outputs[f"running_var after batch {b}"] = variables["batch_stats"]["running_var"]
    outputs["num_batches_tracked"] = variables["batch_stats"]["num_batches_tracked"]
    return outputs


register(
    Scenario(
        name="document/batchnorm-momentum-none",
        section="6. BatchNorm1d(momentum=None): a cumulative moving average, factor 1 / num_batches_tracked",
        mapping="BatchNorm1d(3, momentum=None) -> torchsem.nn.BatchNorm1d(3, momentum=None) "
        "(flax.linen.BatchNorm has no cumulative mode)",
        make_inputs=_batchnorm_inputs(_MOMENTUM_NONE_BATCHES),
        torch_program=_torch_momentum_none,
        jax_program=_jax_momentum_none,
        in_report=True,
    )
)


# ======================================================================== Dropout in train/eval

_DROPOUT_P = 0.5
_KEPT_DRAWS = 100_000
KEPT_FRACTION = Tolerance(
    0.0,
    0.012,
    reason="the masks come from different generators (PyTorch's vs JAX's): two kept fractions of 1e5 "
    "Bernoulli(0.5) draws differ with std 0.0022; 0.012 is 5.4 std",
)


def _dropout_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    values = rng.standard_normal((4, 6)).astype(np.float32)
    values[values == 0] = 1.0  # a zero input would hide whether its element was kept
    return {"x": values, "many": np.ones(_KEPT_DRAWS, np.float32)}


def _dropout_summary(
    train_output, train_grad, eval_output, nograd_output, p0_output, p1_output, many_output, x
) -> dict[str, Any]:
    """What both sides report: what the masks do, not the masks themselves (the generators differ)."""
    train_output, train_grad, x = np.asarray(train_output), np.asarray(train_grad), np.asarray(x)
    kept = train_output != 0
    return {
        "train: output / input where kept": np.unique(train_output[kept] / x[kept]),
        "train: dropped elements are exactly 0": np.bool_(np.all(train_output[~kept] == 0)),
        "train: grad of sum(output) where kept": np.unique(train_grad[kept]),
        "train: grad of sum(output) where dropped": np.unique(train_grad[~kept]),
        "train: kept fraction of 1e5 elements": np.float32(np.mean(np.asarray(many_output) != 0)),
        "train under no_grad: still drops (some output is 0)": np.bool_(np.any(np.asarray(nograd_output) == 0)),
        "eval: output (identity)": eval_output,
        "p=0, train: output (identity)": p0_output,
        "p=1, train: output (all zero)": p1_output,
    }


def _torch_dropout(inputs):
    import torch

    torch.manual_seed(0)
    dropout = torch.nn.Dropout(_DROPOUT_P)
    x = torch.from_numpy(inputs["x"]).requires_grad_()
    dropout.train()
    y = dropout(x)
    y.sum().backward()
    with torch.no_grad():
        nograd = dropout(x)
        many = dropout(torch.from_numpy(inputs["many"]))
    dropout.eval()
    evaluated = dropout(x)
    p0, p1 = torch.nn.Dropout(0.0).train(), torch.nn.Dropout(1.0).train()
    return _dropout_summary(
        y.detach(), x.grad, evaluated.detach(), nograd, p0(x).detach(), p1(x).detach(), many, inputs["x"]
    )


def _jax_dropout(inputs, jit):
    import jax
    import jax.numpy as jnp

    from torchsem import autograd
    from torchsem.nn import Dropout

    dropout = Dropout(_DROPOUT_P)
    x, many = jnp.asarray(inputs["x"]), jnp.asarray(inputs["many"])
    keys = jax.random.split(jax.random.key(0), 3)

    def run(x, many, keys):
        def train(x, key):  # model.train(): a fresh mask from the 'dropout' stream
            return dropout.apply({}, x, deterministic=False, rngs={"dropout": key})

        y = train(x, keys[0])
        grad = autograd.grad(lambda x: jnp.sum(train(x, keys[0])))(x)
        nograd = autograd.no_grad(train)(x, keys[1])
        return (
            y,
            grad,
            dropout.apply({}, x, deterministic=True),
            nograd,
            Dropout(0.0).apply({}, x, deterministic=False),
            Dropout(1.0).apply({}, x, deterministic=False),
            train(many, keys[2]),
        )

    y, grad, evaluated, nograd, p0, p1, many_out = jitted(run, jit)(x, many, keys)
    return _dropout_summary(y, grad, evaluated, nograd, p0, p1, many_out, inputs["x"])


register(
    Scenario(
        name="document/dropout-train-eval",
        section="5. model.eval() and Dropout: train drops and rescales by 1/(1-p), eval passes everything; "
        "no_grad changes neither",
        mapping="nn.Dropout(p); model.train()/model.eval() -> torchsem.nn.Dropout(p)(x, deterministic=not train), "
        "rngs={'dropout': key}",
        make_inputs=_dropout_inputs,
        torch_program=_torch_dropout,
        jax_program=_jax_dropout,
        tolerances={"train: kept fraction of 1e5 elements": KEPT_FRACTION},
        notes="PyTorch's and JAX's masks come from different generators, so the entry compares what the masks do.",
        in_report=True,
    )
)
