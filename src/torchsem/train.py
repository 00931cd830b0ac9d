"""Training on device: a jitted train step and a ``jax.lax.scan`` loop with PyTorch's semantics.

The document's PyTorch loop::

    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

becomes::

    state = torchsem.train.TrainState.create(variables, tx)
    train_step = torchsem.train.make_train_step(model, cross_entropy, tx, frozen="fc1.weight")
    state, metrics = train_step(state, (x, y))                  # one step, jitted
    state, metrics = torchsem.train.train_loop(train_step, state, (xs, ys))   # N steps, one scan

with the gradients of :func:`torchsem.autograd.value_and_grad` (None where PyTorch's
``.grad`` is None: frozen parameters are not differentiated at all, detached ones get None)
and the step of :func:`torchsem.optim.step` (a None gradient skips its parameter, as
``optimizer.step()`` does). BatchNorm's running statistics (Flax's ``batch_stats``
collection) are updated by the forward pass in training mode, as PyTorch's buffers are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import autograd, optim

__all__ = ["TrainState", "make_eval_step", "make_train_step", "train_loop"]

Batch = tuple[Any, Any]
"""``(inputs, targets)``."""

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
"""``loss_fn(outputs, targets) -> scalar loss``, e.g. :func:`torchsem.losses.cross_entropy`."""


class TrainState(NamedTuple):
    """Everything a PyTorch training loop mutates, as one pytree.

    Attributes:
      params: the ``params`` collection (PyTorch's parameters).
      batch_stats: the ``batch_stats`` collection (PyTorch's buffers: BatchNorm's running
        statistics); an empty dict for a model without any.
      opt_state: the optimizer's state.
      step: int32, the number of train steps taken, or None when not counted (PyTorch's loop
        keeps no counter; the default, because every leaf of a jitted step's state costs a few
        microseconds per call: on the document's Net one int32 counter is 6% of a step).
    """

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array | None = None

    @classmethod
    def create(
        cls, variables: Mapping[str, Any], tx: optax.GradientTransformation, *, count_steps: bool = False
    ) -> TrainState:
        """A state from Flax variables (``{'params': ..., 'batch_stats': ...}``) and an optimizer.

        Args:
          variables: Flax variables; ``batch_stats`` may be absent (a model without buffers).
          tx: the optimizer; its state is ``tx.init(variables['params'])``.
          count_steps: keep a step counter in ``step``.
        """
        if "params" not in variables:
            raise ValueError(f"variables must have a 'params' collection, got collections {list(variables)}")
        params = variables["params"]
        step = jnp.zeros((), jnp.int32) if count_steps else None
        return cls(params, variables.get("batch_stats", {}), tx.init(params), step)

    @property
    def variables(self) -> dict[str, Any]:
        """``{'params': ..., 'batch_stats': ...}`` for ``model.apply``."""
        return {"params": self.params, "batch_stats": self.batch_stats}


def make_train_step(
    model: Any,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    *,
    requires_grad: Any = None,
    frozen: Any = None,
    train_kwargs: Mapping[str, Any] | None = None,
    accumulation_steps: int = 1,
    jit: bool = True,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """One PyTorch training iteration, ``zero_grad; loss = loss_fn(model(x), y); backward; step``.

    With ``accumulation_steps=k`` it is PyTorch's gradient accumulation over ``k``
    micro-batches::

        optimizer.zero_grad()
        for x, y in micro_batches:              # the batch's leading axis, k entries
            (loss_fn(model(x), y) / k).backward()   # .grad += ..., BatchNorm updated each time
        optimizer.step()

    The gradients are summed in micro-batch order in float32 (the first one assigned, then
    added, as ``.grad`` is), BatchNorm's running statistics are updated once per micro-batch,
    and the optimizer steps once; the reported loss is the sum of the ``loss / k`` terms.

    Args:
      model: a Flax module called as ``model.apply(variables, x, **train_kwargs)``; a
        ``batch_stats`` collection, if it has one, is updated (``mutable=['batch_stats']``).
      loss_fn: ``loss_fn(outputs, targets) -> scalar``.
      tx: the optimizer; torchsem's optimizers take the None gradients as PyTorch does. Any
        other optax transformation gets zeros in place of None.
      requires_grad: which parameters require grad: a bool pytree (a prefix of ``params``),
        or names / predicates as :func:`torchsem.autograd.requires_grad_mask` takes them
        (``"fc1"``). Default: every parameter. Parameters that do not are never
        differentiated (their gradient is None and costs nothing).
      frozen: names / predicates of parameters that do not require grad
        (``frozen="fc1.weight"`` is ``model.fc1.weight.requires_grad = False``).
      train_kwargs: keyword arguments selecting training mode, default ``{"train": True}``
        (``model.train()``; the document's Net takes ``train``).
      accumulation_steps: micro-batches per optimizer step; the batch then carries them on a
        leading axis: ``(x[k, ...], y[k, ...])``.
      jit: return the step jitted (the default) or as a plain traceable function.

    Returns:
      ``train_step(state, (x, y)) -> (state, {"loss": loss})``.

    Raises:
      ValueError: ``accumulation_steps`` < 1, or a batch whose leading axis is not
        ``accumulation_steps`` (when the step is called).

    Reproduces one iteration of PyTorch's training loop, with ``optimizer.zero_grad()``'s
    default ``set_to_none=True``: gradients do not accumulate across steps.
    """
    train_kwargs = {"train": True} if train_kwargs is None else dict(train_kwargs)
    exact_step = getattr(tx, "step", None) is not None
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
    k = accumulation_steps

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        inputs, targets = batch
        mask = autograd.resolve_requires_grad(state.params, requires_grad, frozen)

        def micro_step(batch_stats: Any, inputs: Any, targets: Any) -> tuple[tuple[jax.Array, Any], Any]:
            def loss_of(params: Any) -> tuple[jax.Array, Any]:
                variables = {"params": params, "batch_stats": batch_stats}
                outputs, updated = model.apply(variables, inputs, mutable=["batch_stats"], **train_kwargs)
                loss = loss_fn(outputs, targets)
                return (loss if k == 1 else loss / k), updated.get("batch_stats", batch_stats)

            return autograd.value_and_grad(loss_of, has_aux=True, requires_grad=mask)(state.params)

        if k == 1:
            (loss, batch_stats), grads = micro_step(state.batch_stats, inputs, targets)
        else:
            (loss, batch_stats), grads = _accumulate(micro_step, state.batch_stats, inputs, targets, k)
        if not exact_step:
            grads = autograd.none_to_zeros(grads, state.params)
        params, opt_state = optim.step(tx, grads, state.opt_state, state.params)
        step = None if state.step is None else state.step + 1
        return TrainState(params, batch_stats, opt_state, step), {"loss": loss}

    return jax.jit(train_step) if jit else train_step


def _accumulate(micro_step: Callable, batch_stats: Any, inputs: Any, targets: Any, k: int) -> Any:
    """PyTorch's ``k`` backward passes into ``.grad``: the first gradient assigned, the rest added in order."""
    for name, value in (("inputs", inputs), ("targets", targets)):
        leading = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(value)}
        if leading != {k}:
            raise ValueError(
                f"accumulation_steps={k}: the batch's {name} must carry the {k} micro-batches on a leading axis, "
                f"got leading sizes {sorted(leading, key=str)}"
            )
    first = jax.tree.map(lambda a: a[0], (inputs, targets))
    (loss, batch_stats), grads = micro_step(batch_stats, *first)

    def body(carry: Any, micro: Any) -> tuple[Any, None]:
        loss, batch_stats, grads = carry
        (micro_loss, batch_stats), micro_grads = micro_step(batch_stats, *micro)
        grads = jax.tree.map(lambda g, m: g + m, grads, micro_grads)
        return (loss + micro_loss, batch_stats, grads), None

    rest = jax.tree.map(lambda a: a[1:], (inputs, targets))
    (loss, batch_stats, grads), _ = jax.lax.scan(body, (loss, batch_stats, grads), rest)
    return (loss, batch_stats), grads


def make_eval_step(
    model: Any,
    loss_fn: LossFn | None = None,
    *,
    eval_kwargs: Mapping[str, Any] | None = None,
    jit: bool = True,
) -> Callable[[TrainState, Batch], dict[str, jax.Array]]:
    """A forward pass in eval mode: ``model.eval(); with torch.no_grad(): model(x)``.

    BatchNorm normalises with its running statistics and does not update them (Flax's
    ``use_running_average``); nothing is differentiated.

    Args:
      model: a Flax module called as ``model.apply(variables, x, **eval_kwargs)``.
      loss_fn: optional; when given the metrics include ``loss_fn(outputs, targets)``.
      eval_kwargs: keyword arguments selecting eval mode, default ``{"train": False}``.
      jit: return the step jitted (the default).

    Returns:
      ``eval_step(state, (x, y)) -> {"outputs": outputs[, "loss": loss]}``.
    """
    eval_kwargs = {"train": False} if eval_kwargs is None else dict(eval_kwargs)

    def eval_step(state: TrainState, batch: Batch) -> dict[str, jax.Array]:
        inputs, targets = batch
        outputs = jax.lax.stop_gradient(model.apply(state.variables, inputs, **eval_kwargs))
        metrics = {"outputs": outputs}
        if loss_fn is not None:
            metrics["loss"] = loss_fn(outputs, targets)
        return metrics

    return jax.jit(eval_step) if jit else eval_step


@functools.partial(jax.jit, static_argnames=("train_step", "collect"))
def _scan(train_step: Callable, state: TrainState, batches: Any, collect: Callable | None) -> tuple[TrainState, Any]:
    def body(carry: TrainState, batch: Any) -> tuple[TrainState, Any]:
        carry, metrics = train_step(carry, batch)
        return carry, metrics if collect is None else (metrics, collect(carry))

    return jax.lax.scan(body, state, batches)


def train_loop(
    train_step: Callable[[TrainState, Batch], tuple[TrainState, Any]],
    state: TrainState,
    batches: Any,
    *,
    collect: Callable[[TrainState], Any] | None = None,
) -> tuple[TrainState, Any]:
    """Run one train step per batch inside ``jax.lax.scan``: the whole loop is one device program.

    Args:
      train_step: from :func:`make_train_step` (jitted or not).
      state: the starting state.
      batches: ``(xs, ys)`` (any pytree) whose leaves have a leading axis of length N, the
        number of steps.
      collect: optional ``state -> pytree`` recorded after every step (e.g.
        ``lambda s: s.params`` for the whole trajectory), returned stacked.

    Returns:
      ``(final_state, metrics)``: the metrics of every step stacked along a leading axis
      (``(metrics, collected)`` when ``collect`` is given).
    """
    lengths = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(batches)}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(f"every leaf of batches needs the same leading (step) axis, got leading sizes {lengths}")
    return _scan(train_step, state, batches, collect)
