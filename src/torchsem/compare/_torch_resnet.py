"""The PyTorch reference ResNet: torchvision's ``models/resnet.py`` network, built from ``torch.nn``.

torchvision's wheel cannot be used here (its C extension does not load with the CPU build of
PyTorch), so the PyTorch programs of the ``resnet`` scenarios build the network themselves, with
torchvision's structure, module names, registration order, construction order (a stage's first
``downsample`` is built before its block) and ``__init__`` re-initialisation loop, so that
``torch.manual_seed(s); torch_resnet("resnet18")`` is ``torch.manual_seed(s);
torchvision.models.resnet18()`` (keys, shapes and every initial value; checked once against
torchvision 0.28's own ``resnet.py``).

Only PyTorch programs call this: torch is imported inside the functions, so the package still
imports without torch.
"""

from __future__ import annotations

import functools
from typing import Any

# name -> (block, blocks per stage, groups, width_per_group), torchvision's model builders.
ARCHITECTURES: dict[str, tuple[str, tuple[int, int, int, int], int, int]] = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), 32, 8),
    "resnext101_64x4d": ("bottleneck", (3, 4, 23, 3), 64, 4),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128),
    "wide_resnet101_2": ("bottleneck", (3, 4, 23, 3), 1, 128),
}


@functools.cache
def torch_resnet_classes() -> dict[str, type]:
    """``{"BasicBlock": ..., "Bottleneck": ..., "ResNet": ...}``: the reference ``torch.nn.Module`` classes."""
    import torch
    from torch import nn

    def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
        return nn.Conv2d(
            cin, cout, kernel_size=3, stride=stride, padding=dilation, groups=groups, bias=False, dilation=dilation
        )

    def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1, norm=None):
            super().__init__()
            norm = norm or nn.BatchNorm2d
            if groups != 1 or base_width != 64:
                raise ValueError("BasicBlock only supports groups=1 and base_width=64")
            if dilation > 1:
                raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = norm(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = norm(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            # torchvision's execution order (forward hooks see it): the main path, then the shortcut.
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(y + shortcut)

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1, norm=None):
            super().__init__()
            norm = norm or nn.BatchNorm2d
            width = int(planes * (base_width / 64.0)) * groups
            self.conv1 = conv1x1(inplanes, width)
            self.bn1 = norm(width)
            self.conv2 = conv3x3(width, width, stride, groups, dilation)
            self.bn2 = norm(width)
            self.conv3 = conv1x1(width, planes * self.expansion)
            self.bn3 = norm(planes * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(y + shortcut)

    class ResNet(nn.Module):
        def __init__(
            self,
            block,
            layers,
            num_classes=1000,
            zero_init_residual=False,
            groups=1,
            width_per_group=64,
            replace_stride_with_dilation=None,
            norm_layer=None,
        ):
            super().__init__()
            norm = norm_layer or nn.BatchNorm2d
            self._norm_layer = norm
            self.inplanes = 64
            self.dilation = 1
            dilate = [False, False, False] if replace_stride_with_dilation is None else replace_stride_with_dilation
            if len(dilate) != 3:
                raise ValueError(f"replace_stride_with_dilation should be None or a 3-element tuple, got {dilate}")
            self.groups = groups
            self.base_width = width_per_group
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = norm(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._stage(block, 64, layers[0])
            self.layer2 = self._stage(block, 128, layers[1], 2, dilate[0])
            self.layer3 = self._stage(block, 256, layers[2], 2, dilate[1])
            self.layer4 = self._stage(block, 512, layers[3], 2, dilate[2])
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)

            # torchvision's re-initialisation, over self.modules() (registration order).
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
            if zero_init_residual:
                for m in self.modules():
                    if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                        nn.init.constant_(m.bn3.weight, 0)
                    elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                        nn.init.constant_(m.bn2.weight, 0)

        def _stage(self, block, planes, count, stride=1, dilate=False):
            previous_dilation = self.dilation
            if dilate:
                self.dilation *= stride
                stride = 1
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                # Built before the block: its conv draws from the generator first.
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes * block.expansion, stride), self._norm_layer(planes * block.expansion)
                )
            blocks = [
                block(
                    self.inplanes,
                    planes,
                    stride,
                    downsample,
                    self.groups,
                    self.base_width,
                    previous_dilation,
                    self._norm_layer,
                )
            ]
            self.inplanes = planes * block.expansion
            for _ in range(1, count):
                blocks.append(
                    block(
                        self.inplanes,
                        planes,
                        groups=self.groups,
                        base_width=self.base_width,
                        dilation=self.dilation,
                        norm=self._norm_layer,
                    )
                )
            return nn.Sequential(*blocks)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck, "ResNet": ResNet}


def torch_resnet(name: str, **kwargs: Any) -> Any:
    """``torchvision.models.<name>(weights=None, **kwargs)`` built by the reference classes.

    Args:
      name: a key of :data:`ARCHITECTURES` (``"resnet18"``, ``"resnext50_32x4d"``, ...).
      kwargs: ``ResNet``'s keyword arguments (``num_classes``, ``zero_init_residual``, ...).
    """
    classes = torch_resnet_classes()
    block, layers, groups, width = ARCHITECTURES[name]
    block_class = classes["BasicBlock"] if block == "basic" else classes["Bottleneck"]
    options = {"groups": groups, "width_per_group": width, **kwargs}
    return classes["ResNet"](block_class, list(layers), **options)
