"""``check_port`` names the module where a port diverges, and checks plain-Flax ports too.

Each test injects one of the bugs people make when porting by hand into an otherwise faithful
port of a small PyTorch convnet (or the document's net) and checks, against real PyTorch, that
the first divergent quantity is the right module's: Flax's own BatchNorm (biased running
variance) in place of PyTorch's, ``padding='SAME'`` where PyTorch pads 1 with stride 2, GELU's
tanh approximation, a conv whose weight was never loaded. Plain-Flax ports (``kernel`` stored
``(in, out)`` or HWIO, ``scale``/``mean``/``var``) are checked through Flax's naming
conventions, so the report shows the real difference rather than a naming error.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from torchsem import nn as tnn
from torchsem import optim
from torchsem.compare import check_port
from torchsem.losses import cross_entropy

pytestmark = pytest.mark.live_torch

TARGETS = np.array([1, 0, 2, 1])


def _torch_cnn(seed: int = 7):
    """conv1 -> bn1 -> GELU -> conv2 (stride 2, padding 1) -> bn2 -> ReLU -> global pool -> fc."""
    import torch

    class TorchCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(4)
            self.act1 = torch.nn.GELU()
            self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
            self.bn2 = torch.nn.BatchNorm2d(6)
            self.act2 = torch.nn.ReLU()
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, x):
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.act2(self.bn2(self.conv2(x)))
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.manual_seed(seed)
    return TorchCNN()


class TorchsemCNN(nn.Module):
    """The same convnet in torchsem modules; ``bug`` swaps in one wrong piece."""

    bug: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = tnn.Conv2d(3, 4, 3, padding=1, name="conv1")(x)
        x = tnn.BatchNorm2d(4, name="bn1")(x, use_running_average=not train)
        x = tnn.GELU("tanh" if self.bug == "gelu_tanh" else "none", name="act1")(x)
        x = tnn.Conv2d(4, 6, 3, stride=2, padding=1, name="conv2")(x)
        if self.bug == "flax_batchnorm":
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis=1, name="bn2")(x)
        else:
            x = tnn.BatchNorm2d(6, name="bn2")(x, use_running_average=not train)
        x = tnn.ReLU(name="act2")(x)
        x = tnn.AdaptiveAvgPool2d(1, name="pool")(x)
        return tnn.Linear(6, 3, name="fc")(x.reshape(x.shape[0], -1))


class PlainFlaxCNN(nn.Module):
    """The convnet as a plain-Flax user writes it: NHWC, ``nn.Conv``/``nn.BatchNorm``/``nn.Dense``, functions."""

    conv2_padding: str | tuple = ((1, 1), (1, 1))

    @nn.compact
    def __call__(self, x, train: bool = True):
        bn = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5)
        x = nn.Conv(4, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        x = jax.nn.gelu(nn.BatchNorm(**bn, name="bn1")(x), approximate=False)
        x = nn.Conv(6, (3, 3), strides=(2, 2), padding=self.conv2_padding, name="conv2")(x)
        x = jax.nn.relu(nn.BatchNorm(**bn, name="bn2")(x))
        return nn.Dense(3, name="fc")(jnp.mean(x, axis=(1, 2)))


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.standard_normal((4, 3, 8, 8)).astype(np.float32) for _ in range(count)]


def _training(model, jax_tx=None):
    import torch

    return {
        "targets": TARGETS,
        "loss_fns": (torch.nn.functional.cross_entropy, cross_entropy),
        "optimizers": (
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4),
            jax_tx if jax_tx is not None else optim.sgd(0.1, momentum=0.9, weight_decay=5e-4),
        ),
    }


STEPS = ["train", "train", "eval"]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_faithful_convnet_port_agrees_in_every_module_step_and_optimizer_state(jit):
    model = _torch_cnn()
    result = check_port(model, TorchsemCNN(), _images(3), steps=STEPS, jit=jit, **_training(model))
    assert result.ok, result.summary()
    names = [q.name for q in result.quantities if q.step == 1]
    # Submodule outputs come first, in PyTorch's execution order, then the model-level quantities.
    modules = ["conv1", "bn1", "act1", "conv2", "bn2", "act2", "pool", "fc"]
    assert names[: len(modules)] == [f"{m} output" for m in modules]
    assert names[len(modules) : len(modules) + 2] == ["output", "loss"]
    assert "optimizer conv2.weight momentum_buffer" in names
    assert {q.kind for q in result.quantities} == {
        "init",
        "activation",
        "output",
        "loss",
        "buffer",
        "grad",
        "param",
        "optimizer",
    }
    assert "agrees" in result.table()


def test_flax_batchnorm_in_place_of_torchs_is_localised_to_its_running_variance():
    model = _torch_cnn()
    result = check_port(model, TorchsemCNN(bug="flax_batchnorm"), _images(3), steps=STEPS, stop_at_first=False)
    first = result.first_mismatch
    assert (first.step, first.mode, first.name) == (1, "train", "bn2.running_var"), result.summary()
    # In train mode Flax normalises with the batch statistics like PyTorch: every output agrees.
    assert all(q.ok for q in result.quantities if q.step == 1 and q.kind == "activation")
    # The eval step uses the (biased) running variance: bn2 is the first module whose output differs.
    assert result.first_by_kind()["activation"].name == "bn2 output"
    assert result.first_by_kind()["activation"].step == 3
    assert "bn2.num_batches_tracked" in result.uncompared


def test_same_padding_where_pytorch_pads_one_with_stride_two_is_localised_to_that_conv():
    model = _torch_cnn()
    faithful = check_port(model, PlainFlaxCNN(), _images(1), steps=["eval"], channels_last=True)
    assert faithful.ok, faithful.summary()
    result = check_port(_torch_cnn(), PlainFlaxCNN(conv2_padding="SAME"), _images(1), steps=1, channels_last=True)
    first = result.first_mismatch
    assert (first.step, first.name) == (1, "conv2 output"), result.summary()
    assert "step 1 (train): conv2 output differs" in result.summary()


def test_gelu_tanh_approximation_is_localised_to_the_activation():
    result = check_port(_torch_cnn(), TorchsemCNN(bug="gelu_tanh"), _images(1), steps=1)
    first = result.first_mismatch
    assert (first.step, first.name, first.kind) == (1, "act1 output", "activation"), result.summary()
    assert all(q.ok for q in result.quantities if q.name in ("conv1 output", "bn1 output"))


def test_a_conv_whose_weight_was_never_loaded_is_named_at_step_zero():
    from torchsem.convert import load_torch_state_dict

    model = _torch_cnn()
    port = TorchsemCNN()
    fresh = port.init(jax.random.key(0), _images(1)[0], train=False)
    loaded = load_torch_state_dict(fresh, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    params = dict(loaded["params"])
    params["conv1"] = fresh["params"]["conv1"]  # the bug: this layer kept its own init
    result = check_port(model, port, _images(1), variables={**loaded, "params": params}, load_weights=False)
    first = result.first_mismatch
    assert (first.step, first.mode, first.name, first.kind) == (0, "init", "conv1.weight", "init")
    assert result.first_by_kind()["activation"].name == "conv1 output"


class PlainFlaxDocumentNet(nn.Module):
    """The document's net as a new user ports it: flax.linen.BatchNorm and Dense, pooling as a function."""

    auto_names: bool = False

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.avg_pool(x.transpose(0, 2, 1), (2,), strides=(2,)).transpose(0, 2, 1)
        named = {} if self.auto_names else {"name": "bn1"}
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis=1, **named)(x)
        return nn.Dense(4, **({} if self.auto_names else {"name": "fc1"}))(x.reshape(x.shape[0], -1))


