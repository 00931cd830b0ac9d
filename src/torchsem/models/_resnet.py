"""torchvision's ResNets (``torchvision.models.resnet``) as Flax modules with PyTorch's layout and names.

``ResNet(block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
replace_stride_with_dilation=None, norm_layer=None)`` builds torchvision's network from torchsem's
modules, with torchvision's module names, so that the variables flatten to torchvision's
``state_dict`` keys in torchvision's order (``conv1.weight``, ``bn1.running_mean``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ..., ``fc.bias``) and
``torchsem.convert.load_torch_state_dict(variables, torchvision_model.state_dict())`` loads a
torchvision checkpoint as it is. Inputs are channels-first, ``(N, 3, H, W)``.

The constructors ``resnet18/34/50/101/152``, ``resnext50_32x4d``, ``resnext101_32x8d``,
``resnext101_64x4d``, ``wide_resnet50_2`` and ``wide_resnet101_2`` are torchvision's, without the
pretrained-weight download (load a checkpoint with ``load_torch_state_dict``).

:func:`torchsem.random.torch_init` reproduces ``torch.manual_seed(s); torchvision.models.resnet18()``
bit for bit: the construction-time default draws of every ``Conv2d`` and of ``fc`` in construction
order, then torchvision's re-initialisation loop (a replay registered for :class:`ResNet` at the
bottom of this file).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, GroupNorm, Linear, MaxPool2d, ReLU, Sequential
from ..nn.init import calculate_fan_in_and_fan_out, calculate_gain
from ..random import Generator, linear_torch_init, register_torch_init, registered_torch_inits

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]

NormLayer = Callable[[int], nn.Module]
Block = type["BasicBlock"] | type["Bottleneck"]
_STAGES = ("layer1", "layer2", "layer3", "layer4")


def _conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1, conv_algorithm: str = "xla"
) -> Conv2d:
    # parent=None: built inside a parent's setup, it is adopted where it is attached, not there.
    return Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
        conv_algorithm=conv_algorithm,
        parent=None,
    )


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1, conv_algorithm: str = "xla") -> Conv2d:
    return Conv2d(
        in_planes, out_planes, kernel_size=1, stride=stride, bias=False, conv_algorithm=conv_algorithm, parent=None
    )


_MODE_ARGUMENTS: dict[type, str | None] = {}


def _mode_argument(layer_type: type) -> str | None:
    """Which train/eval argument a layer's ``__call__`` takes: ``use_running_average``, ``train`` or none."""
    if layer_type not in _MODE_ARGUMENTS:
        try:
            parameters = inspect.signature(layer_type.__call__).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]  # (a mapping either way)
        argument = None
        if "use_running_average" in parameters:
            argument = "use_running_average"
        elif "train" in parameters:
            argument = "train"
        elif any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            argument = "use_running_average"  # a container (Sequential) hands it on to the layers that take it
        _MODE_ARGUMENTS[layer_type] = argument
    return _MODE_ARGUMENTS[layer_type]


def _call_in_mode(layer: Any, x: jax.Array, train: bool) -> jax.Array:
    """``layer(x)`` in PyTorch's train or eval mode, told the way the layer takes it.

    A BatchNorm takes ``use_running_average`` (True is ``eval()``); a GroupNorm has no mode.
    """
    argument = _mode_argument(type(layer))
    if argument == "use_running_average":
        return layer(x, use_running_average=not train)
    if argument == "train":
        return layer(x, train=train)
    return layer(x)


