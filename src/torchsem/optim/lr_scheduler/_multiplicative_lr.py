"""MultiplicativeLR: the learning rate times a host function of the step, every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._arguments import number, one_function
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class MultiplicativeLR(LRScheduler):
    r"""Multiply the learning rate by ``lr_lambda(step)`` every step: ``torch.optim.lr_scheduler.MultiplicativeLR``.

    .. math::
        \eta_0 = \text{lr}, \qquad \eta_t = \eta_{t-1}\cdot\lambda(t)

    ``lr_lambda`` is a Python function, called on the host (see :class:`LambdaLR`).

    Args:
      lr: the optimizer's learning rate.
      lr_lambda: ``int -> factor``, or a list holding one such function.
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      ValueError: PyTorch's ``Expected 1 lr_lambdas, but got 2``.
      TypeError: PyTorch's ``lr_lambda should be a function, but got int``.

    Reproduces ``torch.optim.lr_scheduler.MultiplicativeLR(optimizer, lr_lambda)``.
    """

    def __init__(self, lr: float, lr_lambda: Callable[[int], float] | list, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        function = one_function(lr_lambda)
        if not callable(function):
            raise TypeError(f"lr_lambda should be a function, but got {type(function).__name__}")
        self.lr_lambda = function
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _MultiplicativeRun(self.lr_lambda)


class _MultiplicativeRun(Run):
    def __init__(self, function: Callable[[int], Any]) -> None:
        super().__init__()
        self.function = function

    def next_lr(self, group: Group) -> Any:
        if self.initial:
            return group.lr
        return group.lr * self.function(self.last_epoch)