def _torch_document_net():
    import torch

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3)
            self.fc1 = torch.nn.Linear(12, 4)

        def forward(self, x):
            x = self.bn1(self.pool1(x))
            return self.fc1(x.reshape(x.size(0), -1))

    torch.manual_seed(1029)
    return TorchNet()


@pytest.mark.parametrize("auto_names", [False, True], ids=["named", "auto-named"])
def test_a_plain_flax_port_of_the_document_net_reports_the_running_variance(auto_names):
    batches = [np.random.default_rng(s).standard_normal((3, 3, 8)).astype(np.float32) for s in range(2)]
    names = {"BatchNorm_0": "bn1", "Dense_0": "fc1"} if auto_names else None
    result = check_port(_torch_document_net(), PlainFlaxDocumentNet(auto_names), batches, steps=2, names=names)
    first = result.first_mismatch
    # Not a naming error: kernel (in, out) and scale/mean/var are Flax's conventions; the real
    # difference is Flax's biased running variance.
    assert (first.step, first.name) == (1, "bn1.running_var"), result.summary()
    assert all(q.ok for q in result.quantities if q.step == 1 and q.kind in ("output", "loss", "grad"))
    grad = next(q for q in result.quantities if q.name == "grad fc1.weight")
    assert grad.comparison.actual.shape == (4, 12)  # compared in PyTorch's layout
    assert set(result.uncompared) == {"bn1.num_batches_tracked", "pool1 output"}