def _check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection, as torchvision's ``BasicBlock`` (ResNet-18/34).

    .. math::

        y = \\mathrm{relu}(\\mathrm{bn_2}(\\mathrm{conv_2}(\\mathrm{relu}(\\mathrm{bn_1}(\\mathrm{conv_1}(x)))))
            + \\mathrm{downsample}(x))

    with ``downsample`` the identity when None. ``conv1`` (3x3, ``stride``) maps ``inplanes`` to
    ``planes`` channels, ``conv2`` (3x3) keeps ``planes``; both without bias. Submodules
    ``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2``, ``downsample``, as torchvision names them.

    Attributes:
      inplanes, planes: input and output channels (``expansion = 1``).
      stride: of ``conv1``.
      downsample: the shortcut for a changed shape (torchvision's ``Sequential(conv1x1, norm)``),
        or None for the identity.
      groups, base_width: only 1 and 64 (as torchvision).
      dilation: only 1 (as torchvision).
      norm_layer: ``norm_layer(channels)`` makes each normalisation layer; default
        :class:`torchsem.nn.BatchNorm2d`.
      conv_algorithm: the convolutions' ``conv_algorithm`` (torchsem's option, not torchvision's:
        see :class:`torchsem.nn.Conv2d`).

    Raises:
      ValueError: ``groups != 1`` or ``base_width != 64``, with torchvision's message.
      NotImplementedError: ``dilation > 1``, with torchvision's message.

    Reproduces ``torchvision.models.resnet.BasicBlock(inplanes, planes, stride=1, downsample=None,
    groups=1, base_width=64, dilation=1, norm_layer=None)``.
    """

    expansion: ClassVar[int] = 1

    inplanes: int
    planes: int
    stride: int = 1
    downsample: nn.Module | None = None
    groups: int = 1
    base_width: int = 64
    dilation: int = 1
    norm_layer: NormLayer | None = None
    conv_algorithm: str = "xla"

    def __post_init__(self) -> None:
        # torchvision's checks, in its order, with its words.
        if self.groups != 1 or self.base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if self.dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        super().__post_init__()

    def setup(self) -> None:
        norm_layer = self.norm_layer or BatchNorm2d
        self.conv1 = _conv3x3(self.inplanes, self.planes, self.stride, conv_algorithm=self.conv_algorithm)
        self.bn1 = norm_layer(self.planes)
        self.relu = ReLU(inplace=True)
        self.conv2 = _conv3x3(self.planes, self.planes, conv_algorithm=self.conv_algorithm)
        self.bn2 = norm_layer(self.planes)

    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """The block's forward pass.

        Args:
          x: ``(N, inplanes, H, W)``.
          train: PyTorch's training mode (BatchNorm uses and updates batch statistics: apply
            with ``mutable=['batch_stats']``); False is eval mode.

        Returns:
          ``(N, planes, H', W')`` with ``H' = ceil(H / stride)``.
        """
        identity = x
        out = self.relu(_call_in_mode(self.bn1, self.conv1(x), train))
        out = _call_in_mode(self.bn2, self.conv2(out), train)
        if self.downsample is not None:
            identity = _call_in_mode(self.downsample, x, train)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1, 3x3 and 1x1 convolutions with a residual connection, as torchvision's ``Bottleneck`` (ResNet-50+).

    .. math::

        y = \\mathrm{relu}(\\mathrm{bn_3}(\\mathrm{conv_3}(h)) + \\mathrm{downsample}(x)),\\quad
        h = \\mathrm{relu}(\\mathrm{bn_2}(\\mathrm{conv_2}(\\mathrm{relu}(\\mathrm{bn_1}(\\mathrm{conv_1}(x))))))

    The stride sits on the 3x3 convolution (ResNet V1.5). With ``width = int(planes *
    (base_width / 64.0)) * groups``: ``conv1`` 1x1 ``inplanes -> width``, ``conv2`` 3x3 ``width ->
    width`` (``stride``, ``groups``, ``dilation``), ``conv3`` 1x1 ``width -> planes * 4``; no biases.
    Submodules ``conv1``, ``bn1``, ``conv2``, ``bn2``, ``conv3``, ``bn3``, ``relu``, ``downsample``.

    Attributes:
      inplanes, planes: input channels and the bottleneck's base width (output ``planes * 4``,
        ``expansion = 4``).
      stride, groups, dilation: of ``conv2``.
      downsample: the shortcut for a changed shape, or None for the identity.
      base_width: channels per group at ``planes = 64`` (ResNeXt's ``width_per_group``).
      norm_layer: ``norm_layer(channels)`` makes each normalisation layer; default
        :class:`torchsem.nn.BatchNorm2d`.
      conv_algorithm: the convolutions' ``conv_algorithm`` (torchsem's option, not torchvision's:
        see :class:`torchsem.nn.Conv2d`).

    Reproduces ``torchvision.models.resnet.Bottleneck(inplanes, planes, stride=1, downsample=None,
    groups=1, base_width=64, dilation=1, norm_layer=None)``.
    """

    expansion: ClassVar[int] = 4

    inplanes: int
    planes: int
    stride: int = 1
    downsample: nn.Module | None = None
    groups: int = 1
    base_width: int = 64
    dilation: int = 1
    norm_layer: NormLayer | None = None
    conv_algorithm: str = "xla"

    def setup(self) -> None:
        norm_layer = self.norm_layer or BatchNorm2d
        width = int(self.planes * (self.base_width / 64.0)) * self.groups
        self.conv1 = _conv1x1(self.inplanes, width, conv_algorithm=self.conv_algorithm)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, width, self.stride, self.groups, self.dilation, self.conv_algorithm)
        self.bn2 = norm_layer(width)
        self.conv3 = _conv1x1(width, self.planes * self.expansion, conv_algorithm=self.conv_algorithm)
        self.bn3 = norm_layer(self.planes * self.expansion)
        self.relu = ReLU(inplace=True)

    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """The block's forward pass.

        Args:
          x: ``(N, inplanes, H, W)``.
          train: PyTorch's training mode (apply with ``mutable=['batch_stats']``); False is eval.

        Returns:
          ``(N, planes * 4, H', W')``.
        """
        identity = x
        out = self.relu(_call_in_mode(self.bn1, self.conv1(x), train))
        out = self.relu(_call_in_mode(self.bn2, self.conv2(out), train))
        out = _call_in_mode(self.bn3, self.conv3(out), train)
        if self.downsample is not None:
            identity = _call_in_mode(self.downsample, x, train)
        return self.relu(out + identity)


