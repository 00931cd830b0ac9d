"""The document's network, PyTorch's ``net`` against ``torchsem.models.Net``, with the same weights.

Family ``net``. The weights (including non-trivial BatchNorm affine parameters and running
statistics) and the inputs are drawn with numpy; PyTorch loads them with
``load_state_dict`` and torchsem with :func:`torchsem.convert.load_torch_state_dict`. The
cases cover a training step (forward, loss, every gradient, the running-statistics update),
an eval step, the document's train/eval sequence of running statistics, the ``detach``
variant (example two), and the state_dict round trip and strict-mode errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._document_net import RUNNING_MEAN_CALLS, net_variables, random_net_state
from .._scenario import Scenario, register

_SECTION = "The document's network: pool1 -> bn1 -> reshape -> fc1, CrossEntropyLoss"
_PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")


def _inputs(seed: int, batches: int = 1, batch_size: int = 3):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs: dict = {"state": random_net_state(rng)}
        for i in range(batches):
            inputs[f"x{i}"] = rng.standard_normal((batch_size, 3, 8)).astype(np.float32)
            inputs[f"target{i}"] = rng.integers(0, 4, batch_size).astype(np.int64)
        return inputs

    return make


def _state_of(inputs) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in inputs["state"].items()}


# --- PyTorch side -------------------------------------------------------------------------


def _torch_model(inputs, detach: bool = False):
    from .._torch_net import torch_net

    return torch_net(_state_of(inputs), detach=detach)


def _torch_stats(model, suffix: str = "") -> dict:
    return {
        f"running_mean{suffix}": model.bn1.running_mean.clone(),
        f"running_var{suffix}": model.bn1.running_var.clone(),
        f"num_batches_tracked{suffix}": model.bn1.num_batches_tracked.clone(),
    }


def _torch_step(train: bool, detach: bool = False):
    def program(inputs):
        import torch

        model = _torch_model(inputs, detach)
        model.train(train)
        x = torch.from_numpy(inputs["x0"]).requires_grad_(not detach)
        output = model(x)
        loss = torch.nn.CrossEntropyLoss()(output, torch.from_numpy(inputs["target0"]))
        loss.backward()
        outputs = {"output": output, "loss": loss}
        names = ("fc1.weight", "fc1.bias") if detach else _PARAMS
        for name in names:
            outputs[f"{name}.grad"] = model.get_parameter(name).grad
        if not detach:
            outputs["x.grad"] = x.grad
        return {**outputs, **_torch_stats(model)}

    return program


def _torch_trace(inputs):
    import torch

    model = _torch_model(inputs)
    outputs = {}
    with torch.no_grad():
        for step, (mode, i) in enumerate(RUNNING_MEAN_CALLS):
            model.train(mode == "train")
            outputs[f"output{step}"] = model(torch.from_numpy(inputs[f"x{i}"]))
            outputs.update(_torch_stats(model, f"{step}"))
    return outputs


# --- JAX side -----------------------------------------------------------------------------


def _jax_variables(inputs):
    return net_variables(_state_of(inputs))


def _jax_stats(batch_stats, suffix: str = "") -> dict:
    stats = batch_stats["bn1"]
    return {
        f"running_mean{suffix}": stats["running_mean"],
        f"running_var{suffix}": stats["running_var"],
        f"num_batches_tracked{suffix}": stats["num_batches_tracked"],
    }


def _jax_step(train: bool, detach: bool = False):
    def program(inputs, jit: bool):
        import jax

        from torchsem.losses import cross_entropy
        from torchsem.models import Net

        model = Net(detach=detach)
        variables = _jax_variables(inputs)

        def step(params, batch_stats, x, target):
            def loss_fn(params, x):
                output, updates = model.apply(
                    {"params": params, "batch_stats": batch_stats}, x, train=train, mutable=["batch_stats"]
                )
                return cross_entropy(output, target), (output, updates["batch_stats"])

            (loss, (output, new_stats)), (grads, x_grad) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
                params, x
            )
            return output, loss, grads, x_grad, new_stats

        output, loss, grads, x_grad, new_stats = jitted(step, jit)(
            variables["params"], variables["batch_stats"], inputs["x0"], inputs["target0"].astype(np.int32)
        )
        outputs = {"output": output, "loss": loss}
        names = ("fc1.weight", "fc1.bias") if detach else _PARAMS
        for name in names:
            module, leaf = name.split(".")
            outputs[f"{name}.grad"] = grads[module][leaf]
        if not detach:
            outputs["x.grad"] = x_grad
        return {**outputs, **_jax_stats(new_stats)}

    return program


def _jax_trace(inputs, jit: bool):
    from torchsem.models import Net

    model = Net()
    variables = _jax_variables(inputs)

    def train_step(variables, x):
        output, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return output, {**variables, **updates}

    def eval_step(variables, x):
        return model.apply(variables, x, train=False), variables

    train_step, eval_step = jitted(train_step, jit), jitted(eval_step, jit)
    outputs = {}
    for step, (mode, i) in enumerate(RUNNING_MEAN_CALLS):
        output, variables = (train_step if mode == "train" else eval_step)(variables, inputs[f"x{i}"])
        outputs[f"output{step}"] = output
        outputs.update(_jax_stats(variables["batch_stats"], f"{step}"))
    return outputs


# --- state_dict conversion ------------------------------------------------------------------


def _torch_round_trip(inputs):
    state = _torch_model(inputs).state_dict()
    outputs = {"keys": ",".join(state), "dtypes": ",".join(str(v.dtype).replace("torch.", "") for v in state.values())}
    return {**outputs, **state}


def _jax_round_trip(inputs, jit: bool):
    from torchsem.convert import to_torch_state_dict

    # Jitted, the variables pass through an identity, which sorts dict keys: the order must still be PyTorch's.
    variables = jitted(lambda v: v, jit)(_jax_variables(inputs))
    state = to_torch_state_dict(variables)
    outputs = {"keys": ",".join(state), "dtypes": ",".join(str(v.dtype) for v in state.values())}
    return {**outputs, **state}


def _bad_state(inputs) -> dict[str, np.ndarray]:
    state = _state_of(inputs)
    del state["fc1.bias"], state["bn1.running_var"]
    state["fc1.weight"] = np.zeros((4, 11), np.float32)
    state["bn1.weight"] = np.zeros(2, np.float32)
    state["extra"] = np.zeros(1, np.float32)
    state["bn1.foo"] = np.zeros(1, np.float32)
    return state


def _load_error(attempt: Callable[[], Any]) -> dict[str, str]:
    """The error type and message of loading the bad state, less the message's first line.

    The first line names the model's class in PyTorch and "variables" in torchsem.
    """
    outcome = error_outputs(attempt)
    message = outcome["error message"]
    return {**outcome, "error message": message.split("\n", 1)[1] if "\n" in message else message}


def _torch_strict(strict: bool):
    def program(inputs):
        import torch

        model = _torch_model(inputs)
        bad = {k: torch.from_numpy(v) for k, v in _bad_state(inputs).items()}
        return _load_error(lambda: model.load_state_dict(bad, strict=strict))

    return program


def _jax_strict(strict: bool):
    def program(inputs, jit: bool):
        from torchsem.convert import load_torch_state_dict

        # A host-side conversion: no tracing involved, jit or not.
        variables = _jax_variables(inputs)
        return _load_error(lambda: load_torch_state_dict(variables, _bad_state(inputs), strict=strict))

    return program


def _register() -> None:
    register(
        Scenario(
            name="net/train-step",
            section=_SECTION,
            mapping="model.train(); loss_fn(model(x), t).backward() -> "
            "jax.value_and_grad of cross_entropy(Net().apply(v, x, train=True, mutable=['batch_stats']), t)",
            make_inputs=_inputs(500),
            torch_program=_torch_step(train=True),
            jax_program=_jax_step(train=True),
            notes="Every parameter's gradient, the input's gradient and the running statistics after one step.",
        )
    )
    register(
        Scenario(
            name="net/eval-step",
            section=_SECTION,
            mapping="model.eval(); loss_fn(model(x), t).backward() -> "
            "jax.value_and_grad of cross_entropy(Net().apply(v, x, train=False), t)",
            make_inputs=_inputs(501),
            torch_program=_torch_step(train=False),
            jax_program=_jax_step(train=False),
            notes="eval mode still has gradients (section 5); bn1 uses and keeps its running statistics.",
        )
    )
    register(
        Scenario(
            name="net/detach-train-step",
            section=_SECTION,
            mapping="x = x.detach() after the reshape -> Net(detach=True) (jax.lax.stop_gradient)",
            make_inputs=_inputs(502),
            torch_program=_torch_step(train=True, detach=True),
            jax_program=_jax_step(train=True, detach=True),
            notes="fc1's gradients; bn1's are None in PyTorch (torchsem.autograd reports that; see the "
            "document family).",
        )
    )
    register(
        Scenario(
            name="net/running-stats-trace",
            section=_SECTION,
            mapping="model.train()/model.eval() over x1, x2, x3, x4, x1, x2 -> apply(train=True, "
            "mutable=['batch_stats']) "
            "/ apply(train=False)",
            make_inputs=_inputs(503, batches=4, batch_size=1),
            torch_program=_torch_trace,
            jax_program=_jax_trace,
            notes="The document's sequence (section 5) with batches of one (1, 3, 8) input: eval steps leave the "
            "running statistics unchanged.",
        )
    )
    register(
        Scenario(
            name="net/state-dict-round-trip",
            section=_SECTION,
            mapping="model.state_dict() -> torchsem.convert.to_torch_state_dict(load_torch_state_dict(variables, sd))",
            make_inputs=_inputs(504),
            torch_program=_torch_round_trip,
            jax_program=_jax_round_trip,
            rtol=0.0,
            atol=0.0,
            notes="Keys, order, dtypes and values, bit for bit.",
        )
    )
    for strict in (True, False):
        register(
            Scenario(
                name=f"net/load-state-dict-errors-strict={int(strict)}",
                section=_SECTION,
                mapping=f"model.load_state_dict(bad, strict={strict}) -> load_torch_state_dict(variables, "
                f"bad, strict={strict})",
                make_inputs=_inputs(505),
                torch_program=_torch_strict(strict),
                jax_program=_jax_strict(strict),
                notes="Missing, unexpected and misshaped keys listed in one error, in PyTorch's words and order "
                "(size mismatches are errors even with strict=False).",
            )
        )


_register()
