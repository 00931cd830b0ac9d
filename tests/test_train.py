"""torchsem.train: the jitted train step, the scanned loop and the eval step.

Whole 50-step runs against PyTorch are catalogue scenarios (family ``training``); here the
API forms are checked against the same PyTorch outputs (recorded or live), and that a frozen
parameter is not differentiated at all.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from torchsem import optim, train
from torchsem.compare import get
from torchsem.compare._document_net import net_variables
from torchsem.compare._torch_net import torch_net
from torchsem.losses import cross_entropy
from torchsem.models import Net

PARAMS = ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")


def _start(inputs, tx, detach=False):
    return Net(detach=detach), train.TrainState.create(net_variables(inputs["state"]), tx)


def _flat(params):
    return {f"{m}.{n}": np.asarray(v) for m, leaves in params.items() for n, v in leaves.items()}


def _count_primitive(jaxpr, name: str) -> int:
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == name
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    count += _count_primitive(getattr(inner, "jaxpr", inner), name)
    return count


@pytest.mark.parametrize(
    "requires_grad,frozen",
    [
        (None, "fc1.weight"),
        ({"bn1": True, "fc1": {"weight": False, "bias": True}}, None),
        (["bn1", "fc1.bias"], None),
    ],
    ids=["frozen-name", "bool-pytree", "trainable-names"],
)
def test_train_step_forms_follow_pytorch(oracle, requires_grad, frozen, jit):
    scenario = get("training/net-sgd/frozen-fc1-weight")
    expected = oracle.outputs(scenario)
    inputs = scenario.make_inputs()
    tx = optim.sgd(1e-2, momentum=0.9, weight_decay=1e-4)
    model, state = _start(inputs, tx)
    step = train.make_train_step(model, cross_entropy, tx, requires_grad=requires_grad, frozen=frozen, jit=jit)
    for t in range(3):
        state, metrics = step(state, (inputs["xs"][t], inputs["ys"][t]))
        np.testing.assert_allclose(float(metrics["loss"]), expected["loss"][t], rtol=1e-5)
        for name, value in _flat(state.params).items():
            np.testing.assert_allclose(value, expected[name][t + 1], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(_flat(state.params)["fc1.weight"], inputs["state"]["fc1.weight"])
    torch_numbered = optim.state_dict(state.opt_state, order=PARAMS)
    assert sorted(torch_numbered) == [i for i, name in enumerate(PARAMS) if expected[f"has_state.{name}"][2]]


def test_frozen_parameter_is_not_differentiated():
    """PyTorch does not compute a frozen weight's gradient; neither does the traced step."""
    inputs = get("training/net-sgd/frozen-fc1-weight").make_inputs()
    tx = optim.sgd(1e-2)
    model, state = _start(inputs, tx)
    batch = (inputs["xs"][0], inputs["ys"][0])
    counts = {}
    for frozen in (None, "fc1.weight"):
        step = train.make_train_step(model, cross_entropy, tx, frozen=frozen, jit=False)
        counts[frozen] = _count_primitive(jax.make_jaxpr(step)(state, batch).jaxpr, "dot_general")
    assert counts["fc1.weight"] == counts[None] - 1  # the weight-gradient matmul is gone


def test_detach_leaves_bn1_without_gradient_or_state(oracle, jit):
    scenario = get("training/net-sgd/detach")
    expected = oracle.outputs(scenario)
    inputs = scenario.make_inputs()
    tx = optim.sgd(1e-2, momentum=0.9, weight_decay=1e-4)
    model, state = _start(inputs, tx, detach=True)
    step = train.make_train_step(model, cross_entropy, tx, jit=jit)
    for t in range(2):
        state, _ = step(state, (inputs["xs"][t], inputs["ys"][t]))
    flat = _flat(state.params)
    for name in ("bn1.weight", "bn1.bias"):
        np.testing.assert_array_equal(expected[name][2], expected[name][0])  # PyTorch: not even weight decay
        np.testing.assert_array_equal(flat[name], expected[name][2])
        assert not expected[f"has_state.{name}"][1]
    assert sorted(optim.state_dict(state.opt_state, order=PARAMS)) == [2, 3]
    np.testing.assert_allclose(
        np.asarray(state.batch_stats["bn1"]["running_mean"]), expected["running_mean"][2], rtol=1e-5, atol=1e-6
    )


