"""torchvision's ResNets as NNX modules: the linen ResNet whole in one twin, torchvision's ``state_dict`` paths."""

from __future__ import annotations

from typing import Any

from flax import nnx

from ... import models as _models
from .._examples import model_example
from .._twin import Twin, twin_class

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

# One twin for the whole network: a single linen apply per step, so an nnx.jit step compiles
# to the same program as the linen one; the NNX paths are torchvision's keys, nested
# (('layer1', '0', 'conv1', 'weight')).
_EXAMPLE = model_example((1, 3, 32, 32))
ResNet = twin_class(_models.ResNet, _EXAMPLE)


def _constructor(name: str) -> Any:
    build = getattr(_models, name)

    def constructor(*, weights: Any = None, progress: bool = True, rngs: nnx.Rngs, **kwargs: Any) -> Twin:
        module = build(weights=weights, progress=progress, **kwargs)
        return ResNet.from_linen(module, rngs=rngs)

    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = (
        f"``torchvision.models.{name}(weights=None, **kwargs)`` as an NNX module (``torchsem.models.{name}`` "
        "in one twin), with keyword-only ``rngs``."
    )
    return constructor


resnet18 = _constructor("resnet18")
resnet34 = _constructor("resnet34")
resnet50 = _constructor("resnet50")
resnet101 = _constructor("resnet101")
resnet152 = _constructor("resnet152")
