"""Models as NNX modules: the source document's ``Net`` and torchvision's ResNets (PyTorch's state paths)."""

from ._document_net import Net as Net
from ._resnet import ResNet as ResNet
from ._resnet import resnet18 as resnet18
from ._resnet import resnet34 as resnet34
from ._resnet import resnet50 as resnet50
from ._resnet import resnet101 as resnet101
from ._resnet import resnet152 as resnet152

__all__ = ["Net", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
