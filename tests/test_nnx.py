"""torchsem.nnx: state paths and Variable types, train/eval/view, state_dict, optimisers, against PyTorch.

What PyTorch decides (the document's running-mean trace, example one's frozen parameter and
SGD step, example two's None gradients, PyTorch's own dropout masks through an NNX Optimizer)
is judged against PyTorch's outputs: live, or the recordings of the same scenarios' linen
programs (``compare/scenarios/nnx_document.py``). The rest checks NNX mechanics that have no
PyTorch output: which Variable type holds what, which attribute a mode call sets, that a view
shares the model's state.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import flax.errors
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import torchsem.nnx as tnx
from conftest import LIVE_TORCH
from torchsem.compare import run_scenario
from torchsem.compare.scenarios.nnx_document import nnx_variants
from torchsem.random import Generator

VARIANTS = nnx_variants()
JIT_MODES = [False, True] if LIVE_TORCH else [True]

# PyTorch's net().state_dict().keys(), in order (checked against live PyTorch below).
NET_KEYS = [
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "bn1.num_batches_tracked",
    "fc1.weight",
    "fc1.bias",
]


def _net() -> tnx.models.Net:
    return tnx.torch_init(tnx.models.Net(rngs=nnx.Rngs(0)), Generator(1029))


# ----------------------------------------------------------------------- against PyTorch


@pytest.mark.parametrize("jit", JIT_MODES, ids=["eager", "jit"][2 - len(JIT_MODES) :])
@pytest.mark.parametrize("scenario", [s for _, s in VARIANTS], ids=[label for label, _ in VARIANTS])
def test_document_behaviours_through_nnx_agree_with_pytorch(scenario, oracle, jit):
    result = run_scenario(scenario, oracle, jit=jit)
    assert result.ok, result.explain()


@pytest.mark.live_torch
def test_state_dict_keys_order_and_values_are_pytorchs():
    import torch

    from torchsem.compare._torch_net import torch_document_start

    torch_model, _ = torch_document_start((), seed=1029)
    assert list(torch_model.state_dict()) == NET_KEYS
    ours = tnx.state_dict(_net())
    assert list(ours) == NET_KEYS
    for key, value in torch_model.state_dict().items():
        assert ours[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)  # torch_init: bit for bit
    # And back: PyTorch loads torchsem.nnx's state_dict, torchsem.nnx loads PyTorch's.
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()})
    model = tnx.models.Net(rngs=nnx.Rngs(1))
    tnx.load_state_dict(model, torch_model.state_dict())
    for key, value in tnx.state_dict(model).items():
        np.testing.assert_array_equal(value, ours[key], err_msg=key)


@pytest.mark.live_torch
def test_load_state_dict_errors_are_pytorchs():
    from torchsem.compare._torch_net import torch_document_start

    torch_model, _ = torch_document_start((), seed=1029)
    state = dict(torch_model.state_dict())
    del state["fc1.bias"]
    state["fc2.weight"] = state["fc1.weight"]
    with pytest.raises(RuntimeError) as torch_error:
        torch_model.load_state_dict(state)
    with pytest.raises(RuntimeError) as ours:
        tnx.load_state_dict(_net(), state)
    torch_lines = str(torch_error.value).splitlines()[1:]
    assert str(ours.value).splitlines()[1:] == torch_lines
    result = tnx.load_state_dict(_net(), state, strict=False)
    torch_result = torch_model.load_state_dict(state, strict=False)
    assert (result.missing_keys, result.unexpected_keys) == (torch_result.missing_keys, torch_result.unexpected_keys)


# -------------------------------------------------------------------- NNX mechanics


def test_net_state_paths_and_variable_types():
    state = nnx.state(_net())
    types = {tuple(str(p) for p in path): type(v) for path, v in nnx.to_flat_state(state)}
    assert types == {
        ("bn1", "weight"): nnx.Param,
        ("bn1", "bias"): nnx.Param,
        ("bn1", "running_mean"): nnx.BatchStat,
        ("bn1", "running_var"): nnx.BatchStat,
        ("bn1", "num_batches_tracked"): tnx.NumBatchesTracked,
        ("fc1", "weight"): nnx.Param,
        ("fc1", "bias"): nnx.Param,
    }
    assert issubclass(tnx.NumBatchesTracked, nnx.BatchStat)  # every buffer is a BatchStat, as in named_buffers()
    assert len(nnx.to_flat_state(nnx.state(_net(), nnx.BatchStat))) == 3
    floats = nnx.All(nnx.BatchStat, nnx.Not(tnx.NumBatchesTracked))
    assert len(nnx.to_flat_state(nnx.state(_net(), floats))) == 2
    assert list(tnx.state_dict(_net())) == NET_KEYS


def test_resnet18_paths_are_torchvisions_and_nested():
    with tnx.skip_init():
        model = tnx.models.resnet18(rngs=nnx.Rngs(0), num_classes=10)
    paths = [tuple(str(p) for p in path) for path, _ in nnx.to_flat_state(nnx.state(model))]
    assert ("layer1", "0", "conv1", "weight") in paths
    assert ("layer2", "0", "downsample", "1", "running_mean") in paths
    keys = list(tnx.state_dict(model))
    assert keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert keys[-2:] == ["fc.weight", "fc.bias"] and len(keys) == 122  # torchvision's resnet18: 122 entries


def test_batchnorm_train_eval_and_view():
    bn = tnx.BatchNorm1d(3, rngs=nnx.Rngs(0))
    assert bn.use_running_average is None and not hasattr(bn, "deterministic")  # fresh: PyTorch trains
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3)), jnp.float32)
    bn(x)
    assert int(bn.num_batches_tracked.get_value()) == 1
    bn.eval()
    assert bn.use_running_average is True
    before = np.asarray(bn.running_mean.get_value())
    y = bn(x)
    np.testing.assert_array_equal(bn.running_mean.get_value(), before)
    expected = (x - before) / jnp.sqrt(bn.running_var.get_value() + 1e-5)  # eval: the running statistics
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    bn.train()
    assert bn.use_running_average is False
    view = nnx.view(bn, use_running_average=True)
    assert view.use_running_average is True and bn.use_running_average is False
    bn(x)  # training the model moves the statistics the view reads: they share the Variables
    np.testing.assert_array_equal(view.running_mean.get_value(), bn.running_mean.get_value())
    assert int(bn.num_batches_tracked.get_value()) == 2


def test_dropout_modes_and_rngs():
    model = tnx.Sequential(tnx.Linear(5, 64, rngs=nnx.Rngs(0)), tnx.Dropout(0.5, rngs=nnx.Rngs(dropout=3)))
    x = jnp.ones((2, 5))
    first, second = model(x), model(x)  # training: a new mask from the module's stream each call
    assert np.any(np.asarray(first) == 0) and not np.array_equal(first, second)
    model.eval()
    assert model[1].deterministic is True
    np.testing.assert_array_equal(model(x), model[0](x))
    model.train()
    evaluated = nnx.view(model, deterministic=True)
    np.testing.assert_array_equal(evaluated(x), model[0](x))
    with pytest.raises(ValueError, match="Unused keys"):
        nnx.view(tnx.Linear(2, 2, rngs=nnx.Rngs(0)), deterministic=True)  # no dropout inside


def test_modules_with_dropout_inside_follow_the_mode():
    layer = tnx.TransformerEncoderLayer(8, 2, dim_feedforward=16, rngs=nnx.Rngs(0))
    lstm = tnx.LSTM(4, 3, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))
    attention = tnx.MultiheadAttention(8, 2, dropout=0.5, rngs=nnx.Rngs(0))
    model = tnx.Sequential(layer)
    model.eval()
    assert layer.deterministic is True
    for module in (lstm, attention):
        module.eval()
        assert module.deterministic is True
    x = jnp.ones((3, 2, 8))
    np.testing.assert_array_equal(model(x), model(x))  # eval: no dropout, deterministic


def test_jit_grad_optimizer_split_merge_and_frozen_parameters():
    from torchsem import optim
    from torchsem.losses import cross_entropy

    model = _net()
    requires_grad = tnx.trainable(frozen="fc1.weight")
    optimizer = nnx.Optimizer(model, optim.sgd(lr=0.1, momentum=0.9), wrt=requires_grad)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 3, 8)), jnp.float32)
    target = jnp.array([0, 1, 2])
    frozen = np.asarray(model.fc1.weight.get_value())

    @nnx.jit
    def step(model, optimizer, x):
        loss, grads = nnx.value_and_grad(
            lambda model: cross_entropy(model(x), target), argnums=nnx.DiffState(0, requires_grad)
        )(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer, x)) for _ in range(3)]
    assert losses[2] < losses[0]
    np.testing.assert_array_equal(model.fc1.weight.get_value(), frozen)  # never stepped
    assert int(model.bn1.num_batches_tracked.get_value()) == 3  # the forward ran in training mode

    graphdef, state = nnx.split(model)
    clone = nnx.merge(graphdef, state)
    clone.eval()
    np.testing.assert_array_equal(clone(x), nnx.view(model, use_running_average=True)(x))
    # PyTorch's None gradients: a frozen parameter, and everything upstream of a detach.
    _, grads = tnx.value_and_grad(lambda m: cross_entropy(m(x), target), wrt=requires_grad)(model)
    assert grads["fc1"]["weight"] is None and grads["fc1"]["bias"] is not None
    detached = tnx.torch_init(tnx.models.Net(detach=True, rngs=nnx.Rngs(0)), Generator(1029))
    _, grads = nnx.jit(tnx.value_and_grad(lambda m: cross_entropy(m(x), target)))(detached)
    assert grads["bn1"]["weight"] is None and grads["bn1"]["bias"] is None
    assert grads["fc1"]["weight"] is not None


def test_state_dict_round_trip_and_strict_rules():
    model = _net()
    state = tnx.state_dict(model)
    assert state["bn1.num_batches_tracked"].dtype == np.int64
    rng = np.random.default_rng(5)
    moved = {
        k: (v + rng.uniform(0.1, 0.2, v.shape).astype(v.dtype)) if v.dtype.kind == "f" else v + 7
        for k, v in state.items()
    }
    result = tnx.load_state_dict(model, moved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in tnx.state_dict(model).items():
        np.testing.assert_array_equal(value, moved[key], err_msg=key)
    moved["fc1.weight"][0, 0] = 123.0  # the model holds its own copy
    assert float(model.fc1.weight.get_value()[0, 0]) != 123.0
    with pytest.raises(RuntimeError, match="size mismatch for fc1.bias"):
        tnx.load_state_dict(model, {**moved, "fc1.bias": np.zeros(5, np.float32)})


def test_twin_signature_and_wrap():
    import inspect

    signature = inspect.signature(tnx.Linear)
    assert list(signature.parameters)[:3] == ["in_features", "out_features", "bias"]
    assert signature.parameters["rngs"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(tnx.ReLU).parameters["rngs"].default is None  # stateless: built without rngs
    with pytest.raises(TypeError, match="rngs"):
        tnx.Linear(2, 3)
    import torchsem.nn as tnn

    wrapped = tnx.wrap(tnn.Linear(4, 2), jnp.zeros((1, 4)), rngs=nnx.Rngs(0))
    assert [tuple(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(wrapped))] == [("bias",), ("weight",)]
    assert wrapped(jnp.ones((3, 4))).shape == (3, 2)
    jax.block_until_ready(nnx.jit(lambda m, x: m(x))(wrapped, jnp.ones((3, 4))))


class _WrongMomentumNet(tnx.models.Net):
    """The document's net ported with BatchNorm1d(momentum=0.2): its running statistics drift from PyTorch's."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        super().__init__(rngs=rngs)
        self.bn1 = tnx.BatchNorm1d(3, momentum=0.2, rngs=rngs)


