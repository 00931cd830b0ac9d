"""The oracle: PyTorch's outputs for a scenario, live or recorded."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

from ._outputs import Outputs
from ._result import ScenarioResult, judge
from ._scenario import Scenario
from ._store import RecordedStore, recorded_dir, save_family

OracleMode = Literal["auto", "live", "recorded"]
_MODES = ("auto", "live", "recorded")


def torch_available() -> bool:
    """Whether PyTorch can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def oracle_mode_from_env() -> OracleMode:
    """``$TORCHSEM_ORACLE`` (``auto`` when unset); anything else is an error."""
    mode = os.environ.get("TORCHSEM_ORACLE", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"TORCHSEM_ORACLE must be one of {', '.join(_MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


class Oracle(Protocol):
    """Where PyTorch's answer to a scenario comes from."""

    mode: Literal["live", "recorded"]

    def outputs(self, scenario: Scenario) -> Outputs: ...

    def describe(self, scenarios: Iterable[Scenario] = ()) -> str: ...


class LiveOracle:
    """Runs each scenario's PyTorch program in this process (results cached per scenario)."""

    mode: Literal["live"] = "live"

    def __init__(self) -> None:
        if not torch_available():
            raise RuntimeError("the live oracle needs PyTorch: pip install torch==2.13.0 (or use --oracle recorded)")
        self._cache: dict[str, Outputs] = {}

    @property
    def torch_version(self) -> str:
        import torch

        return str(torch.__version__)

    def outputs(self, scenario: Scenario) -> Outputs:
        if scenario.name not in self._cache:
            self._cache[scenario.name] = scenario.run_torch()
        return self._cache[scenario.name]

    def describe(self, scenarios: Iterable[Scenario] = ()) -> str:
        return f"live PyTorch {self.torch_version}"


class RecordedOracle:
    """Reads the PyTorch outputs recorded by ``torchsem record`` (no torch needed)."""

    mode: Literal["recorded"] = "recorded"

    def __init__(self, directory: Path | None = None) -> None:
        self.store = RecordedStore(directory)

    def outputs(self, scenario: Scenario) -> Outputs:
        return self.store.outputs(scenario.name)

    def describe(self, scenarios: Iterable[Scenario] = ()) -> str:
        families = sorted({s.family for s in scenarios}) or None
        versions = ", ".join(sorted(self.store.torch_versions(families)))
        return f"recorded PyTorch {versions} outputs ({self.store.directory})"


def get_oracle(mode: OracleMode | None = None) -> LiveOracle | RecordedOracle:
    """The oracle for ``mode`` (default ``$TORCHSEM_ORACLE``, else ``auto``).

    ``auto`` is live when torch is importable and recorded otherwise.
    """
    chosen = oracle_mode_from_env() if mode is None else mode
    if chosen not in _MODES:
        raise ValueError(f"oracle must be one of {', '.join(_MODES)}, got {chosen!r}")
    if chosen == "live" or (chosen == "auto" and torch_available()):
        return LiveOracle()
    return RecordedOracle()


def check_recording(scenario: Scenario, live: LiveOracle, recorded: RecordedOracle) -> ScenarioResult:
    """Compare a scenario's recorded outputs with a fresh PyTorch run (so recordings cannot rot).

    PyTorch is not bit-reproducible across machines: its CPU kernels are compiled for several
    instruction sets (AVX2, AVX-512) and split reductions by thread count, so a recording made
    on one machine and a live run on another differ in the last bits (1.8e-7 seen on a
    Linear output). The recording is therefore judged with the scenario's own tolerances,
    the same ones that JAX is held to: a live PyTorch that differs from its recording by more
    than that would make the JAX verdict depend on the machine that recorded. Exact outputs
    (integers, booleans, None, error messages) stay exact, and a changed or stale value
    (anything outside float rounding) is still caught.
    """
    return judge(scenario, live.outputs(scenario), recorded.outputs(scenario), oracle="recorded-vs-live", jit=False)


def record(scenarios: Iterable[Scenario], directory: Path | None = None) -> list[Path]:
    """Run every scenario's PyTorch program and write the outputs, family by family.

    A family file is rewritten whole, so record whole families (``torchsem record`` does).
    """
    import torch

    target = Path(directory) if directory is not None else recorded_dir()
    by_family: dict[str, dict[str, Outputs]] = {}
    for scenario in scenarios:
        by_family.setdefault(scenario.family, {})[scenario.name] = scenario.run_torch()
    return [save_family(target, family, recs, str(torch.__version__)) for family, recs in by_family.items()]
