"""SequentialLR: one scheduler after another, switching at milestones."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ._arguments import integer
from ._members import CompositeRun, check_members
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


class SequentialLR(LRScheduler):
    r"""Run ``schedulers[i]`` from ``milestones[i-1]`` to ``milestones[i]``: ``torch.optim.lr_scheduler.SequentialLR``.

    The members share one parameter group, as in PyTorch: they are attached in list order
    (as if constructed in that order on one optimizer), then the group's lr is reset to the
    initial lr, every member's ``last_epoch`` is stepped back and the first member takes its
    initial step again. At step :math:`t` the member :math:`i = \#\{m \le t\}` steps from the
    lr the previous member left, except at a milestone, where it restarts from its closed
    form at epoch 0 (``_update_lr(0)``; a member without one recomputes its rule at epoch 0).

    Args:
      schedulers: the member schedulers (torchsem's, not ReduceLROnPlateau), built with the same lr.
      milestones: ``len(schedulers) - 1`` step indices.
      horizon: length of the float32 lookup tables (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32); :attr:`momentum` when a member cycles it.

    Raises:
      ValueError: PyTorch's messages (no schedulers, a ReduceLROnPlateau member, the wrong
        number of milestones), or members built with different learning rates.
      TypeError: a member that is not a torchsem scheduler.

    Reproduces ``torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers, milestones)``.
    """

    def __init__(
        self, schedulers: Sequence[LRScheduler], milestones: Sequence[int], *, horizon: int = DEFAULT_HORIZON
    ) -> None:
        self._shared_lr = check_members(
            "SequentialLR", schedulers, "SequentialLR expects at least one scheduler, but got no scheduler."
        )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers {len(schedulers)} and the "
                f"number of milestones to be equal to {len(milestones)}"
            )
        self.schedulers = list(schedulers)
        self.milestones = [integer(f"milestones[{i}]", m) for i, m in enumerate(milestones)]
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return self._shared_lr

    def _new_run(self) -> Run:
        return _SequentialRun([s._new_run() for s in self.schedulers], self.milestones)


class _SequentialRun(CompositeRun):
    def __init__(self, members: list[Run], milestones: list[int]) -> None:
        super().__init__(members)
        self.milestones = milestones
        self.ordered = milestones == sorted(milestones)

    def attach(self, group: Group) -> None:
        for member in self.members:
            member.attach(group)
        self.last_epoch = 0
        group.lr = group.initial_lr
        for member in self.members:
            member.undo()
        self.members[bisect_right(self.milestones, 0)].initial_step(group)

    def step(self, group: Group) -> None:
        self.last_epoch += 1
        index = bisect_right(self.milestones, self.last_epoch)
        member = self.members[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            member.restart(group)
        else:
            member.step(group)

    def settled(self, group: Group) -> bool:
        if not self.ordered or any(m > self.last_epoch for m in self.milestones):
            return False
        return self.members[-1].settled(group)
