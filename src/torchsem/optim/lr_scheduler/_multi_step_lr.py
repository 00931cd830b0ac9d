"""MultiStepLR: the learning rate times ``gamma`` at each milestone."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class MultiStepLR(LRScheduler):
    r"""Decay the learning rate by ``gamma`` at each milestone: ``torch.optim.lr_scheduler.MultiStepLR``.

    Replayed in float64 from the previous value; a milestone listed :math:`k` times multiplies
    by :math:`\gamma^k` at once:

    .. math::
        \eta_0 = \text{lr}, \qquad \eta_t = \eta_{t-1}\,\gamma^{\#\{m \in \text{milestones} : m = t\}}

    Args:
      lr: the optimizer's learning rate.
      milestones: scheduler-step indices (ints; repeats count).
      gamma: multiplicative factor of the decay.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      TypeError: ``milestones`` not an iterable of ints, or a non-number ``lr``/``gamma``.

    Reproduces ``torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)``.
    """

    def __init__(
        self, lr: float, milestones: Iterable[int], gamma: float = 0.1, *, horizon: int = DEFAULT_HORIZON
    ) -> None:
        self.lr = number("lr", lr)
        counted = Counter(milestones)  # Python's TypeError for a non-iterable, as in PyTorch
        self.milestones = Counter({integer("milestones[...]", m): k for m, k in counted.items()})
        self.gamma = number("gamma", gamma)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _MultiStepLRRun(self.milestones, self.gamma)


class _MultiStepLRRun(Run):
    def __init__(self, milestones: Counter, gamma: Any) -> None:
        super().__init__()
        self.milestones = milestones
        self.sorted = sorted(milestones.elements())
        self.gamma = gamma

    def next_lr(self, group: Group) -> Any:
        if self.last_epoch not in self.milestones:
            return group.lr
        return group.lr * self.gamma ** self.milestones[self.last_epoch]

    def closed_lr(self, group: Group) -> Any:
        return self.base_lr * self.gamma ** bisect_right(self.sorted, self.last_epoch)

    def settled(self, group: Group) -> bool:
        return not self.sorted or self.last_epoch >= self.sorted[-1]
