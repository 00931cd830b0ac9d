"""``torchsem.port``: what it generates, what it refuses, and how the generated module behaves.

Everything here ports a live PyTorch module, so it runs with torch only (the recorded path of
the port is ``tests/test_port_parity.py``, which trains the checked-in generated sources against
recorded PyTorch outputs). Values are compared with PyTorch at float32's rtol 1e-5 / atol 1e-6.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from conftest import LIVE_TORCH, LIVE_TORCH_REASON

pytestmark = [pytest.mark.live_torch, pytest.mark.skipif(not LIVE_TORCH, reason=LIVE_TORCH_REASON)]

RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def pm():
    import _port_models

    return _port_models


def _np(t) -> np.ndarray:
    return t.detach().numpy().copy()


def _j(t) -> jax.Array:
    return jnp.asarray(_np(t))


def _torch_grads(model, x, train: bool):
    model.train(train)
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.square().sum().backward()
    return _np(out), {k: None if p.grad is None else _np(p.grad) for k, p in model.named_parameters()}


def _jax_grads(ported, x, train: bool, requires_grad=None):
    """``sum(out**2)``'s gradients through the port (``torchsem.autograd``: None where PyTorch's are None)."""
    from torchsem import autograd

    module, variables = ported

    def loss(params):
        collections = {**variables, "params": params}
        if train:
            out, _ = module.apply(collections, x, train=True, mutable=["batch_stats"])
        else:
            out = module.apply(collections, x, train=False)
        return jnp.sum(out**2), out

    (_, out), grads = autograd.value_and_grad(loss, has_aux=True, requires_grad=requires_grad)(variables["params"])
    return np.asarray(out), grads


# --- the models people port ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["document_net", "document_net_detach", "document_net_frozen"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_document_net_variants(pm, variant: str, train: bool) -> None:
    """The document's three nets: outputs and gradients as PyTorch's, None where PyTorch's ``.grad`` is None."""
    import torch

    from torchsem.port import port

    torch.manual_seed(3)
    model = getattr(pm, variant)()
    x = torch.randn(4, 3, 8)
    ported = port(model, x)
    expected_out, expected_grads = _torch_grads(model, x, train)
    mask = {"fc1": {"weight": "fc1.weight" not in ported.frozen, "bias": True}, "bn1": True}
    out, grads = _jax_grads(ported, _j(x), train, requires_grad=mask)
    np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
    for key, expected in expected_grads.items():
        owner, name = key.split(".")
        got = grads[owner][name] if grads.get(owner) is not None else None
        if expected is None:
            assert got is None, key
        else:
            np.testing.assert_allclose(np.asarray(got), expected, rtol=RTOL, atol=ATOL, err_msg=key)
    assert ported.frozen == (("fc1.weight",) if variant == "document_net_frozen" else ())


def test_unpacks_and_copies_the_weights(pm) -> None:
    """``module, variables = port(...)``; the variables are a copy (a later in-place change does not reach them)."""
    import torch

    from torchsem.port import Ported, port

    model = pm.document_net()
    ported = port(model, torch.randn(4, 3, 8))
    assert isinstance(ported, Ported)
    module, variables = ported
    before = np.asarray(variables["params"]["fc1"]["weight"]).copy()
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    np.testing.assert_array_equal(np.asarray(variables["params"]["fc1"]["weight"]), before)
    assert module is ported.module


def test_resnet18_port_is_the_hand_written_model(pm) -> None:
    """The ported torchvision ResNet-18 computes bit for bit what ``torchsem.models.resnet18`` computes."""
    import torch

    from torchsem import models
    from torchsem.port import port

    torch.manual_seed(4)
    model = pm.resnet18()
    x = torch.randn(2, 3, 32, 32)
    module, variables = port(model, x)
    hand = models.resnet18(num_classes=10)
    for train in (True, False):
        a = module.apply(variables, _j(x), train=train, mutable=["batch_stats"] if train else False)
        b = hand.apply(variables, _j(x), train=train, mutable=["batch_stats"] if train else False)
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_functional_calls_methods_operators(pm, train: bool) -> None:
    """F calls, tensor methods, operators, an owned Parameter and buffer, in-place ops: values and gradients."""
    import torch

    from torchsem.port import port

    torch.manual_seed(5)
    model = pm.Functional()
    x = torch.randn(2, 3, 4, 4)
    from torchsem.convert import to_torch_state_dict

    ported = port(model, x)
    expected_out, expected_grads = _torch_grads(model, x, train)
    out, tree = _jax_grads(ported, _j(x), train)
    grads = to_torch_state_dict({"params": tree})
    np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
    assert set(grads) == set(expected_grads)
    for key, expected in expected_grads.items():
        np.testing.assert_allclose(np.asarray(grads[key]), expected, rtol=RTOL, atol=ATOL, err_msg=key)
    assert 'self.variable("batch_stats", "shift"' in ported.source
    assert 'self.param("scale"' in ported.source


