"""Data-parallel training: PyTorch's ``DistributedDataParallel`` + ``SyncBatchNorm`` on a JAX device mesh.

PyTorch scales the document's loop out with one process per device::

    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = DistributedDataParallel(model)          # parameters replicated, gradients averaged
    for x, y in loader:                             # DistributedSampler: each rank its shard
        optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()

and promises the result of one process on the global batch. Here the same run is one SPMD
program over a :class:`jax.sharding.Mesh` with a ``data`` axis::

    mesh = torchsem.parallel.data_mesh()                            # every device on axis 'data'
    step = torchsem.parallel.make_train_step(model, cross_entropy, tx, mesh)
    state = torchsem.parallel.replicate(torchsem.train.TrainState.create(variables, tx), mesh)
    state, metrics = step(state, (x, y))                            # x, y: the GLOBAL batch
    state, metrics = torchsem.train.train_loop(step, state, (xs, ys))   # N steps, one scan

What the step does, inside :func:`jax.shard_map` over the ``data`` axis:

- the global batch (leading axis) is split into one contiguous block per device, as
  ``DistributedSampler`` with ``shuffle=False`` gives rank ``k`` its block; parameters,
  BatchNorm's running statistics and the optimizer state are replicated;
- every torchsem BatchNorm without its own ``axis_name`` is synchronised over the data axis
  (:func:`torchsem.nn.sync_batchnorm`): one fused ``all_gather`` of the per-device
  ``(count, mean, residual, centred sum of squares)`` forward and one ``psum`` of
  ``(sum(dy), sum(dy * (x - mean)))`` backward per layer (only where the layer's input
  gradient is needed: in the document's Net nothing upstream of bn1 has parameters, and XLA
  drops it), so the normalisation, the running statistics (unbiased with the global count)
  and the gradients are those of the global batch;
- the loss is the mean over the global batch's real examples, ``(1 / N) sum_i loss_i``, and
  the gradients of all parameters (with the loss, for reporting) are summed across devices in
  one ``psum`` (DDP's gradient bucket), then divided by ``N``. With equal per-device counts
  this is exactly DDP's average of the per-device mean-loss gradients;
- the optimizer steps the replicated parameters on every device (torchsem's optimizers:
  None gradients skip their parameter, ``requires_grad`` masks and ``frozen`` names as in
  :func:`torchsem.train.make_train_step`).

Uneven batches: a batch ``(x, y, mask)`` carries a per-example bool ``mask``; padded rows
(``mask`` False) are replaced by zeros before the model and the loss see them, are left out of
every BatchNorm's statistics and of the loss, and so the step equals one device on the
concatenation of the real examples (:func:`pad_batch` pads a global batch whose size the
device count does not divide; :func:`pad_shards` builds a batch from per-device shards of
different sizes). A global batch that the device count does not divide, without a mask,
raises ``ValueError``; so do a mask that is not ``(N,)``, and a ``loss_fn`` that does not return
the scalar batch mean (``TypeError`` for a mask that is not bool). A batch with no real example
gives NaN (0 / 0), and one with fewer than two real values per BatchNorm channel gives NaN/inf
statistics (under ``jit`` nothing can raise). Not provided: DDP with unsynchronised BatchNorm
(per-device statistics, rank 0's buffers broadcast) and gradient accumulation (``no_sync``).

Several hosts: call ``jax.distributed.initialize()`` in every process before anything else
touches JAX; ``data_mesh()`` then spans every process's devices (``jax.devices()`` is global),
and each process passes its own rows through :func:`shard_batch`, which assembles the global
array from the process-local data (``jax.make_array_from_process_local_data``). The step itself
does not change. tests/test_multihost.py runs it in two processes (4 host CPU devices each, gloo
CPU collectives, a loopback coordinator) against the single-process 8-device run and PyTorch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import autograd, optim
from .convert import host_copy
from .nn import BatchNorm, sync_batchnorm
from .train import Batch, LossFn, TrainState

__all__ = ["data_mesh", "make_train_step", "pad_batch", "pad_shards", "replicate", "shard_batch"]

DATA_AXIS = "data"
"""The default name of the mesh axis the batch is split over."""


# ----------------------------------------------------------------------------------------------
# Meshes and placement
# ----------------------------------------------------------------------------------------------


def data_mesh(devices: Sequence[jax.Device] | None = None, axis_name: str = DATA_AXIS) -> Mesh:
    """A one-axis mesh over ``devices`` (default: every device, of every process) named ``axis_name``.

    Args:
      devices: the devices, in rank order (default ``jax.devices()``).
      axis_name: the axis name, default ``'data'``.

    Returns:
      ``Mesh(np.array(devices), (axis_name,))``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("data_mesh: devices must not be empty")
    return Mesh(np.array(devices), (axis_name,))