@pytest.mark.live_torch
@pytest.mark.parametrize("direct", [True, False], ids=["nnx-model", "as_linen"])
@pytest.mark.parametrize("port, first", [(tnx.models.Net, None), (_WrongMomentumNet, "bn1.running_mean")])
def test_check_port_accepts_an_nnx_port(port, first, direct):
    import torch

    from torchsem import optim
    from torchsem.compare import check_port
    from torchsem.compare._torch_net import torch_document_start

    torch_model, _ = torch_document_start((), seed=1029)
    inputs = list(np.random.default_rng(0).standard_normal((4, 3, 3, 8)).astype(np.float32))
    model = port(rngs=nnx.Rngs(0))
    # An NNX model is accepted as it is (activations are then off by default); as_linen is the same.
    result = check_port(
        torch_model,
        model if direct else tnx.as_linen(model),
        inputs,
        steps=["train", "train", "eval", "train"],
        **({} if direct else {"activations": False}),
        optimizers=(torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9), optim.sgd(0.1, momentum=0.9)),
    )
    if first is None:
        assert result.ok, result.table()
    else:
        assert not result.ok and result.first_mismatch.name == first, result.table()


@pytest.mark.live_torch
def test_check_port_refuses_activations_for_an_nnx_port():
    from torchsem.compare import check_port
    from torchsem.compare._torch_net import torch_document_start

    torch_model, _ = torch_document_start((), seed=1029)
    x = np.zeros((3, 3, 8), np.float32)
    with pytest.raises(ValueError, match="activations=True needs a linen port"):
        check_port(torch_model, tnx.models.Net(rngs=nnx.Rngs(0)), x, activations=True)


