"""OneCycleLR: the 1cycle policy (warm up to ``max_lr``, anneal far below), momentum cycled against it."""

from __future__ import annotations

import math
from typing import Any

from ._arguments import number, one_group
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler


def _anneal_cos(start: Any, end: Any, pct: Any) -> Any:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: Any, end: Any, pct: Any) -> Any:
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    r"""The 1cycle learning-rate policy: ``torch.optim.lr_scheduler.OneCycleLR``.

    The learning rate starts at ``max_lr / div_factor``, rises to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` and anneals to ``initial_lr / final_div_factor``
    (``three_phase``: back to the initial rate, then down to the minimum). Within a phase
    from step :math:`a` to :math:`b`, with :math:`p = (t - a)/(b - a)` (PyTorch's float64
    phase ends, ``pct_start * total_steps - 1`` ...):

    .. math::
        \text{cos:}\ \ \eta_t = \eta_{end} + \frac{\eta_{start} - \eta_{end}}{2}(\cos(\pi p) + 1),
        \qquad \text{linear:}\ \ \eta_t = (\eta_{end} - \eta_{start})\,p + \eta_{start}

    and the momentum moves the opposite way between ``max_momentum`` and ``base_momentum``
    (:attr:`momentum`). PyTorch raises once stepped past ``total_steps``; here so does the
    host replay, and so does a jitted lookup past it (through the host callback).

    Args:
      max_lr: the peak learning rate (it replaces the optimizer's, as in PyTorch).
      total_steps: the number of steps in the cycle, or None to use ``epochs * steps_per_epoch``.
      epochs: with ``steps_per_epoch``, the cycle's length when ``total_steps`` is None.
      steps_per_epoch: see ``epochs``.
      pct_start: the fraction of the cycle spent increasing the learning rate (a float).
      anneal_strategy: ``"cos"`` or ``"linear"``.
      cycle_momentum: cycle the momentum (SGD's ``momentum``, Adam's ``betas[0]``).
      base_momentum: the momentum at the learning rate's peak.
      max_momentum: the momentum at the start and end.
      div_factor: ``initial_lr = max_lr / div_factor``.
      final_div_factor: ``min_lr = initial_lr / final_div_factor``.
      three_phase: PyTorch's three-phase variant.
      horizon: length of the float32 lookup tables (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32), with :attr:`momentum` when cycled.

    Raises:
      ValueError: PyTorch's messages, e.g. ``You must define either total_steps OR (epochs AND
        steps_per_epoch)`` and ``Expected float between 0 and 1 pct_start, but got 2``.

    Reproduces ``torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps=None, epochs=None,
    steps_per_epoch=None, pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
    max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False)``.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        *,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        # PyTorch's checks, in its order and with its messages.
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        total = self.total_steps
        # (end step, start lr key, end lr key, start momentum key, end momentum key) per phase.
        if three_phase:
            self.phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * total) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self.phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
        self.max_lr = number("max_lr", one_group("max_lr", max_lr))
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.max_momentum = number("max_momentum", one_group("max_momentum", max_momentum))
            self.base_momentum = number("base_momentum", one_group("base_momentum", base_momentum))
        super().__init__(horizon=horizon)

    def _start_lr(self) -> Any:
        return None  # OneCycleLR never reads the optimizer's own learning rate

    def _new_run(self) -> Run:
        return _OneCycleRun(self)


class _OneCycleRun(Run):
    def __init__(self, spec: OneCycleLR) -> None:
        super().__init__()
        self.spec = spec

    def prepare(self, group: Group) -> None:
        spec = self.spec
        group.initial_lr = spec.max_lr / spec.div_factor
        group.extra["max_lr"] = spec.max_lr
        group.extra["min_lr"] = group.initial_lr / spec.final_div_factor
        if spec.cycle_momentum:
            group.momentum = spec.max_momentum
            group.extra["max_momentum"] = spec.max_momentum
            group.extra["base_momentum"] = spec.base_momentum

    def _read(self, group: Group, key: str) -> Any:
        return group.initial_lr if key == "initial_lr" else group.extra[key]

    def next_lr(self, group: Group) -> Any:
        spec, step = self.spec, self.last_epoch
        if step > spec.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {spec.total_steps}")
        start = 0.0
        for index, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(spec.phases):
            if step <= end or index == len(spec.phases) - 1:
                pct = (step - start) / (end - start)
                lr = spec.anneal(self._read(group, lr_from), self._read(group, lr_to), pct)
                if spec.cycle_momentum:
                    group.momentum = spec.anneal(self._read(group, momentum_from), self._read(group, momentum_to), pct)
                return lr
            start = end
        raise AssertionError("unreachable: the last phase always matches")  # pragma: no cover
