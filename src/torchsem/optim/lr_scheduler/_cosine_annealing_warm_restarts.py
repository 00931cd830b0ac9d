"""CosineAnnealingWarmRestarts: cosine annealing restarted every ``T_i`` steps (SGDR)."""

from __future__ import annotations

import math
from typing import Any

from ._arguments import number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts: ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.

    With :math:`T_{cur}` the steps since the last restart and :math:`T_i` the current period
    (``T_0``, then multiplied by ``T_mult`` at each restart), both integers counted as PyTorch
    counts them, the value is computed afresh each step in float64:

    .. math::
        \eta_t = \eta_{\min} + (\eta_{\max} - \eta_{\min})\,\frac{1 + \cos(\pi\,T_{cur}/T_i)}{2}

    Args:
      lr: the optimizer's learning rate, :math:`\eta_{\max}`.
      T_0: the first period, a positive int.
      T_mult: the factor each restart multiplies the period by, an int >= 1.
      eta_min: the minimum learning rate (a float or int).
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      ValueError: PyTorch's messages, e.g. ``Expected positive integer T_0, but got 0``.

    Reproduces ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0, T_mult=1, eta_min=0.0)``.
    """

    def __init__(
        self,
        lr: float,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        *,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        self.lr = number("lr", lr)
        # PyTorch's checks, in its order and with its messages (a bool passes isinstance(int), as there).
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _WarmRestartsRun(self.T_0, self.T_mult, self.eta_min)


class _WarmRestartsRun(Run):
    def __init__(self, t_0: int, t_mult: int, eta_min: Any) -> None:
        super().__init__()
        self.t_0 = t_0
        self.t_i = t_0
        self.t_mult = t_mult
        self.eta_min = eta_min
        self.t_cur = -1  # PyTorch starts T_cur at last_epoch

    def next_lr(self, group: Group) -> Any:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.t_cur / self.t_i)) / 2

    def step(self, group: Group) -> None:
        # PyTorch overrides step(): T_cur and T_i move first, then the value is computed afresh.
        if self.last_epoch < 0:  # the constructor's step: PyTorch takes its step(epoch=0) branch
            epoch = 0
            self.t_i = self.t_0
            self.t_cur = epoch
        else:
            epoch = self.last_epoch + 1
            self.t_cur = self.t_cur + 1
            if self.t_cur >= self.t_i:
                self.t_cur = self.t_cur % self.t_i
                self.t_i = self.t_i * self.t_mult
        self.last_epoch = epoch
        group.lr = self.next_lr(group)
