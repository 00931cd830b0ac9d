"""``torchsem compare``'s results: every catalogue entry judged by the one runner, plain JAX beside it.

:func:`run_catalogue` runs scenarios against an oracle through :func:`~torchsem.compare.run_scenario`,
the parity suite's own runner, so the report and the tests judge the same outputs with the same
tolerances; where a scenario has a plain JAX/Flax/Optax program, its outputs are set against
PyTorch's as well (never judged). It returns a :class:`Report`, which :mod:`._render` prints
(:func:`render_table`, :func:`render_markdown`, :func:`render_json`); the command line is
:mod:`torchsem.cli`.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ._format import last_line
from ._oracle import RecordedOracle
from ._outputs import Outputs
from ._result import OutputComparison, ScenarioResult, compare_output, judge, run_scenario
from ._scenario import Scenario
from ._store import RecordedStore, RecordingMissing

EXIT_AGREE, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class PlainJax:
    """What plain JAX/Flax/Optax gives for an entry (the pitfall), set against PyTorch; never judged.

    Attributes:
      outputs: the plain JAX program's outputs (empty when it raised).
      comparisons: plain JAX against PyTorch for every name both have, under the entry's tolerances.
      error: the last line of the exception when the plain program raised, else None.
    """

    outputs: Outputs
    comparisons: tuple[OutputComparison, ...]
    error: str | None

    @property
    def differs(self) -> bool:
        """Whether plain JAX disagrees with PyTorch anywhere (the pitfall shows)."""
        return self.error is not None or any(not c.ok for c in self.comparisons)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalogue entry's result: the judged torchsem outputs, and plain JAX where the scenario has it.

    Attributes:
      result: :func:`~torchsem.compare.run_scenario`'s verdict (empty when PyTorch's outputs are unavailable).
      plain: plain JAX against PyTorch, or None (no plain program, not asked for, or no PyTorch outputs).
      oracle_error: why PyTorch's outputs are unavailable (a missing recording, a crashing PyTorch
        program), else None.
    """

    result: ScenarioResult
    plain: PlainJax | None = None
    oracle_error: str | None = None

    @property
    def scenario(self) -> Scenario:
        return self.result.scenario

    @property
    def ok(self) -> bool:
        return self.oracle_error is None and self.result.ok

    @property
    def verdict(self) -> str:
        """The verdict as the table and the progress lines show it: ``agree`` or ``DIFFER``."""
        return "agree" if self.ok else "DIFFER"

    @property
    def verdict_key(self) -> str:
        """The verdict as data (the JSON report's ``verdict``): ``agree`` or ``differ``."""
        return "agree" if self.ok else "differ"


@dataclasses.dataclass(frozen=True)
class Report:
    """A whole ``torchsem compare`` run: the oracle, every entry, the wall time."""

    entries: tuple[Entry, ...]
    oracle_mode: str
    oracle_description: str
    recorded_torch_versions: tuple[str, ...]
    jit: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    @property
    def agreeing(self) -> int:
        return sum(e.ok for e in self.entries)

    @property
    def exit_status(self) -> int:
        """0 when every entry agrees with PyTorch, 1 otherwise."""
        return EXIT_AGREE if self.ok else EXIT_DISAGREE

    def headline(self) -> str:
        jax_version = jax_version_text()
        oracle = self.oracle_description
        if self.oracle_mode == "live":
            recorded = ", ".join(self.recorded_torch_versions)
            oracle += (
                f" (the recordings shipped for users without PyTorch come from PyTorch {recorded})"
                if recorded
                else " (no recordings shipped for these entries)"
            )
        return f"oracle: {oracle}; JAX {jax_version}, {'jit' if self.jit else 'eager'}"


def jax_version_text() -> str:
    import jax

    return str(jax.__version__)


# ---------------------------------------------------------------------------------------- running


def _plain_outputs(scenario: Scenario) -> tuple[Outputs, str | None]:
    try:
        return scenario.run_plain_jax() or {}, None
    except Exception:  # a plain program that raises is itself the pitfall's evidence
        return {}, last_line(traceback.format_exc())


def _run_plain(scenario: Scenario, expected: Outputs, ready: Future | None = None) -> PlainJax | None:
    """Plain JAX against PyTorch; ``ready`` is a future of :func:`_plain_outputs` already under way."""
    if scenario.plain_jax_program is None:
        return None
    outputs, error = ready.result() if ready is not None else _plain_outputs(scenario)
    if error is not None:
        return PlainJax({}, (), error)
    comparisons = tuple(
        compare_output(name, expected[name], outputs[name], scenario.tolerance_for(name))
        for name in outputs
        if name in expected
    )
    return PlainJax(outputs, comparisons, None)


