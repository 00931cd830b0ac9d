"""StepLR: the learning rate times ``gamma`` every ``step_size`` steps."""

from __future__ import annotations

from typing import Any

from ._arguments import integer, number
from ._replay import Group, Run, same_value
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class StepLR(LRScheduler):
    r"""Decay the learning rate by ``gamma`` every ``step_size`` steps: ``torch.optim.lr_scheduler.StepLR``.

    PyTorch's chainable rule, replayed in float64 from the previous value :math:`\eta_{t-1}`:

    .. math::
        \eta_0 = \text{lr}, \qquad
        \eta_t = \begin{cases} \gamma\,\eta_{t-1} & t \bmod \text{step\_size} = 0 \\
                               \eta_{t-1} & \text{otherwise} \end{cases}

    (the closed form :math:`\text{lr}\cdot\gamma^{\lfloor t/\text{step\_size}\rfloor}` differs
    in the last bits; it is used only when a SequentialLR restarts the scheduler).

    Args:
      lr: the optimizer's learning rate (PyTorch reads it from ``optimizer.param_groups``).
      step_size: period of the decay, in scheduler steps.
      gamma: multiplicative factor of the decay.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32), ``count`` the number of ``scheduler.step()`` calls.

    Raises:
      TypeError: a non-number ``lr``/``gamma`` or a non-int ``step_size``.

    Reproduces ``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1)``.
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        self.step_size = integer("step_size", step_size)
        self.gamma = number("gamma", gamma)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _StepLRRun(self.step_size, self.gamma)


class _StepLRRun(Run):
    def __init__(self, step_size: int, gamma: Any) -> None:
        super().__init__()
        self.step_size = step_size
        self.gamma = gamma

    def next_lr(self, group: Group) -> Any:
        epoch = self.last_epoch
        if epoch == 0 or epoch % self.step_size != 0:  # a zero step_size raises here at step 1, as in PyTorch
            return group.lr
        return group.lr * self.gamma

    def closed_lr(self, group: Group) -> Any:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def settled(self, group: Group) -> bool:
        return same_value(group.lr * self.gamma, group.lr)