def test_containers_by_index_and_key(pm) -> None:
    """Sequential, a ModuleList iterated in forward, a ModuleDict by key: PyTorch's names and values."""
    import torch

    from torchsem.convert import to_torch_state_dict
    from torchsem.port import port

    torch.manual_seed(6)
    model = pm.Containers()
    x = torch.randn(5, 4)
    ported = port(model, x)
    assert list(to_torch_state_dict(ported.variables)) == list(model.state_dict())
    for train in (False, True):  # eval first: PyTorch's train pass moves its running statistics
        model.train(train)
        expected = _np(model(x))
        got = ported.module.apply(ported.variables, _j(x), train=train, mutable=["batch_stats"] if train else False)
        got = got[0] if train else got
        np.testing.assert_allclose(np.asarray(got), expected, rtol=RTOL, atol=ATOL)
    assert "blocks[0](" in ported.source and 'heads["a"](' in ported.source


def test_transformer_and_lstm(pm) -> None:
    """nn.TransformerEncoder and nn.LSTM map to torchsem's with the same constructor arguments."""
    import torch

    from torchsem.port import port

    torch.manual_seed(7)
    tokens = torch.randint(0, 20, (3, 5))
    for model in (pm.transformer_classifier(), pm.lstm_tagger()):
        ported = port(model, tokens)
        model.eval()
        expected = _np(model(tokens))
        got = ported.module.apply(ported.variables, jnp.asarray(tokens.numpy()), train=False)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=RTOL, atol=ATOL)
    assert (
        "tnn.TransformerEncoder(tnn.TransformerEncoderLayer(16, 2, dim_feedforward=32"
        in port(pm.transformer_classifier(), tokens).source
    )


def test_self_training_branches_become_train_branches(pm) -> None:
    """``if self.training`` and ``F.dropout(..., training=self.training)``: both modes traced, ``train`` picks."""
    import torch

    from torchsem.port import port

    torch.manual_seed(8)
    model = pm.TrainingBranch()
    x = torch.randn(64, 4)
    ported = port(model, x)
    assert "if train:" in ported.source
    model.eval()
    got = ported.module.apply(ported.variables, _j(x), train=False)
    np.testing.assert_allclose(np.asarray(got), _np(model(x)), rtol=RTOL, atol=ATOL)
    # Train mode: fc(x) * 0.5 kept with probability 0.75 and scaled by 1/0.75, else 0.
    train = np.asarray(ported.module.apply(ported.variables, _j(x), train=True, rngs={"dropout": jax.random.key(0)}))
    scaled = _np(model.fc(x)) * 0.5 / 0.75
    kept = train != 0
    np.testing.assert_allclose(train[kept], scaled[kept], rtol=RTOL, atol=ATOL)
    assert 0.6 < kept.mean() < 0.9


def test_in_place_ops_are_data_flow(pm) -> None:
    """``y = h.relu_(); h * y + y.sigmoid_()``: later reads see the in-place results, as in PyTorch."""
    import torch

    from torchsem.port import port

    torch.manual_seed(9)
    model = pm.InPlace()
    x = torch.randn(3, 4)
    ported = port(model, x)
    got = ported.module.apply(ported.variables, _j(x), train=False)
    np.testing.assert_allclose(np.asarray(got), _np(model(x)), rtol=RTOL, atol=ATOL)


def test_nnx_front_end(pm) -> None:
    """``Ported.nnx()``: an NNX module whose ``train()``/``eval()`` are PyTorch's, state at the state_dict keys."""
    import torch

    import torchsem.nnx as tnnx
    from torchsem.port import port

    torch.manual_seed(10)
    model = pm.document_net()
    x = torch.randn(4, 3, 8)
    twin = port(model, x).nnx()
    twin.eval()
    model.eval()
    np.testing.assert_allclose(np.asarray(twin(_j(x))), _np(model(x)), rtol=RTOL, atol=ATOL)
    twin.train()
    model.train()
    np.testing.assert_allclose(np.asarray(twin(_j(x))), _np(model(x)), rtol=RTOL, atol=ATOL)
    state = tnnx.state_dict(twin)
    assert list(state) == list(model.state_dict())
    np.testing.assert_allclose(np.asarray(state["bn1.running_mean"]), _np(model.bn1.running_mean), rtol=RTOL, atol=ATOL)


# --- the source ----------------------------------------------------------------------------------


def test_source_round_trips(pm, tmp_path: pathlib.Path) -> None:
    """The printed source, written to a file and imported, is the in-memory module (repr, outputs bit for bit)."""
    import torch

    from torchsem.port import port

    torch.manual_seed(11)
    model = pm.Containers()
    x = torch.randn(5, 4)
    ported = port(model, x)
    path = tmp_path / "ported_containers.py"
    path.write_text(ported.source)
    spec = importlib.util.spec_from_file_location("ported_containers", path)
    assert spec is not None and spec.loader is not None
    imported = importlib.util.module_from_spec(spec)
    sys.modules["ported_containers"] = imported
    spec.loader.exec_module(imported)
    module = getattr(imported, ported.class_name)()
    assert repr(module) == repr(ported.module)
    for train in (True, False):
        mutable = ["batch_stats"] if train else False
        a = module.apply(ported.variables, _j(x), train=train, mutable=mutable)
        b = ported.module.apply(ported.variables, _j(x), train=train, mutable=mutable)
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    compile(ported.source, "ported", "exec")