def test_train_loop_and_eval_follow_pytorch(oracle):
    scenario = get("training/net-sgd/frozen-fc1-weight")
    expected = oracle.outputs(scenario)
    inputs = scenario.make_inputs()
    tx = optim.sgd(1e-2, momentum=0.9, weight_decay=1e-4)
    model, state = _start(inputs, tx)
    state = state._replace(step=jnp.zeros((), jnp.int32))  # count the steps
    step = train.make_train_step(model, cross_entropy, tx, frozen="fc1.weight")
    state, metrics = train.train_loop(step, state, (inputs["xs"][:10], inputs["ys"][:10]))
    np.testing.assert_allclose(np.asarray(metrics["loss"]), expected["loss"][:10], rtol=1e-5, atol=1e-6)
    assert int(state.step) == 10
    assert int(state.batch_stats["bn1"]["num_batches_tracked"]) == int(expected["num_batches_tracked"][10])
    evaluated = train.make_eval_step(model, cross_entropy)(state, (inputs["x_eval"], inputs["y_eval"]))
    np.testing.assert_allclose(np.asarray(evaluated["outputs"]), expected["eval_outputs"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(evaluated["loss"]), expected["eval_loss"][0], rtol=1e-5)


def test_plain_optax_gets_zeros_for_none(oracle):
    """Any optax transformation works; a frozen leaf's None becomes zeros (plain SGD: no move)."""
    scenario = get("training/net-sgd/frozen-fc1-weight")
    expected = oracle.outputs(scenario)
    inputs = scenario.make_inputs()
    tx = optax.sgd(1e-2)
    model, state = _start(inputs, tx)
    step = train.make_train_step(model, cross_entropy, tx, frozen="fc1.weight")
    state, _ = step(state, (inputs["xs"][0], inputs["ys"][0]))
    np.testing.assert_array_equal(_flat(state.params)["fc1.weight"], expected["fc1.weight"][1])


def test_train_loop_rejects_batches_without_a_common_step_axis():
    inputs = get("training/net-sgd/frozen-fc1-weight").make_inputs()
    tx = optim.sgd(1e-2)
    model, state = _start(inputs, tx)
    step = train.make_train_step(model, cross_entropy, tx)
    with pytest.raises(ValueError, match="same leading"):
        train.train_loop(step, state, (inputs["xs"][:4], inputs["ys"][:3]))


def test_train_state_needs_params():
    with pytest.raises(ValueError, match="'params' collection"):
        train.TrainState.create({"batch_stats": {}}, optim.sgd(0.1))
    state = train.TrainState.create({"params": {"w": jnp.ones(2)}}, optim.sgd(0.1), count_steps=True)
    assert int(state.step) == 0 and state.batch_stats == {}


@pytest.mark.live_torch
def test_adamw_run_matches_pytorch():
    """20 steps of AdamW (PyTorch's default decay 1e-2) with bn1 frozen, against live PyTorch."""
    import torch

    inputs = get("training/net-sgd/frozen-fc1-weight").make_inputs()

    torch_model = torch_net(inputs["state"])
    for p in torch_model.bn1.parameters():
        p.requires_grad = False
    optimizer = torch.optim.AdamW(torch_model.parameters(), lr=1e-2)
    tx = optim.adamw(1e-2)
    model, state = _start(inputs, tx)
    step = train.make_train_step(model, cross_entropy, tx, frozen="bn1")
    for t in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            torch_model(torch.from_numpy(inputs["xs"][t])), torch.from_numpy(inputs["ys"][t])
        )
        loss.backward()
        optimizer.step()
        state, metrics = step(state, (inputs["xs"][t], inputs["ys"][t]))
        np.testing.assert_allclose(float(metrics["loss"]), loss.item(), rtol=1e-5)
    flat = _flat(state.params)
    for name, p in torch_model.named_parameters():
        np.testing.assert_allclose(flat[name], p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    torch_state = optimizer.state_dict()["state"]
    ours = optim.state_dict(state.opt_state, order=[n for n, _ in torch_model.named_parameters()])
    assert sorted(ours) == sorted(torch_state) == [2, 3]


def test_accumulation_steps_are_validated():
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    with pytest.raises(ValueError, match="accumulation_steps must be an int >= 1, got 0"):
        train.make_train_step(Net(), cross_entropy, optim.sgd(0.1), accumulation_steps=0)
    tx = optim.sgd(0.1)
    variables = Net().init(jax.random.key(0), jnp.zeros((2, 3, 8)), train=False)
    step = train.make_train_step(Net(), cross_entropy, tx, accumulation_steps=3)
    with pytest.raises(ValueError, match="must carry the 3 micro-batches on a leading axis, got leading sizes \\[2\\]"):
        step(train.TrainState.create(variables, tx), (jnp.zeros((2, 2, 3, 8)), jnp.zeros((2, 2), jnp.int32)))
