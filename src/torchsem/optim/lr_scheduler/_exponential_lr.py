"""ExponentialLR: the learning rate times ``gamma`` every step."""

from __future__ import annotations

from typing import Any

from ._arguments import number
from ._replay import Group, Run, same_value
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class ExponentialLR(LRScheduler):
    r"""Decay the learning rate by ``gamma`` every step: ``torch.optim.lr_scheduler.ExponentialLR``.

    Replayed in float64 as PyTorch multiplies, one rounding per step:

    .. math::
        \eta_0 = \text{lr}, \qquad \eta_t = \eta_{t-1}\cdot\gamma

    which drifts from the closed form :math:`\text{lr}\cdot\gamma^t` (``optax.exponential_decay``)
    in the last bits.

    Args:
      lr: the optimizer's learning rate.
      gamma: the per-step factor.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      TypeError: a non-number ``lr`` or ``gamma``.

    Reproduces ``torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)``.
    """

    def __init__(self, lr: float, gamma: float, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        self.gamma = number("gamma", gamma)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _ExponentialLRRun(self.gamma)


class _ExponentialLRRun(Run):
    def __init__(self, gamma: Any) -> None:
        super().__init__()
        self.gamma = gamma

    def next_lr(self, group: Group) -> Any:
        if self.initial:
            return group.lr
        return group.lr * self.gamma

    def closed_lr(self, group: Group) -> Any:
        return self.base_lr * self.gamma**self.last_epoch

    def settled(self, group: Group) -> bool:
        return same_value(group.lr * self.gamma, group.lr)
