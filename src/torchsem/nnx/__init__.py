"""Flax NNX front end: every torchsem module as an NNX module, built on the linen modules' math.

One implementation of the math, two front ends: each class here is the :class:`Twin` of a
``torchsem.nn`` linen class (PyTorch's constructor signature plus keyword-only ``rngs``),
whose call runs the linen module's ``apply`` on state held as NNX Variables:

- parameters are :class:`flax.nnx.Param`, running statistics :class:`flax.nnx.BatchStat`,
  ``num_batches_tracked`` :class:`NumBatchesTracked` (a BatchStat), at PyTorch's
  ``state_dict`` paths (``('bn1', 'running_mean')``, ``('layer1', '0', 'conv1', 'weight')``);
- ``model.train()`` / ``model.eval()`` / ``nnx.view(model, use_running_average=True,
  deterministic=True)`` (flax >= 0.12.4) switch BatchNorm, InstanceNorm, Dropout and the
  dropout inside attention, Transformer and RNN modules as PyTorch's ``train()``/``eval()``
  do; a fresh model trains, as a fresh PyTorch module does;
- :func:`state_dict` / :func:`load_state_dict` with PyTorch's keys and order;
  :func:`torch_init` for ``torch.manual_seed(s); Model()``'s very numbers;
- ``nnx.jit``, ``nnx.grad``, ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` with
  ``torchsem.optim`` transformations, ``nnx.split``/``nnx.merge`` work as on any NNX module;
  :func:`jit_step` is ``nnx.jit`` for a training step without the per-call graph walk;
  :func:`trainable` is ``requires_grad=False`` as an NNX filter and :func:`value_and_grad`
  gives PyTorch's None gradients;
  :func:`wrap` turns any other linen module (a port) into a twin, :func:`from_linen` a built
  linen model into NNX containers of twins, and :func:`as_linen` an NNX model into a linen
  module (for ``torchsem.compare.check_port``);
- :class:`Sequential`, :class:`ModuleList`, :class:`ModuleDict` are PyTorch's containers as NNX
  modules (children ``"0"``, ``"1"``, ... or by key, as in PyTorch's ``state_dict``).
"""

from . import models as models
from ._as_linen import as_linen as as_linen
from ._containers import ModuleDict as ModuleDict
from ._containers import ModuleList as ModuleList
from ._containers import Sequential as Sequential
from ._from_linen import from_linen as from_linen
from ._from_linen import twin_of as twin_of
from ._grad import trainable as trainable
from ._grad import value_and_grad as value_and_grad
from ._jit_step import JitStep as JitStep
from ._jit_step import jit_step as jit_step
from ._layers import *  # noqa: F403  (one NNX class per torchsem.nn layer, listed in _layers.LAYERS)
from ._layers import LAYERS
from ._state_dict import IncompatibleKeys as IncompatibleKeys
from ._state_dict import linen_variables as linen_variables
from ._state_dict import load_state_dict as load_state_dict
from ._state_dict import state_dict as state_dict
from ._sync import convert_sync_batchnorm as convert_sync_batchnorm
from ._torch_init import torch_init as torch_init
from ._twin import Twin as Twin
from ._twin import mode_argument as mode_argument
from ._twin import skip_init as skip_init
from ._twin import twin_class as twin_class
from ._twin import wrap as wrap
from ._variables import NumBatchesTracked as NumBatchesTracked
from ._variables import variable_type as variable_type

__all__ = [
    *LAYERS,
    "IncompatibleKeys",
    "JitStep",
    "as_linen",
    "convert_sync_batchnorm",
    "from_linen",
    "ModuleDict",
    "ModuleList",
    "NumBatchesTracked",
    "Sequential",
    "Twin",
    "jit_step",
    "linen_variables",
    "load_state_dict",
    "mode_argument",
    "models",
    "skip_init",
    "state_dict",
    "torch_init",
    "trainable",
    "twin_class",
    "twin_of",
    "value_and_grad",
    "variable_type",
    "wrap",
]