def test_check_true_runs_check_port(pm) -> None:
    """``port(..., check=True)``: check_port's report on the result, and it agrees."""
    import torch

    from torchsem.port import port

    torch.manual_seed(12)
    ported = port(pm.document_net(), torch.randn(4, 3, 8), check=True, check_kwargs={"steps": ["train", "eval"]})
    assert ported.check is not None and ported.check.ok, ported.check.summary()


def test_command_line(pm, capsys: pytest.CaptureFixture[str]) -> None:
    """``torchsem port MODULE:FACTORY [--check]`` prints the source and the check's summary."""
    from torchsem.cli import main

    target = f"{pathlib.Path(__file__).parent / '_port_models.py'}:cli_factory"
    assert main(["port", target, "--check", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "class Net(nn.Module):" in out and "the port agrees with PyTorch" in out
    assert main(["port", "no_such_module:make"]) == 2


# --- what it refuses -----------------------------------------------------------------------------


def test_control_flow_names_the_line_and_the_way_around(pm) -> None:
    """A data-dependent ``if``: the module, the source line, and ``leaves=`` as the way around."""
    import torch

    from torchsem.port import PortError, port

    with pytest.raises(PortError) as error:
        port(pm.DataDependent(), torch.randn(2, 4))
    message = str(error.value)
    assert "gate (_port_models.Gate)" in message
    assert "_port_models.py:" in message and "if x.sum() > 0:" in message
    assert "leaves={'gate': factory}" in message


def test_leaves_route_around_an_untraceable_submodule(pm) -> None:
    """``leaves={"gate": factory}``: the hand-written Flax module is imported by the source and used."""
    import torch

    import _port_flax
    from torchsem.port import port

    torch.manual_seed(13)
    model = pm.DataDependent()
    ported = port(model, torch.randn(2, 4), leaves={"gate": lambda m: _port_flax.Gate()})
    assert "import _port_flax" in ported.source and "_port_flax.Gate(name=" in ported.source
    for sign in (1.0, -1.0):
        x = sign * torch.ones(2, 4) + 0.1 * torch.randn(2, 4)
        got = ported.module.apply(ported.variables, _j(x), train=False)
        np.testing.assert_allclose(np.asarray(got), _np(model(x)), rtol=RTOL, atol=ATOL)


def test_unsupported_function_names_node_op_and_line(pm) -> None:
    import torch

    from torchsem.port import PortError, port

    with pytest.raises(PortError) as error:
        port(pm.Unsupported(), torch.randn(2, 4))
    message = str(error.value)
    assert "node fft_fft: call_function" in message and "fft" in message
    assert "_port_models.py:" in message and "torch.fft.fft(self.fc(x)).real" in message
    assert "Supported: torch.flatten" in message and "F.relu" in message and "Tensor.view" in message


def test_unsupported_layer_lists_the_supported_ones(pm) -> None:
    import torch

    from torchsem.port import PortError, port

    with pytest.raises(
        PortError, match=r"shuffle: torch\.nn\.PixelShuffle has no torchsem layer; supported: .*Conv2d"
    ) as error:
        port(pm.UnsupportedLayer(), torch.randn(1, 4, 2, 2))
    assert "[graph node shuffle: call_module shuffle, called at " in str(error.value)
    assert "_port_models.py:" in str(error.value) and "return self.shuffle(x)" in str(error.value)


def test_refusals(pm) -> None:
    """A write through a view, a submodule with state that forward never calls, a non-module."""
    import torch

    from torchsem.port import PortError, port

    with pytest.raises(PortError, match="changes view in place, and view is a view"):
        port(pm.WriteThroughView(), torch.randn(2, 3))
    with pytest.raises(PortError, match=r"aux \(Linear\) holds parameters or buffers but the model's forward never"):
        port(pm.UnusedState(), torch.randn(2, 4))
    with pytest.raises(PortError, match=r"differs from PyTorch's by .* an in-place `x \+= y`"):
        port(pm.AugmentedAssignment(), torch.randn(8, 4))
    with pytest.raises(TypeError, match="torch_module must be a torch.nn.Module, got function"):
        port(pm.document_net, torch.randn(2, 4))


def test_supported_lists() -> None:
    from torchsem.port import supported

    listed = supported()
    assert {"Conv2d", "BatchNorm2d", "LSTM", "TransformerEncoder", "MultiheadAttention"} <= set(listed["layers"])
    assert "torch.cat" in listed["functions"] and "Tensor.view" in listed["functions"]
