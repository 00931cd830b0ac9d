"""ChainedScheduler: several schedulers stepped one after the other at every step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._members import CompositeRun, check_members
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class ChainedScheduler(LRScheduler):
    r"""Step every scheduler in turn on one group: ``torch.optim.lr_scheduler.ChainedScheduler``.

    The members are attached in list order (as if constructed in that order on one
    optimizer, each constructor's initial step acting on the lr the previous one left); each
    ``step()`` then steps them in list order, each chainable rule acting on the lr the
    previous member wrote. ``ConstantLR(factor)`` chained with ``ExponentialLR(gamma)`` gives
    :math:`\eta_t = \eta_{t-1}\gamma` (times :math:`1/f` at ``total_iters``), in float64.

    Args:
      schedulers: the member schedulers (torchsem's, not ReduceLROnPlateau), built with the same lr.
      horizon: length of the float32 lookup tables (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32); :attr:`momentum` when a member cycles it.

    Raises:
      ValueError: PyTorch's messages (no schedulers, a ReduceLROnPlateau member), or members
        built with different learning rates.
      TypeError: a member that is not a torchsem scheduler.

    Reproduces ``torch.optim.lr_scheduler.ChainedScheduler(schedulers)``.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], *, horizon: int = DEFAULT_HORIZON) -> None:
        self._shared_lr = check_members(
            "ChainedScheduler",
            schedulers,
            "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.",
        )
        self.schedulers = list(schedulers)
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self._shared_lr

    def _new_run(self) -> Run:
        return _ChainedRun([s._new_run() for s in self.schedulers])


class _ChainedRun(CompositeRun):
    def attach(self, group: Group) -> None:
        for member in self.members:
            member.attach(group)

    def step(self, group: Group) -> None:
        for member in self.members:
            member.step(group)

    def settled(self, group: Group) -> bool:
        return all(member.settled(group) for member in self.members)
