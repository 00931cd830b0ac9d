"""The document's behaviours through ``torchsem.nnx``, judged against the same PyTorch outputs as the linen ones.

Each function here is the JAX program of an existing scenario (same output names) written
with the NNX front end: ``torchsem.nnx.models.Net``, ``model.train()``/``model.eval()``,
``nnx.jit``, ``nnx.Optimizer(model, torchsem.optim.sgd(...), wrt=...)``. :func:`nnx_variants`
pairs each with its scenario under the scenario's own name, so PyTorch's outputs are the live
run's or that scenario's recording (no recording of its own). Nothing is registered here:
the catalogue keeps one entry per behaviour, and ``tests/test_nnx.py`` runs the variants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .._document_net import DOCUMENT_X_SHAPE, RUNNING_MEAN_TRACE, TRACE_X_SHAPE
from .._scenario import Scenario, get

__all__ = ["nnx_eval_two", "nnx_example_one", "nnx_example_two", "nnx_torch_dropout", "nnx_variants"]


def _start(inputs: Mapping[str, Any], draws: tuple[tuple[int, ...], ...], detach: bool = False) -> tuple[Any, Any]:
    """``seed_torch(1029); model = net(); x = torch.randn(...)`` with ``torchsem.nnx``."""
    from flax import nnx

    from ... import nnx as tnx
    from ...random import Generator

    generator = Generator(int(inputs["seed"]))
    model = tnx.torch_init(tnx.models.Net(detach=detach, rngs=nnx.Rngs(0)), generator)
    return model, tuple(generator.randn(shape) for shape in draws)


def _maybe_jit(fun: Any, jit: bool) -> Any:
    from flax import nnx

    return nnx.jit(fun) if jit else fun


def nnx_eval_two(inputs: Mapping[str, Any], jit: bool, use_view: bool = False) -> dict[str, Any]:
    """Section 5's running-mean trace: ``model.train(); model(x1)``, ..., ``model.eval(); model(x3)``, ...

    With ``use_view`` the eval calls go through ``nnx.view(model, use_running_average=True)``
    instead of ``model.eval()`` (the view shares the model's Variables).
    """
    from flax import nnx

    model, xs = _start(inputs, (TRACE_X_SHAPE,) * 4)
    outputs: dict[str, Any] = {name: x for name, x in zip(("x1", "x2", "x3", "x4"), xs)}
    forward = _maybe_jit(lambda model, x: model(x), jit)
    evaluated = nnx.view(model, use_running_average=True) if use_view else model
    for i, step in enumerate(RUNNING_MEAN_TRACE):
        training = step.mode == "train"
        if not use_view:
            model.train() if training else model.eval()
        if step.input is not None:
            forward(model if training else evaluated, xs[step.input])
        bn1 = model.bn1
        label = f"running_mean {i + 1}: after {step.label}" if i else "running_mean 1: init"
        outputs[label] = bn1.running_mean.get_value()
        if training and step.input is not None:
            outputs[f"running_var after {step.label}"] = bn1.running_var.get_value()
    outputs["num_batches_tracked"] = model.bn1.num_batches_tracked.get_value()
    return outputs


def _initial(model: Any, x: Any) -> dict[str, Any]:
    return {"init fc1.weight": model.fc1.weight.get_value(), "init fc1.bias": model.fc1.bias.get_value(), "x": x}


def nnx_example_one(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
    """Example one: ``fc1.weight.requires_grad = False``, backward, ``optimizer.step()`` with NNX's Optimizer."""
    from flax import nnx

    from ... import nnx as tnx
    from ... import optim
    from ...losses import cross_entropy

    model, (x,) = _start(inputs, (DOCUMENT_X_SHAPE,))
    initial = _initial(model, x)
    requires_grad = tnx.trainable(frozen="fc1.weight")  # model.fc1.weight.requires_grad = False
    optimizer = nnx.Optimizer(model, optim.sgd(lr=1e-2), wrt=requires_grad)

    def step(model, optimizer, x, target):
        def loss_fn(model):
            return cross_entropy(model(x), target)

        # loss.backward(): only the parameters that require grad are differentiated
        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, requires_grad))(model)
        optimizer.update(model, grads)  # optimizer.step()
        return loss, nnx.to_pure_dict(grads)

    loss, grads = _maybe_jit(step, jit)(model, optimizer, x, inputs["target"])
    return {
        **initial,
        "loss": loss,
        # a parameter that does not require grad has no entry: PyTorch's .grad is None
        **{f"{m}.{n}.grad": grads.get(m, {}).get(n) for m in ("bn1", "fc1") for n in ("weight", "bias")},
        "fc1.weight after optimizer.step()": model.fc1.weight.get_value(),
        "fc1.bias after optimizer.step()": model.fc1.bias.get_value(),
    }


