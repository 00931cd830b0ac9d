"""CosineAnnealingLR: cosine annealing from the learning rate to ``eta_min``, PyTorch's recursive form."""

from __future__ import annotations

import math
from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the learning rate along a cosine: ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    PyTorch 2.13 computes each value from the previous one (:math:`T` = ``T_max``,
    :math:`\eta_{\min}` = ``eta_min``, :math:`\eta_{\max}` = ``lr``), replayed here in float64:

    .. math::
        \eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
                 \frac{1 + \cos(\pi t / T)}{1 + \cos(\pi (t-1) / T)}

    except at :math:`t - 1 - T \equiv 0 \pmod{2T}`, where the cosine's denominator is zero and
    PyTorch adds :math:`(\eta_{\max} - \eta_{\min})(1 - \cos(\pi/T))/2` instead. The schedule
    does not stop at :math:`T`: it rises again and keeps oscillating with period :math:`2T`.
    The values differ from the closed form
    :math:`\eta_{\min} + (\eta_{\max} - \eta_{\min})(1 + \cos(\pi t/T))/2` (``optax.cosine_decay_schedule``)
    in the last bits.

    Args:
      lr: the optimizer's learning rate, :math:`\eta_{\max}`.
      T_max: half the period, in scheduler steps (0 makes PyTorch divide by zero at step 1).
      eta_min: the minimum learning rate.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      TypeError: a non-number ``lr``/``eta_min`` or a non-int ``T_max``.

    Reproduces ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min=0.0)``.
    """

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        self.T_max = integer("T_max", T_max)
        self.eta_min = number("eta_min", eta_min)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _CosineAnnealingRun(self.T_max, self.eta_min)


class _CosineAnnealingRun(Run):
    def __init__(self, t_max: int, eta_min: Any) -> None:
        super().__init__()
        self.t_max = t_max
        self.eta_min = eta_min

    def next_lr(self, group: Group) -> Any:
        epoch, t_max, eta_min = self.last_epoch, self.t_max, self.eta_min
        if self.initial:
            return group.lr
        if self.step_count == 1 and epoch > 0:  # resumed: PyTorch starts from the closed form
            return eta_min + (self.base_lr - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # just past a minimum: 1 + cos(pi) would divide by zero
            return group.lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        ratio = (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max))
        return ratio * (group.lr - eta_min) + eta_min

    def closed_lr(self, group: Group) -> Any:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.t_max)) / 2
