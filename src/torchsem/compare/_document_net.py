"""The source document's network set-ups, defined once for the scenarios, the tests and ``comparisons/``.

- :func:`document_start`: the document's ``seed_torch(1029); model = net(); x = torch.randn(...)``
  in JAX: ``torchsem.models.Net``'s initial weights and the inputs, drawn from
  :class:`torchsem.random.Generator` (PyTorch's CPU generator replayed bit for bit), never read
  from PyTorch. Its PyTorch counterpart is :func:`torchsem.compare._torch_net.torch_document_start`.
- :func:`random_net_state`: a numpy ``state_dict`` for ``net`` with non-trivial BatchNorm
  parameters (the ``net`` and ``training`` families load it into both sides) and
  :func:`net_variables`, ``Net``'s variables holding such a state.
- :data:`RUNNING_MEAN_TRACE`: the document's section-5 sequence of ``model.train()`` /
  ``model.eval()`` calls, after each of which it prints ``bn1.running_mean``.

torch is never imported here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DOCUMENT_SEED = 1029
"""The document's ``seed_torch(1029)``."""

DOCUMENT_X_SHAPE = (3, 3, 8)
"""``x = torch.randn((3, 3, 8))``, the input of every section but the running-mean trace."""

TRACE_X_SHAPE = (1, 3, 8)
"""``x1..x4 = torch.randn((1, 3, 8))``, the four inputs of the running-mean trace."""


def document_start(
    draws: Sequence[Sequence[int]] = (DOCUMENT_X_SHAPE,), *, seed: int = DOCUMENT_SEED
) -> tuple[dict[str, Any], tuple[np.ndarray, ...]]:
    """``seed_torch(seed); model = net()`` and then one ``torch.randn(shape)`` per shape in ``draws``, in JAX.

    That is::

        generator = torchsem.random.Generator(seed)
        variables = torchsem.random.torch_init(Net(), generator, sample_x, train=False)
        xs = tuple(generator.randn(shape) for shape in draws)

    Of ``seed_torch``'s calls only ``torch.manual_seed`` reaches PyTorch's CPU generator, so it
    is the only one replayed. ``Net(detach=True)`` has the same variables as ``Net()``.

    Returns:
      ``(variables, xs)``: ``Net``'s variables (fresh dicts on every call) and the drawn inputs
      (float32 numpy arrays, read-only: the draws are made once per process and shared).
    """
    variables, xs = _drawn(tuple(tuple(int(n) for n in shape) for shape in draws), int(seed))
    return _fresh_dicts(variables), xs


@functools.lru_cache(maxsize=8)
def _drawn(draws: tuple[tuple[int, ...], ...], seed: int) -> tuple[dict[str, Any], tuple[np.ndarray, ...]]:
    # The replay (a Flax init run eagerly, then PyTorch's initialisation drawn in numpy) is
    # deterministic and takes a while, and several entries start from the same draws.
    import jax.numpy as jnp

    from ..models import Net
    from ..random import Generator, torch_init

    generator = Generator(seed)
    variables = torch_init(Net(), generator, jnp.zeros(TRACE_X_SHAPE, jnp.float32), train=False)
    xs = tuple(generator.randn(shape) for shape in draws)
    for x in xs:
        x.setflags(write=False)
    return variables, xs


def _fresh_dicts(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {key: _fresh_dicts(value) for key, value in tree.items()}
    return tree


def random_net_state(rng: np.random.Generator, *, fresh_statistics: bool = False) -> dict[str, np.ndarray]:
    """A ``net`` ``state_dict`` drawn from ``rng``, in PyTorch's key order, as numpy arrays.

    BatchNorm's weight and bias are drawn away from PyTorch's 1 and 0, fc1's from PyTorch's
    ``Linear(12, 4)`` initial range. With ``fresh_statistics`` the running statistics are a
    new BatchNorm's (mean 0, var 1, nothing tracked) and take no draws; without, they are drawn
    too and ``num_batches_tracked`` is 5.
    """
    bound = 1 / math.sqrt(12)
    state = {
        "bn1.weight": rng.uniform(0.5, 1.5, 3).astype(np.float32),
        "bn1.bias": rng.normal(0.0, 0.5, 3).astype(np.float32),
    }
    if fresh_statistics:
        state.update(
            {
                "bn1.running_mean": np.zeros(3, np.float32),
                "bn1.running_var": np.ones(3, np.float32),
                "bn1.num_batches_tracked": np.array(0, np.int64),
            }
        )
    else:
        state.update(
            {
                "bn1.running_mean": rng.normal(0.0, 0.3, 3).astype(np.float32),
                "bn1.running_var": rng.uniform(0.5, 2.0, 3).astype(np.float32),
                "bn1.num_batches_tracked": np.array(5, np.int64),
            }
        )
    state["fc1.weight"] = rng.uniform(-bound, bound, (4, 12)).astype(np.float32)
    state["fc1.bias"] = rng.uniform(-bound, bound, 4).astype(np.float32)
    return state


def net_variables(state: Mapping[str, Any]) -> dict[str, Any]:
    """``torchsem.models.Net``'s variables holding ``state`` (PyTorch's keys), as ``load_state_dict`` would."""
    import jax
    import jax.numpy as jnp

    from ..convert import load_torch_state_dict
    from ..models import Net

    template = Net().init(jax.random.key(0), jnp.zeros(TRACE_X_SHAPE, jnp.float32), train=False)
    return load_torch_state_dict(template, state)


@dataclasses.dataclass(frozen=True)
class TraceStep:
    """One step of the running-mean trace, after which the document prints ``bn1.running_mean``.

    Attributes:
      label: what the document does, for display (and output names) only.
      mode: ``"train"`` or ``"eval"``, the model's mode in and after this step.
      input: the index of the input (``x1..x4`` are 0..3) the model is called on; None when the
        step calls nothing (the start, or a bare ``model.eval()`` / ``model.train()``).
    """

    label: str
    mode: str
    input: int | None

    def __post_init__(self) -> None:
        if self.mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {self.mode!r}")


RUNNING_MEAN_TRACE = (
    TraceStep("init", "train", None),
    TraceStep("train x1", "train", 0),
    TraceStep("train x2", "train", 1),
    TraceStep("model.eval()", "eval", None),
    TraceStep("eval x3", "eval", 2),
    TraceStep("eval x4", "eval", 3),
    TraceStep("model.train()", "train", None),
    TraceStep("train x1 again", "train", 0),
    TraceStep("train x2 again", "train", 1),
)
"""The document's section 5, example two: train on x1, x2; eval on x3, x4; train on x1, x2 again."""

RUNNING_MEAN_CALLS = tuple((step.mode, step.input) for step in RUNNING_MEAN_TRACE if step.input is not None)
"""The trace's model calls alone, ``(mode, input index)``: ``model.train(mode == 'train'); model(xs[index])``."""