def _stage_plans(
    block: Block, layers: Sequence[int], groups: int, width_per_group: int, replace: Sequence[bool]
) -> list[list[dict[str, Any]]]:
    """The blocks of the four stages as torchvision's ``_make_layer`` builds them.

    Each block is the keyword arguments of ``block(...)``, plus ``"downsample"``: the channel
    counts and stride of the shortcut's 1x1 convolution, or None.
    """
    expansion = block.expansion
    inplanes, dilation = 64, 1
    plans = []
    for planes, count, stride, dilate in zip((64, 128, 256, 512), layers, (1, 2, 2, 2), (False, *replace), strict=True):
        previous_dilation = dilation
        if dilate:
            dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or inplanes != planes * expansion:
            downsample = (inplanes, planes * expansion, stride)
        blocks = [
            {
                "inplanes": inplanes,
                "planes": planes,
                "stride": stride,
                "downsample": downsample,
                "dilation": previous_dilation,
            }
        ]
        inplanes = planes * expansion
        blocks += [
            {"inplanes": inplanes, "planes": planes, "stride": 1, "downsample": None, "dilation": dilation}
            for _ in range(1, count)
        ]
        for entry in blocks:
            entry.update(groups=groups, base_width=width_per_group)
        plans.append(blocks)
    return plans


