"""SyncBatchNorm for a whole model: ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` as a switch.

PyTorch rewrites a model's BatchNorm layers into ``SyncBatchNorm`` layers in place. A Flax module
cannot be rewritten that way: a model that creates its submodules in ``setup()`` (like
:class:`torchsem.models.Net`) builds them anew at every ``init``/``apply``, so there is no
field to replace. torchsem therefore decides at trace time instead:

- :func:`sync_batchnorm` is a context manager. While it is active, every torchsem
  :class:`~torchsem.nn.BatchNorm` (1d/2d/3d) whose own ``axis_name`` is None synchronises its
  statistics over the given mapped axis, exactly as if it had been built with
  ``axis_name=...``. A layer that names its own axis keeps it. The value is held in a
  :class:`contextvars.ContextVar` and read when the layer is called, i.e. while JAX traces.
- :func:`convert_sync_batchnorm` wraps a module in :class:`SyncBatchNormWrapper`, a Flax module
  that applies the switch around the wrapped module's ``__call__``. The wrapper shares the
  wrapped module's scope (``nn.share_scope``), so the variables are exactly the unwrapped
  model's (same names, same ``state_dict`` keys), and it can be used as a submodule.

Both take effect where ``axis_name`` is bound: inside ``jax.shard_map`` (or ``pmap``) over that
axis, as :func:`torchsem.parallel.make_train_step` runs the model. Where it is not bound (a
single-device or ``jax.jit``-sharded call) the batch the layer sees is the whole batch and the
layer uses its statistics, as ``torch.nn.SyncBatchNorm`` falls back to ``BatchNorm`` when no
process group is initialised; of a tuple of names, the bound ones are used. ``init`` never
synchronises, inside ``shard_map`` or outside (Flax's convention, as for a layer's own
``axis_name``): it normalises with the batch it is given and updates nothing.

Because the switch is read while tracing, enter it inside the function that is traced
(``jax.jit`` caches a trace by the function and its arguments, not by this context): a
function jitted and called once outside the context keeps its unsynchronised trace.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Hashable, Iterator
from typing import Any

import flax.linen as nn
import jax

__all__ = [
    "SyncBatchNormWrapper",
    "convert_sync_batchnorm",
    "is_axis_bound",
    "sync_batchnorm",
    "sync_batchnorm_axis_name",
]

_SYNC_AXIS_NAME: contextvars.ContextVar[Any] = contextvars.ContextVar("torchsem_sync_batchnorm_axis_name", default=None)


def _check_axis_name(axis_name: Any, *, allow_none: bool, caller: str) -> Any:
    """``axis_name`` as given, or a TypeError/ValueError naming what is expected."""
    if axis_name is None:
        if allow_none:
            return None
        raise ValueError(
            f"{caller}: axis_name is required (the mapped data-parallel axis, PyTorch's process_group), got None"
        )
    names = tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)
    if not names:
        raise ValueError(f"{caller}: axis_name must name at least one mapped axis, got {axis_name!r}")
    for name in names:
        if name is None or not isinstance(name, Hashable) or isinstance(name, (tuple, list)):
            raise TypeError(
                f"{caller}: axis_name must be a mapped axis name (e.g. 'data') or a tuple of them, got {axis_name!r}"
            )
    return tuple(axis_name) if isinstance(axis_name, list) else axis_name


def is_axis_bound(name: Hashable) -> bool:
    """Whether the current trace is mapped over the axis ``name`` (inside ``shard_map``/``pmap`` over it)."""
    try:
        jax.lax.axis_size(name)
    except NameError:  # JAX's "unbound axis name": not inside shard_map/pmap over it
        return False
    return True


def sync_batchnorm_axis_name() -> Any:
    """The axis of the innermost active :func:`sync_batchnorm`, where the current trace is mapped over it.

    :class:`torchsem.nn.BatchNorm` reads it while tracing when its own ``axis_name`` is None.

    Returns:
      The context's axis name (of a tuple, the names that are bound here), or None: no active
      context, or none of its axes is bound (outside ``shard_map``/``pmap`` over it the batch
      is whole, and BatchNorm's own statistics are the global ones).
    """
    axis_name = _SYNC_AXIS_NAME.get()
    if axis_name is None:
        return None
    if isinstance(axis_name, tuple):
        bound = tuple(name for name in axis_name if is_axis_bound(name))
        return bound or None
    return axis_name if is_axis_bound(axis_name) else None


@contextlib.contextmanager
def sync_batchnorm(axis_name: Any) -> Iterator[None]:
    """Synchronise every torchsem BatchNorm without its own ``axis_name`` over ``axis_name``.

    Inside the context a BatchNorm called with batch statistics uses the statistics of the
    whole batch across the devices of the mapped axis: the per-device counts, means and
    centred sums of squares are combined (count-weighted, so uneven or masked per-device
    batches are exact) and the running variance gets the unbiased correction from the global
    count, as ``torch.nn.SyncBatchNorm`` does. Contexts nest; ``sync_batchnorm(None)`` turns
    the switch off inside an outer one.

    Example::

        def per_device(variables, x):
            with torchsem.nn.sync_batchnorm("data"):
                return model.apply(variables, x, mutable=["batch_stats"])

        jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P()))

    Args:
      axis_name: the mapped axis (``jax.shard_map``/``pmap`` axis name) or a tuple of them;
        None disables synchronisation inside the context.

    Reproduces ``torch.nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group)`` for the
    duration of the context, ``axis_name`` standing for the process group.
    """
    token = _SYNC_AXIS_NAME.set(_check_axis_name(axis_name, allow_none=True, caller="sync_batchnorm"))
    try:
        yield
    finally:
        _SYNC_AXIS_NAME.reset(token)


class SyncBatchNormWrapper(nn.Module):
    """``module`` with every BatchNorm synchronised over ``axis_name`` (see :func:`convert_sync_batchnorm`).

    Calling the wrapper calls ``module`` with the same arguments inside
    :func:`sync_batchnorm`; ``init``/``apply`` therefore give the same variables as the wrapped
    module (its scope is shared, not nested), and any keyword arguments (``train=True``,
    ``mutable=...``) pass through.

    Attributes:
      module: the wrapped Flax module.
      axis_name: the mapped axis (or tuple of axes) the BatchNorm statistics span.
    """

    module: nn.Module
    axis_name: Any = "data"

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise TypeError(
                f"SyncBatchNormWrapper: module must be a flax.linen.Module, got {type(self.module).__name__}"
            )
        _check_axis_name(self.axis_name, allow_none=False, caller="SyncBatchNormWrapper")
        super().__post_init__()

    def setup(self) -> None:
        # The wrapped module's variables live where they would without the wrapper.
        nn.share_scope(self, self.module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``module(*args, **kwargs)`` with synchronised BatchNorm statistics."""
        with sync_batchnorm(self.axis_name):
            return self.module(*args, **kwargs)


def convert_sync_batchnorm(module: nn.Module, axis_name: Any = "data") -> SyncBatchNormWrapper:
    """Every BatchNorm of ``module`` synchronised over ``axis_name``: a wrapper module.

    Returns a :class:`SyncBatchNormWrapper`, itself a Flax module with the wrapped module's
    variables (``model.init``/``model.apply`` and checkpoints are unchanged). Its BatchNorm
    layers whose own ``axis_name`` is None compute the global statistics of the mapped axis
    (count-weighted mean, biased variance for normalising, unbiased for the running variance),
    as ``torch.nn.SyncBatchNorm`` does. Layers that set their own ``axis_name`` keep it.

    Args:
      module: the model (any Flax module; its BatchNorm layers are torchsem's).
      axis_name: the mapped data-parallel axis, default ``'data'`` (PyTorch's process group;
        its default, the whole world, is the whole mesh axis here).

    Returns:
      The wrapper module.

    Raises:
      TypeError: ``module`` is not a Flax module, or ``axis_name`` is not an axis name.
      ValueError: ``axis_name`` is None.

    Reproduces ``torch.nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=None)``.
    """
    return SyncBatchNormWrapper(module=module, axis_name=axis_name)
