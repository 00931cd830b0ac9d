"""The members of a composite scheduler (SequentialLR, ChainedScheduler): PyTorch's checks, one shared group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._reduce_lr_on_plateau import ReduceLROnPlateau
from ._replay import Group, Run
from ._scheduler import LRScheduler


def check_members(owner: str, schedulers: Sequence[Any], empty_message: str) -> Any:
    """PyTorch's checks on a composite's schedulers; returns the learning rate they share.

    In PyTorch every member is built on the same optimizer and reads its lr from it; here
    each member carries the lr it was built with, so "the same optimizer" means the same
    lr (CyclicLR and OneCycleLR set their own and take part in no comparison).

    Raises:
      ValueError: no schedulers (``empty_message``, PyTorch's), a ReduceLROnPlateau member
        (PyTorch's message), or members built with different learning rates.
      TypeError: a member that is not a torchsem scheduler.
    """
    if len(schedulers) < 1:
        raise ValueError(empty_message)
    shared: Any = None
    first = -1
    for index, scheduler in enumerate(schedulers):
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {index} in the given schedulers sequence."
            )
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(
                f"{owner} at index {index} should be a torchsem.optim.lr_scheduler scheduler "
                f"(PyTorch: should have `optimizer` as its attribute), got {type(scheduler).__name__}"
            )
        lr = scheduler._start_lr()
        if lr is None:
            continue
        if first < 0:
            shared, first = lr, index
        elif lr != shared:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, here: to be built with the same lr, "
                f"but got scheduler {type(scheduler).__name__} at index {index} with lr={lr!r}, which is different "
                f"from lr={shared!r} of scheduler {type(schedulers[first]).__name__} at index {first}."
            )
    return shared


class CompositeRun(Run):
    """A composite's replay: its members share the group; PyTorch's ``recursive_undo`` reaches them all."""

    def __init__(self, members: list[Run]) -> None:
        super().__init__()
        self.members = members

    def initial_step(self, group: Group) -> None:
        # LRScheduler._initial_step on a composite: its own step(), whose members step normally.
        self.step_count = 0
        self.step(group)

    def undo(self) -> None:
        for member in self.members:
            member.undo()

    def restart(self, group: Group) -> None:
        # PyTorch's _update_lr(0) on a composite reaches LRScheduler.get_lr, which raises.
        raise NotImplementedError(
            "a SequentialLR reached the milestone of a composite member: PyTorch's _update_lr(0) on a "
            "SequentialLR or ChainedScheduler calls LRScheduler.get_lr, which raises NotImplementedError"
        )