def _axis_names(axis_name: Any) -> tuple[Hashable, ...]:
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _device_count(mesh: Mesh, axis_name: Any) -> int:
    names = _axis_names(axis_name)
    missing = [name for name in names if name not in mesh.axis_names]
    if missing:
        raise ValueError(f"axis_name {axis_name!r} is not an axis of the mesh; its axes are {mesh.axis_names}")
    return math.prod(int(mesh.shape[name]) for name in names)


def _check_mesh(mesh: Any, caller: str) -> Mesh:
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{caller}: mesh must be a jax.sharding.Mesh (e.g. torchsem.parallel.data_mesh()), "
            f"got {type(mesh).__name__}"
        )
    return mesh


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` on every device of ``mesh`` (parameters, optimizer state).

    Optional (the step replicates what it is given), but it avoids a transfer at every call.
    """
    _check_mesh(mesh, "replicate")
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch: Any, mesh: Mesh, axis_name: Any = DATA_AXIS) -> Any:
    """A global batch whose leading axis is split over ``axis_name``, from this process's rows.

    On one host ``batch`` is the whole global batch. With several processes
    (``jax.distributed.initialize()``), each process passes its own consecutive rows (process
    ``p`` holds rows ``p * n_local`` to ``(p + 1) * n_local``) and gets the global array back.

    Args:
      batch: a pytree of arrays (e.g. ``(x, y)`` or ``(x, y, mask)``) with a common leading axis.
      mesh: the mesh.
      axis_name: the mesh axis (or axes) the batch is split over.

    Returns:
      The same pytree of global ``jax.Array`` sharded along the leading axis; host arrays are
      copied first, so changing them afterwards does not reach the result.
    """
    _check_mesh(mesh, "shard_batch")
    _device_count(mesh, axis_name)
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))
    # A data loader may reuse its buffers for the next batch: JAX gets torchsem's own copy.
    return jax.tree.map(
        lambda leaf: jax.make_array_from_process_local_data(
            sharding, leaf if isinstance(leaf, jax.Array) else host_copy(leaf)
        ),
        batch,
    )


# ----------------------------------------------------------------------------------------------
# Uneven batches
# ----------------------------------------------------------------------------------------------


def _split_batch(batch: Any, caller: str) -> tuple[Any, Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(
            f"{caller}: batch must be (inputs, targets) or (inputs, targets, mask), got "
            f"{type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    inputs, targets = batch[0], batch[1]
    mask = batch[2] if len(batch) == 3 else None
    return inputs, targets, mask


def _leading_size(tree: Any, what: str, caller: str) -> int:
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if not sizes:
        raise ValueError(f"{caller}: {what} has no arrays")
    if None in sizes or len(sizes) != 1:
        raise ValueError(
            f"{caller}: every array of {what} needs the same leading (batch) axis, got leading sizes "
            f"{sorted(s for s in sizes if s is not None)}" + (" and a 0-d array" if None in sizes else "")
        )
    size = sizes.pop()
    assert size is not None  # refused above
    return size


def _check_mask(mask: Any, size: int, caller: str) -> Any:
    dtype = jnp.result_type(mask)
    if dtype != jnp.bool_:
        raise TypeError(f"{caller}: mask must be a bool array (True: a real example), got dtype {dtype}")
    if tuple(np.shape(mask)) != (size,):
        raise ValueError(f"{caller}: mask must have shape (N,) = ({size},), got {tuple(np.shape(mask))}")
    return mask


def _pad_rows(leaf: Any, rows: int) -> Any:
    widths = [(0, rows)] + [(0, 0)] * (np.ndim(leaf) - 1)
    return np.pad(np.asarray(leaf), widths) if isinstance(leaf, np.ndarray) else jnp.pad(leaf, widths)


def _pad_to(batch: Any, rows: int, caller: str) -> tuple[Any, Any, Any]:
    """``(inputs, targets, mask)`` with zero rows (mask False) appended up to ``rows``."""
    inputs, targets, mask = _split_batch(batch, caller)
    size = _leading_size((inputs, targets), "the batch", caller)
    mask = np.ones(size, bool) if mask is None else _check_mask(mask, size, caller)
    pad = lambda tree: jax.tree.map(lambda leaf: _pad_rows(leaf, rows - size), tree)  # noqa: E731
    return pad(inputs), pad(targets), pad(mask)


def pad_batch(batch: Batch, multiple: int | Mesh, axis_name: Any = DATA_AXIS) -> tuple[Any, Any, Any]:
    """Pad a global batch with zero rows to a multiple of the device count; the mask marks the real rows.

    A final batch of 30 examples on 8 devices becomes 32 rows and a mask with 30 True values;
    :func:`make_train_step` on the padded batch equals one device on the 30 examples.

    Args:
      batch: ``(inputs, targets)`` or ``(inputs, targets, mask)`` (pytrees of arrays with a
        common leading axis; an existing mask is padded with False).
      multiple: the device count, or a mesh (then the size of its ``axis_name``).
      axis_name: the batch axis of ``multiple`` when it is a mesh.

    Returns:
      ``(inputs, targets, mask)`` with ``N`` rounded up to the multiple (numpy stays numpy).
    """
    if isinstance(multiple, Mesh):
        multiple = _device_count(multiple, axis_name)
    if isinstance(multiple, bool) or not isinstance(multiple, (int, np.integer)) or multiple < 1:
        raise ValueError(f"pad_batch: multiple must be a positive int (the device count) or a Mesh, got {multiple!r}")
    size = _leading_size(_split_batch(batch, "pad_batch")[:2], "the batch", "pad_batch")
    return _pad_to(batch, size + (-size % int(multiple)), "pad_batch")


def pad_shards(shards: Sequence[Batch]) -> tuple[Any, Any, Any]:
    """One global batch from per-device shards of different sizes (uneven shards).

    Each shard ``(inputs, targets)`` (or with its own mask) is padded with zero rows to the
    largest shard's size and the shards are concatenated in device order, with a mask of
    their real rows; device ``k`` of the data axis then holds exactly shard ``k``'s examples.

    Args:
      shards: one batch per device of the data axis, in device order.

    Returns:
      ``(inputs, targets, mask)``, leading size ``len(shards) * max_size``.
    """
    if isinstance(shards, (str, bytes)) or not isinstance(shards, Sequence) or not shards:
        raise ValueError("pad_shards: shards must be a non-empty sequence of (inputs, targets) batches, one per device")
    sizes = [
        _leading_size(_split_batch(shard, "pad_shards")[:2], f"shard {k}", "pad_shards")
        for k, shard in enumerate(shards)
    ]
    largest = max(sizes)
    if largest == 0:
        raise ValueError("pad_shards: every shard is empty")
    padded = [_pad_to(shard, largest, "pad_shards") for shard in shards]

    def concatenate(*leaves: Any) -> Any:
        if all(isinstance(leaf, np.ndarray) for leaf in leaves):
            return np.concatenate(leaves)
        return jnp.concatenate(leaves)

    inputs, targets, mask = (jax.tree.map(concatenate, *parts) for parts in zip(*padded))
    return inputs, targets, mask


# ----------------------------------------------------------------------------------------------
# The step
# ----------------------------------------------------------------------------------------------


def _masked_batchnorm(mask: jax.Array) -> Callable:
    """A Flax method interceptor that hands ``mask`` to every BatchNorm call that has none."""

    def interceptor(next_fun: Callable, args: tuple, kwargs: dict, context: Any) -> Any:
        if isinstance(context.module, BatchNorm) and context.method_name == "__call__" and kwargs.get("mask") is None:
            kwargs = {**kwargs, "mask": mask}
        return next_fun(*args, **kwargs)

    return interceptor


def _per_example_losses(loss_fn: LossFn, outputs: Any, targets: Any) -> jax.Array:
    """``loss_fn`` on each example alone (a batch of one), stacked: ``(n,)``."""

    def one(output: Any, target: Any) -> jax.Array:
        loss = loss_fn(jax.tree.map(lambda a: a[None], output), jax.tree.map(lambda a: a[None], target))
        if jnp.ndim(loss) != 0:
            raise ValueError(
                f"loss_fn must return a scalar (the batch mean, PyTorch's reduction='mean'), got shape "
                f"{jnp.shape(loss)}"
            )
        return loss

    return jax.vmap(one)(outputs, targets)


def _zero_padding(tree: Any, mask: jax.Array) -> Any:
    """Padded rows replaced by zeros, so that whatever the padding holds (even NaN) reaches nothing."""

    def zero(leaf: jax.Array) -> jax.Array:
        keep = mask.reshape((-1,) + (1,) * (jnp.ndim(leaf) - 1))
        return jnp.where(keep, leaf, jnp.zeros((), jnp.result_type(leaf)))

    return jax.tree.map(zero, tree)


def _sum_across(grads: Any, extras: Sequence[jax.Array], axis_names: tuple[Hashable, ...]) -> tuple[Any, list]:
    """Sum every present gradient leaf and the ``extras`` across devices in ONE ``psum`` (a bucket).

    Leaves are grouped by dtype (one psum per dtype; float32 models have one).
    """
    leaves, treedef = jax.tree.flatten(grads, is_leaf=lambda g: g is None)
    items = [(i, leaf) for i, leaf in enumerate(leaves) if leaf is not None]
    items += [(len(leaves) + k, jnp.asarray(extra)) for k, extra in enumerate(extras)]
    by_dtype: dict[Any, list[tuple[int, jax.Array]]] = {}
    for index, leaf in items:
        by_dtype.setdefault(jnp.result_type(leaf), []).append((index, leaf))
    summed: dict[int, jax.Array] = {}
    for group in by_dtype.values():
        flat = jnp.concatenate([jnp.ravel(leaf) for _, leaf in group])
        flat = jax.lax.psum(flat, axis_names)
        offset = 0
        for index, leaf in group:
            size = math.prod(jnp.shape(leaf))
            summed[index] = flat[offset : offset + size].reshape(jnp.shape(leaf))
            offset += size
    new_leaves = [summed.get(i) for i in range(len(leaves))]
    new_grads = treedef.unflatten(new_leaves)  # type: ignore[attr-defined]  # jaxlib ships no stub for PyTreeDef
    return new_grads, [summed[len(leaves) + k] for k in range(len(extras))]


def make_train_step(
    model: nn.Module,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    *,
    axis_name: Any = DATA_AXIS,
    requires_grad: Any = None,
    frozen: Any = None,
    train_kwargs: Mapping[str, Any] | None = None,
    jit: bool = True,
) -> Callable[[TrainState, Any], tuple[TrainState, dict[str, jax.Array]]]:
    """One data-parallel training iteration over the devices of ``mesh``'s ``axis_name`` (DDP + SyncBatchNorm).

    With the global batch's real examples ``i = 1..N`` spread over the devices (device ``k``
    holds a contiguous block), the step computes ``L = (1 / N) sum_i loss_fn(model(x_i), y_i)``
    with every BatchNorm normalising by the statistics of all ``N`` real examples, the
    gradients ``dL/dp`` (one ``psum`` of every device's ``sum_i dloss_i/dp``, then ``/ N``), and
    the optimizer step, identically on every device. The result equals
    :func:`torchsem.train.make_train_step` on one device with the concatenated real examples, up
    to float32 rounding (sums over devices add in a different order).

    Args:
      model: a Flax module called as ``model.apply(variables, x, **train_kwargs)``; its torchsem
        BatchNorm layers whose ``axis_name`` is None are synchronised over ``axis_name``.
      loss_fn: ``loss_fn(outputs, targets) -> scalar``, the mean over the batch's examples
        (PyTorch's ``reduction='mean'``, e.g. :func:`torchsem.losses.cross_entropy`). It is
        evaluated per example and averaged over the global batch's real examples; a loss whose
        mean weights examples unequally (class ``weight=``, ``ignore_index`` hits) is averaged
        per example instead (DDP's average of per-rank means is not the global one either).
      tx: the optimizer (torchsem's take None gradients as ``optimizer.step()`` does).
      mesh: a :class:`jax.sharding.Mesh` with an axis ``axis_name`` (:func:`data_mesh`).
      axis_name: the mesh axis (or tuple of axes) the batch is split over, default ``'data'``.
        Other mesh axes, if any, hold identical replicas.
      requires_grad: which parameters require grad (a bool pytree, or names / predicates), as
        in :func:`torchsem.train.make_train_step`.
      frozen: names / predicates of parameters that do not require grad.
      train_kwargs: keyword arguments selecting training mode, default ``{"train": True}``.
      jit: return the step jitted (the default) or as a traceable function (e.g. for
        :func:`torchsem.train.train_loop`, which jits its scan).

    Returns:
      ``train_step(state, batch) -> (state, {"loss": L})`` where ``batch`` is the global
      ``(x, y)`` or ``(x, y, mask)`` (``mask``: ``(N,)`` bool, True for real examples) and
      ``state`` a :class:`torchsem.train.TrainState`; the returned state is replicated.

    Raises:
      ValueError: (when called) a batch whose size the device count does not divide (pad it
        with :func:`pad_batch`), batch arrays with different leading sizes, a mask of the wrong
        shape; ``axis_name`` not in the mesh. TypeError: a mask that is not bool, a ``mesh``
        that is not a Mesh.

    Reproduces ``DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))`` with
    one ``optimizer.step()`` per iteration: the documented result is single-process training on
    the global batch.
    """
    _check_mesh(mesh, "make_train_step")
    axis_names = _axis_names(axis_name)
    devices = _device_count(mesh, axis_name)
    train_kwargs = {"train": True} if train_kwargs is None else dict(train_kwargs)
    exact_step = getattr(tx, "step", None) is not None
    data = PartitionSpec(axis_name)
    replicated = PartitionSpec()

    def per_device(state: TrainState, inputs: Any, targets: Any, mask: Any) -> tuple[TrainState, dict]:
        if mask is None:
            keep = jnp.ones((_leading_size(targets, "targets", "make_train_step"),), bool)
        else:
            keep = mask
            inputs, targets = _zero_padding(inputs, mask), _zero_padding(targets, mask)
        # Parameters made device-varying: their gradients stay per-device (no implicit psum per
        # leaf), and are summed below in one bucket.
        local_params = jax.tree.map(lambda p: jax.lax.pcast(p, axis_names, to="varying"), state.params)

        def loss_of(params: Any) -> tuple[jax.Array, Any]:
            variables = {"params": params, "batch_stats": state.batch_stats}
            outputs, updated = model.apply(variables, inputs, mutable=["batch_stats"], **train_kwargs)
            losses = _per_example_losses(loss_fn, outputs, targets)
            local_sum = jnp.sum(jnp.where(keep, losses, jnp.zeros((), losses.dtype)))
            return local_sum, updated.get("batch_stats", state.batch_stats)

        requires = autograd.resolve_requires_grad(state.params, requires_grad, frozen)
        value_and_grad = autograd.value_and_grad(loss_of, has_aux=True, requires_grad=requires)
        with contextlib.ExitStack() as scope:
            scope.enter_context(sync_batchnorm(axis_name))
            if mask is not None:
                scope.enter_context(nn.intercept_methods(_masked_batchnorm(keep)))
            (local_sum, batch_stats), local_grads = value_and_grad(local_params)
        count = jnp.sum(keep, dtype=local_sum.dtype)
        grads, (loss_sum, total) = _sum_across(local_grads, [local_sum, count], axis_names)
        grads = jax.tree.map(
            lambda g: None if g is None else g / total.astype(g.dtype), grads, is_leaf=lambda g: g is None
        )
        if not exact_step:
            grads = autograd.none_to_zeros(grads, state.params)
        params, opt_state = optim.step(tx, grads, state.opt_state, state.params)
        step = None if state.step is None else state.step + 1
        return TrainState(params, batch_stats, opt_state, step), {"loss": loss_sum / total}

    def train_step(state: TrainState, batch: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        inputs, targets, mask = _split_batch(batch, "train_step")
        size = _leading_size((inputs, targets), "the batch (inputs, targets)", "train_step")
        if mask is not None:
            _check_mask(mask, size, "train_step")
        if size % devices:
            raise ValueError(
                f"train_step: the global batch of {size} examples does not split evenly over the {devices} devices of "
                f"mesh axis {axis_name!r}; pad it with torchsem.parallel.pad_batch(batch, mesh), whose mask keeps the "
                "padding out of the statistics, the loss and the gradients"
            )
        mapped = jax.shard_map(
            per_device, mesh=mesh, in_specs=(replicated, data, data, data), out_specs=(replicated, replicated)
        )
        return mapped(state, inputs, targets, mask)

    return jax.jit(train_step) if jit else train_step