def test_optax_momentum_is_compared_as_pytorchs_momentum_buffer():
    import torch

    model = _torch_cnn()
    torch_opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    result = check_port(
        model,
        TorchsemCNN(),
        _images(2),
        steps=2,
        targets=TARGETS,
        loss_fns=(torch.nn.functional.cross_entropy, cross_entropy),
        optimizers=(torch_opt, optax.sgd(0.05, momentum=0.9)),
        activations=False,
    )
    buffers = [q for q in result.quantities if q.kind == "optimizer"]
    assert {q.name for q in buffers} >= {
        "optimizer fc.weight momentum_buffer",
        "optimizer conv1.weight momentum_buffer",
    }
    assert all(q.ok for q in buffers), result.summary()


def test_the_table_and_the_plot_show_the_divergence(tmp_path):
    pytest.importorskip("matplotlib")
    result = check_port(_torch_cnn(), TorchsemCNN(bug="flax_batchnorm"), _images(3), steps=STEPS, stop_at_first=False)
    table = result.table()
    assert "bn2.running_var" in table and "bn2 output" in table
    assert result.worst(1) == ["bn2.running_var"]
    assert [step for step, _ in result.trajectory("bn2.running_var")] == [0, 1, 2, 3]
    path = result.plot(str(tmp_path / "port.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no quantity called 'nope'"):
        result.plot(str(tmp_path / "x.png"), names=["nope"])


def test_the_command_line_checks_a_factory_and_names_the_divergence(capsys, tmp_path):
    from pathlib import Path

    from torchsem import cli

    example = Path(__file__).resolve().parent.parent / "comparisons" / "plain_flax_port.py"
    status = cli.main(["check-port", f"{example}:make", "--steps", "2"])
    out = capsys.readouterr().out
    assert status == 1
    assert "step 1 (train): bn1.running_var differs" in out
    assert "not compared (no counterpart in the port): bn1.num_batches_tracked, pool1 output" in out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:FACTORY"),
        ("missing_file.py:make", "no file 'missing_file.py'"),
        ("json:nothing_here", "json has no callable 'nothing_here'"),
    ],
)
def test_the_command_line_refuses_a_bad_factory(capsys, target, message):
    from torchsem import cli

    assert cli.main(["check-port", target]) == 2
    assert message in capsys.readouterr().err


