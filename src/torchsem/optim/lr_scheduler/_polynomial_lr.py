"""PolynomialLR: the learning rate decayed as a polynomial over ``total_iters`` steps."""

from __future__ import annotations

from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class PolynomialLR(LRScheduler):
    r"""Decay the learning rate polynomially to zero: ``torch.optim.lr_scheduler.PolynomialLR``.

    PyTorch's chainable rule, replayed in float64 (:math:`T` = ``total_iters``, :math:`p` = ``power``):

    .. math::
        \eta_0 = \text{lr}, \qquad
        \eta_t = \eta_{t-1}\left(\frac{1 - t/T}{1 - (t-1)/T}\right)^{p} \quad (1 \le t \le T),
        \qquad \eta_t = \eta_{t-1} \quad (t > T)

    (closed form :math:`\text{lr}\,(1 - \min(T, t)/T)^p`, used only when a SequentialLR restarts it).

    Args:
      lr: the optimizer's learning rate.
      total_iters: the number of decay steps.
      power: the polynomial's power.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      TypeError: a non-number ``lr``/``power`` or a non-int ``total_iters``.

    Reproduces ``torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=5, power=1.0)``.
    """

    def __init__(self, lr: float, total_iters: int = 5, power: float = 1.0, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        self.total_iters = integer("total_iters", total_iters)
        self.power = number("power", power)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _PolynomialLRRun(self.total_iters, self.power)


class _PolynomialLRRun(Run):
    def __init__(self, total: int, power: Any) -> None:
        super().__init__()
        self.total = total
        self.power = power

    def next_lr(self, group: Group) -> Any:
        epoch = self.last_epoch
        if self.initial or epoch > self.total:
            return group.lr
        factor = ((1.0 - epoch / self.total) / (1.0 - (epoch - 1) / self.total)) ** self.power
        return group.lr * factor

    def closed_lr(self, group: Group) -> Any:
        return self.base_lr * (1.0 - min(self.total, self.last_epoch) / self.total) ** self.power

    def settled(self, group: Group) -> bool:
        return self.last_epoch >= 0 and self.last_epoch >= self.total
