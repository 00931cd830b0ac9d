"""torchsem.models' ResNets: torchvision's constructors, names, errors and modes, and their torch_init.

The model-level parity with PyTorch (initial weights bit for bit, forward and backward in both
modes, three SGD steps with a frozen stage, judged by drift from a float64 PyTorch run) is the
``resnet`` scenario family (``test_parity_catalogue.py -k resnet``, live and recorded). Here:
the constructors' arguments and torchvision's error messages, the ``state_dict`` keys and the
round trip through a PyTorch model, the train/eval switch, eager against jit, other norm layers,
and the ``subtree`` replay mechanism of ``torch_init`` that the ResNet replay is built on. Tests
marked ``live_torch`` compare with the PyTorch reference network of
``torchsem.compare._torch_resnet`` (torchvision's ``resnet.py`` rebuilt from ``torch.nn``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import models
from torchsem.compare.scenarios.resnet import _template
from torchsem.convert import load_torch_state_dict, to_torch_state_dict
from torchsem.models import BasicBlock, Bottleneck, ResNet
from torchsem.nn import BatchNorm2d, Conv2d, GroupNorm, Linear, Sequential
from torchsem.random import Generator, register_torch_init, torch_init

live_torch = pytest.mark.live_torch
IMAGE = (3, 32, 32)

# name -> (block, layers, groups, width_per_group), as torchvision's builders set them.
BUILDERS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], 1, 64),
    "resnet34": (BasicBlock, [3, 4, 6, 3], 1, 64),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 1, 64),
    "resnet101": (Bottleneck, [3, 4, 23, 3], 1, 64),
    "resnet152": (Bottleneck, [3, 8, 36, 3], 1, 64),
    "resnext50_32x4d": (Bottleneck, [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": (Bottleneck, [3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": (Bottleneck, [3, 4, 23, 3], 64, 4),
    "wide_resnet50_2": (Bottleneck, [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": (Bottleneck, [3, 4, 23, 3], 1, 128),
}


def _digests(state: dict[str, Any]) -> list[tuple[str, str, tuple[int, ...], str]]:
    out = []
    for key, value in state.items():
        array = np.ascontiguousarray(value.detach().numpy() if hasattr(value, "detach") else np.asarray(value))
        out.append((key, str(array.dtype), array.shape, hashlib.sha256(array.tobytes()).hexdigest()))
    return out


def _abstract_variables(model: nn.Module, shape: tuple[int, ...] = (1, *IMAGE)) -> dict[str, Any]:
    """The variables' shapes, traced (jax.eval_shape sorts dict keys: fine for lookups)."""
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros(shape))


def _torch_resnet(name: str, **kwargs: Any) -> Any:
    from torchsem.compare._torch_resnet import torch_resnet

    return torch_resnet(name, **kwargs)


