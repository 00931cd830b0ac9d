"""The loss modules with buffers (``weight``, ``pos_weight``) as NNX modules.

``torch.nn.CrossEntropyLoss(weight=w)`` registers ``w`` as a buffer: it is in the
``state_dict`` (key ``weight``; a None weight is no key), moves with ``load_state_dict`` and is
never trained. The twin holds it the same way, as an :class:`flax.nnx.BatchStat` (torchsem's
NNX type of a buffer: ``nnx.state(model, nnx.BatchStat)`` is every buffer, and
``nnx.Optimizer(model, tx, wrt=nnx.Param)`` never sees it), at the path ``('weight',)``. The
linen module the twin runs keeps only the buffer's shape and dtype in its field (an array in a
static field would break ``nnx.jit``'s cache): the value it uses is the Variable's, through the
linen module's ``batch_stats`` collection.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from ..convert import to_jax
from ._twin import Twin, make_twin_class

__all__ = ["criterion_class"]


def criterion_class(linen_class: type) -> Any:
    """The NNX class of a torchsem loss module whose constructor may take buffers (``weight=``).

    Args:
      linen_class: a ``torchsem.nn`` loss class with ``_buffer_names`` (``CrossEntropyLoss``).

    Returns:
      A :class:`Twin` subclass with PyTorch's constructor signature plus an optional ``rngs``
      (nothing is drawn: the buffers are the constructor's arrays, copied).
    """

    def __init__(self: Twin, *args: Any, rngs: nnx.Rngs | None = None, **kwargs: Any) -> None:
        module: Any
        if len(args) == 1 and not kwargs and isinstance(args[0], linen_class):
            module = args[0]  # from_linen: an already built linen module of this class
        else:
            module = linen_class(*args, **kwargs)  # PyTorch's argument checks (size_average, reduce)
        buffers = {
            name: to_jax(getattr(module, name))
            for name in getattr(module, "_buffer_names", ())
            if getattr(module, name) is not None
        }
        # The field keeps a hashable stand-in; the bound module reads the batch_stats Variable.
        stand_ins = {name: jax.ShapeDtypeStruct(value.shape, value.dtype) for name, value in buffers.items()}
        linen_module = module.clone(parent=None, **stand_ins) if stand_ins else module
        Twin.__init__(self, linen_module, None, rngs=None)
        if buffers:
            self._bind({"batch_stats": buffers})

    return make_twin_class(linen_class, Twin, __init__, rngs_optional=True)