def test_port_names_translate_flax_conventions_and_module_renames():
    from torchsem.compare import PortNames

    variables = {
        "params": {
            "Dense_0": {"kernel": np.zeros((12, 4)), "bias": np.zeros(4)},
            "c": {"kernel": np.zeros((3, 3, 2, 5))},
        },
        "batch_stats": {"bn": {"mean": np.zeros(3), "var": np.ones(3)}},
    }
    names = PortNames(variables, modules={"Dense_0": "fc1", "bn": "layer1.0.bn1"})
    assert names.torch_name("Dense_0.kernel") == "fc1.weight"
    assert names.torch_name("bn.var") == "layer1.0.bn1.running_var"
    translated, unmatched = names.to_port_state_dict(
        {
            "fc1.weight": np.arange(48.0).reshape(4, 12),
            "c.weight": np.zeros((5, 2, 3, 3)),
            "layer1.0.bn1.num_batches_tracked": np.array(0),
            "extra": np.zeros(1),
        }
    )
    assert translated["Dense_0.kernel"].shape == (12, 4) and translated["Dense_0.kernel"][1, 0] == 1.0
    assert translated["c.kernel"].shape == (3, 3, 2, 5)
    assert unmatched == ["layer1.0.bn1.num_batches_tracked"] and "extra" in translated
    back = names.to_torch({"c.kernel": np.zeros((3, 3, 2, 5)), "Dense_0.bias": None})
    assert back["c.weight"].shape == (5, 2, 3, 3) and back["fc1.bias"] is None
    with pytest.raises(ValueError, match="both map to PyTorch's 'fc1.bias'"):
        PortNames({"params": {"a": {"bias": np.zeros(1)}, "b": {"bias": np.zeros(1)}}}, modules=lambda p: "fc1")


class _TransformerPort(nn.Module):
    """The scenarios' Transformer classifier as a user ports it, with one injected mistake."""

    bug: str | None = None

    def setup(self):
        from torchsem.compare.scenarios.transformer_classifier import VOCAB

        self.embedding = tnn.Embedding(VOCAB, 16)
        mistake = {"post-norm-as-pre-norm": {"norm_first": True}, "layer-norm-eps": {"layer_norm_eps": 1e-2}}
        layer = tnn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, **mistake.get(self.bug, {}))
        self.encoder = tnn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = tnn.Linear(16, 3)

    def __call__(self, tokens, train: bool = True):
        return self.fc(self.encoder(self.embedding(tokens), deterministic=not train).mean(1))


@pytest.mark.parametrize(
    ("bug", "module"),
    [
        (None, None),
        ("post-norm-as-pre-norm", "encoder.layers.0.self_attn"),
        ("layer-norm-eps", "encoder.layers.0.norm1"),
    ],
)
def test_a_transformer_port_is_checked_module_by_module(bug, module):
    from torchsem.compare.scenarios.transformer_classifier import VOCAB, torch_classifier

    tokens = [np.random.default_rng(i).integers(0, VOCAB, (4, 6)) for i in range(2)]
    result = check_port(torch_classifier(0.0), _TransformerPort(bug), tokens, steps=["train", "eval"])
    if bug is None:
        assert result.ok, result.summary()
        assert "encoder.layers.1.self_attn output" in {q.name for q in result.quantities}
    else:
        assert result.first_mismatch.name == f"{module} output", result.summary()


def _resnet18_pair():
    """torchvision's ResNet-18 (torchsem's PyTorch reference of it) and torchsem.models.resnet18, 10 classes."""
    import torch

    from torchsem.compare._torch_resnet import torch_resnet
    from torchsem.models import resnet18

    torch.manual_seed(15)
    return torch_resnet("resnet18", num_classes=10), resnet18(num_classes=10)


# A faithful ResNet-18 port's float32 activations differ from PyTorch's by rounding (measured: up to
# 7e-6 absolute, 4e-3 relative on elements near zero, as early as layer1.0.conv1), beyond
# check_port's float32 defaults; the injected bugs move their quantities by 0.1 and more.
RESNET_TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}


def _resnet_images(steps: int) -> list[np.ndarray]:
    return list(np.random.default_rng(15).standard_normal((steps, 4, 3, 32, 32)).astype(np.float32))


# The same checks under check_port's float64-judged criterion (drift=4: at most 4 times float32
# PyTorch's distance from a float64 PyTorch run, the ResNet scenarios' measured k) with the float32
# defaults as its floor, in place of the loosened elementwise tolerance.
RESNET_CRITERIA = [pytest.param(RESNET_TOLERANCE, id="rtol1e-3"), pytest.param({"drift": 4.0}, id="drift4")]