def nnx_example_two(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
    """Example two: ``x.detach()`` inside the net; bn1's gradients are None, as PyTorch's."""
    from ... import nnx as tnx
    from ...losses import cross_entropy

    model, (x,) = _start(inputs, (DOCUMENT_X_SHAPE,), detach=True)
    initial = _initial(model, x)

    def backward(model, x, target):
        return tnx.value_and_grad(lambda model: cross_entropy(model(x), target))(model)

    loss, grads = _maybe_jit(backward, jit)(model, x, inputs["target"])
    return {
        **initial,
        "loss": loss,
        **{f"{m}.{n}.grad": grads[m][n] for m in ("bn1", "fc1") for n in ("weight", "bias")},
    }


def nnx_torch_dropout(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
    """PyTorch's own dropout masks in an NNX Sequential, trained with ``nnx.Optimizer`` and ``torchsem.optim.sgd``."""
    import jax.numpy as jnp
    from flax import nnx

    from ... import nn as tnn
    from ... import nnx as tnx
    from ... import optim
    from ...random import Generator

    rngs = nnx.Rngs(0)
    generator = Generator(321)  # torch.manual_seed(321)
    model = tnx.Sequential(
        tnx.Linear(6, 8, rngs=rngs),
        tnx.Dropout(0.25, rngs=rngs),
        tnx.Tanh(),
        tnx.Dropout1d(0.5, rngs=rngs),
        tnx.Linear(8, 4, rngs=rngs),
        tnx.Dropout(0.1, rngs=rngs),
    )
    tnx.torch_init(model, generator)
    optimizer = nnx.Optimizer(model, optim.sgd(0.1), wrt=nnx.Param)

    def step(model, optimizer, x, c):
        def loss(model):
            y = model(x)
            return jnp.sum(y * c), y

        (_, y), grads = nnx.value_and_grad(loss, has_aux=True)(model)
        optimizer.update(model, grads)
        return y, grads

    outputs: dict[str, Any] = {}
    with tnn.torch_dropout(generator):
        run = _maybe_jit(step, jit)
        for i in range(len(inputs["x"])):
            y, grads = run(model, optimizer, jnp.asarray(inputs["x"][i]), jnp.asarray(inputs["c"][i]))
            outputs[f"step{i}.output"] = y
            outputs[f"step{i}.grad 0.weight"] = grads["0"]["weight"].get_value()
    outputs["weight after"] = model[4].weight.get_value()
    return outputs


def nnx_eval_two_view(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
    """:func:`nnx_eval_two` with ``nnx.view(model, use_running_average=True)`` for the eval calls."""
    return nnx_eval_two(inputs, jit, use_view=True)


_VARIANTS = (
    ("document/eval-example-two", "model.eval()", nnx_eval_two),
    ("document/eval-example-two", "nnx.view", nnx_eval_two_view),
    ("document/requires-grad-example-one", "nnx.Optimizer", nnx_example_one),
    ("document/detach-example-two", "value_and_grad", nnx_example_two),
    ("dropout/torch-generator-masks", "nnx.Optimizer", nnx_torch_dropout),
)


def nnx_variants() -> list[tuple[str, Scenario]]:
    """``(label, scenario)``: each scenario above with its NNX program, under the scenario's own name.

    Returns:
      The variants, judged like any scenario (``run_scenario(variant, oracle, jit=...)``).
    """
    return [
        (f"{name}[{label}]", dataclasses.replace(get(name), jax_program=program, plain_jax_program=None))
        for name, label, program in _VARIANTS
    ]
