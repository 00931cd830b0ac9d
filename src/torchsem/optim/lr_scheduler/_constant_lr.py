"""ConstantLR: the learning rate times ``factor`` until ``total_iters`` steps."""

from __future__ import annotations

from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class ConstantLR(LRScheduler):
    r"""Scale the learning rate by ``factor`` for ``total_iters`` steps: ``torch.optim.lr_scheduler.ConstantLR``.

    Replayed in float64 from the previous value (so the restored rate is
    :math:`(\text{lr}\cdot f)\cdot(1/f)`, not always ``lr`` bit for bit):

    .. math::
        \eta_0 = \text{lr}\cdot f, \qquad
        \eta_t = \begin{cases} \eta_{t-1}\cdot(1/f) & t = \text{total\_iters} \\
                               \eta_{t-1} & \text{otherwise} \end{cases}

    Args:
      lr: the optimizer's learning rate.
      factor: the scale, in [0, 1] (0 makes PyTorch divide by zero at ``total_iters``).
      total_iters: how many steps the scale lasts.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      ValueError: PyTorch's ``Constant multiplicative factor expected to be between 0 and 1.``

    Reproduces ``torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1/3, total_iters=5)``.
    """

    def __init__(
        self, lr: float, factor: float = 1.0 / 3, total_iters: int = 5, *, horizon: int = DEFAULT_HORIZON
    ) -> None:
        self.lr = number("lr", lr)
        factor = number("factor", factor)
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = integer("total_iters", total_iters)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _ConstantLRRun(self.factor, self.total_iters)


class _ConstantLRRun(Run):
    def __init__(self, factor: Any, total_iters: int) -> None:
        super().__init__()
        self.factor = factor
        self.total_iters = total_iters

    def next_lr(self, group: Group) -> Any:
        if self.last_epoch == 0:
            return group.lr * self.factor
        if self.last_epoch != self.total_iters:
            return group.lr
        return group.lr * (1.0 / self.factor)

    def closed_lr(self, group: Group) -> Any:
        return self.base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))

    def settled(self, group: Group) -> bool:
        return self.last_epoch >= 0 and self.last_epoch >= self.total_iters
