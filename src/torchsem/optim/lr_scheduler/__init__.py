"""PyTorch's learning-rate schedulers as optax schedules, with PyTorch's float64 values exactly.

Every scheduler is an optax schedule ``count -> lr`` (float32), ``count`` the number of
``scheduler.step()`` calls so far, built with PyTorch's keyword names and the base lr first
(``StepLR(0.1, step_size=30)``), to pass as a torchsem or optax optimizer's learning rate:
``torchsem.optim.sgd(lr=StepLR(0.1, 30))`` steps as ``SGD`` + ``StepLR.step()`` after every
``optimizer.step()``. The values are PyTorch's own recursion (the chainable ``get_lr`` of
2.13, which differs from the closed forms in the last bits) replayed in Python floats on the
host, exposed exactly by ``lrs(n)`` and rounded once to float32 for the optimizer.

- :class:`OneCycleLR` and :class:`CyclicLR` also cycle the momentum: ``.momentum`` is its schedule.
- :class:`ReduceLROnPlateau` is driven by a metric: a host object with a :class:`PlateauState`.
- :func:`per_epoch` steps a scheduler once per epoch of several optimizer steps.
"""

from ._chained_scheduler import ChainedScheduler as ChainedScheduler
from ._constant_lr import ConstantLR as ConstantLR
from ._cosine_annealing_lr import CosineAnnealingLR as CosineAnnealingLR
from ._cosine_annealing_warm_restarts import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from ._cyclic_lr import CyclicLR as CyclicLR
from ._exponential_lr import ExponentialLR as ExponentialLR
from ._lambda_lr import LambdaLR as LambdaLR
from ._linear_lr import LinearLR as LinearLR
from ._multi_step_lr import MultiStepLR as MultiStepLR
from ._multiplicative_lr import MultiplicativeLR as MultiplicativeLR
from ._one_cycle_lr import OneCycleLR as OneCycleLR
from ._per_epoch import PerEpoch as PerEpoch
from ._per_epoch import per_epoch as per_epoch
from ._polynomial_lr import PolynomialLR as PolynomialLR
from ._reduce_lr_on_plateau import PlateauState as PlateauState
from ._reduce_lr_on_plateau import ReduceLROnPlateau as ReduceLROnPlateau
from ._scheduler import DEFAULT_HORIZON as DEFAULT_HORIZON
from ._scheduler import LRScheduler as LRScheduler
from ._scheduler import MomentumSchedule as MomentumSchedule
from ._sequential_lr import SequentialLR as SequentialLR
from ._step_lr import StepLR as StepLR

__all__ = [
    "DEFAULT_HORIZON",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MomentumSchedule",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PerEpoch",
    "PlateauState",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "per_epoch",
]
