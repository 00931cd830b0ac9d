"""per_epoch: a scheduler stepped once per epoch of several optimizer steps."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class PerEpoch:
    """``schedule(count // steps_per_epoch)``: see :func:`per_epoch`."""

    def __init__(self, schedule: Callable[[Any], Any], steps_per_epoch: int) -> None:
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, count: Any) -> jax.Array:
        return self.schedule(count // self.steps_per_epoch)

    @property
    def momentum(self) -> PerEpoch | None:
        """The wrapped scheduler's cycled momentum, stepped per epoch too (None when there is none)."""
        momentum = getattr(self.schedule, "momentum", None)
        return None if momentum is None else PerEpoch(momentum, self.steps_per_epoch)

    def lrs(self, steps: int) -> np.ndarray:
        """The float64 learning rate at optimizer steps 0 .. ``steps - 1`` (the wrapped scheduler's ``lrs``)."""
        return self._values("lrs", steps)

    def momentums(self, steps: int) -> np.ndarray:
        """The float64 momentum at optimizer steps 0 .. ``steps - 1``."""
        return self._values("momentums", steps)

    def _values(self, method: str, steps: int) -> np.ndarray:
        values = getattr(self.schedule, method, None)
        if values is None:
            raise TypeError(
                f"{type(self.schedule).__name__} has no host values ({method}); it is not a torchsem scheduler"
            )
        epochs = -(-steps // self.steps_per_epoch)
        return np.asarray(values(epochs))[np.arange(steps) // self.steps_per_epoch]


def per_epoch(schedule: Callable[[Any], Any], steps_per_epoch: int) -> PerEpoch:
    r"""A schedule stepped once per epoch: the value at optimizer step :math:`c` is ``schedule(c // steps_per_epoch)``.

    PyTorch's epoch loop, ``for epoch ...: for batch ...: optimizer.step()`` then
    ``scheduler.step()`` once after the epoch, has the optimizer at step :math:`c` use the
    scheduler's value after :math:`\lfloor c / E \rfloor` scheduler steps. A torchsem (or
    optax) optimizer counts optimizer steps, so wrap the scheduler: ``sgd(lr=per_epoch(StepLR(0.1,
    30), steps_per_epoch=len(loader)))``. The momentum of a cycling scheduler is wrapped the same way.

    Args:
      schedule: any optax schedule ``count -> value``, typically a torchsem scheduler.
      steps_per_epoch: optimizer steps per epoch, a positive int.

    Returns:
      A :class:`PerEpoch` schedule (with ``momentum``, ``lrs`` and ``momentums`` when the wrapped
      scheduler has them).

    Raises:
      ValueError: ``steps_per_epoch`` is not a positive int (PyTorch's OneCycleLR wording).
      TypeError: ``schedule`` is not callable.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (count -> value), got {type(schedule).__name__}")
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, numbers.Integral) or steps_per_epoch <= 0:
        raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
    return PerEpoch(schedule, int(steps_per_epoch))
