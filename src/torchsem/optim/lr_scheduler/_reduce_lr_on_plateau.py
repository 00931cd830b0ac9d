"""ReduceLROnPlateau: the learning rate cut by ``factor`` when a metric stops improving."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax

from ._arguments import integer, number


class PlateauState(NamedTuple):
    """ReduceLROnPlateau's state, PyTorch's attributes of the same names, as Python numbers.

    Attributes:
      lr: ``optimizer.param_groups[0]["lr"]``, the learning rate to train with now.
      best: the best metric seen (``inf`` / ``-inf`` before the first step).
      num_bad_epochs: epochs since the last improvement (reset by a reduction and in cooldown).
      cooldown_counter: epochs of cooldown left.
      last_epoch: the number of ``step`` calls so far.
    """

    lr: float
    best: float
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int


class ReduceLROnPlateau:
    r"""Cut the learning rate when a metric has stopped improving: ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    Driven by a value, not a step count, so it is a small host object with an explicit state
    (``state = sched.init()``; ``state = sched.step(state, metric)``; train with ``state.lr``)
    rather than a ``count -> lr`` schedule. Each step, in Python floats as PyTorch:

    .. math::
        \text{better}(a) = \begin{cases}
          a < b\,(1 - \theta) & \text{min, rel} \qquad a < b - \theta \quad \text{min, abs} \\
          a > b\,(1 + \theta) & \text{max, rel} \qquad a > b + \theta \quad \text{max, abs}
        \end{cases}

    a better metric becomes the best ``b`` and resets the bad-epoch count, any other (NaN
    included) adds one; in cooldown the count is held at 0; once it exceeds ``patience`` the
    rate becomes :math:`\max(\eta\cdot\text{factor}, \text{min\_lr})` unless that changes it
    by no more than ``eps``, and cooldown starts.

    With a torchsem optimizer, pass ``state.lr`` as its (constant) learning rate: the
    optimizer's state does not depend on the learning rate, so ``sgd(lr=state.lr, ...)`` can be
    rebuilt when the rate changes and keep stepping the same optimizer state (one new
    compilation per change, a handful in a run).

    Args:
      lr: the optimizer's learning rate.
      mode: ``"min"`` (the metric should fall) or ``"max"``.
      factor: the cut, ``new_lr = lr * factor``, < 1.
      patience: bad epochs tolerated before a cut.
      threshold: what counts as an improvement (see ``threshold_mode``).
      threshold_mode: ``"rel"`` or ``"abs"``.
      cooldown: epochs after a cut during which bad epochs are not counted.
      min_lr: the floor (a number, or a list holding one).
      eps: a cut smaller than this is skipped.

    Raises:
      ValueError: PyTorch's messages: ``Factor should be < 1.0.``, ``mode avg is unknown!``,
        ``threshold mode x is unknown!``, ``expected 1 min_lrs, got 2``.

    Reproduces ``torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1,
    patience=10, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8)``.
    """

    def __init__(
        self,
        lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        self.lr = number("lr", lr)
        factor = number("factor", factor)
        # PyTorch's checks, in its order and with its messages.
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != 1:
                raise ValueError(f"expected 1 min_lrs, got {len(min_lr)}")
            min_lr = min_lr[0]
        self.min_lr = number("min_lr", min_lr)
        self.patience = integer("patience", patience)
        self.cooldown = integer("cooldown", cooldown)
        self.eps = number("eps", eps)
        if mode not in {"min", "max"}:
            raise ValueError("mode " + mode + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + threshold_mode + " is unknown!")
        self.mode = mode
        self.threshold = number("threshold", threshold)
        self.threshold_mode = threshold_mode

    def init(self) -> PlateauState:
        """The state after construction: the optimizer's lr, the worst possible best, no counts."""
        worst = math.inf if self.mode == "min" else -math.inf
        return PlateauState(self.lr, worst, 0, 0, 0)

    def _is_better(self, current: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return current < best * (1.0 - self.threshold)
        if self.mode == "min":
            return current < best - self.threshold
        if self.threshold_mode == "rel":
            return current > best * (self.threshold + 1.0)
        return current > best + self.threshold

    def step(self, state: PlateauState, metrics: Any) -> PlateauState:
        """``scheduler.step(metrics)``: the state after one more epoch with this metric.

        Args:
          state: the current state (from :meth:`init` or a previous ``step``).
          metrics: the monitored value: a Python/numpy number or a concrete JAX/torch scalar
            (read with ``float()``, as PyTorch does); not a traced value.

        Returns:
          The new :class:`PlateauState`; ``.lr`` is the learning rate for the next epoch.

        Raises:
          TypeError: ``metrics`` is traced (inside ``jax.jit``): the comparisons and the rate
            are float64 on the host, as in PyTorch.
        """
        if isinstance(metrics, jax.core.Tracer):
            raise TypeError(
                "ReduceLROnPlateau.step takes a concrete metric (it compares in float64 on the host, as PyTorch); "
                "call it outside jax.jit with the epoch's value"
            )
        if not isinstance(state, PlateauState):
            raise TypeError(f"state must be a PlateauState (from init()), got {type(state).__name__}")
        current = float(metrics)
        lr, best, bad, cooldown_counter, epoch = state
        epoch += 1
        if self._is_better(current, best):
            best, bad = current, 0
        else:
            bad += 1
        if cooldown_counter > 0:
            cooldown_counter -= 1
            bad = 0  # bad epochs in cooldown do not count
        if bad > self.patience:
            old = float(lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                lr = new
            cooldown_counter = self.cooldown
            bad = 0
        return PlateauState(lr, best, bad, cooldown_counter, epoch)