def test_jit_step_is_nnx_jit_without_the_per_call_walk():
    from torchsem import optim
    from torchsem.losses import cross_entropy

    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(3)
    batches = [jnp.asarray(rng.standard_normal((3, 3, 8)), jnp.float32) for _ in range(4)]
    y = jnp.array([1, 2, 3])
    models = [_net(), _net(), _net()]
    optimizers = [nnx.Optimizer(m, optim.sgd(0.1, momentum=0.9, weight_decay=5e-4), wrt=nnx.Param) for m in models]
    reference = nnx.jit(train_step)
    steps = [tnx.jit_step(train_step, models[1], optimizers[1])]
    # Donated: the old arrays go to XLA; one array held by two Variables is copied first, not donated twice.
    models[2].bn1.running_var.set_value(models[2].bn1.weight.get_value())
    assert models[2].bn1.running_var.get_raw_value() is models[2].bn1.weight.get_raw_value()
    steps.append(tnx.jit_step(train_step, models[2], optimizers[2], donate=True))
    for i, x in enumerate(batches):
        if i == 2:  # the mode is watched: eval() takes effect at the next call (running stats stay)
            for m in models:
                m.eval()
        if i == 3:
            for m in models:
                m.train()
        expected = reference(models[0], optimizers[0], x, y)
        for model, step in zip(models[1:], steps):
            np.testing.assert_array_equal(step(x, y), expected)  # the same traced program, so the same bits
            for key, value in tnx.state_dict(models[0]).items():  # the model itself is updated in place
                np.testing.assert_array_equal(tnx.state_dict(model)[key], value, err_msg=key)
    for model, optimizer in zip(models[1:], optimizers[1:]):
        assert int(model.bn1.num_batches_tracked.get_value()) == 3  # the eval step tracked no batch
        assert int(optimizer.step.get_value()) == 4
    step = steps[0]

    def grows(model, x):
        model.extra = nnx.Param(x.sum())
        return x

    with pytest.raises(ValueError, match="changed the structure"):
        tnx.jit_step(grows, _net())(batches[0])
    with pytest.raises(flax.errors.TraceContextError):  # inside another trace: no tracer leaks into the model
        jax.jit(lambda x: step(x, y))(batches[0])


