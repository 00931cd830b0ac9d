"""What check_port found, for a person: the first divergence, a table per kind of quantity, a plot per step."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._result import OutputComparison

__all__ = ["KINDS", "PortCheck", "PortQuantity"]

KINDS = ("init", "activation", "output", "loss", "buffer", "grad", "param", "optimizer")
"""The kinds of quantity check_port compares, in the order they arise within a step."""


def _tolerance_ratio(c: OutputComparison) -> float:
    """How far outside its tolerance a comparison is: the largest ``|a - e| / (atol + rtol |e|)``."""
    if not isinstance(c.expected, np.ndarray) or not isinstance(c.actual, np.ndarray):
        return 0.0 if c.ok else math.inf
    if c.expected.shape != c.actual.shape:
        return math.inf
    e = c.expected.astype(np.float64)
    a = c.actual.astype(np.float64)
    finite = np.isfinite(e) & np.isfinite(a)
    if not np.array_equal(np.isfinite(e), np.isfinite(a)):
        return math.inf
    if not finite.any():
        return 0.0
    bound = c.tolerance.atol + c.tolerance.rtol * np.abs(e[finite])
    error = np.abs(a[finite] - e[finite])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bound > 0, error / np.where(bound > 0, bound, 1.0), np.where(error > 0, np.inf, 0.0))
    return float(ratio.max())


@dataclasses.dataclass(frozen=True)
class PortQuantity:
    """One quantity compared at one step: PyTorch's value against the port's.

    Attributes:
      step: 1-based step number; 0 is the state before the first step (``mode="init"``).
      mode: ``"train"``, ``"eval"`` or ``"init"``.
      name: with PyTorch's dotted names: ``layer1.0.bn2 output`` (a submodule's output, in
        execution order; ``(call 2)`` for a module's second call), ``output``, ``loss``, a
        buffer (``bn1.running_mean``), ``grad <param>``, ``<param>`` (its value after the
        optimizer step, or before any step at step 0), ``optimizer <param> <state>``
        (``momentum_buffer``, ``exp_avg``, ...).
      comparison: the values, differences, tolerance and verdict.
      kind: one of :data:`KINDS`.
    """

    step: int
    mode: str
    name: str
    comparison: OutputComparison
    kind: str = "output"

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def describe(self) -> str:
        """``step 1 (train): layer3.0.bn2 output differs (max rel 3e-2, max abs 1e-3)``."""
        c = self.comparison
        verdict = "agrees" if c.ok else "differs"
        numbers = f"max rel {c.max_rel:.3g}, max abs {c.max_abs:.3g}"
        return f"step {self.step} ({self.mode}): {self.name} {verdict} ({numbers}; {c.detail})"


@dataclasses.dataclass(frozen=True)
class PortCheck:
    """The result of :func:`check_port`: every quantity compared, in the order they arise.

    Attributes:
      quantities: every comparison, by step, then in execution order within the step.
      steps: the modes asked for.
      steps_run: how many were run (fewer with ``stop_at_first`` after a mismatch).
      uncompared: PyTorch quantities the port has no counterpart for and that are not errors:
        a submodule the port computes with a function (``relu``), ``num_batches_tracked`` of a
        Flax BatchNorm, optimizer state optax keeps differently (a shared step count).
    """

    quantities: tuple[PortQuantity, ...]
    steps: tuple[str, ...]
    steps_run: int
    uncompared: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every quantity at every step agrees within tolerance."""
        return all(q.ok for q in self.quantities)

    @property
    def first_mismatch(self) -> PortQuantity | None:
        """The first quantity (by step, then in execution order) that disagrees."""
        return next((q for q in self.quantities if not q.ok), None)

    def first_by_kind(self) -> dict[str, PortQuantity]:
        """The first disagreeing quantity of each kind (kinds that agree everywhere are absent)."""
        firsts: dict[str, PortQuantity] = {}
        for q in self.quantities:
            if not q.ok and q.kind not in firsts:
                firsts[q.kind] = q
        return {kind: firsts[kind] for kind in KINDS if kind in firsts}

    def trajectory(self, name: str) -> list[tuple[int, float]]:
        """``(step, max relative difference)`` of one quantity at every step it was compared."""
        return [(q.step, q.comparison.max_rel) for q in self.quantities if q.name == name]

    def worst(self, count: int = 6) -> list[str]:
        """The ``count`` float quantities furthest outside their tolerance at any step, worst first.

        Ranked by ``max |actual - expected| / (atol + rtol * |expected|)`` (1 is the edge of the
        tolerance), so a gradient that is zero up to rounding (a conv bias before a BatchNorm)
        does not outrank a real divergence by its huge relative error.
        """
        peak: dict[str, float] = {}
        for q in self.quantities:
            if q.comparison.exact:
                continue
            peak[q.name] = max(peak.get(q.name, 0.0), _tolerance_ratio(q.comparison))
        return sorted(peak, key=lambda n: -peak[n])[:count]

    def table(self) -> str:
        """A table a person reads at a glance: per kind, the first module that diverges, where and by how much."""
        firsts = self.first_by_kind()
        counts = {kind: 0 for kind in KINDS}
        for q in self.quantities:
            counts[q.kind] += 1
        rows = [("kind", "first divergent quantity", "step", "max rel", "max abs")]
        for kind in KINDS:
            if not counts[kind]:
                continue
            first = firsts.get(kind)
            if first is None:
                rows.append((kind, f"agrees ({counts[kind]} compared)", "", "", ""))
            else:
                c = first.comparison
                rows.append((kind, first.name, f"{first.step} ({first.mode})", f"{c.max_rel:.3g}", f"{c.max_abs:.3g}"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def summary(self) -> str:
        """A paragraph: agreement with the largest difference, or the first mismatch with both values."""
        from ._format import format_cell

        if self.ok:
            worst = max(self.quantities, key=lambda q: q.comparison.max_abs, default=None)
            tail = (
                f"; largest difference {worst.comparison.max_abs:.3g} ({worst.name}, step {worst.step})"
                if worst
                else ""
            )
            return (
                f"the port agrees with PyTorch: {len(self.quantities)} quantities over "
                f"{self.steps_run} steps ({', '.join(self.steps)}){tail}"
            )
        first = self.first_mismatch
        assert first is not None
        c = first.comparison
        return (
            f"the port first differs from PyTorch at {first.describe()}\n"
            f"  PyTorch: {format_cell(c.expected, 100)}\n  port:    {format_cell(c.actual, 100)}"
        )

    def plot(self, path: str, names: Sequence[str] | None = None, count: int = 6) -> str:
        """Write a PNG of the relative difference per step of the worst quantities (or ``names``).

        Needs matplotlib (``pip install 'torchsem[report]'``). Returns ``path``.

        Raises:
          ImportError: matplotlib is not installed.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - exercised without the extra
            raise ImportError(
                "PortCheck.plot draws with matplotlib, which is not installed: pip install 'torchsem[report]'"
            ) from error
        chosen = list(names) if names is not None else self.worst(count)
        figure: Any
        figure, axes = plt.subplots(figsize=(8, 4.5))
        floor = 1e-12
        for name in chosen:
            points = self.trajectory(name)
            if not points:
                raise ValueError(f"names: no quantity called {name!r} was compared")
            steps = [s for s, _ in points]
            values = [max(v, floor) if math.isfinite(v) else 1.0 for _, v in points]
            axes.plot(steps, values, marker="o", label=name)
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_yscale("log")
        axes.set_xlabel("step")
        axes.set_ylabel("max relative difference to PyTorch")
        axes.set_title("check_port: the port against PyTorch, per step")
        axes.grid(True, which="both", alpha=0.3)
        if chosen:
            axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path

    def __str__(self) -> str:
        return self.summary()