def _tiny(**kwargs: Any) -> ResNet:
    """One block per stage: the smallest network with every ResNet part (stem, shortcuts, pooling, fc)."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3, **kwargs)


# --------------------------------------------------------------------------- constructors


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builders_set_torchvisions_architecture(name):
    block, layers, groups, width = BUILDERS[name]
    model = getattr(models, name)()
    assert (model.block, list(model.layers), model.groups, model.width_per_group) == (block, layers, groups, width)
    assert (model.num_classes, model.zero_init_residual, model.replace_stride_with_dilation, model.norm_layer) == (
        1000,
        False,
        None,
        None,
    )


def test_resnet_takes_torchvisions_arguments_in_order():
    model = ResNet(Bottleneck, [3, 4, 6, 3], 7, True, 32, 4, [False, True, True], BatchNorm2d)
    assert (model.num_classes, model.zero_init_residual, model.groups, model.width_per_group) == (7, True, 32, 4)
    assert list(model.replace_stride_with_dilation) == [False, True, True] and model.norm_layer is BatchNorm2d
    block = BasicBlock(64, 128, 2, None, 1, 64, 1, BatchNorm2d)
    assert (block.inplanes, block.planes, block.stride, block.expansion) == (64, 128, 2, 1)
    assert Bottleneck.expansion == 4


def test_variables_have_torchvisions_names_shapes_and_order():
    state = to_torch_state_dict(_template("resnet18"))
    keys = list(state)
    assert len(keys) == 122  # torchvision's resnet18().state_dict() has 122 entries
    assert keys[:7] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
    ]
    assert keys.index("layer2.0.downsample.0.weight") == keys.index("layer2.0.bn2.num_batches_tracked") + 1
    assert keys[-2:] == ["fc.weight", "fc.bias"] and state["fc.weight"].shape == (10, 512)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["layer1.0.bn1.num_batches_tracked"].dtype == np.int64


def test_bottleneck_widths():
    state = to_torch_state_dict(_template("resnet50"))
    assert len(state) == 320
    assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert state["layer4.2.conv2.weight"].shape == (512, 512, 3, 3) and state["fc.weight"].shape == (10, 2048)


def test_dilation_keeps_the_resolution_of_the_last_stages():
    x = jnp.zeros((1, 3, 64, 64))

    def layer4_shape(model: ResNet) -> tuple[int, ...]:
        def run(x: jax.Array) -> jax.Array:
            variables = model.init(jax.random.key(0), x, train=False)
            _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
            return state["intermediates"]["layer4"]["__call__"][0]

        return jax.eval_shape(run, x).shape

    assert layer4_shape(ResNet(Bottleneck, [1, 1, 1, 1])) == (1, 2048, 2, 2)
    dilated = ResNet(Bottleneck, [1, 1, 1, 1], replace_stride_with_dilation=[False, True, True])
    assert layer4_shape(dilated) == (1, 2048, 8, 8)  # layer3 and layer4 keep layer2's stride 8


# ------------------------------------------------------------------------------- errors

ERRORS = [
    ("resnet18", {"groups": 2}, ValueError, "BasicBlock only supports groups=1 and base_width=64"),
    ("resnet34", {"width_per_group": 32}, ValueError, "BasicBlock only supports groups=1 and base_width=64"),
    (
        "resnet18",
        {"replace_stride_with_dilation": [False, False, True]},
        NotImplementedError,
        "Dilation > 1 not supported in BasicBlock",
    ),
    (
        "resnet50",
        {"replace_stride_with_dilation": [True, False]},
        ValueError,
        "replace_stride_with_dilation should be None or a 3-element tuple, got [True, False]",
    ),
    ("resnext50_32x4d", {"groups": 8}, ValueError, "The parameter 'groups' expected value 32 but got 8 instead."),
    (
        "wide_resnet50_2",
        {"width_per_group": 64},
        ValueError,
        "The parameter 'width_per_group' expected value 128 but got 64 instead.",
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "kind", "message"), ERRORS)
def test_constructor_errors_are_torchvisions(name, kwargs, kind, message):
    with pytest.raises(kind) as raised:
        getattr(models, name)(**kwargs)
    assert str(raised.value) == message


@live_torch
@pytest.mark.parametrize(("name", "kwargs", "kind", "message"), [e for e in ERRORS if "expected value" not in e[3]])
def test_the_pytorch_reference_raises_the_same(name, kwargs, kind, message):
    # The builders' _ovewrite_named_param check is torchvision's, outside the network: not rebuilt there.
    with pytest.raises(kind) as raised:
        _torch_resnet(name, **kwargs)
    assert str(raised.value) == message


def test_other_constructor_errors():
    with pytest.raises(ValueError, match="^BasicBlock only supports groups=1 and base_width=64$"):
        BasicBlock(64, 64, groups=2)
    with pytest.raises(NotImplementedError, match="^Dilation > 1 not supported in BasicBlock$"):
        BasicBlock(64, 64, dilation=2)
    with pytest.raises(IndexError, match="layers must give the blocks of 4 stages"):
        ResNet(BasicBlock, [2, 2, 2])
    with pytest.raises(TypeError, match="block must be BasicBlock or Bottleneck"):
        ResNet(Linear, [2, 2, 2, 2])
    with pytest.raises(NotImplementedError, match="does not download pretrained weights"):
        models.resnet18(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match=r"^conv_algorithm must be one of \('xla', 'matmul'\), got 'fast'$"):
        models.resnet18(conv_algorithm="fast")


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_conv_algorithm_reaches_every_convolution(name):
    """``conv_algorithm="matmul"`` is every convolution's (parity: scenario resnet/forward-matmul/resnet18)."""
    model = getattr(models, name)(num_classes=10, conv_algorithm="matmul")
    x = jnp.zeros((1, *IMAGE), jnp.float32)
    algorithms: list[str] = []

    def spy(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and isinstance(context.module, Conv2d):
            algorithms.append(context.module.conv_algorithm)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(spy):
        jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    assert len(algorithms) == {"resnet18": 20, "resnet50": 53}[name]
    assert set(algorithms) == {"matmul"}


@live_torch
@pytest.mark.parametrize(
    ("shape", "kind"),
    [((3, 32, 32), ValueError), ((2, 4, 32, 32), RuntimeError)],
    ids=["unbatched", "channels"],
)
def test_bad_input_raises_pytorchs_error(shape, kind):
    import torch

    with pytest.raises(kind) as expected:
        _torch_resnet("resnet18", num_classes=3).eval()(torch.zeros(shape))
    model = models.resnet18(num_classes=3)
    with pytest.raises(kind) as raised:
        jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros(shape))
    assert str(expected.value) in str(raised.value)