def run_entry(
    scenario: Scenario, oracle, *, jit: bool = False, plain: bool = True, plain_ready: Future | None = None
) -> Entry:
    """Judge one scenario with :func:`~torchsem.compare.run_scenario`, then set its plain JAX program's
    outputs against PyTorch's.

    Where the oracle cannot answer (a missing recording, a crashing PyTorch program) the entry
    disagrees with the reason in ``oracle_error``, and neither JAX program is judged.

    Args:
      plain: whether to run the plain JAX program (when the scenario has one).
      plain_ready: a future of its outputs already under way in another thread, if any.
    """
    start = time.perf_counter()
    try:
        result = run_scenario(scenario, oracle, jit=jit)
    except Exception as err:  # only the oracle raises out of run_scenario: no verdict is possible
        message = str(err) if isinstance(err, RecordingMissing) else last_line(traceback.format_exc())
        result = judge(
            scenario, {}, {}, oracle=oracle.mode, jit=jit, error=message, seconds=time.perf_counter() - start
        )
        return Entry(result, None, f"PyTorch's outputs are unavailable: {message}")
    return Entry(result, _run_plain(scenario, result.torch_outputs, plain_ready) if plain else None)


class PrefetchingOracle:
    """A live oracle whose PyTorch programs run in one background thread, in catalogue order.

    PyTorch's programs (and ``import torch``) then overlap with the JAX programs, whose time is
    mostly XLA compilation outside the GIL. Answers are the wrapped oracle's, unchanged.
    """

    def __init__(self, oracle, scenarios: Sequence[Scenario]) -> None:
        self.oracle = oracle
        self.mode = oracle.mode
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torchsem-pytorch")
        self._futures = {s.name: self._executor.submit(oracle.outputs, s) for s in scenarios}

    def outputs(self, scenario: Scenario) -> Outputs:
        future = self._futures.get(scenario.name)
        return future.result() if future is not None else self.oracle.outputs(scenario)

    def describe(self, scenarios: Iterable[Scenario] = ()) -> str:
        return self.oracle.describe(scenarios)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _recordings(scenarios: Iterable[Scenario], store: RecordedStore) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The torch versions the scenarios' families were recorded with, and the families with no recording."""
    versions, missing = set(), []
    for family in sorted({s.family for s in scenarios}):
        try:
            versions.add(store.torch_version(family))
        except (RecordingMissing, OSError, KeyError, ValueError):
            missing.append(family)
    return tuple(sorted(versions)), tuple(missing)


def _describe(oracle, versions: tuple[str, ...], missing: tuple[str, ...], scenarios: Sequence[Scenario]) -> str:
    if not isinstance(oracle, RecordedOracle):
        return oracle.describe(scenarios)
    text = f"recorded outputs of PyTorch {', '.join(versions) or '(none)'} ({oracle.store.directory})"
    return text + (f"; no recording for {', '.join(missing)}" if missing else "")


def run_catalogue(
    scenarios: Sequence[Scenario],
    oracle,
    *,
    jit: bool = False,
    plain: bool = True,
    progress: Callable[[Entry], None] | None = None,
) -> Report:
    """Run every scenario against the oracle; ``progress`` is called after each entry.

    With a live oracle the PyTorch programs run in a background thread (:class:`PrefetchingOracle`),
    and the plain JAX programs in another, so that their work overlaps the judged JAX programs'.
    A ``progress`` with ``begin(name)``/``close()`` (:class:`~torchsem.compare._render.Progress`) is
    told when entries start.
    """
    start = time.perf_counter()
    source = PrefetchingOracle(oracle, scenarios) if oracle.mode == "live" else oracle
    # The plain JAX programs are never judged against torchsem's, so they can compile in parallel.
    plain_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torchsem-plain-jax") if plain else None
    plain_futures = {
        s.name: plain_runner.submit(_plain_outputs, s)
        for s in scenarios
        if plain_runner is not None and s.plain_jax_program is not None
    }
    begin, close = getattr(progress, "begin", None), getattr(progress, "close", None)
    entries = []
    try:
        for scenario in scenarios:
            if begin is not None:
                begin(scenario.name)
            entry = run_entry(scenario, source, jit=jit, plain=plain, plain_ready=plain_futures.get(scenario.name))
            entries.append(entry)
            if progress is not None:
                progress(entry)
    finally:
        if close is not None:
            close()
        if isinstance(source, PrefetchingOracle):
            source.close()
        if plain_runner is not None:
            plain_runner.shutdown(wait=True, cancel_futures=True)
    store = oracle.store if isinstance(oracle, RecordedOracle) else RecordedStore()
    versions, missing = _recordings(scenarios, store)
    return Report(
        entries=tuple(entries),
        oracle_mode=oracle.mode,
        oracle_description=_describe(oracle, versions, missing, scenarios),
        recorded_torch_versions=versions,
        jit=jit,
        seconds=time.perf_counter() - start,
    )


__all__ = [
    "EXIT_AGREE",
    "EXIT_DISAGREE",
    "EXIT_USAGE",
    "Entry",
    "PlainJax",
    "PrefetchingOracle",
    "Report",
    "jax_version_text",
    "run_catalogue",
    "run_entry",
]
