"""The base of every scheduler: PyTorch's replayed values as an optax schedule ``count -> lr``.

A scheduler replays PyTorch's own recursion on the host in Python floats (``_replay``) and
keeps the values after 0, 1, 2, ... ``scheduler.step()`` calls. Called with a traced count
(inside ``jax.jit``, an optimizer's update) it looks the value up in a float32 table of the
first ``horizon`` values: PyTorch's float64 value rounded once to float32, which is what a
float32 kernel does with ``group["lr"]`` (``p.add_(g, alpha=-lr)``). Past the end of the
table the value comes from the host replay through ``jax.pure_callback``, so it stays exact
at any count (at the cost of a host round trip per call); a schedule that can no longer
change (StepLR once the float64 lr stops moving, LinearLR after ``total_iters``) has a
complete table and never calls back. Called with a concrete count it answers from the host.
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._replay import Group, Run

DEFAULT_HORIZON = 1 << 16
"""How many steps a scheduler's float32 table holds by default (256 KiB); later counts call back to the host."""

_COMPLEMENT = "one_minus_momentum"  # float64 1 - momentum, what Adam's lerp weight 1 - beta1 is computed from


def _known(values: dict[str, list[float]], kind: str) -> np.ndarray:
    if kind == _COMPLEMENT:
        return 1.0 - np.asarray(values["momentum"], np.float64)  # IEEE float64, as Python's 1 - beta1
    return np.asarray(values[kind], np.float64)


class _History:
    """The replayed lr (and momentum) after 0, 1, 2, ... steps, extended on demand, thread-safe.

    The constructor attaches the scheduler to a fresh group, so it raises what PyTorch's
    constructor raises. A step that raises ends the history: asking for that count or a
    later one raises the same error again (PyTorch raises at that ``scheduler.step()``).
    """

    def __init__(self, run: Run, start_lr: Any) -> None:
        self._lock = threading.Lock()
        self._group = Group(start_lr)
        self._run = run
        run.attach(self._group)
        self._values: dict[str, list[float]] = {"lr": [float(self._group.lr)], "momentum": []}
        self.cycles_momentum = self._group.momentum is not None
        if self.cycles_momentum:
            self._values["momentum"].append(float(self._group.momentum))
        self._error: Exception | None = None
        self._settled = run.settled(self._group)
        self._tables: dict[tuple[str, int], tuple[np.ndarray, bool]] = {}

    def _extend(self, length: int) -> None:
        """Step until ``length`` values exist, the schedule has settled, or a step raised (lock held)."""
        lrs = self._values["lr"]
        while len(lrs) < length and not self._settled and self._error is None:
            try:
                self._run.step(self._group)
                lr = float(self._group.lr)
                momentum = float(self._group.momentum) if self.cycles_momentum else None
            except Exception as error:  # PyTorch raises it at this step; so does every later lookup
                self._error = error
                break
            lrs.append(lr)
            if momentum is not None:
                self._values["momentum"].append(momentum)
            self._settled = self._run.settled(self._group)

    def values(self, kind: str, counts: np.ndarray) -> np.ndarray:
        """float64 values at integer ``counts`` (any shape)."""
        if counts.size and int(counts.min()) < 0:
            raise ValueError(f"a scheduler's count is the number of scheduler.step() calls, >= 0; got {counts.min()}")
        with self._lock:
            self._extend(int(counts.max(initial=-1)) + 1)
            known = self._values["momentum" if kind == _COMPLEMENT else kind]
            last = len(known) - 1
            if counts.size and int(counts.max()) > last and not self._settled:
                self._raise_error()
            # Indexing the list (not converting it whole): a callback past the table asks for one count per step.
            picked = np.array([known[min(int(c), last)] for c in counts.reshape(-1)], np.float64).reshape(counts.shape)
        return 1.0 - picked if kind == _COMPLEMENT else picked

    def _raise_error(self) -> None:
        # A fresh exception each time: re-raising one object keeps growing its traceback, and JAX's
        # callback machinery reports a re-raised object differently.
        error = self._error
        assert error is not None
        try:
            fresh = type(error)(*error.args)
        except Exception:
            fresh = error
        if fresh is error:
            raise error
        raise fresh from error

    def table(self, kind: str, horizon: int) -> tuple[np.ndarray, bool]:
        """The float32 values at counts ``0 .. horizon - 1`` (fewer if the schedule settled or raised).

        The flag says whether the table answers every count (the schedule settled within it).
        """
        key = (kind, horizon)
        with self._lock:
            if key not in self._tables:
                self._extend(horizon)
                known = _known(self._values, kind)
                values = known[:horizon].astype(np.float32)
                complete = self._settled and known.shape[0] <= horizon
                self._tables[key] = (values, complete)
            return self._tables[key]


def _check_count(count: Any) -> None:
    dtype = jnp.result_type(count)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"count must be an integer (the number of scheduler.step() calls, optax's schedule count), got {dtype}"
        )


