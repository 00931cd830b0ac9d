"""An NNX model seen as a linen module, for tools that take linen (``torchsem.compare.check_port``).

The adapter's variables are the NNX model's state at its NNX paths: ``params`` holds every
``nnx.Param``, ``batch_stats`` every ``nnx.BatchStat`` (``num_batches_tracked`` included), so
they are the PyTorch ``state_dict`` keys joined by ``/`` and :mod:`torchsem.convert` loads a
PyTorch ``state_dict`` into them. Its call takes ``train`` (PyTorch's ``model.train()``), merges
the variables into a copy of the NNX model, runs it in that mode and, in training, hands the
new running statistics back through the mutable ``batch_stats`` collection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
from flax import nnx

__all__ = ["as_linen"]


class _NNXAsLinen(nn.Module):
    """A linen module running an NNX model (see :func:`as_linen`).

    Attributes:
      template: ``() -> (graphdef, params, batch_stats, rest)``, the NNX model split once (a
        function, so the module stays hashable as linen needs).
    """

    template: Callable[[], tuple[Any, Any, Any, Any]]

    @nn.compact
    def __call__(self, *args: Any, train: bool = True, **kwargs: Any) -> Any:
        """The NNX model's forward, in training (``train=True``, PyTorch's default) or eval mode."""
        graphdef, params, stats, rest = self.template()
        own_params = {
            name: self.param(name, lambda key, value=value: value) for name, value in nnx.to_pure_dict(params).items()
        }
        own_stats = {
            name: self.variable("batch_stats", name, lambda value=value: value)
            for name, value in nnx.to_pure_dict(stats).items()
        }
        fresh_params, fresh_stats = _copy(params), _copy(stats)
        nnx.replace_by_pure_dict(fresh_params, own_params)
        nnx.replace_by_pure_dict(fresh_stats, {name: variable.value for name, variable in own_stats.items()})
        model = nnx.merge(graphdef, fresh_params, fresh_stats, _copy(rest))
        model.train() if train else model.eval()
        output = model(*args, **kwargs)
        if train and self.is_mutable_collection("batch_stats") and not self.is_initializing():
            for name, value in nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)).items():
                own_stats[name].value = value
        return output


def _copy(state: Any) -> Any:
    return jax.tree.map(lambda leaf: leaf, state)  # fresh Variables for this trace


def as_linen(model: Any) -> nn.Module:
    """A linen module that runs ``model`` (an NNX model), its state as linen ``params`` / ``batch_stats``.

    Its ``init`` returns the model's current state (nothing is drawn); ``apply(v, x,
    train=True, mutable=['batch_stats'])`` is ``model.train(); model(x)`` and ``apply(v, x,
    train=False)`` is ``model.eval(); model(x)``, on a copy: ``model`` itself never changes.
    Per-layer outputs are not visible to linen's method interception (NNX layers are not linen
    submodules), so ``check_port`` compares the model's output, loss, buffers, gradients and
    parameters, not each layer's output (pass ``activations=False``).

    Args:
      model: an NNX model of torchsem twins (or any NNX module).

    Returns:
      The linen module.

    PyTorch counterpart: none (an NNX port presented to linen tools).
    """
    graphdef, params, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)  # type: ignore[misc]
    parts = (graphdef, params, stats, rest)
    return _NNXAsLinen(template=lambda: parts)
