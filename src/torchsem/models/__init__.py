"""Models with PyTorch's layout and names: the source document's ``Net`` and torchvision's ResNets.

- :class:`Net`: the document's network (``AvgPool1d -> BatchNorm1d -> Linear``).
- :class:`ResNet`, :class:`BasicBlock`, :class:`Bottleneck` and the constructors
  ``resnet18/34/50/101/152``, ``resnext50_32x4d``, ``resnext101_32x8d``, ``resnext101_64x4d``,
  ``wide_resnet50_2``, ``wide_resnet101_2``: ``torchvision.models``' ResNets, whose variables
  are torchvision's ``state_dict`` keys.
"""

from ._document_net import Net as Net
from ._resnet import BasicBlock as BasicBlock
from ._resnet import Bottleneck as Bottleneck
from ._resnet import ResNet as ResNet
from ._resnet import resnet18 as resnet18
from ._resnet import resnet34 as resnet34
from ._resnet import resnet50 as resnet50
from ._resnet import resnet101 as resnet101
from ._resnet import resnet152 as resnet152
from ._resnet import resnext50_32x4d as resnext50_32x4d
from ._resnet import resnext101_32x8d as resnext101_32x8d
from ._resnet import resnext101_64x4d as resnext101_64x4d
from ._resnet import wide_resnet50_2 as wide_resnet50_2
from ._resnet import wide_resnet101_2 as wide_resnet101_2

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "Net",
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