# ----------------------------------------------------------------------- state_dict round trip


@live_torch
def test_torchvision_state_dict_loads_directly_and_comes_back_in_order():
    import torch

    torch.manual_seed(3)
    reference = _torch_resnet("resnet18", num_classes=10)
    with torch.no_grad():  # non-trivial buffers, so that a mixed-up key cannot pass
        for buffer in reference.buffers():
            buffer.add_(torch.rand(buffer.shape).to(buffer.dtype) if buffer.is_floating_point() else 5)
    torch_state = reference.state_dict()
    variables = load_torch_state_dict(_template("resnet18"), torch_state)  # torch tensors, as they come
    back = to_torch_state_dict(variables)
    assert list(back) == list(torch_state)
    assert _digests(back) == _digests({k: v for k, v in torch_state.items()})
    twin = _torch_resnet("resnet18", num_classes=10)
    twin.load_state_dict({key: torch.from_numpy(value) for key, value in back.items()})  # strict


@live_torch
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("resnet50", {"replace_stride_with_dilation": [False, True, True]}), ("resnet18", {"num_classes": 4})],
    ids=["dilated", "classes"],
)
def test_keys_and_shapes_match_the_pytorch_reference(name, kwargs):
    expected = [(k, tuple(v.shape)) for k, v in _torch_resnet(name, **kwargs).state_dict().items()]
    placeholders = jax.tree_util.tree_map(
        lambda s: np.zeros(s.shape, s.dtype), _abstract_variables(getattr(models, name)(**kwargs))
    )
    ours = to_torch_state_dict(placeholders, key_order=[k for k, _ in expected])
    assert [(k, v.shape) for k, v in ours.items()] == expected


# ------------------------------------------------------------------------------- modes


@pytest.fixture(scope="module")
def tiny_setup():
    """The tiny network with numpy weights (init's random number generator compiles for a minute here)."""
    model = _tiny()
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 3, 64, 64)), jnp.float32)  # 8 values per channel in layer4

    def value(path: Any, leaf: Any) -> np.ndarray:
        name = jax.tree_util.keystr(path)
        if "num_batches_tracked" in name:
            return np.zeros(leaf.shape, leaf.dtype)
        if "running_var" in name:
            return rng.uniform(0.5, 1.5, leaf.shape).astype(leaf.dtype)
        scale = np.sqrt(2.0 / np.prod(leaf.shape[1:])) if len(leaf.shape) > 1 else 0.1
        return (rng.standard_normal(leaf.shape) * scale + ("weight" in name and len(leaf.shape) == 1)).astype(
            leaf.dtype
        )

    variables = jax.tree_util.tree_map_with_path(value, _abstract_variables(model))
    return model, variables, x