# PyTorch's outputs of the SyncBatchNorm checks below, for the path without torch (re-record with
# ``.venv/bin/python tests/test_nnx.py --record-sync``); with live torch they are recomputed and
# the recording must agree with them within the same tolerance.
SYNC_RECORDING = pathlib.Path(__file__).parent / "data" / "nnx_sync_batchnorm.json"


def _sync_input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 2 + 1


def _sync_models() -> dict[str, Any]:
    """Each case's NNX model and input: a SyncBatchNorm twin (train, eval), a converted Sequential."""
    twin_train = tnx.SyncBatchNorm(3, axis_name="data", momentum=0.3, rngs=nnx.Rngs(0))
    twin_eval = tnx.SyncBatchNorm(3, axis_name="data", momentum=0.3, rngs=nnx.Rngs(0))
    twin_eval.eval()
    converted = tnx.Sequential(tnx.Linear(4, 3, rngs=nnx.Rngs(0)), tnx.BatchNorm1d(3, rngs=nnx.Rngs(1)))
    return {
        "syncbatchnorm-train": (twin_train, _sync_input((8, 3, 5), 7)),
        "syncbatchnorm-eval": (twin_eval, _sync_input((8, 3, 5), 7)),
        "convert": (converted, _sync_input((8, 4), 8)),
    }