def test_a_faithful_resnet18_agrees_under_the_drift_criterion_and_not_under_float32_tolerance():
    """Three SGD-momentum steps: drift=4 passes every quantity; rtol 1e-5/atol 1e-6 fails PyTorch's own rounding."""
    import torch

    from torchsem import optim

    model, port = _resnet18_pair()
    state = model.state_dict()
    results = {}
    for label, criterion in (("drift", {"drift": 4.0}), ("float32", {})):
        model.load_state_dict(state)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        results[label] = check_port(
            model,
            port,
            _resnet_images(3),
            steps=["train", "train", "eval"],
            optimizers=(optimizer, optim.sgd(0.01, momentum=0.9)),
            jit=True,
            **criterion,
        )
    assert results["drift"].ok, results["drift"].table()
    kinds = {q.kind for q in results["drift"].quantities}
    assert {"activation", "grad", "param", "optimizer", "buffer"} <= kinds
    assert not results["float32"].ok
    assert (
        "drift within: D(jax)" in next(q for q in results["drift"].quantities if q.name == "output").comparison.detail
    )


@pytest.mark.parametrize("criterion", RESNET_CRITERIA)
def test_an_unloaded_conv_deep_in_a_resnet18_is_named_at_step_zero(criterion):
    from torchsem.convert import load_torch_state_dict

    model, port = _resnet18_pair()
    x = _resnet_images(1)
    fresh = jax.jit(lambda x: port.init(jax.random.key(0), x, train=False))(x[0])
    loaded = load_torch_state_dict(fresh, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    params = jax.tree.map(lambda a: a, loaded["params"])
    params["layer3"]["0"]["conv2"] = fresh["params"]["layer3"]["0"]["conv2"]  # the bug: kept its own init
    result = check_port(
        model,
        port,
        x,
        steps=["eval"],
        variables={**loaded, "params": params},
        load_weights=False,
        jit=True,
        **criterion,
    )
    first = result.first_mismatch
    assert (first.step, first.name, first.kind) == (0, "layer3.0.conv2.weight", "init"), result.summary()
    assert result.first_by_kind()["activation"].name == "layer3.0.conv2 output", result.table()


@pytest.mark.parametrize("criterion", RESNET_CRITERIA)
def test_one_wrong_batchnorm_momentum_in_a_resnet18_is_named_by_its_running_statistics(criterion):
    model, port = _resnet18_pair()
    model.layer2[1].bn1.momentum = 0.2  # the PyTorch model differs from the port in this one layer
    result = check_port(model, port, _resnet_images(1), steps=["train"], jit=True, stop_at_first=False, **criterion)
    buffer = result.first_by_kind()["buffer"]
    assert (buffer.step, buffer.name) == (1, "layer2.1.bn1.running_mean"), result.table()
    # Train-mode outputs do not read the running statistics: no activation differs.
    assert all(q.ok for q in result.quantities if q.kind == "activation"), result.table()


def test_drift_needs_k_at_least_one_and_copies_the_optimizer_groups():
    """drift < 1 is refused; the float64 run's optimizer has the float32 one's class and groups (two here)."""
    import torch

    from torchsem.compare._port_check import _float64_copy

    model, port = _resnet18_pair()
    with pytest.raises(ValueError, match=r"drift must be >= 1 .*got 0.5"):
        check_port(model, port, _resnet_images(1), drift=0.5)
    groups = [{"params": list(model.fc.parameters()), "lr": 0.1}, {"params": list(model.conv1.parameters())}]
    optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    twin, twin_optimizer = _float64_copy(model, optimizer)
    assert type(twin_optimizer) is torch.optim.SGD
    assert [g["lr"] for g in twin_optimizer.param_groups] == [0.1, 0.01]
    assert twin_optimizer.param_groups[0]["params"][0] is twin.fc.weight
    assert twin.fc.weight.dtype == torch.float64 and model.fc.weight.dtype == torch.float32
