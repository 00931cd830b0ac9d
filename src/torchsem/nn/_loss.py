"""Loss modules: ``torch.nn.CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, ... over :mod:`torchsem.losses`.

Each takes its PyTorch class's constructor arguments (names, order, defaults) and calls the
functional form with them. They are Flax modules without parameters, usable two ways:

- unbound, as PyTorch's: ``criterion = CrossEntropyLoss(weight=w); loss = criterion(logits, t)``;
- as a submodule of a Flax model: a ``weight`` (``pos_weight``) given to the constructor is then
  a buffer in the ``batch_stats`` collection, named as in PyTorch's ``state_dict``
  (``criterion.weight``), so ``to_torch_state_dict`` / ``load_torch_state_dict`` carry it; the
  buffer's value is what the loss uses. A weight of None is no buffer (PyTorch registers None,
  which ``state_dict`` leaves out).

The deprecated ``size_average``/``reduce`` keep their positions and accept only None (pass
``reduction``), as in :mod:`torchsem.losses`.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import flax.linen as nn
import jax

from .. import losses as F
from ..convert import to_jax

Array = jax.Array


class _Criterion(nn.Module):
    """What every loss module shares: its buffers and the refusal of the deprecated flags."""

    _buffer_names: ClassVar[tuple[str, ...]] = ()

    def _refuse_legacy(self) -> None:
        size_average, reduce = getattr(self, "size_average", None), getattr(self, "reduce", None)
        if size_average is None and reduce is None:
            return
        # PyTorch's _Reduction.legacy_get_string: None stands for True.
        average, keep = size_average is None or bool(size_average), reduce is None or bool(reduce)
        equivalent = "mean" if average and keep else "sum" if keep else "none"
        raise ValueError(
            f"{type(self).__name__}: size_average and reduce are deprecated in PyTorch (size_average="
            f"{size_average!r}, reduce={reduce!r} means reduction={equivalent!r}) and not accepted by torchsem: "
            f"pass reduction={equivalent!r} instead"
        )

    def __post_init__(self) -> None:
        self._refuse_legacy()
        super().__post_init__()

    @nn.compact
    def _declared_buffers(self) -> dict[str, Array]:
        values = {}
        for name in self._buffer_names:
            given = getattr(self, name)
            if given is not None:
                values[name] = self.variable("batch_stats", name, lambda v=given: to_jax(v)).value
        return values

    def _buffers(self) -> dict[str, Any]:
        """The buffers' values: the ``batch_stats`` variables when bound, else the constructor's arrays.

        Applied without its buffers (``apply({}, ...)``, ``batch_stats`` not mutable), a module
        uses the constructor's values, as unbound.
        """
        given = {name: getattr(self, name) for name in self._buffer_names}
        held = [name for name, value in given.items() if value is not None]
        if self.scope is None or not held:
            return given
        if not self.is_mutable_collection("batch_stats") and not all(
            self.has_variable("batch_stats", name) for name in held
        ):
            return given
        return {**given, **self._declared_buffers()}


class CrossEntropyLoss(_Criterion):
    """Cross entropy of logits, as ``torch.nn.CrossEntropyLoss``.

    Calls :func:`torchsem.losses.cross_entropy`.

    Attributes:
      weight: per-class rescaling ``(C,)`` (a ``batch_stats`` buffer when bound), or None.
      size_average: deprecated in PyTorch; only None.
      ignore_index: a class index that contributes neither loss nor weight.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      label_smoothing: in ``[0.0, 1.0]``.

    Reproduces ``torch.nn.CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100,
    reduce=None, reduction='mean', label_smoothing=0.0)``.
    """

    weight: Any = None
    size_average: bool | None = None
    ignore_index: int = -100
    reduce: bool | None = None
    reduction: str = "mean"
    label_smoothing: float = 0.0

    _buffer_names: ClassVar[tuple[str, ...]] = ("weight",)

    def __call__(self, input: Array, target: Array) -> Array:
        """The loss of logits ``input`` against class indices or probabilities ``target``."""
        return F.cross_entropy(
            input,
            target,
            weight=self._buffers()["weight"],
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_Criterion):
    """Negative log-likelihood, as ``torch.nn.NLLLoss``; calls :func:`torchsem.losses.nll_loss`.

    Attributes:
      weight: per-class rescaling ``(C,)`` (a ``batch_stats`` buffer when bound), or None.
      size_average: deprecated in PyTorch; only None.
      ignore_index: a class index that contributes neither loss nor weight.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Reproduces ``torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction='mean')``.
    """

    weight: Any = None
    size_average: bool | None = None
    ignore_index: int = -100
    reduce: bool | None = None
    reduction: str = "mean"

    _buffer_names: ClassVar[tuple[str, ...]] = ("weight",)

    def __call__(self, input: Array, target: Array) -> Array:
        """The loss of log-probabilities ``input`` against class indices ``target``."""
        return F.nll_loss(
            input, target, weight=self._buffers()["weight"], ignore_index=self.ignore_index, reduction=self.reduction
        )


class MSELoss(_Criterion):
    """Mean squared error, as ``torch.nn.MSELoss``; calls :func:`torchsem.losses.mse_loss`.

    Attributes:
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Reproduces ``torch.nn.MSELoss(size_average=None, reduce=None, reduction='mean')``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def __call__(self, input: Array, target: Array) -> Array:
        """``(input - target)**2``, reduced."""
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Criterion):
    """Mean absolute error, as ``torch.nn.L1Loss``; calls :func:`torchsem.losses.l1_loss`.

    Attributes:
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Reproduces ``torch.nn.L1Loss(size_average=None, reduce=None, reduction='mean')``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def __call__(self, input: Array, target: Array) -> Array:
        """``|input - target|``, reduced."""
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Criterion):
    """Smooth L1, as ``torch.nn.SmoothL1Loss``; calls :func:`torchsem.losses.smooth_l1_loss`.

    Attributes:
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      beta: the threshold between the squared and the linear part, ``>= 0`` (0 is L1).

    Reproduces ``torch.nn.SmoothL1Loss(size_average=None, reduce=None, reduction='mean', beta=1.0)``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    beta: float = 1.0

    def __call__(self, input: Array, target: Array) -> Array:
        """``0.5 d**2 / beta`` below ``beta``, ``|d| - 0.5 beta`` above, reduced."""
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Criterion):
    """Huber loss, as ``torch.nn.HuberLoss``; calls :func:`torchsem.losses.huber_loss`.

    Attributes:
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      delta: the threshold between the squared and the linear part, ``> 0``.

    Raises:
      TypeError: a ``delta`` that is not a float or int (PyTorch's check, at construction).

    Reproduces ``torch.nn.HuberLoss(reduction='mean', delta=1.0)``.
    """

    reduction: str = "mean"
    delta: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.delta, numbers.Real):
            raise TypeError(f"delta must be a float or int, got: {type(self.delta)}")
        super().__post_init__()

    def __call__(self, input: Array, target: Array) -> Array:
        """``0.5 d**2`` below ``delta``, ``delta (|d| - 0.5 delta)`` above, reduced."""
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_Criterion):
    """Binary cross entropy of probabilities, as ``torch.nn.BCELoss``.

    Calls :func:`torchsem.losses.binary_cross_entropy`.

    Attributes:
      weight: rescaling, broadcastable to the input (a ``batch_stats`` buffer when bound), or None.
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Reproduces ``torch.nn.BCELoss(weight=None, size_average=None, reduce=None, reduction='mean')``.
    """

    weight: Any = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    _buffer_names: ClassVar[tuple[str, ...]] = ("weight",)

    def __call__(self, input: Array, target: Array) -> Array:
        """The loss of probabilities ``input`` against ``target`` in ``[0, 1]``."""
        return F.binary_cross_entropy(input, target, weight=self._buffers()["weight"], reduction=self.reduction)


