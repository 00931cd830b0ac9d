"""The NNX front end agrees with PyTorch on every module and error case the linen modules are checked on.

Each registered ``ModuleCase`` is run a second time through ``torchsem.nnx``
(``ModuleCase.run_nnx``: the module's twin, or the NNX form ``torchsem.nnx.from_linen`` makes of
a container or wrapper the case builds; ``torchsem.nnx.torch_init``,
``state_dict``/``load_state_dict``, ``model.train()``/``model.eval()``, ``nnx.jit``) and judged
against PyTorch's outputs for that case: live PyTorch, or the linen case's own recording (the
variant keeps the scenario's name, so no new recordings). Never NNX against linen. Each
``ErrorCase`` likewise builds the twin with the case's arguments and calls it: the same error
type and message as PyTorch's. Jitted only, to keep the suite's cost low: the linen pass already
checks the eager path of the same math.

Hand-written NNX models (``tnx.Sequential``, ``tnx.ModuleList``, ``tnx.ModuleDict``) are judged
against the container cases' PyTorch outputs, and the losses holding a ``weight`` buffer
against live PyTorch (they have no registered case, so no recording).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import torchsem.nnx as tnx
from torchsem.compare import catalogue, run_scenario
from torchsem.compare._module_case import ErrorCase, Input, ModuleCase, nnx_variant

CASES = [(scenario, variant) for scenario in catalogue() if (variant := nnx_variant(scenario)) is not None]
SCENARIOS = [variant for _, variant in CASES]


def _judge(scenario, oracle):
    result = run_scenario(scenario, oracle, jit=True)
    if result.error is not None and "UnsupportedKernel:" in result.error:
        pytest.skip(result.error.strip().splitlines()[-1])  # see conftest: a kernel not reproduced here
    assert result.ok, result.explain()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_nnx_agrees_with_pytorch(scenario, oracle):
    _judge(scenario, oracle)


def test_every_module_and_error_case_has_an_nnx_run():
    cases = [s for s in catalogue() if isinstance(getattr(s.jax_program, "__self__", None), (ModuleCase, ErrorCase))]
    assert len(SCENARIOS) == len(cases)
    assert all(variant.name == scenario.name for scenario, variant in CASES)
    families = {s.family for s in SCENARIOS}
    assert {"linear", "batchnorm", "dropout", "conv", "containers"} <= families
    assert len(SCENARIOS) >= 700


# -------------------------------------------------- hand-written NNX containers, same cases


class _Stack(nnx.Module):
    """``containers.torch_stack`` in NNX: a ModuleList of blocks and a ModuleDict of heads."""

    def __init__(self) -> None:
        rngs = nnx.Rngs(0)  # torch_init replaces every value
        self.blocks = tnx.ModuleList([tnx.Linear(4, 4, rngs=rngs), tnx.Linear(4, 4, rngs=rngs)])
        self.heads = tnx.ModuleDict({"cls": tnx.Linear(4, 3, rngs=rngs), "reg": tnx.Linear(4, 1, rngs=rngs)})

    def __call__(self, x):
        for block in self.blocks:
            x = jnp.tanh(block(x))
        return self.heads["cls"](x) + self.heads["reg"](x)


def _mlp():
    rngs = nnx.Rngs(0)
    return tnx.Sequential(tnx.Linear(4, 3, rngs=rngs), tnx.ReLU(), tnx.Linear(3, 2, rngs=rngs))


def _nested():
    rngs = nnx.Rngs(0)
    block = tnx.Sequential(tnx.Linear(6, 4, rngs=rngs), tnx.Tanh(), tnx.Identity(54, unused=True))
    return tnx.Sequential(
        OrderedDict([("flatten", tnx.Flatten()), ("block", block), ("head", tnx.Linear(4, 2, bias=False, rngs=rngs))])
    )


def _conv_block():
    rngs = nnx.Rngs(0)
    return tnx.Sequential(
        tnx.Conv2d(2, 3, 3, padding=1, bias=False, rngs=rngs),
        tnx.BatchNorm2d(3, rngs=rngs),
        tnx.ReLU(),
        tnx.MaxPool2d(2),
    )


HAND_WRITTEN = {
    "containers/sequential-mlp": _mlp,
    "containers/sequential-mlp-unbatched": _mlp,
    "containers/sequential-nested-named": _nested,
    "containers/modulelist-moduledict": _Stack,
    "containers/sequential-mode-dependent": _conv_block,
}


@pytest.mark.parametrize("name", list(HAND_WRITTEN))
def test_hand_written_nnx_containers_agree_with_pytorch(name, oracle):
    (scenario,) = [s for s, _ in CASES if s.name == name]
    case = scenario.jax_program.__self__
    family, _, _ = name.partition("/")
    # The case's module factory, swapped for one building the NNX model directly (same name: same recording).
    _judge(dataclasses.replace(case, module=HAND_WRITTEN[name]).nnx_scenario(family, scenario.section), oracle)


def test_containers_names_modes_and_mutation():
    stack = _Stack()
    assert list(tnx.state_dict(stack)) == [
        f"{m}.{p}" for m in ("blocks.0", "blocks.1", "heads.cls", "heads.reg") for p in ("weight", "bias")
    ]
    block = _conv_block()
    block.eval()
    assert block[1].use_running_average is True
    block.train()
    assert block[1].use_running_average is False
    assert nnx.view(block, use_running_average=True)[1].use_running_average is True
    assert [type(m).__name__ for m in block[1:]] == ["BatchNorm2d", "ReLU", "MaxPool2d"]
    assert list(block[2:]._names) == ["2", "3"]  # a Sequential slice keeps the names, as PyTorch's
    blocks = stack.blocks
    blocks.insert(0, tnx.Linear(4, 4, rngs=nnx.Rngs(1)))
    del blocks[1]
    blocks.append(tnx.Linear(4, 4, rngs=nnx.Rngs(2)))
    assert len(blocks) == 3 and list(tnx.state_dict(blocks)) == [
        f"{i}.{p}" for i in range(3) for p in ("weight", "bias")
    ]
    assert blocks[-1] is blocks[2] and len(blocks[1:]) == 2
    heads = stack.heads
    heads["cls"] = tnx.Linear(4, 5, rngs=nnx.Rngs(3))
    assert heads.keys() == ["cls", "reg"] and heads["cls"](jnp.ones((1, 4))).shape == (1, 5)
    heads.pop("cls")
    assert "cls" not in heads and list(heads) == ["reg"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        blocks[3]
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        tnx.ModuleList([3])
    with pytest.raises(TypeError, match="module name should be a string. Got int"):
        tnx.ModuleDict({1: tnx.ReLU()})
    with pytest.raises(KeyError, match="contain .*, got: a.b"):
        tnx.ModuleDict({"a.b": tnx.ReLU()})
    with pytest.raises(KeyError, match="attribute 'train' already exists"):
        tnx.ModuleDict({"train": tnx.ReLU()})
    for container in (tnx.ModuleList(), tnx.ModuleDict()):
        with pytest.raises(NotImplementedError, match="missing the required"):
            container(jnp.ones(2))


def test_from_linen_makes_nnx_containers_of_twins():
    from torchsem.compare.scenarios.containers import torchsem_nested, torchsem_stack

    model = tnx.from_linen(torchsem_nested(), jnp.zeros((3, 2, 3)), rngs=nnx.Rngs(0))
    assert isinstance(model, tnx.Sequential) and isinstance(model.block, tnx.Sequential)
    assert isinstance(model.head, tnx.Linear) and list(tnx.state_dict(model)) == [
        "block.0.weight",
        "block.0.bias",
        "head.weight",
    ]
    wrapped = tnx.from_linen(torchsem_stack(), jnp.zeros((3, 4)), rngs=nnx.Rngs(0))  # setup-built: wrapped whole
    assert isinstance(wrapped, tnx.Twin) and "heads.reg.bias" in tnx.state_dict(wrapped)
    with pytest.raises(ValueError, match="give an example input"):
        tnx.from_linen(torchsem_stack(), rngs=nnx.Rngs(0))


# ------------------------------------------------------------ losses holding a weight buffer


def _torch_loss(name):
    """``torch.nn.<name>(**kwargs)`` with each numpy array a fresh tensor (PyTorch's buffer is the tensor given)."""

    def build(**kwargs):
        import torch

        return getattr(torch.nn, name)(
            **{k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        )

    build.__name__ = name
    return build


def _weighted_loss_cases():
    rng = np.random.default_rng(18)
    w4 = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    w3 = np.array([0.25, 1.5, 2.0], np.float32)
    classes = Input((5,), "int64", high=4)
    probabilities = Input((5, 3), scale=0.1, offset=0.5)
    targets = Input((5, 3), scale=0.1, offset=0.5, requires_grad=False)
    uniform = rng.uniform(0.5, 1.5, (5, 3)).astype(np.float32)
    return [
        ("CrossEntropyLoss", {"weight": w4}, ((5, 4), classes)),
        ("CrossEntropyLoss", {"weight": w4, "reduction": "sum", "ignore_index": 1}, ((5, 4), classes)),
        ("CrossEntropyLoss", {"weight": w4, "label_smoothing": 0.2}, ((5, 4), classes)),
        ("CrossEntropyLoss", {"weight": w4, "reduction": "none"}, ((5, 4, 2), Input((5, 2), "int64", high=4))),
        ("NLLLoss", {"weight": w4}, ((5, 4), classes)),
        ("NLLLoss", {"weight": w4, "reduction": "none", "ignore_index": 2}, ((5, 4), classes)),
        ("BCELoss", {"weight": w3}, (probabilities, targets)),
        ("BCELoss", {"weight": uniform, "reduction": "sum"}, (probabilities, targets)),
        ("BCEWithLogitsLoss", {"weight": w3}, ((5, 3), targets)),
        ("BCEWithLogitsLoss", {"pos_weight": w3}, ((5, 3), targets)),
        ("BCEWithLogitsLoss", {"weight": uniform[:, :1], "pos_weight": w3, "reduction": "none"}, ((5, 3), targets)),
    ]


@pytest.mark.live_torch
def test_losses_with_weight_buffers_agree_with_pytorch():
    from torchsem.compare import LiveOracle

    for index, (name, kwargs, inputs) in enumerate(_weighted_loss_cases()):
        case = ModuleCase(
            _torch_loss(name),
            f"torchsem.nn.{name}",
            kwargs=kwargs,
            inputs=inputs,
            seed=index,
            perturb=index % 2 == 0,  # load_state_dict moves the weight buffers on both sides
            name=f"{name.lower()}-weighted-{index}",
        )
        _judge(case.nnx_scenario("nnx_losses", "weighted losses"), LiveOracle())


@pytest.mark.live_torch
def test_losses_with_wrong_weight_shapes_raise_pytorchs_errors():
    from torchsem.compare import LiveOracle

    w3 = np.array([0.25, 1.5, 2.0], np.float32)
    classes = ((5, 4), Input((5,), "int64", high=4))
    probabilities = (Input((5, 3), scale=0.1, offset=0.5), Input((5, 3), scale=0.1, offset=0.5))
    for name, kwargs, inputs in [
        ("CrossEntropyLoss", {"weight": w3}, classes),  # 3 weights for 4 classes
        ("NLLLoss", {"weight": w3}, classes),
        ("BCELoss", {"weight": np.ones(4, np.float32)}, probabilities),  # not broadcastable to (5, 3)
        ("BCEWithLogitsLoss", {"pos_weight": np.ones(4, np.float32)}, probabilities),
    ]:
        case = ErrorCase(
            _torch_loss(name), f"torchsem.nn.{name}", f"{name.lower()}-weight-shape", kwargs=kwargs, inputs=inputs
        )
        oracle = LiveOracle()
        scenario = case.nnx_scenario("nnx_losses", "weighted losses")
        assert oracle.outputs(scenario)["error type"] == "RuntimeError"  # PyTorch does raise here
        _judge(scenario, oracle)


def test_loss_weight_is_a_buffer_not_a_parameter():
    loss = tnx.BCEWithLogitsLoss(weight=np.ones((1, 3), np.float32), pos_weight=np.full(3, 2.0, np.float32))
    assert list(tnx.state_dict(loss)) == ["weight", "pos_weight"]  # PyTorch's registration order
    assert not nnx.state(loss, nnx.Param) and len(nnx.state(loss, nnx.BatchStat)) == 2
    tnx.load_state_dict(loss, {"weight": np.zeros((1, 3), np.float32), "pos_weight": np.ones(3, np.float32)})
    assert float(nnx.jit(lambda m, x, y: m(x, y))(loss, jnp.zeros((2, 3)), jnp.ones((2, 3)))) == 0.0
    assert list(tnx.state_dict(tnx.CrossEntropyLoss())) == []  # a None weight is no key, as PyTorch's
    with pytest.raises(ValueError, match="deprecated"):
        tnx.NLLLoss(size_average=False)