def _torch_sync_outputs(name: str, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """PyTorch's BatchNorm on the whole batch (what SyncBatchNorm computes), from the NNX model's state."""
    import torch

    if name == "convert":
        reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    else:
        reference = torch.nn.BatchNorm1d(3, momentum=0.3)
    reference.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tnx.state_dict(model).items()})
    reference.train(name != "syncbatchnorm-eval")
    out = {"output": reference(torch.from_numpy(x.copy())).detach().numpy()}
    out.update({key: value.numpy().copy() for key, value in reference.state_dict().items()})
    return out


def _sync_expected(name: str, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    recorded = {k: np.asarray(v) for k, v in json.loads(SYNC_RECORDING.read_text())[name].items()}
    if not LIVE_TORCH:
        return recorded
    live = _torch_sync_outputs(name, model, x)
    for key, value in live.items():  # a stale recording fails here
        np.testing.assert_allclose(recorded[key], value, rtol=1e-5, atol=1e-6, err_msg=f"recording {name} {key}")
    return live


def _run_sync(model: Any, x: np.ndarray) -> Any:
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    graphdef, state = nnx.split(model)

    def per_device(state, x):
        local = nnx.merge(graphdef, state)
        return local(x), nnx.state(local)

    step = jax.jit(
        jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P()), check_vma=False)
    )
    y, new_state = step(state, jnp.asarray(x))
    nnx.update(model, new_state)
    return y


@pytest.mark.parametrize("name", ["syncbatchnorm-train", "syncbatchnorm-eval", "convert"])
def test_sync_batchnorm_over_four_devices_is_pytorchs_batchnorm_on_the_whole_batch(name):
    """``tnx.SyncBatchNorm`` and ``tnx.convert_sync_batchnorm(model)`` under ``shard_map`` over 4 devices.

    What ``torch.nn.SyncBatchNorm`` promises, BatchNorm of the global batch: output, running
    statistics and ``num_batches_tracked`` against ``torch.nn.BatchNorm1d`` on the concatenated
    batch (float32: rtol 1e-5, atol 1e-6), live or recorded. The conversion is PyTorch's: in
    place, the state's keys unchanged.
    """
    model, x = _sync_models()[name]
    expected = _sync_expected(name, model, x)
    if name == "convert":
        keys = list(tnx.state_dict(model))
        assert tnx.convert_sync_batchnorm(model, "data") is model
        assert list(tnx.state_dict(model)) == keys
    y = _run_sync(model, x)
    np.testing.assert_allclose(np.asarray(y), expected["output"], rtol=1e-5, atol=1e-6)
    for key, value in tnx.state_dict(model).items():
        np.testing.assert_allclose(np.asarray(value), expected[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_convert_sync_batchnorm_refuses_a_non_nnx_module():
    with pytest.raises(TypeError, match="module must be an nnx.Module"):
        tnx.convert_sync_batchnorm(object())


def _record_sync() -> None:
    recording = {}
    for name, (model, x) in _sync_models().items():
        recording[name] = {k: v.tolist() for k, v in _torch_sync_outputs(name, model, x).items()}
    SYNC_RECORDING.write_text(json.dumps(recording) + "\n")


if __name__ == "__main__" and "--record-sync" in sys.argv:
    _record_sync()
