"""LinearLR: a multiplicative factor moving linearly from ``start_factor`` to ``end_factor``."""

from __future__ import annotations

from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class LinearLR(LRScheduler):
    r"""Move the learning rate's factor linearly over ``total_iters`` steps: ``torch.optim.lr_scheduler.LinearLR``.

    PyTorch's chainable rule, replayed in float64 (:math:`s`, :math:`e` the start and end
    factors, :math:`T` = ``total_iters``):

    .. math::
        \eta_0 = \text{lr}\cdot s, \qquad
        \eta_t = \eta_{t-1}\left(1 + \frac{e - s}{T s + (t-1)(e - s)}\right) \quad (1 \le t \le T),
        \qquad \eta_t = \eta_{t-1} \quad (t > T)

    whose values differ in the last bits from the closed form
    :math:`\text{lr}\,(s + (e - s)\min(T, t)/T)` (used only when a SequentialLR restarts it).

    Args:
      lr: the optimizer's learning rate.
      start_factor: the factor at step 0, in (0, 1].
      end_factor: the factor from step ``total_iters`` on, in [0, 1].
      total_iters: the number of steps the factor moves over.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      ValueError: PyTorch's messages for a factor out of range.

    Reproduces ``torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/3, end_factor=1.0, total_iters=5)``.
    """

    def __init__(
        self,
        lr: float,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        *,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        self.lr = number("lr", lr)
        start_factor = number("start_factor", start_factor)
        end_factor = number("end_factor", end_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = integer("total_iters", total_iters)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _LinearLRRun(self.start_factor, self.end_factor, self.total_iters)


class _LinearLRRun(Run):
    def __init__(self, start: Any, end: Any, total: int) -> None:
        super().__init__()
        self.start = start
        self.end = end
        self.total = total

    def next_lr(self, group: Group) -> Any:
        epoch = self.last_epoch
        if epoch == 0:
            return group.lr * self.start
        if self.initial or epoch > self.total:
            return group.lr
        change = self.end - self.start
        return group.lr * (1.0 + change / (self.total * self.start + (epoch - 1) * change))

    def closed_lr(self, group: Group) -> Any:
        moved = (self.end - self.start) * min(self.total, self.last_epoch) / self.total
        return self.base_lr * (self.start + moved)

    def settled(self, group: Group) -> bool:
        return self.last_epoch >= 0 and self.last_epoch >= self.total