class ResNet(nn.Module):
    """torchvision's ResNet: a 7x7 stem, four stages of residual blocks, global pooling and ``fc``.

    ``conv1`` (7x7, stride 2, 3 -> 64), ``bn1``, ``relu``, ``maxpool`` (3x3, stride 2, padding 1),
    ``layer1`` .. ``layer4`` (:class:`torchsem.nn.Sequential` of ``layers[i]`` blocks named
    ``"0"``, ``"1"``, ...; 64, 128, 256, 512 base channels; stride 1, 2, 2, 2, the first block of a
    stage carrying the stride and a ``downsample`` shortcut ``Sequential(conv1x1, norm)`` when the
    shape changes), ``avgpool`` (adaptive, to 1x1), flatten, ``fc`` (``512 * expansion ->
    num_classes``). The variables are torchvision's ``state_dict`` keys, in its order.

    Attributes:
      block: :class:`BasicBlock` or :class:`Bottleneck`.
      layers: the number of blocks in each of the four stages.
      num_classes: ``fc``'s outputs.
      zero_init_residual: :func:`torchsem.random.torch_init` zeroes the last norm weight of every
        block (``bn3`` of a Bottleneck, ``bn2`` of a BasicBlock), so each block starts as the
        identity; the module itself is unchanged.
      groups, width_per_group: ResNeXt's cardinality and channels per group (Bottleneck only).
      replace_stride_with_dilation: three bools: replace the stride of ``layer2``..``layer4``
        by a dilation (Bottleneck only), or None.
      norm_layer: ``norm_layer(channels)`` makes each normalisation layer; default
        :class:`torchsem.nn.BatchNorm2d` (e.g. ``lambda c: GroupNorm(32, c)``).
      conv_algorithm: every convolution's ``conv_algorithm`` (torchsem's option, not
        torchvision's): ``"xla"`` (``lax.conv``) or the opt-in ``"matmul"``, one matrix product
        per kernel tap, faster on CPUs and equal up to float32 summation order (see
        :class:`torchsem.nn.Conv2d` and ``benchmarks/README.md``).

    Raises:
      ValueError: ``replace_stride_with_dilation`` not None or of 3 elements, and the blocks'
        errors (``BasicBlock only supports groups=1 and base_width=64``), in torchvision's words.
      NotImplementedError: a dilated BasicBlock, in torchvision's words.
      IndexError: fewer than four stages in ``layers`` (torchvision indexes ``layers[3]``).

    Reproduces ``torchvision.models.resnet.ResNet(block, layers, num_classes=1000,
    zero_init_residual=False, groups=1, width_per_group=64, replace_stride_with_dilation=None,
    norm_layer=None)``; ``__call__(x, train)`` stands for ``model.train()``/``model.eval()`` then
    ``model(x)``.
    """

    block: Block
    layers: Sequence[int]
    num_classes: int = 1000
    zero_init_residual: bool = False
    groups: int = 1
    width_per_group: int = 64
    replace_stride_with_dilation: Sequence[bool] | None = None
    norm_layer: NormLayer | None = None
    conv_algorithm: str = "xla"

    def __post_init__(self) -> None:
        if not (isinstance(self.block, type) and issubclass(self.block, (BasicBlock, Bottleneck))):
            raise TypeError(f"ResNet: block must be BasicBlock or Bottleneck (or a subclass), got {self.block!r}")
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, Sequence):
            raise TypeError(f"ResNet: layers must be a sequence of 4 ints (blocks per stage), got {self.layers!r}")
        if len(self.layers) < 4:
            raise IndexError(f"ResNet: layers must give the blocks of 4 stages, got {list(self.layers)!r}")
        if len(self.layers) > 4:
            raise ValueError(f"ResNet: layers must give the blocks of 4 stages, got {list(self.layers)!r}")
        for count in self.layers:
            _check_int("ResNet", "every entry of layers", count, 1)
        _check_int("ResNet", "num_classes", self.num_classes, 0)
        _check_int("ResNet", "groups", self.groups, 1)
        _check_int("ResNet", "width_per_group", self.width_per_group, 1)
        if not isinstance(self.zero_init_residual, bool):
            raise TypeError(f"ResNet: zero_init_residual must be a bool, got {self.zero_init_residual!r}")
        # Conv2d owns the list of algorithms: a throwaway one checks the name at construction.
        Conv2d(1, 1, kernel_size=1, conv_algorithm=self.conv_algorithm, parent=None)
        replace = self.replace_stride_with_dilation
        if replace is None:
            replace = [False, False, False]
        if len(replace) != 3:
            raise ValueError(f"replace_stride_with_dilation should be None or a 3-element tuple, got {replace}")
        # torchvision builds every block in __init__, so the blocks' own errors come at construction.
        for stage in _resnet_plans(self):
            for entry in stage:
                self.block(**{**entry, "downsample": None}, norm_layer=self.norm_layer, parent=None)
        super().__post_init__()

    def setup(self) -> None:
        norm_layer = self.norm_layer or BatchNorm2d
        self.conv1 = Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False, conv_algorithm=self.conv_algorithm)
        self.bn1 = norm_layer(64)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        for stage in _resnet_plans(self):
            blocks = []
            for entry in stage:
                downsample = None
                if entry["downsample"] is not None:
                    inplanes, outplanes, stride = entry["downsample"]
                    downsample = Sequential(
                        _conv1x1(inplanes, outplanes, stride, self.conv_algorithm), norm_layer(outplanes), parent=None
                    )
                blocks.append(
                    self.block(
                        **{**entry, "downsample": downsample},
                        norm_layer=self.norm_layer,
                        conv_algorithm=self.conv_algorithm,
                        parent=None,
                    )
                )
            stages.append(Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(512 * self.block.expansion, self.num_classes)

    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """The forward pass: logits of a batch of images.

        Args:
          x: ``(N, 3, H, W)`` float32 images (channels first).
          train: PyTorch's ``model.train()`` (the default, as a fresh PyTorch module): every
            BatchNorm normalises with the batch statistics and updates its running statistics,
            so apply with ``mutable=['batch_stats']``. False is ``model.eval()``: the running
            statistics are used and nothing is updated.

        Returns:
          The logits, ``(N, num_classes)``.

        Raises:
          ValueError: BatchNorm2d's ``expected 4D input`` for an input that is not ``(N, C, H, W)``
            (as torchvision), and the layers' own errors (a wrong channel count, too small an image).
        """
        if not isinstance(train, bool):
            raise TypeError(f"ResNet: train must be a bool (True: model.train(), False: model.eval()), got {train!r}")
        x = _call_in_mode(self.bn1, self.conv1(jnp.asarray(x)), train)
        x = cast(jax.Array, self.maxpool(self.relu(x)))  # (no return_indices)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x, train=train)
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def _resnet_plans(resnet: ResNet) -> list[list[dict[str, Any]]]:
    # A function, not a method: Flax wraps a module's methods, and this runs on unbound modules too.
    replace = resnet.replace_stride_with_dilation
    flags = tuple(bool(r) for r in replace) if replace is not None else (False, False, False)
    return _stage_plans(resnet.block, resnet.layers, resnet.groups, resnet.width_per_group, flags)


# ----------------------------------------------------------------------------- constructors


def _overwrite_named_param(kwargs: dict[str, Any], name: str, value: Any) -> None:
    # torchvision's _ovewrite_named_param: a variant's own value may be repeated, not changed.
    if name in kwargs:
        if kwargs[name] != value:
            raise ValueError(f"The parameter '{name}' expected value {value} but got {kwargs[name]} instead.")
    else:
        kwargs[name] = value


def _resnet(block: Block, layers: list[int], weights: Any, progress: bool, kwargs: dict[str, Any]) -> ResNet:
    if weights is not None:
        raise NotImplementedError(
            "torchsem.models does not download pretrained weights: build the model with weights=None and load "
            "torchvision's checkpoint with torchsem.convert.load_torch_state_dict(variables, state_dict)"
        )
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    return ResNet(block, layers, **kwargs)


def resnet18(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-18: :class:`BasicBlock`, ``[2, 2, 2, 2]``; ``torchvision.models.resnet18(weights=None, **kwargs)``.

    ``kwargs`` are :class:`ResNet`'s (``num_classes``, ``zero_init_residual``, ``norm_layer``, ...);
    ``weights`` must be None (no download), ``progress`` is accepted for torchvision's signature.
    """
    return _resnet(BasicBlock, [2, 2, 2, 2], weights, progress, kwargs)


def resnet34(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-34: :class:`BasicBlock`, ``[3, 4, 6, 3]``; ``torchvision.models.resnet34(weights=None, **kwargs)``."""
    return _resnet(BasicBlock, [3, 4, 6, 3], weights, progress, kwargs)


def resnet50(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-50: :class:`Bottleneck`, ``[3, 4, 6, 3]``; ``torchvision.models.resnet50(weights=None, **kwargs)``."""
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, progress, kwargs)


def resnet101(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-101: :class:`Bottleneck`, ``[3, 4, 23, 3]``; ``torchvision.models.resnet101(weights=None, **kwargs)``."""
    return _resnet(Bottleneck, [3, 4, 23, 3], weights, progress, kwargs)


def resnet152(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-152: :class:`Bottleneck`, ``[3, 8, 36, 3]``; ``torchvision.models.resnet152(weights=None, **kwargs)``."""
    return _resnet(Bottleneck, [3, 8, 36, 3], weights, progress, kwargs)


def resnext50_32x4d(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d: ResNet-50 with ``groups=32, width_per_group=4``; ``torchvision.models.resnext50_32x4d``.

    Raises:
      ValueError: ``groups`` or ``width_per_group`` given with another value (torchvision's message).
    """
    _overwrite_named_param(kwargs, "groups", 32)
    _overwrite_named_param(kwargs, "width_per_group", 4)
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, progress, kwargs)


def resnext101_32x8d(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNeXt-101 32x8d: ResNet-101 with ``groups=32, width_per_group=8``; ``torchvision.models.resnext101_32x8d``."""
    _overwrite_named_param(kwargs, "groups", 32)
    _overwrite_named_param(kwargs, "width_per_group", 8)
    return _resnet(Bottleneck, [3, 4, 23, 3], weights, progress, kwargs)


def resnext101_64x4d(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNeXt-101 64x4d: ResNet-101 with ``groups=64, width_per_group=4``; ``torchvision.models.resnext101_64x4d``."""
    _overwrite_named_param(kwargs, "groups", 64)
    _overwrite_named_param(kwargs, "width_per_group", 4)
    return _resnet(Bottleneck, [3, 4, 23, 3], weights, progress, kwargs)


def wide_resnet50_2(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with ``width_per_group=128``; ``torchvision.models.wide_resnet50_2``."""
    _overwrite_named_param(kwargs, "width_per_group", 64 * 2)
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, progress, kwargs)


def wide_resnet101_2(*, weights: None = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """Wide ResNet-101-2: ResNet-101 with ``width_per_group=128``; ``torchvision.models.wide_resnet101_2``."""
    _overwrite_named_param(kwargs, "width_per_group", 64 * 2)
    return _resnet(Bottleneck, [3, 4, 23, 3], weights, progress, kwargs)


# ----------------------------------------------------------------------------- init replay

Params = dict[str, Any]


def _construct_conv(own: Params | None, generator: Generator) -> None:
    """``nn.Conv2d.reset_parameters`` at construction: the weight's ``kaiming_uniform_(a=sqrt(5))`` draw.

    Every convolution's weight is redrawn by the re-initialisation loop, so only the generator's
    position matters here: ``uniform_`` takes one 32-bit word per float32 element, as ``rand``
    does, which skips the scale-and-shift (20 times faster on a ResNet-50's 23M weights).
    """
    if own is None:
        return
    weight = own["weight"]
    if weight.size:  # PyTorch draws nothing for a zero-element weight
        generator.rand(weight.shape, dtype=weight.dtype)
    if "bias" in own:  # a conv with a bias (not torchvision's) keeps reset_parameters' draw
        fan_in, _ = calculate_fan_in_and_fan_out(weight.shape)
        bias_bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        own["bias"] = generator.uniform(own["bias"].shape, -bias_bound, bias_bound, dtype=own["bias"].dtype)


def _construct_norm(norm_layer: NormLayer, own: Params | None, generator: Generator) -> None:
    """The norm layer's own ``reset_parameters`` at construction (BatchNorm, GroupNorm: ones and zeros)."""
    if not own:
        return
    layer = norm_layer(int(own["weight"].shape[0]) if "weight" in own else 1)
    inits = registered_torch_inits()
    replay = next((inits[klass] for klass in type(layer).__mro__ if klass in inits), None)
    if replay is None:
        raise NotImplementedError(
            f"torch_init has no PyTorch initialisation registered for the norm layer {type(layer).__name__}"
        )
    own.update(replay(layer, dict(own), generator))


def _kaiming_normal_fan_out(own: Params | None, generator: Generator) -> None:
    """``kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")``: ``N(0, 2 / fan_out)``."""
    if own is None or not own["weight"].size:  # PyTorch leaves a zero-element tensor alone
        return
    weight = own["weight"]
    _, fan_out = calculate_fan_in_and_fan_out(weight.shape)
    std = calculate_gain("relu", 0) / math.sqrt(fan_out)
    own["weight"] = generator.normal(weight.shape, 0.0, std, dtype=weight.dtype)


def _norm_constants(norm_layer: NormLayer, own: Params | None) -> None:
    """torchvision sets ``weight = 1, bias = 0`` of every ``BatchNorm2d``/``GroupNorm`` (others keep theirs)."""
    if not own:
        return
    layer = norm_layer(int(own["weight"].shape[0]) if "weight" in own else 1)
    if isinstance(layer, (BatchNorm2d, GroupNorm)):
        for name, value in (("weight", 1), ("bias", 0)):
            if name in own:
                own[name] = np.full_like(own[name], value)


def _blocks(params: Params) -> list[Params]:
    """Every block's parameters, stage by stage, in block order ("0", "1", ...)."""
    return [params[stage][key] for stage in _STAGES if stage in params for key in sorted(params[stage], key=int)]


_BLOCK_LAYERS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def _resnet_torch_init(module: ResNet, params: Params, generator: Generator) -> Params:
    """``torch.manual_seed(s); torchvision.models.resnet*()``: torchvision's ``ResNet.__init__`` draws.

    1. Construction, in torchvision's order: ``conv1`` and ``bn1``; per stage the first block's
       ``downsample`` (built before the block), then each block's convolutions and norms; ``fc``.
       Each ``Conv2d`` draws ``kaiming_uniform_(a=sqrt(5))``, ``fc`` its weight and bias
       (``nn.Linear.reset_parameters``); norms draw nothing.
    2. The re-initialisation loop over ``self.modules()`` (registration order: a block's
       convolutions, then its ``downsample``): ``kaiming_normal_(mode="fan_out",
       nonlinearity="relu")`` for every ``Conv2d``, ``weight = 1, bias = 0`` for every
       ``BatchNorm2d``/``GroupNorm``; ``fc`` keeps its construction values.
    3. ``zero_init_residual``: ``bn3.weight = 0`` in every Bottleneck, ``bn2.weight = 0`` in every
       BasicBlock.
    """
    new: Params = jax.tree_util.tree_map(np.array, params)  # nested copies, updated in place below
    norm_layer = module.norm_layer or BatchNorm2d
    blocks = _blocks(new)

    _construct_conv(new.get("conv1"), generator)
    _construct_norm(norm_layer, new.get("bn1"), generator)
    for block in blocks:
        shortcut = block.get("downsample", {})
        _construct_conv(shortcut.get("0"), generator)
        _construct_norm(norm_layer, shortcut.get("1"), generator)
        for conv, norm in _BLOCK_LAYERS:
            _construct_conv(block.get(conv), generator)
            _construct_norm(norm_layer, block.get(norm), generator)
    fc = new["fc"]
    new["fc"] = linear_torch_init(Linear(fc["weight"].shape[1], fc["weight"].shape[0]), fc, generator)

    _kaiming_normal_fan_out(new.get("conv1"), generator)
    _norm_constants(norm_layer, new.get("bn1"))
    for block in blocks:
        for conv, norm in _BLOCK_LAYERS:
            _kaiming_normal_fan_out(block.get(conv), generator)
            _norm_constants(norm_layer, block.get(norm))
        shortcut = block.get("downsample", {})
        _kaiming_normal_fan_out(shortcut.get("0"), generator)
        _norm_constants(norm_layer, shortcut.get("1"))

    if module.zero_init_residual:
        last = "bn3" if issubclass(module.block, Bottleneck) else "bn2"
        for block in blocks:
            if "weight" in block.get(last, {}):
                block[last]["weight"] = np.zeros_like(block[last]["weight"])
    return new


register_torch_init(ResNet, _resnet_torch_init, subtree=True)