class BCEWithLogitsLoss(_Criterion):
    """Binary cross entropy of logits, as ``torch.nn.BCEWithLogitsLoss``.

    Calls :func:`torchsem.losses.binary_cross_entropy_with_logits`.

    Attributes:
      weight: rescaling, broadcastable to the input (a ``batch_stats`` buffer when bound), or None.
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
      pos_weight: the weight of positive examples, broadcastable with the target (a buffer after
        ``weight`` when bound), or None.

    Reproduces ``torch.nn.BCEWithLogitsLoss(weight=None, size_average=None, reduce=None,
    reduction='mean', pos_weight=None)``.
    """

    weight: Any = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    pos_weight: Any = None

    _buffer_names: ClassVar[tuple[str, ...]] = ("weight", "pos_weight")

    def __call__(self, input: Array, target: Array) -> Array:
        """The loss of logits ``input`` against ``target``."""
        buffers = self._buffers()
        return F.binary_cross_entropy_with_logits(
            input, target, weight=buffers["weight"], reduction=self.reduction, pos_weight=buffers["pos_weight"]
        )


class KLDivLoss(_Criterion):
    """Kullback-Leibler divergence, as ``torch.nn.KLDivLoss``; calls :func:`torchsem.losses.kl_div`.

    Attributes:
      size_average: deprecated in PyTorch; only None.
      reduce: deprecated in PyTorch; only None.
      reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'`` (PyTorch's ``'mean'``,
        divided by every element; ``'batchmean'`` is the KL divergence per sample).
      log_target: whether the target is given in log space.

    Reproduces ``torch.nn.KLDivLoss(size_average=None, reduce=None, reduction='mean', log_target=False)``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    log_target: bool = False

    def __call__(self, input: Array, target: Array) -> Array:
        """The divergence of log-probabilities ``input`` from ``target``."""
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