class LRScheduler:
    """A PyTorch learning-rate scheduler as an optax schedule: ``count -> lr`` (float32).

    ``count`` is the number of ``scheduler.step()`` calls so far, which is the count a
    torchsem (or optax) optimizer passes when the scheduler is stepped after every
    ``optimizer.step()``; the value is ``optimizer.param_groups[0]["lr"]`` at that point,
    PyTorch's float64 value rounded once to float32. :meth:`lrs` gives the float64 values.

    Attributes:
      horizon: how many counts the float32 table holds; later counts are computed on the
        host through ``jax.pure_callback`` (exact, but a host round trip per call).
    """

    horizon: int

    def __init__(self, *, horizon: int) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int (the length of the lookup table), got {horizon!r}")
        self.horizon = horizon
        self._history = _History(self._new_run(), self._start_lr())

    # --------------------------------------------------------------- for subclasses

    def _new_run(self) -> Run:
        """A fresh, unattached replay of this scheduler."""
        raise NotImplementedError

    def _start_lr(self) -> Any:
        """The optimizer's lr before any scheduler touches it (None where the scheduler sets its own)."""
        raise NotImplementedError

    # --------------------------------------------------------------- the schedule

    def __call__(self, count: Any) -> jax.Array:
        """The learning rate after ``count`` steps, as float32 (optax's schedule protocol)."""
        return self._value("lr", count)

    @property
    def momentum(self) -> MomentumSchedule | None:
        """The cycled momentum (SGD's ``momentum``, Adam's ``betas[0]``) as a schedule; None when not cycled."""
        return MomentumSchedule(self) if self._history.cycles_momentum else None

    def lrs(self, steps: int) -> np.ndarray:
        """PyTorch's ``param_groups[0]["lr"]`` after 0, 1, ..., ``steps - 1`` steps, float64 (exact)."""
        return self._history.values("lr", np.arange(_check_steps(steps)))

    def momentums(self, steps: int) -> np.ndarray:
        """PyTorch's cycled momentum after 0, 1, ..., ``steps - 1`` steps, float64 (exact).

        Raises:
          ValueError: the scheduler does not cycle momentum.
        """
        if not self._history.cycles_momentum:
            raise ValueError(f"{type(self).__name__} does not cycle momentum here (cycle_momentum=False)")
        return self._history.values("momentum", np.arange(_check_steps(steps)))

    def _value(self, kind: str, count: Any) -> jax.Array:
        _check_count(count)
        if not isinstance(count, jax.core.Tracer):
            counts = np.asarray(count)
            return jnp.asarray(self._history.values(kind, counts).astype(np.float32))
        table, complete = self._history.table(kind, self.horizon)
        count = jnp.asarray(count)
        last = table.shape[0] - 1
        looked_up = jnp.asarray(table)[jnp.clip(count, 0, last)]
        if complete:
            # Nothing changes after the table's end; a negative count (no optimizer makes one) reads NaN.
            return jnp.where(count >= 0, looked_up, jnp.float32(jnp.nan))
        history = self._history

        def host(counts: Any) -> np.ndarray:
            return history.values(kind, np.asarray(counts)).astype(np.float32)

        def beyond() -> jax.Array:
            shape = jax.ShapeDtypeStruct(count.shape, jnp.float32)
            return jax.pure_callback(host, shape, count, vmap_method="expand_dims")

        inside = jnp.all((count >= 0) & (count <= last))
        return jax.lax.cond(inside, lambda: looked_up, beyond)

    def __repr__(self) -> str:
        first = float(self._history.values("lr", np.zeros((), np.int64)))
        return f"<torchsem {type(self).__name__}: lr {first!r} at count 0, horizon {self.horizon}>"


class MomentumSchedule:
    """A scheduler's cycled momentum as an optax schedule ``count -> momentum`` (float32).

    The value at ``count`` is ``param_groups[0]["momentum"]`` (SGD) or ``["betas"][0]`` (Adam)
    after ``count`` scheduler steps, PyTorch's float64 value rounded once to float32.
    """

    def __init__(self, scheduler: LRScheduler) -> None:
        self._scheduler = scheduler

    def __call__(self, count: Any) -> jax.Array:
        return self._scheduler._value("momentum", count)

    def complement(self, count: Any) -> jax.Array:
        """``1 - momentum`` computed in float64 and rounded once to float32 (Adam's ``lerp`` weight ``1 - beta1``).

        Not ``1 - momentum(count)`` in float32, which rounds twice.
        """
        return self._scheduler._value(_COMPLEMENT, count)

    def values(self, steps: int) -> np.ndarray:
        """The float64 momentum after 0, 1, ..., ``steps - 1`` steps (:meth:`LRScheduler.momentums`)."""
        return self._scheduler.momentums(steps)


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    return int(steps)
