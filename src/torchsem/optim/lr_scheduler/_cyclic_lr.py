"""CyclicLR: the learning rate cycled between two bounds (and the momentum against it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._arguments import number, one_group
from ._replay import Group, Run
from ._scheduler import DEFAULT_HORIZON, LRScheduler

_MODES = ("triangular", "triangular2", "exp_range")


class CyclicLR(LRScheduler):
    r"""The cyclical learning-rate policy: ``torch.optim.lr_scheduler.CyclicLR``.

    With :math:`S` = ``step_size_up + step_size_down`` and :math:`r` = ``step_size_up / S``,
    at step :math:`t` (float64, PyTorch's expressions):

    .. math::
        c = \lfloor 1 + t/S \rfloor, \quad x = 1 + t/S - c, \quad
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases}

    .. math::
        \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\,h\cdot s, \qquad
        m_t = m_{max} - (m_{max} - m_{base})\,h\cdot s

    where :math:`s` is ``scale_fn(c)`` (``scale_mode="cycle"``) or ``scale_fn(t)``
    (``"iterations"``): 1 for ``triangular``, :math:`1/2^{c-1}` for ``triangular2``,
    :math:`\gamma^t` for ``exp_range`` (each mode fixes its scale_mode, as in PyTorch).
    With ``cycle_momentum`` the momentum (SGD's ``momentum``, Adam's ``betas[0]``) is cycled
    inversely; :attr:`momentum` is its schedule.

    Args:
      base_lr: the lower bound; it replaces the optimizer's learning rate, as in PyTorch.
      max_lr: the upper bound.
      step_size_up: steps in the increasing half of a cycle.
      step_size_down: steps in the decreasing half (default ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (ignored with ``scale_fn``).
      gamma: ``exp_range``'s base.
      scale_fn: a custom host function of the cycle or the step, with values in [0, 1].
      scale_mode: ``"cycle"`` or ``"iterations"``, for ``scale_fn``.
      cycle_momentum: cycle the momentum too.
      base_momentum: the momentum's lower bound (at the learning rate's peak).
      max_momentum: the momentum's upper bound (at the cycle's start).
      horizon: length of the float32 lookup tables (see :class:`LRScheduler`).

    Returns:
      An optax schedule ``count -> lr`` (float32), with :attr:`momentum` when cycled.

    Raises:
      ValueError: PyTorch's ``mode is invalid and scale_fn is None``, and its length check
        for per-group lists (one group here).

    Reproduces ``torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr, max_lr, step_size_up=2000,
    step_size_down=None, mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
    cycle_momentum=True, base_momentum=0.8, max_momentum=0.9)``.
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        *,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        self.base_lr = number("base_lr", one_group("base_lr", base_lr))
        self.max_lr = number("max_lr", one_group("max_lr", max_lr))
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in _MODES and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode = mode
        self.gamma = gamma
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode
        if scale_fn is None:  # each built-in mode decides what it scales by
            self.scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.base_momentum = number("base_momentum", one_group("base_momentum", base_momentum))
            self.max_momentum = number("max_momentum", one_group("max_momentum", max_momentum))
        super().__init__(horizon=horizon)

    def _scale(self, x: Any) -> Any:
        if self.scale_fn is not None:
            return self.scale_fn(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def _start_lr(self) -> Any:
        return None  # replaced by base_lr before anything reads it

    def _new_run(self) -> Run:
        return _CyclicRun(self)


class _CyclicRun(Run):
    def __init__(self, spec: CyclicLR) -> None:
        super().__init__()
        self.spec = spec

    def prepare(self, group: Group) -> None:
        spec = self.spec
        group.lr = spec.base_lr
        if spec.cycle_momentum:
            group.momentum = spec.max_momentum

    def finish(self, group: Group) -> None:
        # PyTorch sets its own base_lrs after LRScheduler.__init__ (whose initial step used initial_lr).
        self.base_lr = self.spec.base_lr

    def next_lr(self, group: Group) -> Any:
        spec, epoch = self.spec, self.last_epoch
        cycle = math.floor(1 + epoch / spec.total_size)
        x = 1.0 + epoch / spec.total_size - cycle
        if x <= spec.step_ratio:
            scale_factor = x / spec.step_ratio
        else:
            scale_factor = (x - 1) / (spec.step_ratio - 1)
        argument = cycle if spec.scale_mode == "cycle" else epoch
        lr = self.base_lr + (spec.max_lr - self.base_lr) * scale_factor * spec._scale(argument)
        if spec.cycle_momentum:
            height = (spec.max_momentum - spec.base_momentum) * scale_factor
            group.momentum = spec.max_momentum - height * spec._scale(argument)
        return lr
