"""LambdaLR: the initial learning rate times a host function of the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._arguments import number, one_function
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class LambdaLR(LRScheduler):
    r"""The initial learning rate times ``lr_lambda(step)``: ``torch.optim.lr_scheduler.LambdaLR``.

    .. math::
        \eta_t = \text{lr}\cdot\lambda(t)

    ``lr_lambda`` is a Python function, called on the host with the integer step (as PyTorch
    calls it, with whatever number type it returns) while the table is built, and through the
    host callback past the table's end.

    Args:
      lr: the optimizer's learning rate.
      lr_lambda: ``int -> factor``, or a list holding one such function (one parameter group).
      horizon: length of the float32 lookup table (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32).

    Raises:
      ValueError: PyTorch's ``Expected 1 lr_lambdas, but got 2`` for a list of another length.

    Reproduces ``torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)``.
    """

    def __init__(self, lr: float, lr_lambda: Callable[[int], float] | list, *, horizon: int = DEFAULT_HORIZON) -> None:
        self.lr = number("lr", lr)
        self.lr_lambda = one_function(lr_lambda)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self.lr

    def _new_run(self) -> Run:
        return _LambdaRun(self.lr_lambda)


class _LambdaRun(Run):
    def __init__(self, function: Callable[[int], Any]) -> None:
        super().__init__()
        self.function = function

    def next_lr(self, group: Group) -> Any:
        return self.base_lr * self.function(self.last_epoch)