def test_train_updates_every_batchnorm_and_eval_updates_none(tiny_setup):
    model, variables, x = tiny_setup
    with pytest.raises(ValueError, match=r"mutable=\['batch_stats'\]"):
        model.apply(variables, x)  # train=True is the default, as a fresh PyTorch module
    logits, updated = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    counts = [leaf for path, leaf in to_torch_state_dict(updated).items() if path.endswith("num_batches_tracked")]
    assert logits.shape == (2, 3) and len(counts) == 12 and all(int(c) == 1 for c in counts)
    eval_logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    assert eval_logits.shape == (2, 3) and not np.allclose(eval_logits, logits)
    with pytest.raises(TypeError, match="train must be a bool"):
        model.apply(variables, x, train=None)


def test_eager_and_jit_agree(tiny_setup):
    model, variables, x = tiny_setup

    def forward(variables: Any, x: jax.Array) -> Any:
        logits, updated = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return logits, updated, model.apply({**variables, **updated}, x, train=False)

    eager = forward(variables, x)
    jitted = jax.jit(forward)(variables, x)
    # The same operations; XLA may fuse and order the jitted program's arithmetic differently.
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_group_norm_layers_have_no_buffers():
    model = _tiny(norm_layer=lambda channels: GroupNorm(8, channels))
    variables = _abstract_variables(model)
    assert "batch_stats" not in variables
    assert variables["params"]["layer2"]["0"]["downsample"]["1"]["weight"].shape == (128,)


# --------------------------------------------------------------------------- torch_init


def test_zero_init_residual_zeroes_the_last_norm_of_every_block():
    variables = torch_init(models.resnet18(zero_init_residual=True), Generator(0), jnp.zeros((1, *IMAGE)), train=False)
    state = to_torch_state_dict(variables)
    last = [k for k in state if k.startswith("layer") and k.endswith("bn2.weight")]
    assert len(last) == 8 and all(not state[k].any() for k in last)
    assert all((state[k] == 1).all() for k in state if k.endswith("bn1.weight"))


@live_torch
def test_torch_init_with_group_norm_matches_pytorch():
    import torch

    torch.manual_seed(21)
    expected = _torch_resnet("resnet18", num_classes=5, norm_layer=lambda c: torch.nn.GroupNorm(8, c)).state_dict()
    model = models.resnet18(num_classes=5, norm_layer=lambda c: GroupNorm(8, c))
    variables = torch_init(model, Generator(21), jnp.zeros((1, *IMAGE)), train=False)
    assert _digests(to_torch_state_dict(variables)) == _digests(expected)


@live_torch
def test_torch_init_of_a_resnet_inside_a_model_matches_pytorch():
    """The subtree replay at a submodule's path: a backbone then a head, drawn in that order."""
    import torch

    torch.manual_seed(22)
    expected = torch.nn.Sequential(_torch_resnet("resnet18", num_classes=4), torch.nn.Linear(4, 2)).state_dict()
    model = Sequential(models.resnet18(num_classes=4), Linear(4, 2))
    generator = Generator(22)
    variables = torch_init(model, generator, jnp.zeros((1, *IMAGE)), train=False)
    assert _digests(to_torch_state_dict(variables)) == _digests(expected)
    assert np.array_equal(generator.rand(8), torch.rand(8).numpy())  # the generators end in step


class _Scaled(nn.Module):
    """A module whose replay redraws one of its two parameters (the other keeps init's value)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        drawn = self.param("drawn", nn.initializers.normal(), (3,))
        kept = self.param("kept", nn.initializers.normal(), (3,))
        return x * drawn + kept


def _redraw_one(module: Any, params: dict[str, np.ndarray], generator: Generator) -> dict[str, np.ndarray]:
    return {**params, "drawn": generator.rand(3)}


register_torch_init(_Scaled, _redraw_one)


def test_torch_init_keeps_inits_value_of_what_a_replay_leaves_alone():
    x = jnp.ones((3,))
    variables = torch_init(_Scaled(), Generator(5), x)
    initial = _Scaled().init(jax.random.PRNGKey(0), x)  # torch_init's own key for the structure
    assert np.array_equal(variables["params"]["kept"], initial["params"]["kept"])
    assert np.array_equal(variables["params"]["drawn"], Generator(5).rand(3))


def test_subtree_registration_flag():
    with pytest.raises(ValueError, match="module_type must look like"):
        register_torch_init("not-a-spec", _redraw_one, subtree=True)
