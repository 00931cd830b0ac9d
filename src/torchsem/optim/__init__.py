"""Optimizers that step exactly like ``torch.optim``, as optax GradientTransformations.

- :func:`sgd`, :func:`adam`, :func:`adamw`, :func:`rmsprop`, :func:`adagrad`, :func:`adadelta`,
  :func:`adamax`, :func:`nadam`, :func:`radam`: PyTorch's formulas, defaults, argument errors
  and float32 roundings (its float64 step scalars rounded once); per-parameter state with
  PyTorch's names (:class:`SGDState`, :class:`AdamState`, :class:`RMSpropState`,
  :class:`AdagradState`, :class:`AdadeltaState`, :class:`AdamaxState`, :class:`NAdamState`,
  :class:`RAdamState`); a None gradient skips its parameter as ``optimizer.step()`` does; ``lr``
  may also be a 1-element numpy or JAX array, PyTorch's tensor ``lr`` (a float32 one computes
  the step scalars in float32, as PyTorch's 0-d tensor does).
- :mod:`lr_scheduler`: PyTorch's schedulers as optax schedules (the value
  ``optimizer.param_groups[0]["lr"]`` holds after each ``scheduler.step()``);
  :func:`clip_grad_norm` / :func:`clip_grad_value`: ``torch.nn.utils`` clipping, as the first
  transformation of a chain; :func:`param_groups`: PyTorch's parameter groups.
- :func:`freeze`: ``requires_grad=False`` for the optimizer, on ``optax.partition`` +
  ``optax.set_to_zero`` (never ``optax.masked``, which lets the raw gradient through).
- :func:`state_dict` / :func:`load_state_dict`: the state as PyTorch's
  ``optimizer.state_dict()["state"]``, or with ``tx=`` (a :func:`param_groups` transformation)
  PyTorch's whole ``optimizer.state_dict()``, ``param_groups`` included.

Usage is optax's: ``state = tx.init(params)``, ``updates, state = tx.update(grads, state,
params)``, ``params = optax.apply_updates(params, updates)``. ``params`` is required by
``update``: the transformations compute PyTorch's new parameter and return ``new - old``,
which ``optax.apply_updates`` turns back into the same float32 value except in a step that
crosses zero or shrinks a value by more than half (then within one unit in the last place;
no float32 update can always land exactly there, which is why this is not an ``apply_updates``).
:func:`step` (``params, state = step(tx, grads, state, params)``) returns PyTorch's new
parameters bit for bit in every case.
"""

from . import lr_scheduler as lr_scheduler
from ._adadelta import AdadeltaState as AdadeltaState
from ._adadelta import adadelta as adadelta
from ._adagrad import AdagradState as AdagradState
from ._adagrad import adagrad as adagrad
from ._adam import AdamState as AdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adamax import AdamaxState as AdamaxState
from ._adamax import adamax as adamax
from ._clip import ClipGradNormState as ClipGradNormState
from ._clip import clip_grad_norm as clip_grad_norm
from ._clip import clip_grad_value as clip_grad_value
from ._common import LearningRate as LearningRate
from ._common import Schedule as Schedule
from ._common import TorchOptimizer as TorchOptimizer
from ._common import step as step
from ._freeze import freeze as freeze
from ._freeze import parameter_names as parameter_names
from ._nadam import NAdamState as NAdamState
from ._nadam import nadam as nadam
from ._param_groups import ParamGroup as ParamGroup
from ._param_groups import param_groups as param_groups
from ._radam import RAdamState as RAdamState
from ._radam import radam as radam
from ._rmsprop import RMSpropState as RMSpropState
from ._rmsprop import rmsprop as rmsprop
from ._sgd import SGDState as SGDState
from ._sgd import sgd as sgd
from ._state_dict import load_state_dict as load_state_dict
from ._state_dict import state_dict as state_dict

__all__ = [
    "AdadeltaState",
    "AdagradState",
    "AdamState",
    "AdamaxState",
    "ClipGradNormState",
    "LearningRate",
    "NAdamState",
    "ParamGroup",
    "RAdamState",
    "RMSpropState",
    "SGDState",
    "Schedule",
    "TorchOptimizer",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "clip_grad_norm",
    "clip_grad_value",
    "freeze",
    "load_state_dict",
    "lr_scheduler",
    "nadam",
    "param_groups",
    "parameter_names",
    "radam",
    "rmsprop",
    "sgd",
    "state_dict",
    "step",
]
