"""The host-side replay of PyTorch's scheduler bookkeeping on one parameter group, in Python floats.

PyTorch 2.13's schedulers mostly update ``param_group["lr"]`` from its previous value (the
"chainable" form), on Python floats, and composite schedulers (SequentialLR,
ChainedScheduler) work by letting several schedulers write the same group in turn. The
float64 value after ``n`` steps is therefore a property of that whole sequence of writes,
not of a closed formula. This module replays it: a :class:`Group` stands for
``optimizer.param_groups[0]`` and a :class:`Run` for one scheduler object's own counters
(``last_epoch``, ``_step_count``, the constructor's initial step), with the operations
PyTorch's composites apply to their members (attach, step, restart at a milestone, undo).
"""

from __future__ import annotations

import math
from typing import Any


class Group:
    """The entries of ``optimizer.param_groups[0]`` that schedulers read and write.

    Attributes:
      lr: ``group["lr"]``, a Python number (whatever type the arithmetic produced, as in PyTorch).
      initial_lr: ``group["initial_lr"]``, set by the first scheduler attached (None before).
      momentum: ``group["momentum"]`` (or ``group["betas"][0]``) once a scheduler cycles it.
      extra: further keys OneCycleLR and CyclicLR store in the group (``max_lr``, ``min_lr``,
        ``max_momentum``, ``base_momentum``).
    """

    __slots__ = ("extra", "initial_lr", "lr", "momentum")

    def __init__(self, lr: Any) -> None:
        self.lr = lr
        self.initial_lr: Any = None
        self.momentum: Any = None
        self.extra: dict[str, Any] = {}


def same_value(a: Any, b: Any) -> bool:
    """Whether two floats are the same value: equal with the same sign, or both NaN."""
    if a != a and b != b:  # NaN
        return True
    return bool(a == b) and math.copysign(1.0, a) == math.copysign(1.0, b)


class Run:
    """One scheduler attached to a group: PyTorch's ``LRScheduler`` counters and entry points.

    Subclasses provide :meth:`next_lr` (PyTorch's ``get_lr``, called after ``last_epoch`` moved),
    optionally :meth:`closed_lr` (``_get_closed_form_lr``, used when a SequentialLR restarts a
    member at a milestone) and :meth:`settled` (no later step can change the group any more).
    """

    def __init__(self) -> None:
        self.last_epoch = -1
        self.step_count = 0
        self.initial = False
        self.base_lr: Any = None

    # --------------------------------------------------------------- the scheduler's own rule

    def prepare(self, group: Group) -> None:
        """What the constructor does to the group before ``LRScheduler.__init__`` runs."""

    def finish(self, group: Group) -> None:
        """What the constructor does after ``LRScheduler.__init__`` (CyclicLR's own base_lrs)."""

    def next_lr(self, group: Group) -> Any:
        raise NotImplementedError

    def closed_lr(self, group: Group) -> Any:
        """The closed form at ``last_epoch``; PyTorch falls back to ``get_lr`` where a class has none."""
        return self.next_lr(group)

    def settled(self, group: Group) -> bool:
        """True when no further step can change the group's lr or momentum (False when unknown)."""
        return False

    # --------------------------------------------------------------- PyTorch's entry points

    def attach(self, group: Group) -> None:
        """The constructor with ``last_epoch=-1``: record the base lr and take the initial step."""
        self.prepare(group)
        if group.initial_lr is None:
            group.initial_lr = group.lr
        self.base_lr = group.initial_lr
        self.initial_step(group)
        self.finish(group)

    def initial_step(self, group: Group) -> None:
        self.step_count = 0
        self.initial = True
        try:
            self.step(group)
        finally:
            self.initial = False

    def step(self, group: Group) -> None:
        """``scheduler.step()``."""
        self.step_count += 1
        self.last_epoch += 1
        group.lr = self.next_lr(group)

    def restart(self, group: Group) -> None:
        """``scheduler._update_lr(0)``, what SequentialLR does to a member at its milestone."""
        self.last_epoch = 0
        group.lr = self.closed_lr(group)

    def undo(self) -> None:
        """SequentialLR's ``recursive_undo`` on a plain scheduler: ``last_epoch -= 1``."""
        self.last_epoch -= 1
