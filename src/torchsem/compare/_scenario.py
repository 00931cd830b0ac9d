"""Scenarios: one PyTorch program and one JAX program over the same inputs."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._outputs import Inputs, Outputs

TorchProgram = Callable[[Inputs], Mapping[str, Any]]
JaxProgram = Callable[[Inputs, bool], Mapping[str, Any]]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*(/[a-z0-9][a-z0-9_.=\-]*)*$")


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """A per-output tolerance that differs from the scenario's default, with the reason why.

    ``|actual - expected| <= atol + rtol * |expected|`` elementwise, as ``numpy.allclose``.

    A *drift* tolerance (``drift=k``, ``reference=name``) judges a float32 result by its distance
    from a float64 PyTorch run of the same program, recorded by the PyTorch program as the output
    ``reference`` (which the JAX program does not produce): where float32 PyTorch itself moves away
    from float64 (a long trajectory, BatchNorm on a few values per channel), torchsem must be about
    as close to float64 as PyTorch is. ``baseline`` names other drift-judged outputs whose PyTorch
    drift also sets the yardstick (for a scalar, too few numbers to measure drift by). See
    :func:`~torchsem.compare.compare_output`.
    Text outputs are equal under ``text="exact"``; under ``text="contained"`` PyTorch's text
    must appear verbatim inside torchsem's (an error message that adds context around
    PyTorch's own words). ``is_default`` marks the scenario's own ``rtol``/``atol`` (made by
    :meth:`Scenario.tolerance_for`), which the report does not annotate with its reason.
    """

    rtol: float
    atol: float
    reason: str
    text: str = "exact"
    is_default: bool = dataclasses.field(default=False, kw_only=True)
    drift: float | None = dataclasses.field(default=None, kw_only=True)
    reference: str | None = dataclasses.field(default=None, kw_only=True)
    baseline: tuple[str, ...] = dataclasses.field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        if self.rtol < 0 or self.atol < 0:
            raise ValueError(f"rtol and atol must be >= 0, got rtol={self.rtol}, atol={self.atol}")
        if (self.drift is None) != (self.reference is None):
            raise ValueError("a drift tolerance needs both drift (k) and reference (the float64 output's name)")
        if self.drift is not None and not self.drift >= 1:
            raise ValueError(f"drift must be >= 1 (a multiple of PyTorch's distance from float64), got {self.drift}")
        if self.baseline and self.drift is None:
            raise ValueError("baseline outputs only apply to a drift tolerance")
        if not self.reason.strip():
            raise ValueError("a tolerance that differs from the default needs a reason")
        if self.text not in ("exact", "contained"):
            raise ValueError(f"text must be 'exact' or 'contained', got {self.text!r}")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A PyTorch behaviour and its JAX counterpart, run on the same inputs.

    Attributes:
      name: unique, ``family/case`` (lower case, digits, ``_.=-``); the family names the
        recorded file the PyTorch outputs are stored in.
      section: the source document's section this behaviour comes from (or the module it
        checks, for parity-grid scenarios).
      mapping: one line, ``PyTorch idiom -> JAX/torchsem idiom``.
      torch_program: ``inputs -> {name: tensor | array | str | None}``; imports torch itself.
      jax_program: ``(inputs, jit) -> {name: ...}`` with the same names; ``jit`` says
        whether to run under ``jax.jit``.
      make_inputs: ``() -> inputs``, deterministic, made without torch (numpy), shared by
        both programs.
      rtol, atol: default tolerance for floating outputs (float32: 1e-5, 1e-6).
      tolerances: per-output overrides, each with its reason.
      tolerance_of: optional ``output name -> Tolerance | None`` consulted after
        ``tolerances``, for scenarios whose output names are made at run time (the module
        runner's ``"train.1 grad weight"``); None falls back to the default.
      plain_jax_program: optional ``inputs -> {name: ...}`` written with plain JAX/Flax/Optax,
        shown in the report to teach the pitfall torchsem fixes; never judged. Outputs it
        shares with PyTorch are shown next to PyTorch's; it need not return every name.
      pitfall: one or two sentences on what plain JAX/Flax/Optax does differently from
        PyTorch here (shown with the plain JAX outputs); empty when there is no pitfall.
      in_report: whether ``torchsem compare`` lists it by default (document behaviours do;
        parity-grid scenarios are for the test suite).
      notes: free text for the report.
    """

    name: str
    section: str
    mapping: str
    torch_program: TorchProgram
    jax_program: JaxProgram
    make_inputs: Callable[[], Inputs] = dict
    rtol: float = 1e-5
    atol: float = 1e-6
    tolerances: Mapping[str, Tolerance] = dataclasses.field(default_factory=dict)
    tolerance_of: Callable[[str], Tolerance | None] | None = None
    plain_jax_program: Callable[[Inputs], Mapping[str, Any]] | None = None
    in_report: bool = False
    notes: str = ""
    pitfall: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"scenario name must look like 'family/case' in lower case, got {self.name!r}")
        if self.rtol < 0 or self.atol < 0:
            raise ValueError(f"rtol and atol must be >= 0, got rtol={self.rtol}, atol={self.atol}")

    @property
    def family(self) -> str:
        """The first path component of the name: the recorded file's stem."""
        return self.name.split("/", 1)[0]

    def tolerance_for(self, output: str) -> Tolerance:
        """The tolerance that applies to one named output."""
        if output in self.tolerances:
            return self.tolerances[output]
        if self.tolerance_of is not None:
            chosen = self.tolerance_of(output)
            if chosen is not None:
                return chosen
        reason = "float32 default" if (self.rtol, self.atol) == (1e-5, 1e-6) else "scenario default"
        return Tolerance(self.rtol, self.atol, reason, is_default=True)

    def run_jax(self, jit: bool = False) -> Outputs:
        """Run the JAX program on fresh inputs."""
        from ._outputs import as_outputs

        return as_outputs(self.jax_program(self.make_inputs(), jit))

    def run_plain_jax(self) -> Outputs | None:
        """Run the plain JAX program (the pitfall) on fresh inputs; None when there is none."""
        from ._outputs import as_outputs

        if self.plain_jax_program is None:
            return None
        return as_outputs(self.plain_jax_program(self.make_inputs()))

    def run_torch(self) -> Outputs:
        """Run the PyTorch program on fresh inputs (imports torch)."""
        from ._outputs import as_outputs

        return as_outputs(self.torch_program(self.make_inputs()))


_REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add a scenario to the catalogue; names are unique."""
    if scenario.name in _REGISTRY and _REGISTRY[scenario.name] is not scenario:
        raise ValueError(f"a scenario named {scenario.name!r} is already registered")
    _REGISTRY[scenario.name] = scenario
    return scenario


def catalogue(prefix: str | None = None, *, report_only: bool = False) -> list[Scenario]:
    """Every registered scenario, in registration order.

    Args:
      prefix: keep scenarios whose name equals it or starts with ``prefix + '/'``.
      report_only: keep only the scenarios the report lists by default.
    """
    from . import scenarios  # noqa: F401  (registers the package's scenarios)

    chosen = []
    for name, scenario in _REGISTRY.items():
        if prefix is not None and not (name == prefix or name.startswith(prefix.rstrip("/") + "/")):
            continue
        if report_only and not scenario.in_report:
            continue
        chosen.append(scenario)
    return chosen


def get(name: str) -> Scenario:
    """The scenario with this exact name."""
    from . import scenarios  # noqa: F401

    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no scenario named {name!r}; `torchsem compare --list` lists them") from None
